// Logical And/Or/Xor on bool tensors with numpy broadcasting (Not is in unary.cpp).
#include "ops/op_util.h"

namespace deepep::ops {
namespace {

template <class F>
void logical(KernelContext& ctx, F f) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  DEEPEP_CHECK(a.dtype() == DType::kBool && b.dtype() == DType::kBool, ctx.node.describe(),
               ": expected bool inputs, got ", dtype_name(a.dtype()), " and ", dtype_name(b.dtype()));
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), ctx.node);
  Tensor& y = ctx.output(0, DType::kBool, shape);
  const bool* pa = a.data<bool>();
  const bool* pb = b.data<bool>();
  bool* out = y.data<bool>();
  for_each_broadcast<2>(shape, {a.shape(), b.shape()},
                        [&](int64_t i, const auto& off) { out[i] = f(pa[off[0]], pb[off[1]]); });
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(And) {
  def.infer = infer_broadcast_bool;
  def.reference = [](KernelContext& ctx) { logical(ctx, [](bool x, bool y) { return x && y; }); };
}

DEEPEP_DEFINE_OP(Or) {
  def.infer = infer_broadcast_bool;
  def.reference = [](KernelContext& ctx) { logical(ctx, [](bool x, bool y) { return x || y; }); };
}

DEEPEP_DEFINE_OP(Xor) {
  def.infer = infer_broadcast_bool;
  def.reference = [](KernelContext& ctx) { logical(ctx, [](bool x, bool y) { return x != y; }); };
}
