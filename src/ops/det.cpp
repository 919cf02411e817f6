// Det: determinant of each [M, M] matrix in X [..., M, M], by LU decomposition
// with partial pivoting in double.
#include <cmath>

#include "ops/op_util.h"

namespace deepep::ops {
namespace {

double det_of(std::vector<double>& a, int64_t m) {
  double det = 1;
  for (int64_t col = 0; col < m; ++col) {
    int64_t piv = col;
    for (int64_t r = col + 1; r < m; ++r)
      if (std::fabs(a[size_t(r * m + col)]) > std::fabs(a[size_t(piv * m + col)])) piv = r;
    if (a[size_t(piv * m + col)] == 0) return 0.0;
    if (piv != col) {
      for (int64_t k = 0; k < m; ++k) std::swap(a[size_t(col * m + k)], a[size_t(piv * m + k)]);
      det = -det;
    }
    const double p = a[size_t(col * m + col)];
    det *= p;
    for (int64_t r = col + 1; r < m; ++r) {
      const double f = a[size_t(r * m + col)] / p;
      if (f == 0) continue;
      for (int64_t k = col + 1; k < m; ++k) a[size_t(r * m + k)] -= f * a[size_t(col * m + k)];
    }
  }
  return det;
}

void run_det(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  DEEPEP_CHECK(x.rank() >= 2 && x.dim(-1) == x.dim(-2), ctx.node.describe(),
               ": input must be square matrices [..., M, M], got shape ", shape_str(x.shape()));
  const int64_t m = x.dim(-1);
  Shape os(x.shape().begin(), x.shape().end() - 2);
  Tensor& y = ctx.output(0, x.dtype(), os);
  const int64_t batch = shape_numel(os);
  dispatch_float(x.dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = x.data<T>();
    T* out = y.data<T>();
    std::vector<double> a(size_t(m * m));
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t i = 0; i < m * m; ++i) a[size_t(i)] = double(in[b * m * m + i]);
      out[b] = T(det_of(a, m));
    }
  });
}

void infer_det(InferContext& ctx) {
  if (!ctx.has_input(0)) return;
  const Value& x = ctx.input(0);
  std::optional<SymShape> s;
  if (x.shape && x.shape->size() >= 2) s = SymShape(x.shape->begin(), x.shape->end() - 2);
  ctx.set(0, x.dtype, s);
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(Det) {
  def.infer = infer_det;
  def.reference = run_det;
}
