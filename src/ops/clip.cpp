// Clip: y = min(max(x, lo), hi). Opset < 11 takes float attributes min/max;
// opset >= 11 takes optional scalar inputs of x's type. NaN passes through; if
// lo > hi every element becomes hi (numpy.clip).
#include <limits>

#include "ops/op_util.h"

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(Clip) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    // Clip-6 carried min/max as attributes; Clip-11 moved them to inputs.
    const bool attr_form = (ctx.node.opset > 0 && ctx.node.opset < 11) ||
                           (ctx.num_inputs() == 1 && (ctx.node.has_attr("min") || ctx.node.has_attr("max")));
    for (int i = 1; i <= 2; ++i) {
      if (!ctx.has_input(i)) continue;
      DEEPEP_CHECK(ctx.input(i).dtype() == x.dtype(), ctx.node.describe(), ": ", i == 1 ? "min" : "max",
                   " has dtype ", dtype_name(ctx.input(i).dtype()), ", expected ", dtype_name(x.dtype()));
      DEEPEP_CHECK(ctx.input(i).numel() == 1, ctx.node.describe(), ": ", i == 1 ? "min" : "max",
                   " must be a scalar, got shape ", shape_str(ctx.input(i).shape()));
    }
    dispatch_numeric(x.dtype(), ctx.op(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      T lo = std::numeric_limits<T>::lowest(), hi = std::numeric_limits<T>::max();
      bool has_lo = false, has_hi = false;
      if (attr_form) {
        if (ctx.node.has_attr("min")) has_lo = true, lo = T(ctx.node.attr_float("min", 0));
        if (ctx.node.has_attr("max")) has_hi = true, hi = T(ctx.node.attr_float("max", 0));
      } else {
        if (ctx.has_input(1)) has_lo = true, lo = ctx.input(1).data<T>()[0];
        if (ctx.has_input(2)) has_hi = true, hi = ctx.input(2).data<T>()[0];
      }
      const T* in = x.data<T>();
      T* out = y.data<T>();
      for (int64_t i = 0, n = x.numel(); i < n; ++i) {
        T v = in[i];
        if (has_lo && v < lo) v = lo;
        if (has_hi && v > hi) v = hi;
        out[i] = v;
      }
    });
  };
}
