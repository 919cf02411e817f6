// AVX2+FMA kernels of the fast GEMM (compiled with -mavx2 -mfma only; called
// only when cpu_features finds AVX2 and FMA: the path for AMD EPYC and older
// Intel). Micro-kernel: 6 rows x 16 columns (2 ymm) = 12 accumulators + 2 B
// vectors + 1 broadcast of the 16 ymm registers; the last column vector is
// loaded and stored through a lane mask for nr < 16.
#include <immintrin.h>

#define DEEPEP_ISA_NS avx2
#define DEEPEP_VW 8
#include "kernels/cpu/isa_common.h"
#include "kernels/cpu/row_kernels_impl.h"

namespace deepep::cpu::avx2 {
namespace {

constexpr int kMR = 6, kNR = 16;

inline __m256i lane_mask(int64_t n) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)), idx);
}

template <int MR, int NV, bool ROWS>
void ukr(int64_t kc, const float* a, int64_t lda, const float* b, float* c, int64_t ldc, int64_t nr,
         bool accumulate, const TileEpi* te, const float* pf) {
  __m256 acc[MR][NV];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    if (pf) {
      _mm_prefetch(reinterpret_cast<const char*>(pf), _MM_HINT_T1);
      pf += 16;
    }
    __m256 bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) bv[v] = _mm256_loadu_ps(b + 8 * v);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const __m256 av = _mm256_broadcast_ss(ROWS ? a + i * lda : a + i);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_fmadd_ps(av, bv[v], acc[i][v]);
    }
    a += ROWS ? 1 : kMR;
    b += kNR;
  }
  const int64_t last = nr - 8 * (NV - 1);
  // Every vector of a row is full but the last, which keeps `last` lanes.
  const bool part = last < 8;
  const __m256i m = lane_mask(last);
  auto load = [&](const float* p, int v) {
    return v < NV - 1 || !part ? _mm256_loadu_ps(p + 8 * v) : _mm256_maskload_ps(p + 8 * v, m);
  };
  __m256 bias[NV], lo = _mm256_set1_ps(te ? te->lo : 0.f), hi = _mm256_set1_ps(te ? te->hi : 0.f);
#pragma GCC unroll 2
  for (int v = 0; v < NV; ++v) bias[v] = te && te->bias ? load(te->bias, v) : _mm256_setzero_ps();
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      __m256 r = acc[i][v];
      if (accumulate) r = _mm256_add_ps(r, load(ci, v));
      if (te) {
        r = _mm256_add_ps(r, bias[v]);
        const __m256 res = te->res ? load(te->res + i * te->res_ld, v) : _mm256_setzero_ps();
        if (te->res && te->res_first) r = _mm256_add_ps(r, res);
        // max/min return their second operand when either is NaN.
        if (te->clamp) r = _mm256_min_ps(hi, _mm256_max_ps(lo, r));
        if (te->res && !te->res_first) r = _mm256_add_ps(r, res);
      }
      if (v < NV - 1 || !part) _mm256_storeu_ps(ci + 8 * v, r);
      else _mm256_maskstore_ps(ci + 8 * v, m, r);
    }
  }
}

template <int MR>
void fill_row(IsaKernels& k) {
  k.ukr[MR][1] = ukr<MR, 1, false>;
  k.ukr[MR][2] = ukr<MR, 2, false>;
  k.ukr_rows[MR][1] = ukr<MR, 1, true>;
  k.ukr_rows[MR][2] = ukr<MR, 2, true>;
}

IsaKernels make() {
  IsaKernels k;
  k.tile = Tile{kMR, kNR, 8};
  fill_row<1>(k);
  fill_row<2>(k);
  fill_row<3>(k);
  fill_row<4>(k);
  fill_row<5>(k);
  fill_row<6>(k);
  k.epilogue = epilogue;
  k.depthwise = depthwise;
  k.im2col_s1 = im2col_s1;
  return k;
}

}  // namespace
}  // namespace deepep::cpu::avx2

namespace deepep::cpu {
const IsaKernels& avx2_kernels() {
  static const IsaKernels k = avx2::make();
  return k;
}
const RowKernels& avx2_row_kernels() {
  static const RowKernels k = avx2::make_row_kernels();
  return k;
}
}  // namespace deepep::cpu
