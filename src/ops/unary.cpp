// Elementwise unary ops: y = f(x), same shape; computed in float/double for
// reduced-precision types.
#include "ops/op_util.h"

namespace deepep::ops {
namespace {

template <class F>
void unary_float(KernelContext& ctx, F f) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0, x.dtype(), x.shape());
  dispatch_float(x.dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = std::conditional_t<std::is_same_v<T, double>, double, float>;
    const T* in = x.data<T>();
    T* out = y.data<T>();
    for (int64_t i = 0, n = x.numel(); i < n; ++i) out[i] = T(f(C(in[i])));
  });
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(Relu) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) {
    unary_float(ctx, [](auto v) { return v > 0 ? v : decltype(v)(0); });
  };
}
