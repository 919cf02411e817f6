// Range: start, start + delta, ... up to (excluding) limit. Integers are exact;
// floats are computed in double (or float/double per stash_type for 16-bit
// floats) and rounded once to the output type.
#include <cmath>

#include "ops/tensor_util.h"

using namespace deepep;
using namespace deepep::ops;
using namespace deepep::ops::tensor_detail;

namespace {
int64_t range_count_int(int64_t start, int64_t limit, int64_t delta) {
  if (delta > 0) return limit > start ? (limit - start - 1) / delta + 1 : 0;
  return start > limit ? (start - limit - 1) / (-delta) + 1 : 0;
}
}  // namespace

DEEPEP_DEFINE_OP(Range) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0)) return;
    const DType dt = ctx.input(0).dtype;
    const Tensor *s = ctx.constant(0), *l = ctx.constant(1), *d = ctx.constant(2);
    if (s && l && d && s->numel() == 1 && l->numel() == 1 && d->numel() == 1) {
      if (dtype_is_int(dt)) {
        int64_t delta = d->get_int(0);
        if (delta != 0)
          ctx.set(0, dt, SymShape{Dim::known(range_count_int(s->get_int(0), l->get_int(0), delta))});
        return;
      }
      double delta = d->get_double(0);
      if (delta != 0) {
        double n = std::ceil((l->get_double(0) - s->get_double(0)) / delta);
        ctx.set(0, dt, SymShape{Dim::known(n > 0 ? int64_t(n) : 0)});
        return;
      }
    }
    ctx.set(0, dt, SymShape(1));
  };
  def.reference = [](KernelContext& ctx) {
    const Tensor& ts = ctx.input(0);
    const Tensor& tl = ctx.input(1);
    const Tensor& td = ctx.input(2);
    const DType dt = ts.dtype();
    DEEPEP_CHECK(tl.dtype() == dt && td.dtype() == dt, ctx.node.describe(),
                 ": start, limit and delta must have the same dtype");
    DEEPEP_CHECK(ts.numel() == 1 && tl.numel() == 1 && td.numel() == 1, ctx.node.describe(),
                 ": start, limit and delta must be scalars");
    dispatch_numeric(dt, ctx.op(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      if constexpr (std::is_integral_v<T>) {
        const int64_t s = int64_t(*ts.data<T>()), l = int64_t(*tl.data<T>()),
                      d = int64_t(*td.data<T>());
        DEEPEP_CHECK(d != 0, ctx.node.describe(), ": delta must not be 0");
        const int64_t n = range_count_int(s, l, d);
        T* y = ctx.output(0, dt, {n}).template data<T>();
        for (int64_t i = 0; i < n; ++i) y[i] = T(s + i * d);
      } else {
        const double s = double(*ts.data<T>()), l = double(*tl.data<T>()), d = double(*td.data<T>());
        DEEPEP_CHECK(d != 0, ctx.node.describe(), ": delta must not be 0");
        DEEPEP_CHECK(std::isfinite(s) && std::isfinite(l) && std::isfinite(d), ctx.node.describe(),
                     ": start, limit and delta must be finite");
        const double nf = std::ceil((l - s) / d);
        const int64_t n = nf > 0 ? int64_t(nf) : 0;
        T* y = ctx.output(0, dt, {n}).template data<T>();
        const bool stash_float = ctx.node.attr_int("stash_type", 11) == 1 &&
                                 (std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>);
        for (int64_t i = 0; i < n; ++i) {
          if (stash_float) y[i] = T(float(s) + float(i) * float(d));
          else y[i] = T(s + double(i) * d);
        }
      }
    });
  };
}
