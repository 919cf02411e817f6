// AffineGrid (opset 20): the sampling grid of GridSample for a batch of affine
// matrices theta (N, 2, 3) or (N, 3, 4) and an output size (N, C, H, W) or
// (N, C, D, H, W). grid[n, ..., :] = theta[n] @ (x, y[, z], 1), where x runs
// along the innermost axis, in normalized [-1, 1] coordinates.
#include <cmath>

#include "ops/op_util.h"

namespace deepep::ops {
namespace {

// Normalized coordinate of index i along an axis of `len` points.
double base_coord(int64_t i, int64_t len, bool align) {
  if (align) return len <= 1 ? -1.0 : -1.0 + double(i) * (2.0 / double(len - 1));
  const double step = 2.0 / double(len);
  return -1.0 + step / 2 + double(i) * step;
}

void run_affine_grid(KernelContext& ctx) {
  const Node& n = ctx.node;
  const Tensor& theta = ctx.input(0);
  const std::vector<int64_t> size = ctx.input(1).to_int_vector();
  DEEPEP_CHECK(size.size() == 4 || size.size() == 5, n.describe(), ": size must have 4 (N, C, H, W) or 5 ",
               "(N, C, D, H, W) values, got ", size.size());
  const int r = int(size.size()) - 2;  // spatial rank
  const int64_t N = size[0];
  DEEPEP_CHECK(theta.rank() == 3 && theta.dim(0) == N && theta.dim(1) == r && theta.dim(2) == r + 1,
               n.describe(), ": theta ", shape_str(theta.shape()), " does not match (", N, ", ", r, ", ", r + 1, ")");
  for (int64_t s : size) DEEPEP_CHECK(s >= 0, n.describe(), ": size values must be non-negative");
  const bool align = n.attr_int("align_corners", 0) != 0;
  Shape out{N};
  for (int i = 0; i < r; ++i) out.push_back(size[size_t(2 + i)]);
  out.push_back(r);
  Tensor& grid = ctx.output(0, theta.dtype(), out);
  dispatch_float(theta.dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* th = theta.data<T>();
    T* g = grid.data<T>();
    const int64_t D = r == 3 ? size[2] : 1, H = size[size_t(r == 3 ? 3 : 2)], W = size[size_t(r == 3 ? 4 : 3)];
    int64_t o = 0;
    for (int64_t b = 0; b < N; ++b) {
      std::vector<double> m(static_cast<size_t>(r * (r + 1)));
      for (size_t i = 0; i < m.size(); ++i) {
        const T v = th[b * r * (r + 1) + int64_t(i)];
        if constexpr (std::is_same_v<T, double>) m[i] = v;
        else m[i] = double(float(v));
      }
      for (int64_t z = 0; z < D; ++z)
        for (int64_t y = 0; y < H; ++y)
          for (int64_t x = 0; x < W; ++x) {
            // Homogeneous base point, innermost coordinate first.
            double pt[4] = {base_coord(x, W, align), base_coord(y, H, align), 0, 0};
            if (r == 3) {
              pt[2] = base_coord(z, D, align);
              pt[3] = 1;
            } else {
              pt[2] = 1;
            }
            for (int i = 0; i < r; ++i) {
              double acc = 0;
              for (int j = 0; j <= r; ++j) acc += m[size_t(i * (r + 1) + j)] * pt[j];
              g[o++] = T(acc);
            }
          }
    }
  });
}

void infer_affine_grid(InferContext& ctx) {
  if (!ctx.has_input(0)) return;
  const DType dt = ctx.input(0).dtype;
  ctx.set(0, dt, std::nullopt);
  if (const Tensor* s = ctx.constant(1)) {
    auto v = s->to_int_vector();
    if (v.size() != 4 && v.size() != 5) return;
    SymShape out{Dim::known(v[0])};
    for (size_t i = 2; i < v.size(); ++i) out.push_back(Dim::known(v[i]));
    out.push_back(Dim::known(int64_t(v.size()) - 2));
    ctx.set(0, dt, out);
  } else if (ctx.has_input(1) && ctx.input(1).shape && ctx.input(1).shape->size() == 1 &&
             (*ctx.input(1).shape)[0].is_known()) {
    const int64_t len = (*ctx.input(1).shape)[0].value;
    if (len != 4 && len != 5) return;
    SymShape out(static_cast<size_t>(len));
    out.back() = Dim::known(len - 2);
    if (ctx.input(0).shape && !ctx.input(0).shape->empty()) out[0] = (*ctx.input(0).shape)[0];
    ctx.set(0, dt, out);
  }
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(AffineGrid) {
  def.infer = infer_affine_grid;
  def.reference = run_affine_grid;
}
