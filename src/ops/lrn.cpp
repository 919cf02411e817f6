// LRN: local response normalization across channels of X [N, C, D1, ...]:
//   y = x / (bias + alpha / size * sum_{c' in window(c)} x[c']^2) ^ beta
// with window(c) = [c - floor((size-1)/2), c + ceil((size-1)/2)] clipped to [0, C).
#include <cmath>

#include "ops/op_util.h"

namespace deepep::ops {
namespace {

void run_lrn(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  DEEPEP_CHECK(x.rank() >= 2, ctx.node.describe(), ": input must have rank >= 2 ([N, C, ...]), got shape ",
               shape_str(x.shape()));
  DEEPEP_CHECK(ctx.node.has_attr("size"), ctx.node.describe(), ": attribute size is required");
  const int64_t size = ctx.node.attr_int("size", 1);
  DEEPEP_CHECK(size > 0, ctx.node.describe(), ": size must be positive, got ", size);
  const double alpha = ctx.node.attr_float("alpha", 1e-4f);
  const double beta = ctx.node.attr_float("beta", 0.75f);
  const double bias = ctx.node.attr_float("bias", 1.0f);
  const int64_t before = (size - 1) / 2, after = size - 1 - before;
  const int64_t n = x.dim(0), c = x.dim(1), s = x.numel() == 0 ? 0 : x.numel() / (n * c);
  Tensor& y = ctx.output(0, x.dtype(), x.shape());
  dispatch_float(x.dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = x.data<T>();
    T* out = y.data<T>();
    for (int64_t b = 0; b < n; ++b)
      for (int64_t ch = 0; ch < c; ++ch) {
        const int64_t lo = std::max<int64_t>(0, ch - before), hi = std::min<int64_t>(c - 1, ch + after);
        for (int64_t i = 0; i < s; ++i) {
          double sq = 0;
          for (int64_t k = lo; k <= hi; ++k) {
            const double v = double(in[(b * c + k) * s + i]);
            sq += v * v;
          }
          const int64_t at = (b * c + ch) * s + i;
          out[at] = T(double(in[at]) / std::pow(bias + alpha / double(size) * sq, beta));
        }
      }
  });
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(LRN) {
  def.infer = infer_same_as_input;
  def.reference = run_lrn;
}
