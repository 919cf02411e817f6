// GridSample (opsets 16/20/22): samples X (N, C, D1..Dr) at the normalized
// coordinates of grid (N, O1..Or, r), whose last axis lists coordinates
// innermost-first (x = width, y = height, z = depth). Modes nearest / linear /
// cubic (also the opset-16 names bilinear / bicubic), padding zeros / border /
// reflection, align_corners. Any spatial rank (2-D and 3-D are the ONNX cases).
#include <cmath>
#include <string>

#include "ops/op_util.h"

namespace deepep::ops {
namespace {

enum class Interp { kNearest, kLinear, kCubic };
enum class Pad { kZeros, kBorder, kReflection };

// Reflects x into [lo, hi] by bouncing off the borders.
double reflect(double x, double lo, double hi) {
  const double rng = hi - lo;
  if (rng <= 0) return lo;
  if (x < lo) {
    const double dx = lo - x;
    const int64_t n = int64_t(dx / rng);
    const double r = dx - double(n) * rng;
    return n % 2 == 0 ? lo + r : hi - r;
  }
  if (x > hi) {
    const double dx = x - hi;
    const int64_t n = int64_t(dx / rng);
    const double r = dx - double(n) * rng;
    return n % 2 == 0 ? hi - r : lo + r;
  }
  return x;
}

void cubic_coeffs(double t, double c[4]) {
  constexpr double A = -0.75;
  t = std::fabs(t);
  c[0] = ((A * (t + 1) - 5 * A) * (t + 1) + 8 * A) * (t + 1) - 4 * A;
  c[1] = ((A + 2) * t - (A + 3)) * t * t + 1;
  c[2] = ((A + 2) * (1 - t) - (A + 3)) * (1 - t) * (1 - t) + 1;
  c[3] = ((A * (2 - t) - 5 * A) * (2 - t) + 8 * A) * (2 - t) - 4 * A;
}

template <class T>
double to_double(T v) {
  if constexpr (std::is_same_v<T, bool>) return v ? 1.0 : 0.0;
  else if constexpr (std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>) return double(float(v));
  else return double(v);
}

template <class T>
T from_double(double v) {
  if constexpr (std::is_same_v<T, bool>) return v != 0;
  else return T(v);  // integers truncate, like numpy's astype
}

void run_grid_sample(KernelContext& ctx) {
  const Node& n = ctx.node;
  const Tensor& X = ctx.input(0);
  const Tensor& G = ctx.input(1);
  const int r = X.rank() - 2;
  DEEPEP_CHECK(r >= 1 && G.rank() == r + 2 && G.dim(-1) == r, n.describe(), ": X ", shape_str(X.shape()),
               " and grid ", shape_str(G.shape()), " do not match: expected X (N, C, D1..Dr) and grid (N, O1..Or, r)");
  DEEPEP_CHECK(G.dim(0) == X.dim(0), n.describe(), ": X and grid batch sizes differ (", X.dim(0), " vs ",
               G.dim(0), ")");
  std::string mode = n.attr_string("mode", n.opset > 0 && n.opset < 20 ? "bilinear" : "linear");
  Interp interp;
  if (mode == "nearest") interp = Interp::kNearest;
  else if (mode == "linear" || mode == "bilinear") interp = Interp::kLinear;
  else if (mode == "cubic" || mode == "bicubic") interp = Interp::kCubic;
  else DEEPEP_FAIL(n.describe(), ": unsupported mode '", mode, "'");
  std::string padding = n.attr_string("padding_mode", "zeros");
  Pad pad;
  if (padding == "zeros") pad = Pad::kZeros;
  else if (padding == "border") pad = Pad::kBorder;
  else if (padding == "reflection") pad = Pad::kReflection;
  else DEEPEP_FAIL(n.describe(), ": unsupported padding_mode '", padding, "'");
  const bool align = n.attr_int("align_corners", 0) != 0;

  const int64_t N = X.dim(0), C = X.dim(1);
  Shape yshape{N, C};
  int64_t npts = 1;
  for (int i = 0; i < r; ++i) {
    yshape.push_back(G.dim(1 + i));
    npts *= G.dim(1 + i);
  }
  Tensor& Y = ctx.output(0, X.dtype(), yshape);
  if (Y.numel() == 0) return;
  // dims[i]: size of spatial axis i (outermost first); grid component r-1-i maps to it.
  std::vector<int64_t> dims(static_cast<size_t>(r));
  int64_t plane = 1;
  for (int i = 0; i < r; ++i) {
    dims[size_t(i)] = X.dim(2 + i);
    plane *= dims[size_t(i)];
  }
  DEEPEP_CHECK(plane > 0, n.describe(), ": cannot sample from an empty input ", shape_str(X.shape()));
  const auto xst = strides_of(Shape(dims.begin(), dims.end()));
  std::vector<double> lo(static_cast<size_t>(r)), hi(static_cast<size_t>(r));
  for (int i = 0; i < r; ++i) {
    lo[size_t(i)] = align ? 0.0 : -0.5;
    hi[size_t(i)] = align ? double(dims[size_t(i)] - 1) : double(dims[size_t(i)]) - 0.5;
  }
  const bool grid_double = G.dtype() == DType::kFloat64;

  // Grid as doubles.
  std::vector<double> g(static_cast<size_t>(G.numel()));
  dispatch_float(G.dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p = G.data<T>();
    for (size_t i = 0; i < g.size(); ++i) g[i] = to_double(p[i]);
  });

  // Index mapping for one axis: -1 means "zero" (zeros padding).
  auto map_index = [&](int64_t i, int d) -> int64_t {
    const int64_t len = dims[size_t(d)];
    if (i >= 0 && i < len) return i;
    switch (pad) {
      case Pad::kZeros: return -1;
      case Pad::kBorder: return std::clamp<int64_t>(i, 0, len - 1);
      case Pad::kReflection: {
        int64_t j = int64_t(reflect(double(i), lo[size_t(d)], hi[size_t(d)]));
        return std::clamp<int64_t>(j, 0, len - 1);
      }
    }
    return -1;
  };

  dispatch_all(X.dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xs = X.data<T>();
    T* ys = Y.data<T>();
    const int ntap = interp == Interp::kNearest ? 1 : interp == Interp::kLinear ? 2 : 4;
    // Per point: the taps (index, weight) of every axis.
    std::vector<int64_t> tidx(size_t(r * ntap));
    std::vector<double> tw(size_t(r * ntap));
    std::vector<int> k(static_cast<size_t>(r));
    for (int64_t b = 0; b < N; ++b)
      for (int64_t p = 0; p < npts; ++p) {
        const double* gp = &g[size_t((b * npts + p) * r)];
        for (int d = 0; d < r; ++d) {
          const double nv = gp[r - 1 - d];
          const int64_t len = dims[size_t(d)];
          double x;
          if (grid_double)
            x = align ? (nv + 1) / 2.0 * double(len - 1) : ((nv + 1) * double(len) - 1) / 2.0;
          else
            x = double(align ? (float(nv) + 1.0f) / 2.0f * float(len - 1)
                             : ((float(nv) + 1.0f) * float(len) - 1.0f) / 2.0f);
          if (interp == Interp::kNearest) x = std::nearbyint(x);
          if (x < lo[size_t(d)] || x > hi[size_t(d)]) {
            if (pad == Pad::kBorder) x = std::clamp(x, 0.0, double(len - 1));
            else if (pad == Pad::kReflection) x = reflect(x, lo[size_t(d)], hi[size_t(d)]);
          }
          int64_t* ti = &tidx[size_t(d * ntap)];
          double* w = &tw[size_t(d * ntap)];
          if (interp == Interp::kNearest) {
            ti[0] = map_index(int64_t(x), d);
            w[0] = 1;
          } else {
            const double x0 = std::floor(x);
            const double t = x - x0;
            const int64_t i0 = int64_t(x0);
            if (interp == Interp::kLinear) {
              ti[0] = map_index(i0, d);
              ti[1] = map_index(i0 + 1, d);
              w[0] = 1 - t;
              w[1] = t;
            } else {
              cubic_coeffs(t, w);
              for (int q = 0; q < 4; ++q) ti[q] = map_index(i0 - 1 + q, d);
            }
          }
        }
        for (int64_t c = 0; c < C; ++c) {
          const T* xc = xs + (b * C + c) * plane;
          double acc = 0;
          std::fill(k.begin(), k.end(), 0);
          for (;;) {
            double w = 1;
            int64_t off = 0;
            bool zero = false;
            for (int d = 0; d < r; ++d) {
              const int64_t i = tidx[size_t(d * ntap + k[size_t(d)])];
              w *= tw[size_t(d * ntap + k[size_t(d)])];
              if (i < 0) zero = true;
              else off += i * xst[size_t(d)];
            }
            if (!zero && w != 0) acc += w * to_double(xc[off]);
            int d = r - 1;
            for (; d >= 0; --d) {
              if (++k[size_t(d)] < ntap) break;
              k[size_t(d)] = 0;
            }
            if (d < 0) break;
          }
          ys[(b * C + c) * npts + p] = from_double<T>(acc);
        }
      }
  });
}

void infer_grid_sample(InferContext& ctx) {
  if (!ctx.has_input(0)) return;
  const DType dt = ctx.input(0).dtype;
  ctx.set(0, dt, std::nullopt);
  if (!ctx.has_input(1)) return;
  const auto& xs = ctx.input(0).shape;
  const auto& gs = ctx.input(1).shape;
  if (!xs || !gs || xs->size() < 3 || gs->size() != xs->size()) return;
  SymShape out{(*xs)[0], (*xs)[1]};
  for (size_t i = 1; i + 1 < gs->size(); ++i) out.push_back((*gs)[i]);
  ctx.set(0, dt, out);
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(GridSample) {
  def.infer = infer_grid_sample;
  def.reference = run_grid_sample;
}
