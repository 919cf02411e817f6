// Fast CPU kernels of Conv and deepep.FusedConv (2-D, float32, NCHW).
//   - group convs with more than one input channel per group: per image and
//     group, Y[Mg, OH*OW] = W[Mg, Cg*KH*KW] x im2col(X), where W (a constant)
//     is packed once into the GEMM's A layout and cached, and im2col packs
//     straight into the GEMM's B strips (no separate column buffer); a 1x1
//     stride-1 unpadded conv packs X itself.
//   - one input channel per group (depthwise, any channel multiplier): a
//     direct per-plane loop (gemm_isa.h DepthwiseFn).
// Bias (per output channel = per GEMM row), the activation and the residual
// (FusedConv) run as the GEMM's epilogue on each hot register tile.
// Anything else (1-D/3-D convs, other dtypes, bad attributes) declines to the
// reference, which also reports the errors.
#include <algorithm>
#include <vector>

#include "deepep/error.h"
#include "kernels/cpu/conv_plan.h"
#include "kernels/cpu/gemm_isa.h"
#include "kernels/cpu/register.h"
#include "kernels/cpu/sgemm.h"
#include "kernels/cpu/thread_pool.h"
#include "ops/fused_epilogue.h"
#include "ops/gemm_util.h"

namespace deepep::cpu {
namespace {

// floor(a / b) and ceil(a / b) for b > 0.
int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

// im2col of image channels [c0, c0 + Cg) into one NR-wide B strip:
// dst[k][t] for k = (c, ky, kx) and output pixels j0 + t. The strip's pixels
// read, for each tap (ky, kx), up to a few contiguous runs of one input row
// (the same for every channel): those runs are worked out once per tap, then
// each channel is a few short copies (and zero fills for the padding).
void im2col_strip(const IsaKernels& ks, const ConvPlan& p, const float* x, int64_t j0, int64_t cols, int NR,
                  float* dst) {
  const int64_t HW = p.H * p.W, taps = p.KH * p.KW;
  using Seg = CopySeg;  // dst[t0, t0+len) = plane[src + u * sw]
  thread_local std::vector<Seg> segs;
  thread_local std::vector<int64_t> first;  // segs of tap kk: [first[kk], first[kk+1])
  thread_local std::vector<char> full;      // tap covers all NR entries (no zero fill)
  segs.clear();
  first.assign(size_t(taps + 1), 0);
  full.assign(size_t(taps), 0);
  const int64_t oy0 = j0 / p.OW, ox0 = j0 % p.OW;
  for (int64_t ky = 0, kk = 0; ky < p.KH; ++ky)
    for (int64_t kx = 0; kx < p.KW; ++kx, ++kk) {
      first[size_t(kk)] = int64_t(segs.size());
      int64_t covered = 0;
      int64_t oy = oy0, ox = ox0, t = 0;
      while (t < cols) {
        const int64_t run = std::min(cols - t, p.OW - ox);
        const int64_t iy = oy * p.sh - p.ph + ky * p.dh;
        if (iy >= 0 && iy < p.H) {
          const int64_t base = kx * p.dw - p.pw + ox * p.sw;  // input col of pixel u: u * sw + base
          const int64_t lo = std::clamp<int64_t>(ceil_div(-base, p.sw), 0, run);
          const int64_t hi = std::clamp<int64_t>(floor_div(p.W - 1 - base, p.sw) + 1, lo, run);
          if (hi > lo) {
            segs.push_back({t + lo, hi - lo, iy * p.W + base + lo * p.sw});
            covered += hi - lo;
          }
        }
        t += run;
        ox = 0;
        ++oy;
      }
      full[size_t(kk)] = covered == NR;
    }
  first[size_t(taps)] = int64_t(segs.size());
  if (p.sw == 1 && ks.im2col_s1) {
    ks.im2col_s1(x, HW, p.Cg, taps, segs.data(), first.data(), full.data(), NR, dst);
    return;
  }
  for (int64_t c = 0; c < p.Cg; ++c) {
    const float* xc = x + c * HW;
    for (int64_t kk = 0; kk < taps; ++kk) {
      float* __restrict d = dst + (c * taps + kk) * NR;
      if (!full[size_t(kk)])
        for (int u = 0; u < NR; ++u) d[u] = 0.f;
      for (int64_t si = first[size_t(kk)]; si < first[size_t(kk) + 1]; ++si) {
        const Seg& sg = segs[size_t(si)];
        const float* __restrict src = xc + sg.src;
        float* __restrict out = d + sg.t0;
        if (p.sw == 1) {
          for (int64_t u = 0; u < sg.len; ++u) out[u] = src[u];
        } else {
          for (int64_t u = 0; u < sg.len; ++u) out[u] = src[u * p.sw];
        }
      }
    }
  }
}

void conv_run(KernelContext& ctx, bool fused) {
  const Isa isa = active_isa();
  const IsaKernels* ks = kernels_of(isa);
  ConvPlan p;
  DEEPEP_CHECK(make_conv_plan(ctx, false, fused, p), ctx.node.describe(), ": fast conv called on an unsupported node");
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  Tensor& y = ctx.output(0, DType::kFloat32, Shape{p.N, p.M, p.OH, p.OW});
  if (y.numel() == 0) return;
  GemmEpi epi;
  if (ctx.has_input(2)) {
    epi.bias = ctx.input(2).data<float>();
    epi.bias_per_row = true;
  }
  const float* res = nullptr;
  if (fused) {
    const ops::Epilogue& e = p.epi;
    epi.act = e.act;
    epi.p0 = e.p0;
    epi.p1 = e.p1;
    epi.res_first = e.residual_first;
    if (ctx.has_input(3)) res = ctx.input(3).data<float>();
  }
  const int64_t OHW = p.OH * p.OW, HW = p.H * p.W;
  const float* X = x.data<float>();
  const float* Wt = w.data<float>();
  float* Y = y.data<float>();
  epi.res_ld = OHW;

  if (p.Cg == 1 && p.group > 1) {
    // Depthwise: output channel m reads input channel m / Mg. (The epilogue
    // runs after the plane is stored: the residual apart from Y.)
    res = residual_apart(res, Y, y.numel());
    const DwGeom g{p.H, p.W, p.OH, p.OW, p.KH, p.KW, p.sh, p.sw, p.ph, p.pw, p.dh, p.dw};
    const int64_t planes = p.N * p.M;
    const int threads = threads_for(double(planes) * double(OHW) * double(p.KH * p.KW) * 2);
    const int64_t scratch_len = dw_scratch_floats(g);
    ThreadPool::global().parallel_for(planes, std::max<int64_t>(1, planes / (8 * threads)), threads, [&](int64_t s, int64_t e) {
      thread_local std::vector<float> scratch;
      if (int64_t(scratch.size()) < scratch_len) scratch.resize(size_t(scratch_len));
      for (int64_t pl = s; pl < e; ++pl) {
        const int64_t n = pl / p.M, m = pl % p.M;
        float* yp = Y + pl * OHW;
        ks->depthwise(X + (n * p.C + m / p.Mg) * HW, Wt + m * p.KH * p.KW, yp, g, scratch.data());
        GemmEpi pe = epi;
        if (res) pe.res = res + n * p.M * OHW;
        // Row m of image n's [M, OHW] output matrix.
        if (!pe.trivial()) ks->epilogue(pe, yp, OHW, m, 0, 1, OHW);
      }
    });
    return;
  }

  const int64_t K = p.Cg * p.KH * p.KW;
  const bool pointwise = p.KH == 1 && p.KW == 1 && p.sh == 1 && p.sw == 1 && p.ph == 0 && p.pw == 0 &&
                         p.OH == p.H && p.OW == p.W;
  const bool w_const = ctx.node.inputs.size() > 1 && ctx.node.inputs[1] && ctx.node.inputs[1]->data;
  const int NR = tile_of(isa).NR;
  for (int64_t gi = 0; gi < p.group; ++gi) {
    const float* Wg = Wt + gi * p.Mg * K;
    std::shared_ptr<const Packed> wp;
    if (w_const) wp = cached_pack_a(isa, w, p.Mg, K, Wg, K, false);
    const Operand A = wp ? Operand{nullptr, 0, false, wp.get()} : Operand{Wg, K, false, nullptr};
    for (int64_t n = 0; n < p.N; ++n) {
      const float* Xg = X + (n * p.C + gi * p.Cg) * HW;
      float* Yg = Y + (n * p.M + gi * p.Mg) * OHW;
      GemmEpi ge = epi;
      if (ge.bias) ge.bias = epi.bias + gi * p.Mg;
      if (res) ge.res = res + (n * p.M + gi * p.Mg) * OHW;
      if (pointwise) {
        gemm(isa, p.Mg, OHW, K, A, Operand{Xg, HW, false, nullptr}, Yg, OHW, ge);
      } else {
        const StripPacker packer = [&](int64_t j0, int64_t cols, float* dst) { im2col_strip(*ks, p, Xg, j0, cols, NR, dst); };
        gemm(isa, p.Mg, OHW, K, A, Operand{}, Yg, OHW, ge, 0, &packer);
      }
    }
  }
}

bool conv_supports(const KernelContext& ctx) {
  ConvPlan p;
  return ctx.num_inputs() <= 3 && make_conv_plan(ctx, false, false, p);
}
bool fused_conv_supports(const KernelContext& ctx) {
  ConvPlan p;
  return make_conv_plan(ctx, false, true, p);
}

}  // namespace

void register_conv_kernels(OpTable& table) {
  add_fast_kernel(table, "Conv", "cpu.conv_gemm", conv_supports, [](KernelContext& ctx) { conv_run(ctx, false); });
  add_fast_kernel(table, "deepep.FusedConv", "cpu.conv_gemm", fused_conv_supports,
                  [](KernelContext& ctx) { conv_run(ctx, true); });
}

}  // namespace deepep::cpu
