// AVX-512 kernels of the fast GEMM (compiled with -mavx512f -mavx512bw
// -mavx512vl -mavx512dq -mfma only; called only when cpu_features finds
// AVX-512). Micro-kernel: 8 rows x 48 columns (3 zmm) = 24 accumulators;
// the A value is broadcast from memory into each FMA, the last column vector
// is masked, so any mr <= 8 and nr <= 48 tile runs without a scratch tile.
#include <immintrin.h>

#define DEEPEP_ISA_NS avx512
#define DEEPEP_VW 16
#include "kernels/cpu/isa_common.h"
#include "kernels/cpu/row_kernels_impl.h"

namespace deepep::cpu::avx512 {
namespace {

constexpr int kMR = 8, kNR = 48;
// B is prefetched 8 k steps (3 cache lines each) ahead into L1: the packed
// B panel streams from L2 (measured: a few % at 512x768x3072, 128x3072x768).
constexpr int kPfB = 8 * kNR;

// (GCC 12 flags the _mm512_undefined_ps inside _mm512_max_ps / _mm512_min_ps
// as maybe-uninitialized: a false positive, as in ops_conv_nhwc_isa.h.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
template <int MR, int NV, bool ROWS>
void ukr(int64_t kc, const float* a, int64_t lda, const float* b, float* c, int64_t ldc, int64_t nr,
         bool accumulate, const TileEpi* te, const float* pf) {
  __m512 acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    if (pf) {
      _mm_prefetch(reinterpret_cast<const char*>(pf), _MM_HINT_T1);
      pf += 16;
    }
    __m512 bv[NV];
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) {
      _mm_prefetch(reinterpret_cast<const char*>(b + kPfB + 16 * v), _MM_HINT_T0);
      bv[v] = _mm512_loadu_ps(b + 16 * v);
    }
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512 av = _mm512_set1_ps(ROWS ? a[i * lda] : a[i]);
#pragma GCC unroll 3
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(av, bv[v], acc[i][v]);
    }
    a += ROWS ? 1 : kMR;
    b += kNR;
  }
  const int64_t last = nr - 16 * (NV - 1);
  // Every vector of a row is full but the last, which keeps `last` lanes.
  const __mmask16 m = last >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << last) - 1);
  auto load = [&](const float* p, int v) {
    return v < NV - 1 ? _mm512_loadu_ps(p + 16 * v) : _mm512_maskz_loadu_ps(m, p + 16 * v);
  };
  __m512 bias[NV], lo = _mm512_set1_ps(te ? te->lo : 0.f), hi = _mm512_set1_ps(te ? te->hi : 0.f);
#pragma GCC unroll 3
  for (int v = 0; v < NV; ++v) bias[v] = te && te->bias ? load(te->bias, v) : _mm512_setzero_ps();
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) {
      __m512 r = acc[i][v];
      if (accumulate) r = _mm512_add_ps(r, load(ci, v));
      if (te) {
        r = _mm512_add_ps(r, bias[v]);
        const __m512 res = te->res ? load(te->res + i * te->res_ld, v) : _mm512_setzero_ps();
        if (te->res && te->res_first) r = _mm512_add_ps(r, res);
        // max/min return their second operand when either is NaN.
        if (te->clamp) r = _mm512_min_ps(hi, _mm512_max_ps(lo, r));
        if (te->res && !te->res_first) r = _mm512_add_ps(r, res);
      }
      if (v < NV - 1) _mm512_storeu_ps(ci + 16 * v, r);
      else _mm512_mask_storeu_ps(ci + 16 * v, m, r);
    }
  }
}

#pragma GCC diagnostic pop

template <int MR>
void fill_row(IsaKernels& k) {
  k.ukr[MR][1] = ukr<MR, 1, false>;
  k.ukr[MR][2] = ukr<MR, 2, false>;
  k.ukr[MR][3] = ukr<MR, 3, false>;
  k.ukr_rows[MR][1] = ukr<MR, 1, true>;
  k.ukr_rows[MR][2] = ukr<MR, 2, true>;
  k.ukr_rows[MR][3] = ukr<MR, 3, true>;
}

IsaKernels make() {
  IsaKernels k;
  k.tile = Tile{kMR, kNR, 16};
  fill_row<1>(k);
  fill_row<2>(k);
  fill_row<3>(k);
  fill_row<4>(k);
  fill_row<5>(k);
  fill_row<6>(k);
  fill_row<7>(k);
  fill_row<8>(k);
  k.epilogue = epilogue;
  k.depthwise = depthwise;
  k.im2col_s1 = im2col_s1;
  return k;
}

}  // namespace
}  // namespace deepep::cpu::avx512

namespace deepep::cpu {
const IsaKernels& avx512_kernels() {
  static const IsaKernels k = avx512::make();
  return k;
}
const RowKernels& avx512_row_kernels() {
  static const RowKernels k = avx512::make_row_kernels();
  return k;
}
}  // namespace deepep::cpu
