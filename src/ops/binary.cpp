// Elementwise binary ops with numpy broadcasting.
#include "ops/op_util.h"

namespace deepep::ops {
namespace {

template <class F>
void binary_numeric(KernelContext& ctx, F f) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  DEEPEP_CHECK(a.dtype() == b.dtype(), ctx.node.describe(), ": input dtypes differ (",
               dtype_name(a.dtype()), " vs ", dtype_name(b.dtype()), ")");
  Shape shape = broadcast_shapes(a.shape(), b.shape(), ctx.node);
  Tensor& y = ctx.output(0, a.dtype(), shape);
  dispatch_numeric(a.dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* out = y.data<T>();
    for_each_broadcast<2>(shape, {a.shape(), b.shape()}, [&](int64_t i, const auto& off) {
      out[i] = T(f(pa[off[0]], pb[off[1]]));
    });
  });
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(Add) {
  def.infer = infer_broadcast;
  def.reference = [](KernelContext& ctx) { binary_numeric(ctx, [](auto x, auto y) { return x + y; }); };
}
