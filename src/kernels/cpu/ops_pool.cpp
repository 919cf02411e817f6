// Fast CPU pooling (float32):
//   - GlobalAveragePool (NCHW, 1-3 spatial dims): a sum per plane in double
//     (the reference's accumulator), 8 partial sums for the adders' latency;
//     the reference's per-element window indexing made it 3.5 ns an element
//     (MobileNetV2's 1280 x 7 x 7: 0.11 ms);
// MaxPool (2-D, without the Indices output):
//   - MaxPool (NCHW): per plane, each output row takes the max over its
//     window rows, with the valid window columns of each output column worked
//     out once per node;
//   - deepep.MaxPool with channels_last = 1 (NHWC): per output pixel, the max
//     over its valid taps of whole channel rows (contiguous), in registers
//     across the taps (the ISA's max_taps, ops_conv_nhwc_isa.h).
// Same order and comparison as the reference (first valid element, then
// `v > best`), so NaNs behave alike. Anything else runs the reference
// (src/ops/pool.cpp, src/ops/fused_max_pool.cpp).
#include <algorithm>
#include <limits>
#include <vector>

#include "deepep/error.h"
#include "kernels/cpu/ops_conv_nhwc.h"
#include "kernels/cpu/register.h"
#include "kernels/cpu/thread_pool.h"
#include "ops/gemm_util.h"

namespace deepep::cpu {
namespace {

// `nhwc`: X is [N, H, W, C], else [N, C, H, W].
bool geometry(const KernelContext& ctx, ops::SpatialGeom& g, bool nhwc = false) {
  if (ctx.num_inputs() != 1 || !ctx.inputs[0] || ctx.inputs[0]->dtype() != DType::kFloat32) return false;
  if (ctx.output_requested(1)) return false;
  const Tensor& x = *ctx.inputs[0];
  if (x.rank() != 4 || !ctx.node.has_attr("kernel_shape")) return false;
  const std::vector<int64_t> k = ctx.node.attr_ints("kernel_shape");
  if (k.size() != 2) return false;
  const Shape spatial = nhwc ? Shape{x.dim(1), x.dim(2)} : Shape{x.dim(2), x.dim(3)};
  try {
    g = ops::conv_geometry(ctx.node, spatial, k, ctx.node.attr_int("ceil_mode", 0) != 0);
  } catch (const Error&) {
    return false;
  }
  return true;
}

// Valid taps [lo, hi) of the window at output position o along one dim.
void window_taps(int64_t o, int64_t s, int64_t pb, int64_t k, int64_t d, int64_t in, int64_t& lo, int64_t& hi) {
  const int64_t start = o * s - pb;
  lo = 0;
  while (lo < k && start + lo * d < 0) ++lo;
  hi = lo;
  while (hi < k && start + hi * d < in) ++hi;
}

bool maxpool_supports(const KernelContext& ctx) {
  ops::SpatialGeom g;
  return geometry(ctx, g);
}

void maxpool_run(KernelContext& ctx) {
  ops::SpatialGeom g;
  DEEPEP_CHECK(geometry(ctx, g), ctx.node.describe(), ": fast MaxPool called on an unsupported node");
  const Tensor& x = ctx.input(0);
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const int64_t OH = g.out[0], OW = g.out[1];
  Tensor& y = ctx.output(0, DType::kFloat32, Shape{N, C, OH, OW});
  if (y.numel() == 0) return;
  // Valid window taps per output column / row: [lo, hi) of tap indices.
  std::vector<int64_t> clo(static_cast<size_t>(OW)), chi(static_cast<size_t>(OW));
  for (int64_t ox = 0; ox < OW; ++ox)
    window_taps(ox, g.s[1], g.pb[1], g.k[1], g.d[1], W, clo[size_t(ox)], chi[size_t(ox)]);
  const float* X = x.data<float>();
  float* Y = y.data<float>();
  const int64_t planes = N * C;
  const int threads = threads_for(double(y.numel()) * double(g.k[0] * g.k[1]));
  ThreadPool::global().parallel_for(planes, 1, threads, [&](int64_t p0, int64_t p1) {
    for (int64_t pl = p0; pl < p1; ++pl) {
      const float* xp = X + pl * H * W;
      float* yp = Y + pl * OH * OW;
      for (int64_t oy = 0; oy < OH; ++oy) {
        int64_t rlo, rhi;
        window_taps(oy, g.s[0], g.pb[0], g.k[0], g.d[0], H, rlo, rhi);
        const int64_t iy0 = oy * g.s[0] - g.pb[0];
        float* yr = yp + oy * OW;
        if (rlo == 0 && rhi == g.k[0]) {
          // Every window row valid: columns with a full window (ix_lo..ix_hi)
          // run without bounds bookkeeping; same tap order as below.
          const int64_t kw = g.k[1], sw = g.s[1], dw = g.d[1];
          for (int64_t ox = 0; ox < OW; ++ox) {
            if (clo[size_t(ox)] != 0 || chi[size_t(ox)] != kw) continue;
            const float* base = xp + iy0 * W + ox * sw - g.pb[1];
            float best = base[0];
            for (int64_t a = 0; a < g.k[0]; ++a) {
              const float* row = base + a * g.d[0] * W;
              for (int64_t b = (a == 0 ? 1 : 0); b < kw; ++b) {
                const float v = row[b * dw];
                best = v > best ? v : best;
              }
            }
            yr[ox] = best;
          }
        }
        for (int64_t ox = 0; ox < OW; ++ox) {
          if (rlo == 0 && rhi == g.k[0] && clo[size_t(ox)] == 0 && chi[size_t(ox)] == g.k[1]) continue;
          const int64_t ix0 = ox * g.s[1] - g.pb[1];
          bool any = false;
          float best = std::numeric_limits<float>::lowest();
          for (int64_t a = rlo; a < rhi; ++a) {
            const float* row = xp + (iy0 + a * g.d[0]) * W + ix0;
            for (int64_t b = clo[size_t(ox)]; b < chi[size_t(ox)]; ++b) {
              const float v = row[b * g.d[1]];
              if (!any || v > best) {
                any = true;
                best = v;
              }
            }
          }
          yr[ox] = best;
        }
      }
    }
  });
}

bool maxpool_nhwc_supports(const KernelContext& ctx) {
  ops::SpatialGeom g;
  return ctx.node.attr_int("channels_last", 0) != 0 && nhwc_kernels_of(active_isa()) && geometry(ctx, g, true);
}

void maxpool_nhwc_run(KernelContext& ctx) {
  ops::SpatialGeom g;
  DEEPEP_CHECK(geometry(ctx, g, true), ctx.node.describe(), ": fast NHWC MaxPool called on an unsupported node");
  const Tensor& x = ctx.input(0);
  const int64_t N = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
  const int64_t OH = g.out[0], OW = g.out[1];
  Tensor& y = ctx.output(0, DType::kFloat32, Shape{N, OH, OW, C});
  if (y.numel() == 0) return;
  const float* X = x.data<float>();
  float* Y = y.data<float>();
  const MaxTapsFn max_taps = nhwc_kernels_of(active_isa())->max_taps;
  // Valid window taps per output column, once per node: [lo, hi) of tap indices.
  std::vector<int64_t> clo(static_cast<size_t>(OW)), chi(static_cast<size_t>(OW));
  for (int64_t ox = 0; ox < OW; ++ox)
    window_taps(ox, g.s[1], g.pb[1], g.k[1], g.d[1], W, clo[size_t(ox)], chi[size_t(ox)]);
  // Tasks: output rows (n, oy); each pixel's C channels are one contiguous run in X and Y.
  const int threads = threads_for(double(y.numel()) * double(g.k[0] * g.k[1]));
  // Rows split like the convs around it (parallel_for_affine), so each
  // thread reads the rows its core's conv wrote.
  const int64_t rows = N * OH, parts = std::min<int64_t>(rows, 4 * threads);
  ThreadPool::global().parallel_for_affine(parts, threads, [&](int64_t q0, int64_t q1) {
    std::vector<const float*> taps;  // the valid taps' channel runs of one output pixel
    taps.reserve(size_t(g.k[0] * g.k[1]));
    for (int64_t r = rows * q0 / parts; r < rows * q1 / parts; ++r) {
      const int64_t n = r / OH, oy = r % OH;
      int64_t ylo, yhi;
      window_taps(oy, g.s[0], g.pb[0], g.k[0], g.d[0], H, ylo, yhi);
      const int64_t iy0 = oy * g.s[0] - g.pb[0];
      for (int64_t ox = 0; ox < OW; ++ox) {
        const int64_t xlo = clo[size_t(ox)], xhi = chi[size_t(ox)];
        const int64_t ix0 = ox * g.s[1] - g.pb[1];
        float* out = Y + (r * OW + ox) * C;
        taps.clear();
        for (int64_t a = ylo; a < yhi; ++a)
          for (int64_t b = xlo; b < xhi; ++b)
            taps.push_back(X + ((n * H + iy0 + a * g.d[0]) * W + ix0 + b * g.d[1]) * C);
        if (taps.empty()) std::fill(out, out + C, std::numeric_limits<float>::lowest());  // no valid tap
        else max_taps(taps.data(), int64_t(taps.size()), C, out);
      }
    }
  });
}

bool gap_supports(const KernelContext& ctx) {
  if (ctx.num_inputs() != 1 || !ctx.inputs[0] || ctx.inputs[0]->dtype() != DType::kFloat32) return false;
  const Tensor& x = *ctx.inputs[0];
  return x.rank() >= 3 && x.rank() <= 5 && x.numel() > 0;
}

void gap_run(KernelContext& ctx) {
  DEEPEP_CHECK(gap_supports(ctx), ctx.node.describe(), ": fast GlobalAveragePool called on an unsupported node");
  const Tensor& x = ctx.input(0);
  Shape ys = x.shape();
  int64_t plane = 1;
  for (int i = 2; i < x.rank(); ++i) {
    plane *= ys[size_t(i)];
    ys[size_t(i)] = 1;
  }
  Tensor& y = ctx.output(0, DType::kFloat32, ys);
  const int64_t planes = x.dim(0) * x.dim(1);
  const float* X = x.data<float>();
  float* Y = y.data<float>();
  const int threads = threads_for(double(x.numel()));
  ThreadPool::global().parallel_for(planes, std::max<int64_t>(1, planes / (4 * threads)), threads,
                                    [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const float* v = X + p * plane;
      double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int64_t i = 0;
      for (; i + 8 <= plane; i += 8)
        for (int t = 0; t < 8; ++t) s[t] += double(v[i + t]);
      for (; i < plane; ++i) s[i % 8] += double(v[i]);
      const double sum = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
      Y[p] = float(sum / double(plane));
    }
  });
}

}  // namespace

void register_pool_kernels(OpTable& table) {
  add_fast_kernel(table, "GlobalAveragePool", "cpu.global_average_pool", gap_supports, gap_run);
  add_fast_kernel(table, "MaxPool", "cpu.maxpool2d", maxpool_supports, maxpool_run);
  add_fast_kernel(table, "deepep.MaxPool", "cpu.maxpool2d_nhwc", maxpool_nhwc_supports, maxpool_nhwc_run);
}

}  // namespace deepep::cpu
