// Shape (with opset-15 start/end) and Size: int64 tensors describing the input.
#include "ops/tensor_util.h"

namespace deepep::ops {
namespace {
// The clamped [start, end) range of dims Shape reports for a rank-r input.
std::pair<int64_t, int64_t> shape_range(const Node& node, int64_t r) {
  int64_t s = node.attr_int("start", 0);
  int64_t e = node.has_attr("end") ? node.attr_int("end", r) : r;
  if (s < 0) s += r;
  if (e < 0) e += r;
  s = std::clamp<int64_t>(s, 0, r);
  e = std::clamp<int64_t>(e, 0, r);
  return {s, std::max(s, e)};
}
}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(Shape) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0) || !ctx.input(0).shape) {
      ctx.set(0, DType::kInt64, SymShape(1));
      return;
    }
    auto [s, e] = shape_range(ctx.node, int64_t(ctx.input(0).shape->size()));
    ctx.set(0, DType::kInt64, SymShape{Dim::known(e - s)});
  };
  def.reference = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    auto [s, e] = shape_range(ctx.node, x.rank());
    Tensor& y = ctx.output(0, DType::kInt64, {e - s});
    for (int64_t i = s; i < e; ++i) y.data<int64_t>()[i - s] = x.dim(int(i));
  };
}

DEEPEP_DEFINE_OP(Size) {
  def.infer = [](InferContext& ctx) { ctx.set(0, DType::kInt64, SymShape{}); };
  def.reference = [](KernelContext& ctx) {
    ctx.set_output(0, Tensor::scalar(DType::kInt64, ctx.input(0).numel()));
  };
}
