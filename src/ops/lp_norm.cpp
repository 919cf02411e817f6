// LpNormalization: x / ||x||_p along `axis` (default -1), p in {1, 2}
// (default 2); a zero norm gives 0 (not NaN), like the ONNX reference.
#include <cmath>

#include "ops/op_util.h"

namespace deepep::ops {
namespace {

void run_lp_norm(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t p = ctx.node.attr_int("p", 2);
  DEEPEP_CHECK(p == 1 || p == 2, ctx.node.describe(), ": p must be 1 or 2, got ", p);
  Tensor& y = ctx.output(0, x.dtype(), x.shape());
  if (x.numel() == 0) return;
  const int64_t rank = x.rank();
  int64_t outer = 1, n = 1, inner = 1;
  if (rank > 0) {
    const int64_t axis = normalize_axis(ctx.node.attr_int("axis", -1), rank, ctx.node);
    for (int64_t d = 0; d < rank; ++d) (d < axis ? outer : d == axis ? n : inner) *= x.dim(int(d));
  }
  dispatch_float(x.dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = x.data<T>();
    T* out = y.data<T>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t base = o * n * inner + i;
        double s = 0;
        for (int64_t k = 0; k < n; ++k) {
          const double v = double(in[base + k * inner]);
          s += p == 1 ? std::fabs(v) : v * v;
        }
        const double norm = p == 1 ? s : std::sqrt(s);
        for (int64_t k = 0; k < n; ++k)
          out[base + k * inner] = T(norm == 0 ? 0.0 : double(in[base + k * inner]) / norm);
      }
  });
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(LpNormalization) {
  def.infer = infer_same_as_input;
  def.reference = run_lp_norm;
}
