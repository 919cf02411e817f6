// Comparisons with numpy broadcasting: bool output. Floats compare by value
// (NaN compares false except for !=), float16/bfloat16 through float.
#include "ops/op_util.h"

namespace deepep::ops {
namespace {

template <class P>
void compare(KernelContext& ctx, P p, bool allow_bool) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  DEEPEP_CHECK(a.dtype() == b.dtype(), ctx.node.describe(), ": input dtypes differ (",
               dtype_name(a.dtype()), " vs ", dtype_name(b.dtype()), ")");
  DEEPEP_CHECK(allow_bool || a.dtype() != DType::kBool, ctx.node.describe(),
               ": bool inputs are not supported by this comparison");
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), ctx.node);
  Tensor& y = ctx.output(0, DType::kBool, shape);
  dispatch_all(a.dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    bool* out = y.data<bool>();
    if (a.shape() == shape && b.shape() == shape) {
      for (int64_t i = 0, n = y.numel(); i < n; ++i) out[i] = p(pa[i], pb[i]);
    } else {
      for_each_broadcast<2>(shape, {a.shape(), b.shape()},
                            [&](int64_t i, const auto& off) { out[i] = p(pa[off[0]], pb[off[1]]); });
    }
  });
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(Equal) {
  def.infer = infer_broadcast_bool;
  def.reference = [](KernelContext& ctx) { compare(ctx, [](auto x, auto y) { return x == y; }, true); };
}

DEEPEP_DEFINE_OP(Less) {
  def.infer = infer_broadcast_bool;
  def.reference = [](KernelContext& ctx) { compare(ctx, [](auto x, auto y) { return x < y; }, false); };
}

DEEPEP_DEFINE_OP(Greater) {
  def.infer = infer_broadcast_bool;
  def.reference = [](KernelContext& ctx) { compare(ctx, [](auto x, auto y) { return x > y; }, false); };
}

DEEPEP_DEFINE_OP(LessOrEqual) {
  def.infer = infer_broadcast_bool;
  def.reference = [](KernelContext& ctx) { compare(ctx, [](auto x, auto y) { return x <= y; }, false); };
}

DEEPEP_DEFINE_OP(GreaterOrEqual) {
  def.infer = infer_broadcast_bool;
  def.reference = [](KernelContext& ctx) { compare(ctx, [](auto x, auto y) { return x >= y; }, false); };
}
