// Internal: the channels-last conv inner loops, written once and compiled by
// each ISA file (ops_conv_nhwc_avx512.cpp, ops_conv_nhwc_avx2.cpp) under its
// own flags and namespace (DEEPEP_ISA_NS, DEEPEP_VW as for isa_common.h,
// whose vector helpers and activations this reuses). Both ISAs have AVX2, so
// the 8 x 8 transpose of the A packing uses __m256 intrinsics in either.
#include <immintrin.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "kernels/cpu/isa_common.h"
#pragma GCC diagnostic pop
#include "kernels/cpu/ops_conv_nhwc.h"
#include "kernels/cpu/scratch.h"

namespace deepep::cpu::DEEPEP_ISA_NS {
namespace {

// The first n < VW floats of p as a vector (the rest zero), and the reverse.
inline vf load_part(const float* p, int64_t n) {
  alignas(64) float t[VW] = {};
  for (int64_t i = 0; i < n; ++i) t[i] = p[i];
  return vload(t);
}
inline void store_part(float* p, vf v, int64_t n) {
  alignas(64) float t[VW];
  vstore(t, v);
  for (int64_t i = 0; i < n; ++i) p[i] = t[i];
}
template <bool FULL>
inline vf ld(const float* p, int64_t n) {
  if constexpr (FULL) return vload(p);
  else return load_part(p, n);
}

// NB outputs (n, oy, ox0 .. ox0 + NB) x channels [c0, c0 + nc) (nc = VW when
// FULL): the weight vector of each tap is loaded once for the NB outputs.
// KWC: the kernel width as a compile-time constant (0: a.KW); CHECK: skip
// the taps left or right of the image (zero padding; without it every
// horizontal tap of the NB outputs must be inside). Rows outside the image
// are skipped. Then bias, residual and activation on the registers.
// xrow: the index in a.x's rows of image row 0 (row iy is at a.x + (xrow +
// iy) * W * C; negative when a.x is a window starting past row 0).
template <Act A, int NB, bool FULL, int KWC, bool CHECK>
__attribute__((always_inline)) inline void dw_tile(const NhwcDwArgs& a, int64_t xrow, int64_t iy0, int64_t ox0,
                                                   int64_t c0, int64_t nc, float* yr, const float* rr) {
  const int64_t C = a.C, W = a.W, H = a.H, KH = a.KH, sw = a.sw, dw = a.dw, dh = a.dh, pw = a.pw;
  const int64_t KW = KWC ? KWC : a.KW;
  const float* const wbase = a.w;
  vf acc[NB];
  for (int j = 0; j < NB; ++j) acc[j] = splat(0.f);
  const int64_t xstep = sw * C;  // between the NB outputs
  for (int64_t ky = 0; ky < KH; ++ky) {
    const int64_t iy = iy0 + ky * dh;
    if (iy < 0 || iy >= H) continue;
    const float* xr = a.x + (xrow + iy) * W * C + c0;
    const float* wr = wbase + ky * KW * C + c0;
#pragma GCC unroll 4
    for (int64_t kx = 0; kx < KW; ++kx) {
      const vf wv = ld<FULL>(wr + kx * C, nc);
      const int64_t ix = ox0 * sw + kx * dw - pw;
      const float* xp = xr + ix * C;
#pragma GCC unroll 8
      for (int j = 0; j < NB; ++j) {
        if constexpr (CHECK) {
          const int64_t ixj = ix + j * sw;
          if (ixj < 0 || ixj >= W) continue;
        }
        acc[j] += wv * ld<FULL>(xp + j * xstep, nc);
      }
    }
  }
  const vf b = a.bias ? ld<FULL>(a.bias + c0, nc) : splat(0.f);
#pragma GCC unroll 8
  for (int j = 0; j < NB; ++j) {
    const int64_t o = (ox0 + j) * C + c0;
    vf v = acc[j] + b;
    vf r = splat(0.f);
    if (rr) r = ld<FULL>(rr + o, nc);
    if (rr && a.res_first) v += r;
    v = vact<A>(v, a.p0, a.p1);
    if (rr && !a.res_first) v += r;
    if constexpr (FULL) vstore(yr + o, v);
    else store_part(yr + o, v, nc);
  }
}

// Output columns [lo, hi) have every horizontal tap inside the image:
// ox * sw - pw >= 0 and ox * sw - pw + (KW - 1) * dw <= W - 1.
inline void interior_columns(const NhwcDwArgs& a, int64_t& lo, int64_t& hi) {
  lo = (a.pw + a.sw - 1) / a.sw;
  const int64_t last = a.W - 1 - (a.KW - 1) * a.dw + a.pw;
  hi = last < 0 ? 0 : last / a.sw + 1;
  hi = hi < a.OW ? hi : a.OW;
  lo = lo < hi ? lo : hi;
}

// Outputs ox0 .. ox0 + NB of one row, all channels (the tail vector through
// the generic checked tile).
template <Act A, int NB, int KWC, bool CHECK>
inline void dw_px(const NhwcDwArgs& a, int64_t xrow, int64_t iy0, int64_t ox0, float* yr, const float* rr) {
  const int64_t c_end = a.c_end ? a.c_end : a.C;
  int64_t c0 = a.c_begin;
  for (; c0 + VW <= c_end; c0 += VW) dw_tile<A, NB, true, KWC, CHECK>(a, xrow, iy0, ox0, c0, VW, yr, rr);
  if (c0 < c_end)
    for (int j = 0; j < NB; ++j) dw_tile<A, 1, false, 0, true>(a, xrow, iy0, ox0 + j, c0, c_end - c0, yr, rr);
}

// The rows: outputs left and right of the interior (some tap outside the
// image) one at a time with checks, the interior in blocks of 8 and 4
// without.
template <Act A, int KWC>
void dw_rows_k(const NhwcDwArgs& a, int64_t r0, int64_t r1) {
  const int64_t C = a.C;
  int64_t lo, hi;
  interior_columns(a, lo, hi);
  for (int64_t row = r0; row < r1; ++row) {
    const int64_t n = row / a.OH, oy = row % a.OH;
    const int64_t xrow = n * a.H - a.x_row0;
    float* yr = a.y + row * a.OW * C;
    const float* rr = a.res ? a.res + row * a.OW * C : nullptr;
    const int64_t iy0 = oy * a.sh - a.ph;
    int64_t ox = 0;
    for (; ox < lo; ++ox) dw_px<A, 1, KWC, true>(a, xrow, iy0, ox, yr, rr);
    for (; ox + 8 <= hi; ox += 8) dw_px<A, 8, KWC, false>(a, xrow, iy0, ox, yr, rr);
    for (; ox + 4 <= hi; ox += 4) dw_px<A, 4, KWC, false>(a, xrow, iy0, ox, yr, rr);
    for (; ox < hi; ++ox) dw_px<A, 1, KWC, false>(a, xrow, iy0, ox, yr, rr);
    for (; ox < a.OW; ++ox) dw_px<A, 1, KWC, true>(a, xrow, iy0, ox, yr, rr);
  }
}

template <Act A>
void dw_rows(const NhwcDwArgs& a, int64_t r0, int64_t r1) {
  if (a.KW == 3) dw_rows_k<A, 3>(a, r0, r1);
  else dw_rows_k<A, 0>(a, r0, r1);
}

// fn(std::integral_constant<Act, act>{}): the activation as a template argument.
template <class Fn>
void with_act(Act act, Fn&& fn) {
  switch (act) {
    case Act::kNone: return fn(std::integral_constant<Act, Act::kNone>{});
    case Act::kRelu: return fn(std::integral_constant<Act, Act::kRelu>{});
    case Act::kLeakyRelu: return fn(std::integral_constant<Act, Act::kLeakyRelu>{});
    case Act::kSigmoid: return fn(std::integral_constant<Act, Act::kSigmoid>{});
    case Act::kTanh: return fn(std::integral_constant<Act, Act::kTanh>{});
    case Act::kSiLU: return fn(std::integral_constant<Act, Act::kSiLU>{});
    case Act::kGelu: return fn(std::integral_constant<Act, Act::kGelu>{});
    case Act::kGeluTanh: return fn(std::integral_constant<Act, Act::kGeluTanh>{});
    case Act::kClip: return fn(std::integral_constant<Act, Act::kClip>{});
    case Act::kHardSigmoid: return fn(std::integral_constant<Act, Act::kHardSigmoid>{});
    case Act::kHardSwish: return fn(std::integral_constant<Act, Act::kHardSwish>{});
  }
}

void depthwise_nhwc(const NhwcDwArgs& a, int64_t r0, int64_t r1) {
  with_act(a.act, [&](auto act) { dw_rows<decltype(act)::value>(a, r0, r1); });
}

// *p in every lane (a broadcast load; splat's vf{} + x costs an add).
inline vf bcast(const float* p) {
#if DEEPEP_VW == 16
  return (vf)_mm512_set1_ps(*p);
#else
  return (vf)_mm256_set1_ps(*p);
#endif
}

void transpose(const float* src, int64_t lds, int64_t rows, int64_t cols, float* dst, int64_t ldd);

// Direct conv (few input channels): PB outputs ox0 .. ox0 + PB of one output
// row x the NB*VW output channels of weight block wb ([k][NB*VW], k = (ky,
// kx, c)), read from the row's KH input rows: rows[ky], zero-padded (input
// column ix at (ix + pw) * C), so no tap needs a check; null for a row
// outside the image, skipped. Per tap and input channel, NB weight vectors
// are loaded once and each output's input value broadcast against them:
// PB*NB accumulators (AVX-512: 6 x 4 of 32 registers; AVX2: 6 x 2 of 16).
// Then bias, residual and activation; the first np outputs are stored (the
// row's last tile may reach past OW, into the rows' zeros).
template <Act A, int PB, int NB>
__attribute__((always_inline)) inline void direct_tile(const NhwcDirectArgs& a, const float* const* rows,
                                                       const float* wb, int64_t ox0, int64_t np, int64_t m0, float* yr,
                                                       const float* rr) {
  constexpr int64_t BW = NB * VW;
  const int64_t C = a.C, M = a.M, KWC = a.KW * C, step = a.sw * C;
  vf acc[PB][NB];
#pragma GCC unroll 6
  for (int p = 0; p < PB; ++p)
#pragma GCC unroll 4
    for (int j = 0; j < NB; ++j) acc[p][j] = splat(0.f);
  for (int64_t ky = 0; ky < a.KH; ++ky) {
    if (!rows[ky]) continue;
    const float* xr = rows[ky] + ox0 * step;
    const float* wk = wb + ky * KWC * BW;
    for (int64_t kx = 0; kx < a.KW; ++kx) {
      // With dw == 1 a kernel row's (kx, c) is one run of KW*C floats of
      // each output's input: one loop over all of it.
      const int64_t run = a.dw == 1 ? KWC : C;
      const float* xk = xr + kx * a.dw * C;
      for (int64_t u = 0; u < run; ++u, wk += BW) {
        vf w[NB];
#pragma GCC unroll 4
        for (int j = 0; j < NB; ++j) w[j] = vload(wk + j * VW);
#pragma GCC unroll 6
        for (int p = 0; p < PB; ++p) {
          const vf xv = bcast(xk + p * step + u);
#pragma GCC unroll 4
          for (int j = 0; j < NB; ++j) acc[p][j] += xv * w[j];
        }
      }
      if (a.dw == 1) break;
    }
  }
#pragma GCC unroll 6
  for (int p = 0; p < PB; ++p) {
    if (p < np) {
#pragma GCC unroll 4
      for (int j = 0; j < NB; ++j) {
        const int64_t o = (ox0 + p) * M + m0 + j * VW;
        vf v = acc[p][j];
        if (a.bias) v += vload(a.bias + m0 + j * VW);
        vf r = splat(0.f);
        if (rr) r = vload(rr + o);
        if (rr && a.res_first) v += r;
        v = vact<A>(v, a.p0, a.p1);
        if (rr && !a.res_first) v += r;
        vstore(yr + o, v);
      }
    }
  }
}

// Output rows [r0, r1). The input rows they read go, zero-padded, into a
// ring of (KH - 1) * dh + 1 slots (a thread's scratch; row iy in slot iy %
// slots, so the rows one output row reads never share a slot), each copied
// once per call -- from an NHWC X, or gathered from an NCHW X's planes
// (x_nchw). Each 6-output tile then computes every output-channel block.
// Against reading the image in place with checked edge outputs and the
// weight [k][M], 1.3x faster on resnet50's 7x7 stem (one thread: 62-68 ->
// 82-85 GFLOP/s).
template <Act A>
void direct_rows(const NhwcDirectArgs& a, int64_t r0, int64_t r1) {
  constexpr int kPB = 6;
  constexpr int64_t kDirectMaxVectors = direct_max_vectors(VW);
  const int64_t C = a.C, KK = a.KH * a.KW * C, plane = a.H * a.W;
  const int64_t tiles = (a.OW + kPB - 1) / kPB;
  // Slot width: the padded image, and as far as the last tile reads.
  const int64_t wcols = std::max(a.W + a.pw, (tiles * kPB - 1) * a.sw + (a.KW - 1) * a.dw + 1);
  const int64_t wrow = wcols * C, slots = (a.KH - 1) * a.dh + 1;
  thread_local Scratch scratch;
  thread_local std::vector<int64_t> held;  // the (image, row) each slot holds, n * H + iy; -1: none
  thread_local std::vector<const float*> rows;
  float* ring = scratch.get(slots * wrow);
  std::fill(ring, ring + slots * wrow, 0.f);
  held.assign(size_t(slots), -1);
  rows.resize(size_t(a.KH));
  for (int64_t row = r0; row < r1; ++row) {
    const int64_t n = row / a.OH, oy = row % a.OH;
    const int64_t iy0 = oy * a.sh - a.ph;
    for (int64_t ky = 0; ky < a.KH; ++ky) {
      const int64_t iy = iy0 + ky * a.dh;
      rows[size_t(ky)] = nullptr;
      if (iy < 0 || iy >= a.H) continue;
      const int64_t slot = iy % slots;
      float* dst = ring + slot * wrow;
      if (held[size_t(slot)] != n * a.H + iy) {
        if (a.x_nchw) transpose(a.x + n * C * plane + iy * a.W, plane, C, a.W, dst + a.pw * C, C);
        else std::copy(a.x + (n * plane + iy * a.W) * C, a.x + (n * plane + (iy + 1) * a.W) * C, dst + a.pw * C);
        held[size_t(slot)] = n * a.H + iy;
      }
      rows[size_t(ky)] = dst;
    }
    float* yr = a.y + row * a.OW * a.M;
    const float* rr = a.res ? a.res + row * a.OW * a.M : nullptr;
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t ox0 = t * kPB, np = std::min<int64_t>(kPB, a.OW - ox0);
      for (int64_t m0 = 0; m0 < a.M;) {
        const int64_t bw = direct_block_width(VW, a.M, m0);
        const float* wb = a.w + m0 * KK;
        if constexpr (kDirectMaxVectors == 4)
          if (bw == 4 * VW) {
            direct_tile<A, kPB, 4>(a, rows.data(), wb, ox0, np, m0, yr, rr);
            m0 += bw;
            continue;
          }
        if (bw == 2 * VW) direct_tile<A, kPB, 2>(a, rows.data(), wb, ox0, np, m0, yr, rr);
        else direct_tile<A, kPB, 1>(a, rows.data(), wb, ox0, np, m0, yr, rr);
        m0 += bw;
      }
    }
  }
}

void direct_nhwc(const NhwcDirectArgs& a, int64_t r0, int64_t r1) {
  with_act(a.act, [&](auto act) { direct_rows<decltype(act)::value>(a, r0, r1); });
}

// In-register transpose of 8 rows of 8 floats: r[k][i] <- r[i][k].
inline void transpose8(__m256* r) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// (GCC 12 flags the _mm512_undefined_ps inside the AVX-512 unpack
// intrinsics as maybe-uninitialized: a false positive.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#if DEEPEP_VW == 16
// AVX-512: rows src[0..8) x columns [u, u + 16) into dst[v * R + r]
// (v = 0..16): 8 zmm loads, unpack/shuffle within 128-bit lanes as in
// transpose8, then two rounds of lane shuffles put (column v: rows 0-3,
// rows 4-7, column v + 1: rows 0-3, rows 4-7) into one zmm: 32 shuffles per
// 128 floats where transpose8 needs 48.
inline void pack_rows_8x16(const float* const* src, int64_t u, int R, float* dst) {
  __m512 r[8];
  for (int i = 0; i < 8; ++i) r[i] = src[i] ? _mm512_loadu_ps(src[i] + u) : _mm512_setzero_ps();
  const __m512 t0 = _mm512_unpacklo_ps(r[0], r[1]), t1 = _mm512_unpackhi_ps(r[0], r[1]);
  const __m512 t2 = _mm512_unpacklo_ps(r[2], r[3]), t3 = _mm512_unpackhi_ps(r[2], r[3]);
  const __m512 t4 = _mm512_unpacklo_ps(r[4], r[5]), t5 = _mm512_unpackhi_ps(r[4], r[5]);
  const __m512 t6 = _mm512_unpacklo_ps(r[6], r[7]), t7 = _mm512_unpackhi_ps(r[6], r[7]);
  // s[k] lane L: rows 0-3 of column 4L + k; s[k + 4] lane L: rows 4-7.
  __m512 s[8];
  s[0] = _mm512_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
  s[1] = _mm512_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  s[2] = _mm512_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
  s[3] = _mm512_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  s[4] = _mm512_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
  s[5] = _mm512_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  s[6] = _mm512_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
  s[7] = _mm512_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  // lo[k]: (s[k] lanes 0, 1, s[k + 4] lanes 0, 1); hi[k]: lanes 2, 3.
  __m512 lo[4], hi[4];
  for (int k = 0; k < 4; ++k) {
    lo[k] = _mm512_shuffle_f32x4(s[k], s[k + 4], _MM_SHUFFLE(1, 0, 1, 0));
    hi[k] = _mm512_shuffle_f32x4(s[k], s[k + 4], _MM_SHUFFLE(3, 2, 3, 2));
  }
  // Column 4L + k and 4L + k + 1 (k = 0, 2): lanes L (or L - 2 of hi) and L + 2 of the pair.
  __m512 o[8];
  o[0] = _mm512_shuffle_f32x4(lo[0], lo[1], 0x88);
  o[1] = _mm512_shuffle_f32x4(lo[2], lo[3], 0x88);
  o[2] = _mm512_shuffle_f32x4(lo[0], lo[1], 0xDD);
  o[3] = _mm512_shuffle_f32x4(lo[2], lo[3], 0xDD);
  o[4] = _mm512_shuffle_f32x4(hi[0], hi[1], 0x88);
  o[5] = _mm512_shuffle_f32x4(hi[2], hi[3], 0x88);
  o[6] = _mm512_shuffle_f32x4(hi[0], hi[1], 0xDD);
  o[7] = _mm512_shuffle_f32x4(hi[2], hi[3], 0xDD);
  if (R == 8) {
    for (int q = 0; q < 8; ++q) _mm512_storeu_ps(dst + 16 * q, o[q]);
  } else {
    for (int q = 0; q < 8; ++q) {
      _mm256_storeu_ps(dst + (2 * q) * R, _mm512_castps512_ps256(o[q]));
      _mm256_storeu_ps(dst + (2 * q + 1) * R, _mm512_extractf32x8_ps(o[q], 1));
    }
  }
}
#endif

// dst[u * R + r] = src[r][u]: 8 x 8 blocks through transpose8 when R is a
// multiple of 8 (one 8-float store per u and group of 8 rows) or 6 (the
// AVX2 MR: 8-float stores in ascending u, each overwriting the 2 floats the
// previous one wrote past its slot; the last one masked); scalar for the
// rest and for other R.
void pack_rows(const float* const* src, int64_t len, int R, float* dst) {
  int64_t u = 0;
  if (R % 8 == 0) {
#if DEEPEP_VW == 16
    for (; u + 16 <= len; u += 16)
      for (int g = 0; g < R; g += 8) pack_rows_8x16(src + g, u, R, dst + u * R + g);
#endif
    for (; u + 8 <= len; u += 8)
      for (int g = 0; g < R; g += 8) {
        __m256 r[8];
        for (int i = 0; i < 8; ++i) r[i] = src[g + i] ? _mm256_loadu_ps(src[g + i] + u) : _mm256_setzero_ps();
        transpose8(r);
        for (int k = 0; k < 8; ++k) _mm256_storeu_ps(dst + (u + k) * R + g, r[k]);
      }
  } else if (R == 6) {
    const __m256i m6 = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
    for (; u + 8 <= len; u += 8) {
      __m256 r[8];
      for (int i = 0; i < 8; ++i) r[i] = i < 6 && src[i] ? _mm256_loadu_ps(src[i] + u) : _mm256_setzero_ps();
      transpose8(r);
      for (int k = 0; k < 7; ++k) _mm256_storeu_ps(dst + (u + k) * 6, r[k]);
      _mm256_maskstore_ps(dst + (u + 7) * 6, m6, r[7]);
    }
  }
  for (int r = 0; r < R; ++r) {
    const float* s = src[r];
    if (s)
      for (int64_t v = u; v < len; ++v) dst[v * R + r] = s[v];
    else
      for (int64_t v = u; v < len; ++v) dst[v * R + r] = 0.f;
  }
}

#pragma GCC diagnostic pop

// dst[j * ldd + i] = src[i * lds + j] for i < rows, j < cols: 8 x 8 blocks
// through transpose8, scalar edges.
#if DEEPEP_VW == 16
// Three planes (RGB) into channels-last, 16 pixels a step: 3 loads, two
// two-source permutes per output vector, 3 full stores (the 8-pixel path's
// overlapping 16-byte stores split a cache line one time in four).
// Returns the pixels done.
inline int64_t rgb_to_nhwc_16(const float* src, int64_t lds, int64_t cols, float* dst) {
  alignas(64) static const int32_t kFirst[3][16] = {
      {0, 16, 0, 1, 17, 0, 2, 18, 0, 3, 19, 0, 4, 20, 0, 5},      // R, G placed; B lanes filled next
      {21, 0, 6, 22, 0, 7, 23, 0, 8, 24, 0, 9, 25, 0, 10, 26},
      {0, 11, 27, 0, 12, 28, 0, 13, 29, 0, 14, 30, 0, 15, 31, 0}};
  alignas(64) static const int32_t kSecond[3][16] = {
      {0, 1, 16, 3, 4, 17, 6, 7, 18, 9, 10, 19, 12, 13, 20, 15},  // B from lanes 16+
      {0, 21, 2, 3, 22, 5, 6, 23, 8, 9, 24, 11, 12, 25, 14, 15},
      {26, 1, 2, 27, 4, 5, 28, 7, 8, 29, 10, 11, 30, 13, 14, 31}};
  __m512i first[3], second[3];
  for (int v = 0; v < 3; ++v) {
    first[v] = _mm512_load_si512(kFirst[v]);
    second[v] = _mm512_load_si512(kSecond[v]);
  }
  int64_t j = 0;
  for (; j + 16 <= cols; j += 16) {
    const __m512 r = _mm512_loadu_ps(src + j), g = _mm512_loadu_ps(src + lds + j), b = _mm512_loadu_ps(src + 2 * lds + j);
    for (int v = 0; v < 3; ++v)
      _mm512_storeu_ps(dst + j * 3 + 16 * v,
                       _mm512_permutex2var_ps(_mm512_permutex2var_ps(r, first[v], g), second[v], b));
  }
  return j;
}
#endif

void transpose(const float* src, int64_t lds, int64_t rows, int64_t cols, float* dst, int64_t ldd) {
#if DEEPEP_VW == 16
  if (rows == 3 && ldd == 3) {
    const int64_t j = rgb_to_nhwc_16(src, lds, cols, dst);
    for (int64_t c = j; c < cols; ++c)
      for (int64_t t = 0; t < 3; ++t) dst[c * 3 + t] = src[t * lds + c];
    return;
  }
#endif
  if (rows <= 4 && ldd == rows) {
    // An image's few channels (RGB) into channels-last, 8 pixels a step: 4 rows (missing ones zero) become
    // each pixel's 4 floats in 8 shuffles (pixels p and p + 4 share a register), stored in pixel order --
    // the floats past its channels land on the next pixels of this call, stored after it. A step runs only
    // while its last store, (j + 7) * ldd .. + 4, stays inside the cols pixels (one channel: three pixels
    // on; the scalar tail does the rest). (The scalar loop took MobileNetV2's 224 x 224 input 0.23 ms.)
    int64_t j = 0;
    for (; (j + 7) * ldd + 4 <= cols * ldd; j += 8) {
      __m256 r[4];
      for (int t = 0; t < 4; ++t) r[t] = t < rows ? _mm256_loadu_ps(src + t * lds + j) : _mm256_setzero_ps();
      const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
      const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
      const __m256 p[4] = {_mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)),
                           _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2)),
                           _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)),
                           _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2))};
      for (int t = 0; t < 4; ++t) _mm_storeu_ps(dst + (j + t) * ldd, _mm256_castps256_ps128(p[t]));
      for (int t = 0; t < 4; ++t) _mm_storeu_ps(dst + (j + 4 + t) * ldd, _mm256_extractf128_ps(p[t], 1));
    }
    for (; j < cols; ++j)
      for (int64_t t = 0; t < rows; ++t) dst[j * ldd + t] = src[t * lds + j];
    return;
  }
  int64_t i = 0;
  for (; i + 8 <= rows; i += 8) {
    int64_t j = 0;
    for (; j + 8 <= cols; j += 8) {
      __m256 r[8];
      for (int t = 0; t < 8; ++t) r[t] = _mm256_loadu_ps(src + (i + t) * lds + j);
      transpose8(r);
      for (int t = 0; t < 8; ++t) _mm256_storeu_ps(dst + (j + t) * ldd + i, r[t]);
    }
    for (; j < cols; ++j)
      for (int t = 0; t < 8; ++t) dst[j * ldd + i + t] = src[(i + t) * lds + j];
  }
  if (i < rows)  // the last rows % 8 rows (all of them for an image's 3 channels): contiguous stores
    for (int64_t j = 0; j < cols; ++j)
      for (int64_t t = i; t < rows; ++t) dst[j * ldd + t] = src[t * lds + j];
}

void max_taps(const float* const* src, int64_t taps, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 4 * VW <= n; i += 4 * VW) {  // four vectors a pass: the taps' loads overlap
    vf m[4];
    for (int u = 0; u < 4; ++u) m[u] = vload(src[0] + i + u * VW);
    for (int64_t t = 1; t < taps; ++t)
      for (int u = 0; u < 4; ++u) m[u] = vmax(m[u], vload(src[t] + i + u * VW));
    for (int u = 0; u < 4; ++u) vstore(out + i + u * VW, m[u]);
  }
  for (; i + VW <= n; i += VW) {
    vf m = vload(src[0] + i);
    for (int64_t t = 1; t < taps; ++t) m = vmax(m, vload(src[t] + i));
    vstore(out + i, m);
  }
  for (; i < n; ++i) {
    float m = src[0][i];
    for (int64_t t = 1; t < taps; ++t) m = src[t][i] > m ? src[t][i] : m;
    out[i] = m;
  }
}

NhwcKernels make_nhwc() {
  NhwcKernels k;
  k.depthwise = depthwise_nhwc;
  k.direct = direct_nhwc;
  k.pack_rows = pack_rows;
  k.transpose = transpose;
  k.max_taps = max_taps;
  return k;
}

}  // namespace
}  // namespace deepep::cpu::DEEPEP_ISA_NS
