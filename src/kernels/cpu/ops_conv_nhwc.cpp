// Fast CPU kernels of deepep.FusedConv with channels_last = 1 (2-D, float32):
// X is [N, H, W, C], Y and the residual [N, OH, OW, M], W stays [M, C/group,
// KH, KW] (OIHW) in the graph and is reordered once, when packed.
//   - group convs with more than one input channel per group (1x1, KxK,
//     strided, padded, dilated): an implicit GEMM per group,
//     Y[N*OH*OW, Mg] = im2col(X)[N*OH*OW, KH*KW*Cg] x Wg^T, k ordered
//     (ky, kx, c) so that each tap of a pixel is a contiguous channel run of
//     X (and, with one group and no horizontal dilation, each kernel row is
//     one run of KW*C floats). The activations are the GEMM's A operand,
//     packed per call straight into its MR-row strips (sgemm.h APacker; an
//     8 x 8 in-register transpose per 8 channels and 8 pixels, see
//     ops_conv_nhwc_isa.h); Wg^T is B, reordered and packed once, cached by
//     the weight's storage (cached_derived_pack). Bias per column (output
//     channel), activation and residual (row stride M) are the GEMM's
//     epilogue on each hot register tile.
//   - depthwise (one input channel per group, multiplier 1): a direct loop
//     vectorized across channels (contiguous in NHWC), 4 output pixels per
//     weight-vector load, bias/activation/residual on the registers; W
//     reordered once to [KH*KW][C] (cached the same way).
//   - Transpose [0,2,3,1] / [0,3,1,2] (float32, rank 4), the layout changes
//     at the edges of an NHWC region: per-image blocked matrix transposes.
// Anything else declines to the reference (which also reports the errors).
#include <algorithm>
#include <cstring>
#include <vector>

#include "deepep/error.h"
#include "kernels/cpu/conv_plan.h"
#include "kernels/cpu/conv_winograd.h"
#include "kernels/cpu/gemm_isa.h"
#include "kernels/cpu/ops_conv_nhwc.h"
#include "kernels/cpu/register.h"
#include "kernels/cpu/scratch.h"
#include "kernels/cpu/sgemm.h"
#include "kernels/cpu/thread_pool.h"
#include "ops/channels_last.h"
#include "ops/fused_epilogue.h"
#include "ops/gemm_util.h"

namespace deepep::cpu {

const NhwcKernels* nhwc_kernels_of(Isa isa) { return DEEPEP_ISA_TABLE(isa, nhwc_avx512_kernels, nhwc_avx2_kernels); }

namespace {

// cached_derived_pack layouts of a conv weight.
constexpr int kLayoutGemmB = 1;      // W_g^T, k = (ky, kx, c), packed as the GEMM's B
constexpr int kLayoutDepthwise = 2;  // [KH*KW][C], plain
constexpr int kLayoutGemmA = 3;      // W_g, k = (ky, kx, c), packed as the GEMM's A (few output channels)
constexpr int kLayoutDirect = 4;     // blocks of [KH][KW][C][width] (few input channels; direct_block_width)
// Most input channels the direct conv takes: up to here K = KH*KW*C is too
// short for packing A (an implicit-GEMM operand) to pay: resnet50's 7x7 RGB
// stem (K = 147) ran at 35% of the FMA peak on 2 threads through the GEMM.
constexpr int64_t kDirectMaxChannels = ops::kNchwInputMaxChannels;
// A depthwise conv's flops count this many times toward threads_for: it
// moves as many bytes as it does FMAs, so a 7x7x960 map (0.85 M flops, one
// thread by the flop count) is worth a second thread.
constexpr double kDwWorkScale = 2.0;
// Most pixels one packing strip may hold (MR for A strips, NR for B strips).
constexpr int kMaxRows = 64;
// Largest im2col (pixels x K floats) packed whole before the GEMM (2 MiB).
constexpr int64_t kPrepackFloats = 512 * 1024;
// ... of at most this many pixels (28x28; larger maps have enough row blocks
// for the threads, and a separate packing pass over them measured slower).
constexpr int64_t kPrepackPixels = 1024;

bool is_f32(const Tensor* t) { return t && t->dtype() == DType::kFloat32; }

using Plan = ConvPlan;

std::shared_ptr<float> alloc(int64_t n) {
  return std::shared_ptr<float>(new float[size_t(std::max<int64_t>(n, 1))], std::default_delete<float[]>());
}

// Group gi's weight as the GEMM's B (K x Mg): B[(ky*KW + kx)*Cg + c][m] =
// W[gi*Mg + m][c][ky][kx]; reordered to B^T (row m contiguous over k), then
// packed.
// packed as A (Mg x K, the transposed GEMM of few output channels) instead.
std::shared_ptr<const Packed> pack_weight(Isa isa, const Plan& p, const float* Wg, bool as_a) {
  const int64_t taps = p.KH * p.KW, K = taps * p.Cg;
  std::vector<float> bt(size_t(p.Mg * K));
  for (int64_t m = 0; m < p.Mg; ++m)
    for (int64_t c = 0; c < p.Cg; ++c)
      for (int64_t t = 0; t < taps; ++t) bt[size_t(m * K + t * p.Cg + c)] = Wg[(m * p.Cg + c) * taps + t];
  return as_a ? pack_a(isa, p.Mg, K, bt.data(), K, false) : pack_b(isa, K, p.Mg, bt.data(), K, true);
}

// Depthwise weight [C][1][KH][KW] as [KH*KW][C] (a Packed with R = 1: rows
// of K = taps, len = C).
std::shared_ptr<const Packed> pack_weight_dw(Isa isa, const Plan& p, const float* W) {
  const int64_t taps = p.KH * p.KW;
  auto pk = std::make_shared<Packed>();
  pk->isa = isa;
  pk->K = taps;
  pk->len = p.C;
  pk->R = 1;
  pk->data = alloc(taps * p.C);
  float* d = pk->data.get();
  for (int64_t c = 0; c < p.C; ++c)
    for (int64_t t = 0; t < taps; ++t) d[t * p.C + c] = W[c * taps + t];
  return pk;
}

// The direct conv's weight [M][C][KH][KW] as blocks of output channels,
// each [KH][KW][C][width] (direct_block_width; a Packed with R = 1, K =
// KH*KW*C, len = M).
std::shared_ptr<const Packed> pack_weight_direct(Isa isa, const Plan& p, const float* W) {
  const int64_t taps = p.KH * p.KW;
  auto pk = std::make_shared<Packed>();
  pk->isa = isa;
  pk->K = taps * p.C;
  pk->len = p.M;
  pk->R = 1;
  pk->data = alloc(taps * p.C * p.M);
  float* d = pk->data.get();
  const int64_t KK = taps * p.C, vw = tile_of(isa).VW;
  for (int64_t m0 = 0; m0 < p.M;) {
    const int64_t bw = direct_block_width(vw, p.M, m0);
    for (int64_t m = m0; m < m0 + bw; ++m)
      for (int64_t c = 0; c < p.C; ++c)
        for (int64_t t = 0; t < taps; ++t) d[m0 * KK + (t * p.C + c) * bw + (m - m0)] = W[(m * p.C + c) * taps + t];
    m0 += bw;
  }
  return pk;
}


// im2col of group gi, pixel-major: pixels [i0, i0 + mc) (output pixels
// (n, oy, ox)) x k [p0, p0 + kc) (k = (ky, kx, c)) as MR-pixel strips,
// dst[(i / MR) * kc * MR + k * MR + i % MR]: the GEMM's A block, or with
// MR = NR, p0 = 0, kc = K and mc <= NR one B strip of the transposed GEMM.
// Per strip and tap (or kernel row), each of the MR pixels reads one
// contiguous run of X (or nothing: padding), which pack_rows transposes into
// the strip.
void pack_a_nhwc(const Plan& p, const float* X, int64_t gi, PackRowsFn pack_rows, int MR, int64_t i0, int64_t mc,
            int64_t p0, int64_t kc, float* dst) {
  const int64_t OHW = p.OH * p.OW, p1 = p0 + kc;
  const bool lines = p.dw == 1 && p.Cg == p.C;  // (kx, c) of a kernel row: one run of X
  const int64_t line = p.KW * p.C;
  const float* img[kMaxRows];
  int64_t iy0[kMaxRows], ix0[kMaxRows];
  const float* src[kMaxRows];
  if (p.KH == 1 && p.KW == 1 && p.sh == 1 && p.sw == 1 && p.ph == 0 && p.pw == 0 && p.OH == p.H && p.OW == p.W) {
    // Pointwise: row i is X's pixel i.
    for (int64_t ir = 0; ir < mc; ir += MR) {
      const int live = int(std::min<int64_t>(MR, mc - ir));
      for (int r = 0; r < MR; ++r) src[r] = r < live ? X + (i0 + ir + r) * p.C + gi * p.Cg + p0 : nullptr;
      pack_rows(src, kc, MR, dst + ir * kc);
    }
    return;
  }
  for (int64_t ir = 0; ir < mc; ir += MR) {
    float* d = dst + ir * kc;
    const int live = int(std::min<int64_t>(MR, mc - ir));
    for (int r = 0; r < live; ++r) {
      const int64_t i = i0 + ir + r, n = i / OHW, rem = i % OHW, oy = rem / p.OW, ox = rem % p.OW;
      img[r] = X + n * p.H * p.W * p.C + gi * p.Cg;
      iy0[r] = oy * p.sh - p.ph;
      ix0[r] = ox * p.sw - p.pw;
    }
    for (int r = live; r < MR; ++r) src[r] = nullptr;
    int64_t k = p0;
    while (k < p1) {
      const int64_t tap = k / p.Cg, c0 = k % p.Cg, ky = tap / p.KW, kx = tap % p.KW;
      int64_t len = 0;
      if (lines) {
        const int64_t ls = ky * line;
        bool ok = true;
        for (int r = 0; r < live; ++r) {
          const int64_t iy = iy0[r] + ky * p.dh;
          if (iy < 0 || iy >= p.H) {
            src[r] = nullptr;
          } else {
            ok = ok && ix0[r] >= 0 && ix0[r] + p.KW <= p.W;
            src[r] = img[r] + (iy * p.W + ix0[r]) * p.C + (k - ls);
          }
        }
        if (ok) len = std::min(ls + line, p1) - k;
      }
      if (len == 0) {
        len = std::min(p.Cg - c0, p1 - k);
        for (int r = 0; r < live; ++r) {
          const int64_t iy = iy0[r] + ky * p.dh, ix = ix0[r] + kx * p.dw;
          src[r] = iy >= 0 && iy < p.H && ix >= 0 && ix < p.W ? img[r] + (iy * p.W + ix) * p.C + c0 : nullptr;
        }
      }
      pack_rows(src, len, MR, d + (k - p0) * MR);
      k += len;
    }
  }
}

}  // namespace

void fill_direct_args(NhwcDwArgs& a, const ConvPlan& p, const ops::Epilogue& e, const float* X, const float* w,
                      const float* bias, const float* res, float* Y) {
  a.x = X, a.w = w, a.bias = bias, a.res = res, a.y = Y;
  a.H = p.H, a.W = p.W, a.C = p.C, a.OH = p.OH, a.OW = p.OW, a.KH = p.KH, a.KW = p.KW;
  a.sh = p.sh, a.sw = p.sw, a.ph = p.ph, a.pw = p.pw, a.dh = p.dh, a.dw = p.dw;
  a.act = e.act, a.p0 = e.p0, a.p1 = e.p1, a.res_first = e.residual_first;
}

std::shared_ptr<const Packed> nhwc_depthwise_weight(Isa isa, const ConvPlan& p, const Tensor& w, bool w_const) {
  const float* Wt = w.data<float>();
  std::shared_ptr<const Packed> wp;
  if (w_const)
    wp = cached_derived_pack(isa, w, Wt, kLayoutDepthwise, false, p.KH * p.KW, p.C,
                             [&] { return pack_weight_dw(isa, p, Wt); });
  return wp ? wp : pack_weight_dw(isa, p, Wt);
}

namespace {

// Per image: X's [rows, cols] -> Y's [cols, rows], in tiles of up to 256 x 256 (a tile's source in L2;
// both dims split, so an NHWC feature map leaving the region, [H*W, C] with C <= 256, is not one task).
void transpose_images(const NhwcKernels* nk, const float* X, int64_t N, int64_t rows, int64_t cols, float* Y) {
  constexpr int64_t kChunk = 256;
  const int64_t rchunks = (rows + kChunk - 1) / kChunk, cchunks = (cols + kChunk - 1) / kChunk;
  const int64_t tiles = rchunks * cchunks;
  const int threads = threads_for(double(N * rows * cols) * 2);
  ThreadPool::global().parallel_for(N * tiles, 1, threads, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / tiles, i0 = (t % tiles) / cchunks * kChunk, j0 = (t % cchunks) * kChunk;
      const int64_t i1 = std::min(rows, i0 + kChunk), j1 = std::min(cols, j0 + kChunk);
      nk->transpose(X + (n * rows + i0) * cols + j0, cols, i1 - i0, j1 - j0, Y + n * rows * cols + j0 * rows + i0,
                    rows);
    }
  });
}

void run(KernelContext& ctx) {
  const Isa isa = active_isa();
  const NhwcKernels* nk = nhwc_kernels_of(isa);
  Plan p;
  DEEPEP_CHECK(nk && make_conv_plan(ctx, true, true, p), ctx.node.describe(), ": fast channels-last conv called on an unsupported node");
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  Tensor& y = ctx.output(0, DType::kFloat32, Shape{p.N, p.OH, p.OW, p.M});
  if (y.numel() == 0) return;
  const ops::Epilogue& e = p.epi;
  const float* bias = ctx.has_input(2) ? ctx.input(2).data<float>() : nullptr;
  const float* res = ctx.has_input(3) ? ctx.input(3).data<float>() : nullptr;
  const float* X = x.data<float>();
  const float* Wt = w.data<float>();
  float* Y = y.data<float>();
  const bool w_const = ctx.node.inputs.size() > 1 && ctx.node.inputs[1] && ctx.node.inputs[1]->data;
  const int64_t taps = p.KH * p.KW;
  const Tile tl = tile_of(isa);
  const bool direct =
      !p.depthwise() && p.group == 1 && p.C <= kDirectMaxChannels && tl.VW > 0 && p.M % tl.VW == 0;
  // X NCHW (channels_last = 2): the direct conv gathers its rows from the
  // planes; the other paths take an NHWC copy.
  if (p.x_nchw && !direct) {
    thread_local Scratch xs;
    float* d = xs.get(x.numel());
    transpose_images(nk, X, p.N, p.C, p.H * p.W, d);
    X = d;
  }

  if (p.depthwise()) {
    const std::shared_ptr<const Packed> wp = nhwc_depthwise_weight(isa, p, w, w_const);
    NhwcDwArgs a;
    fill_direct_args(a, p, e, X, wp->data.get(), bias, res, Y);
    const int64_t rows = p.N * p.OH;
    const int threads = threads_for(double(y.numel()) * double(taps) * 2 * kDwWorkScale);
    if (threads > 1 && rows < 4 * threads) {
      // Few rows (7x7 maps): blocks of channels instead, all rows each.
      const int VW = std::max(1, tile_of(isa).VW);
      const int64_t vecs = (p.C + VW - 1) / VW, cparts = std::min<int64_t>(vecs, 4 * threads);
      ThreadPool::global().parallel_for(cparts, 1, threads, [&](int64_t q0, int64_t q1) {
        NhwcDwArgs part = a;
        part.c_begin = vecs * q0 / cparts * VW;
        part.c_end = std::min<int64_t>(p.C, vecs * q1 / cparts * VW);
        nk->depthwise(part, 0, rows);
      });
      return;
    }
    // Rows split the way the GEMM's row schedule splits the pixels before
    // and after (parallel_for_affine): each thread reads what its core wrote.
    const int64_t parts = std::min<int64_t>(rows, 4 * threads);
    ThreadPool::global().parallel_for_affine(parts, threads, [&](int64_t q0, int64_t q1) {
      nk->depthwise(a, rows * q0 / parts, rows * q1 / parts);
    });
    return;
  }

  if (direct) {
    std::shared_ptr<const Packed> wp;
    if (w_const)
      wp = cached_derived_pack(isa, w, Wt, kLayoutDirect, false, taps * p.C, p.M,
                               [&] { return pack_weight_direct(isa, p, Wt); });
    if (!wp) wp = pack_weight_direct(isa, p, Wt);
    NhwcDirectArgs a;
    fill_direct_args(a, p, e, X, wp->data.get(), bias, res, Y);
    a.M = p.M;
    a.x_nchw = p.x_nchw;
    const int64_t rows = p.N * p.OH;
    const int threads = threads_for(double(y.numel()) * double(taps * p.C) * 2);
    // Rows split like the ops after it (parallel_for_affine): the stem's
    // output (112x112x64: 3.2 MB) stays in the two cores' L2 for the pool.
    const int64_t parts = std::min<int64_t>(rows, 4 * threads);
    ThreadPool::global().parallel_for_affine(parts, threads, [&](int64_t q0, int64_t q1) {
      nk->direct(a, rows * q0 / parts, rows * q1 / parts);
    });
    return;
  }

  const int64_t K = taps * p.Cg, P = p.N * p.OH * p.OW;
  const int MR = tl.MR, NR = tl.NR;
  DEEPEP_CHECK(MR >= 1 && MR <= kMaxRows && NR >= 1, "channels-last conv: unexpected GEMM tile ", MR, "x", NR);
  GemmEpi epi;
  epi.act = e.act;
  epi.p0 = e.p0;
  epi.p1 = e.p1;
  epi.res_first = e.residual_first;

  if (const int wm = winograd_tile(isa, p)) {
    GemmEpi ge = epi;
    ge.bias = bias;
    ge.res = residual_apart(res, Y, y.numel());  // (the output transform stores, then adds)
    ge.res_ld = p.M;
    winograd_conv(isa, wm, p, X, w, w_const, ge, Y);
    return;
  }

  // Fewer output channels per group than a register tile has columns, and
  // under 3/4 of its vectors' lanes used (Mg = 24 of 32 lanes measured faster
  // in the tile: MobileNetV2's 96 -> 24 at 56x56 0.33 -> 0.25 ms a call): the
  // tile would run mostly empty. Run the NCHW GEMM's shape instead,
  // Y_g^T[Mg, P] = W_g x im2col^T (im2col packed pixel-major straight into
  // the B strips), into a scratch, epilogue included (bias per row, the
  // residual read transposed), then transpose it into Y.
  const int64_t lanes = (p.Mg + tl.VW - 1) / tl.VW * tl.VW;
  if (p.Mg < NR && 4 * p.Mg < 3 * lanes && NR <= kMaxRows) {
    thread_local std::vector<float> yt;
    yt.resize(size_t(p.Mg * P));
    float* const ytp = yt.data();  // (a worker's yt is another)
    std::vector<int64_t> roff(size_t(p.Mg));
    for (int64_t m = 0; m < p.Mg; ++m) roff[size_t(m)] = m;
    const int threads = threads_for(double(P) * double(p.Mg) * 2);
    for (int64_t gi = 0; gi < p.group; ++gi) {
      const float* Wg = Wt + gi * p.Mg * K;
      std::shared_ptr<const Packed> wp;
      if (w_const)
        wp = cached_derived_pack(isa, w, Wg, kLayoutGemmA, true, p.Mg, K, [&] { return pack_weight(isa, p, Wg, true); });
      if (!wp) wp = pack_weight(isa, p, Wg, true);
      GemmEpi ge = epi;
      ge.bias_per_row = true;
      if (bias) ge.bias = bias + gi * p.Mg;
      if (res) {
        ge.res = res + gi * p.Mg;
        ge.res_row_off = roff.data();
        ge.res_col_step = p.M;
      }
      const StripPacker packer = [&](int64_t j0, int64_t cols, float* dst) {
        pack_a_nhwc(p, X, gi, nk->pack_rows, NR, j0, cols, 0, K, dst);
      };
      gemm(isa, p.Mg, P, K, Operand{nullptr, 0, false, wp.get()}, Operand{}, ytp, P, ge, 0, &packer);
      ThreadPool::global().parallel_for((P + 63) / 64, 1, threads, [&](int64_t b0, int64_t b1) {
        const int64_t j0 = b0 * 64, j1 = std::min(P, b1 * 64);
        nk->transpose(ytp + j0, P, p.Mg, j1 - j0, Y + j0 * p.M + gi * p.Mg, p.M);
      });
    }
    return;
  }

  epi.bias_per_row = false;
  epi.res_ld = p.M;
  // Few pixels (7x7 to 28x28 maps): the GEMM splits the columns into several
  // blocks (for L2, for the threads) and would pack A again in each; while
  // all of A fits in cache, pack it once instead (in parallel, into a
  // buffer of the calling thread) and hand it over as a packed operand.
  // A pointwise conv's A is X itself ([pixels, C] rows): the GEMM reads it in
  // place.
  const bool pointwise =
      p.KH == 1 && p.KW == 1 && p.sh == 1 && p.sw == 1 && p.ph == 0 && p.pw == 0 && p.OH == p.H && p.OW == p.W;
  const int64_t strips = (P + MR - 1) / MR;
  const bool prepack = !pointwise && P <= kPrepackPixels && P * K <= kPrepackFloats && p.Mg > NR;
  thread_local std::shared_ptr<float> abuf;
  thread_local int64_t acap = 0;
  if (prepack && acap < strips * K * MR) {
    acap = strips * K * MR;
    abuf = alloc(acap);
  }
  float* const adata = prepack ? abuf.get() : nullptr;  // (the workers' abuf is another)
  for (int64_t gi = 0; gi < p.group; ++gi) {
    const float* Wg = Wt + gi * p.Mg * K;
    std::shared_ptr<const Packed> wp;
    // A pointwise conv's weight [Mg, C] is op(B)^T as it stands: packed as a
    // MatMul weight is (on AMX tiles: split only, no float copy).
    if (w_const && pointwise && p.group == 1) wp = cached_pack_b(isa, w, K, p.Mg, Wg, K, true);
    else if (w_const)
      wp = cached_derived_pack(isa, w, Wg, kLayoutGemmB, false, K, p.Mg, [&] { return pack_weight(isa, p, Wg, false); });
    if (!wp) wp = pack_weight(isa, p, Wg, false);
    GemmEpi ge = epi;
    if (bias) ge.bias = bias + gi * p.Mg;
    if (res) ge.res = res + gi * p.Mg;
    const APacker packer = [&](int64_t i0, int64_t mc, int64_t p0, int64_t kc, float* dst) {
      pack_a_nhwc(p, X, gi, nk->pack_rows, MR, i0, mc, p0, kc, dst);
    };
    if (pointwise) {
      gemm(isa, P, p.Mg, K, Operand{X + gi * p.Cg, p.C, false}, Operand{nullptr, 0, false, wp.get()}, Y + gi * p.Mg,
           p.M, ge);
    } else if (prepack) {
      Packed ap;
      ap.isa = isa;
      ap.is_a = true;
      ap.K = K;
      ap.len = P;
      ap.R = MR;
      ap.data = abuf;
      ThreadPool::global().parallel_for(strips, 1, threads_for(double(P) * double(K) * 4), [&](int64_t s0, int64_t s1) {
        pack_a_nhwc(p, X, gi, nk->pack_rows, MR, s0 * MR, std::min(P, s1 * MR) - s0 * MR, 0, K,
                    adata + s0 * K * MR);
      });
      gemm(isa, P, p.Mg, K, Operand{nullptr, 0, false, &ap}, Operand{nullptr, 0, false, wp.get()}, Y + gi * p.Mg,
           p.M, ge);
    } else {
      gemm(isa, P, p.Mg, K, Operand{}, Operand{nullptr, 0, false, wp.get()}, Y + gi * p.Mg, p.M, ge, 0, nullptr,
           &packer);
    }
  }
}

bool supports(const KernelContext& ctx) {
  Plan p;
  return nhwc_kernels_of(active_isa()) && make_conv_plan(ctx, true, true, p);
}

// The layout changes the channels-last pass leaves at the edges of an NHWC
// region (Transpose with perm [0,2,3,1] or [0,3,1,2], rank 4, float32): per
// image one [C, H*W] <-> [H*W, C] matrix transpose, 8 x 8 blocks in
// registers, column chunks spread over the threads.
using ops::kToNchw;
using ops::kToNhwc;

bool transpose_supports(const KernelContext& ctx) {
  if (ctx.num_inputs() != 1 || !is_f32(ctx.inputs[0]) || ctx.inputs[0]->rank() != 4 || !ctx.node.has_attr("perm"))
    return false;
  const std::vector<int64_t> perm = ctx.node.attr_ints("perm");
  return nhwc_kernels_of(active_isa()) && (perm == kToNhwc || perm == kToNchw);
}

void transpose_run(KernelContext& ctx) {
  const NhwcKernels* nk = nhwc_kernels_of(active_isa());
  DEEPEP_CHECK(nk && transpose_supports(ctx), ctx.node.describe(), ": fast layout transpose called on an unsupported node");
  const Tensor& x = ctx.input(0);
  const bool to_nhwc = ctx.node.attr_ints("perm") == kToNhwc;
  const Shape& s = x.shape();
  const Shape out = to_nhwc ? Shape{s[0], s[2], s[3], s[1]} : Shape{s[0], s[3], s[1], s[2]};
  Tensor& y = ctx.output(0, DType::kFloat32, out);
  if (y.numel() == 0) return;
  transpose_images(nk, x.data<float>(), s[0], to_nhwc ? s[1] : s[1] * s[2], to_nhwc ? s[2] * s[3] : s[3],
                   y.data<float>());
}

}  // namespace

void register_conv_nhwc_kernels(OpTable& table) {
  add_fast_kernel(table, "deepep.FusedConv", "cpu.conv_nhwc", supports, run);
  add_fast_kernel(table, "Transpose", "cpu.transpose_nhwc", transpose_supports, transpose_run);
}

}  // namespace deepep::cpu
