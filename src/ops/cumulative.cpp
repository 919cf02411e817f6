// CumSum / CumProd along the axis given by input 1 (a scalar), with the
// `exclusive` (shifted by one, starting at the identity) and `reverse` flags.
// Floats accumulate in double, integers in their own type (wrapping).
#include "ops/op_util.h"

namespace deepep::ops {
namespace {

template <class T, class V>
T cast_to(V v) {
  if constexpr (std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>) return T(float(v));
  else return static_cast<T>(v);
}

void run_cumulative(KernelContext& ctx, bool prod) {
  const Tensor& x = ctx.input(0);
  const Tensor& at = ctx.input(1);
  DEEPEP_CHECK(at.numel() == 1 && at.rank() <= 1, ctx.node.describe(),
               ": axis must be a scalar, got shape ", shape_str(at.shape()));
  DEEPEP_CHECK(x.rank() > 0, ctx.node.describe(), ": input must have rank >= 1");
  const int64_t axis = normalize_axis(at.get_int(0), x.rank(), ctx.node);
  const bool exclusive = ctx.node.attr_int("exclusive", 0) != 0;
  const bool reverse = ctx.node.attr_int("reverse", 0) != 0;
  int64_t outer = 1, n = x.dim(int(axis)), inner = 1;
  for (int64_t d = 0; d < x.rank(); ++d)
    if (d != axis) (d < axis ? outer : inner) *= x.dim(int(d));
  Tensor& y = ctx.output(0, x.dtype(), x.shape());
  if (x.numel() == 0) return;
  dispatch_numeric(x.dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using A = std::conditional_t<is_floating_v<T>, double, T>;
    const T* in = x.data<T>();
    T* out = y.data<T>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t base = o * n * inner + i;
        A acc = prod ? A(1) : A(0);
        for (int64_t j = 0; j < n; ++j) {
          const int64_t k = base + (reverse ? n - 1 - j : j) * inner;
          const A v = cast_to<A>(in[k]);
          if (exclusive) {
            out[k] = cast_to<T>(acc);
            acc = prod ? A(acc * v) : A(acc + v);
          } else {
            acc = prod ? A(acc * v) : A(acc + v);
            out[k] = cast_to<T>(acc);
          }
        }
      }
  });
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(CumSum) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) { run_cumulative(ctx, false); };
}
DEEPEP_DEFINE_OP(CumProd) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) { run_cumulative(ctx, true); };
}
