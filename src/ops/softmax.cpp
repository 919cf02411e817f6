// Softmax, LogSoftmax, Hardmax. Opset >= 13: along one `axis` (default -1).
// Opset < 13: the input is coerced to 2-D [prod(dims[:axis]), prod(dims[axis:])]
// (axis default 1) and the op runs over each row.
#include <cmath>

#include "ops/op_util.h"

namespace deepep::ops {
namespace {

enum class SM { kSoftmax, kLogSoftmax, kHardmax };

// The input viewed as [outer, n, inner], the op running along n.
struct Layout {
  int64_t outer = 1, n = 1, inner = 1;
};

Layout softmax_layout(const KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t rank = x.rank();
  const bool legacy = ctx.node.opset > 0 && ctx.node.opset < 13;
  int64_t axis = ctx.node.attr_int("axis", legacy ? 1 : -1);
  Layout l;
  if (rank == 0) return l;
  if (legacy) {
    // Coercion to 2-D; axis == rank (rows of one element) is tolerated.
    int64_t a = axis < 0 ? axis + rank : axis;
    DEEPEP_CHECK(a >= 0 && a <= rank, ctx.node.describe(), ": axis ", axis,
                 " is out of range for rank ", rank);
    for (int64_t d = 0; d < rank; ++d) (d < a ? l.outer : l.n) *= x.dim(int(d));
    return l;
  }
  axis = normalize_axis(axis, rank, ctx.node);
  for (int64_t d = 0; d < rank; ++d) {
    if (d < axis) l.outer *= x.dim(int(d));
    else if (d == axis) l.n = x.dim(int(d));
    else l.inner *= x.dim(int(d));
  }
  return l;
}

void run_softmax(KernelContext& ctx, SM kind) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0, x.dtype(), x.shape());
  if (x.numel() == 0) return;
  const Layout l = softmax_layout(ctx);
  dispatch_float(x.dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = x.data<T>();
    T* out = y.data<T>();
    std::vector<double> e(size_t(l.n));
    for (int64_t o = 0; o < l.outer; ++o)
      for (int64_t i = 0; i < l.inner; ++i) {
        const int64_t base = o * l.n * l.inner + i;
        double mx = -INFINITY;
        int64_t arg = 0;
        for (int64_t k = 0; k < l.n; ++k) {
          double v = double(in[base + k * l.inner]);
          if (v > mx || (std::isnan(v) && !std::isnan(mx))) mx = v, arg = k;
        }
        if (kind == SM::kHardmax) {
          for (int64_t k = 0; k < l.n; ++k) out[base + k * l.inner] = T(k == arg ? 1.0f : 0.0f);
          continue;
        }
        const double shift = std::isfinite(mx) ? mx : 0.0;
        double sum = 0;
        for (int64_t k = 0; k < l.n; ++k) {
          e[size_t(k)] = double(in[base + k * l.inner]) - shift;
          sum += std::exp(e[size_t(k)]);
        }
        if (kind == SM::kSoftmax) {
          for (int64_t k = 0; k < l.n; ++k)
            out[base + k * l.inner] = T(std::exp(e[size_t(k)]) / sum);
        } else {
          const double ls = std::log(sum);
          for (int64_t k = 0; k < l.n; ++k) out[base + k * l.inner] = T(e[size_t(k)] - ls);
        }
      }
  });
}

void define_softmax(OpDef& def, SM kind) {
  def.infer = infer_same_as_input;
  def.reference = [kind](KernelContext& ctx) { run_softmax(ctx, kind); };
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(Softmax) { define_softmax(def, SM::kSoftmax); }
DEEPEP_DEFINE_OP(LogSoftmax) { define_softmax(def, SM::kLogSoftmax); }
DEEPEP_DEFINE_OP(Hardmax) { define_softmax(def, SM::kHardmax); }
