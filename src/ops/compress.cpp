// Compress: keeps the slices along an axis (or elements of the flattened
// input when no axis is given) whose condition entry is true. A condition
// shorter than the axis treats the missing entries as false.
#include "ops/tensor_util.h"

using namespace deepep;
using namespace deepep::ops;
using namespace deepep::ops::tensor_detail;

DEEPEP_DEFINE_OP(Compress) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0)) return;
    const Value& x = ctx.input(0);
    if (!ctx.node.has_attr("axis")) {
      ctx.set(0, x.dtype, SymShape(1));
      return;
    }
    if (!x.shape) {
      ctx.set(0, x.dtype, std::nullopt);
      return;
    }
    SymShape out = *x.shape;
    out[size_t(axis_in(ctx.node.attr_int("axis", 0), int64_t(out.size()), ctx.node))] = Dim{};
    ctx.set(0, x.dtype, out);
  };
  def.reference = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    const Tensor& cond = ctx.input(1);
    DEEPEP_CHECK(cond.rank() == 1, ctx.node.describe(), ": condition must be 1-D, got shape ",
                 shape_str(cond.shape()));
    const bool has_axis = ctx.node.has_attr("axis");
    Shape shape = has_axis ? x.shape() : Shape{x.numel()};
    const int64_t axis =
        has_axis ? axis_in(ctx.node.attr_int("axis", 0), x.rank(), ctx.node) : 0;
    DEEPEP_CHECK(shape.size() > 0, ctx.node.describe(), ": cannot compress a scalar along an axis");
    const int64_t n = shape[size_t(axis)];
    std::vector<int64_t> keep;
    for (int64_t i = 0; i < cond.numel(); ++i) {
      if (cond.get_double(i) == 0) continue;
      DEEPEP_CHECK(i < n, ctx.node.describe(), ": condition selects index ", i,
                   " but the axis has size ", n);
      keep.push_back(i);
    }
    int64_t outer = 1, inner = int64_t(dtype_size(x.dtype()));
    for (int64_t d = 0; d < axis; ++d) outer *= shape[size_t(d)];
    for (size_t d = size_t(axis) + 1; d < shape.size(); ++d) inner *= shape[d];
    Shape out = shape;
    out[size_t(axis)] = int64_t(keep.size());
    Tensor& y = ctx.output(0, x.dtype(), out);
    const auto* src = static_cast<const uint8_t*>(x.raw());
    auto* dst = static_cast<uint8_t*>(y.raw());
    if (inner == 0) return;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i : keep) {
        std::memcpy(dst, src + (o * n + i) * inner, size_t(inner));
        dst += inner;
      }
  };
}
