// bf16x3 GEMM on AMX tiles (gemm_amx.h). Compiled with -mamx-tile
// -mamx-bf16 -mavx512bf16 and the AVX-512 flags; runs only where
// cpu_features' amx_usable() found the tiles and the OS granted them.
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "deepep/error.h"
#include "kernels/cpu/gemm_amx.h"
#include "kernels/cpu/gemm_isa.h"
#include "kernels/cpu/thread_pool.h"

namespace deepep::cpu {
namespace {

// Tile palette 1: all eight tiles 16 rows x 64 bytes. Tiles 0-3 accumulate
// (2 x 2 blocks of 16 x 16 floats), 4-5 hold A (hi or lo, 16 rows each),
// 6-7 hold B (hi or lo, one 16-column panel each).
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

void configure_tiles() {
  TileConfig c;
  for (int t = 0; t < 8; ++t) {
    c.colsb[t] = 64;
    c.rows[t] = 16;
  }
  _tile_loadconfig(&c);
}

// The products of A tiles 4 (rows 0-15) and 5 (rows 16-31) with B tiles 6
// (columns 0-15) and 7 (columns 16-31) into accumulators 0-3, for R x C of them.
template <int R, int C>
void dot_tiles() {
  _tile_dpbf16ps(0, 4, 6);
  if constexpr (C == 2) _tile_dpbf16ps(1, 4, 7);
  if constexpr (R == 2) _tile_dpbf16ps(2, 5, 6);
  if constexpr (R == 2 && C == 2) _tile_dpbf16ps(3, 5, 7);
}

// Accumulates R x C tiles (R, C in {1, 2}) of C at rows a*[0..16R) x panels
// b*: per 32 k, hi*lo, hi*hi, then lo*hi, so each of A's and B's halves is
// loaded once (8 tile loads per 12 products, not the 10 of hi*hi first: the
// loads from L2 bound this kernel; measured 4-9 % faster).
template <int R, int C>
void tiles(const uint16_t* ahi, const uint16_t* alo, int64_t Kp, const uint16_t* b0, const uint16_t* b1) {
  const int64_t sa = Kp * 2;  // bytes between A rows
  const int64_t lo_off = Kp * kAmxCols;
  auto load_a = [&](const uint16_t* a, int64_t k) {
    _tile_loadd(4, a + k, sa);
    if constexpr (R == 2) _tile_loadd(5, a + 16 * Kp + k, sa);
  };
  auto load_b = [&](int64_t off) {
    _tile_loadd(6, b0 + off, 64);
    if constexpr (C == 2) _tile_loadd(7, b1 + off, 64);
  };
  for (int64_t k = 0; k < Kp; k += kAmxKStep) {
    const int64_t bk = k * kAmxCols;  // (k / 2) pair-rows of 32 bf16
    load_a(ahi, k);
    load_b(lo_off + bk);
    dot_tiles<R, C>();
    load_b(bk);
    dot_tiles<R, C>();
    load_a(alo, k);
    dot_tiles<R, C>();
  }
}

// bf16 values back to float32 (exact: the high half of each float).
__m512 widen_bf16(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }

// Accumulator tile t (0..3) to dst (row stride ld floats).
void store_tile(int t, float* dst, int64_t ld) {
  const int64_t s = ld * 4;
  switch (t) {
    case 0: _tile_stored(0, dst, s); break;
    case 1: _tile_stored(1, dst, s); break;
    case 2: _tile_stored(2, dst, s); break;
    default: _tile_stored(3, dst, s); break;
  }
}

}  // namespace

// (GCC 12 flags the _mm512_undefined_* inside _mm512_cvtepu16_epi32 and
// _mm512_slli_epi32 as maybe-uninitialized: a false positive, as in
// sgemm_avx512.cpp.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
std::shared_ptr<const AmxB> amx_pack_b(const Packed& b) {
  DEEPEP_CHECK(!b.is_a && b.R > 0 && b.R % kAmxCols == 0, "AMX GEMM: B must be a packed B operand");
  auto out = std::make_shared<AmxB>();
  out->K = b.K;
  out->Kp = (b.K + kAmxKStep - 1) / kAmxKStep * kAmxKStep;
  out->N = b.len;
  out->panels = (b.len + kAmxCols - 1) / kAmxCols;
  const int64_t Kp = out->Kp, K = b.K, panel = 2 * Kp * kAmxCols;
  const size_t bytes = (size_t(out->panels * panel) * 2 + 63) / 64 * 64;
  auto* d = static_cast<uint16_t*>(std::aligned_alloc(64, std::max<size_t>(bytes, 64)));
  DEEPEP_CHECK(d, "AMX GEMM: out of memory splitting a ", K, " x ", b.len, " weight");
  out->data = std::shared_ptr<uint16_t>(d, [](uint16_t* p) { std::free(p); });
  // A panel's 16 columns are one run of a float strip's row (NR is a multiple
  // of 16; columns past N are the strip's zero padding). Rows k and k + 1
  // split and interleaved column by column: the tiles' pair layout.
  const __m512i pairs = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                                         21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  // Columns [j0, j0 + 16) of op(B)'s row k (zero past K and N): from the
  // float strips, or from the weight itself when B has none (cached_pack_b).
  const float* const strips = b.data.get();
  const std::shared_ptr<void> source_alive = strips ? nullptr : b.source.owner.lock();
  DEEPEP_CHECK(strips || (source_alive && b.source.p), "AMX GEMM: a packed B without float strips and no live source");
  const Packed::Source& src = b.source;
  auto row = [&](int64_t j0, int64_t k) {
    if (k >= K) return _mm512_setzero_ps();
    if (strips) return _mm512_loadu_ps(strips + (j0 / b.R) * K * b.R + k * b.R + j0 % b.R);
    const int64_t n = std::min<int64_t>(kAmxCols, b.len - j0);
    if (!src.trans) return _mm512_maskz_loadu_ps(__mmask16((1u << n) - 1), src.p + k * src.ld + j0);
    alignas(64) float t[kAmxCols] = {};
    for (int64_t c = 0; c < n; ++c) t[c] = src.p[(j0 + c) * src.ld + k];
    return _mm512_load_ps(t);
  };
  ThreadPool::global().parallel_for(out->panels, 1, threads_for(double(Kp) * double(b.len) * 8),
                                    [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t j0 = p * kAmxCols;
      uint16_t* hi = d + p * panel;
      uint16_t* lo = hi + Kp * kAmxCols;
      for (int64_t k = 0; k < Kp; k += 2) {
        const __m512 x0 = row(j0, k), x1 = row(j0, k + 1);
        const __m512i h = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(x1, x0));  // x0's 16, then x1's
        const __m512 r0 = _mm512_sub_ps(x0, widen_bf16(_mm512_castsi512_si256(h)));
        const __m512 r1 = _mm512_sub_ps(x1, widen_bf16(_mm512_extracti64x4_epi64(h, 1)));
        const __m512i l = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(r1, r0));
        _mm512_storeu_si512(hi + k * kAmxCols, _mm512_permutexvar_epi16(pairs, h));
        _mm512_storeu_si512(lo + k * kAmxCols, _mm512_permutexvar_epi16(pairs, l));
      }
    }
  });
  return out;
}

void amx_split_a(const float* a, int64_t lda, int64_t rows, int64_t K, int64_t Kp, uint16_t* hi, uint16_t* lo) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* src = a + r * lda;
    uint16_t* h = hi + r * Kp;
    uint16_t* l = lo + r * Kp;
    for (int64_t k = 0; k < Kp; k += 16) {
      const int64_t n = std::min<int64_t>(16, std::max<int64_t>(0, K - k));
      const __mmask16 m = n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1);
      const __m512 x = _mm512_maskz_loadu_ps(m, src + k);
      const __m256i xh = reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(x));
      const __m256i xl = reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(_mm512_sub_ps(x, widen_bf16(xh))));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(h + k), xh);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(l + k), xl);
    }
  }
}
#pragma GCC diagnostic pop

void amx_gemm_block(const uint16_t* ahi, const uint16_t* alo, int64_t M, const AmxB& b, int64_t i0, int64_t i1,
                    int64_t p0, int64_t p1, float* C, int64_t ldc, int64_t row0, const GemmEpi& epi) {
  configure_tiles();
  const EpilogueFn epilogue = avx512_kernels().epilogue;
  const int64_t Kp = b.Kp, panel = 2 * Kp * kAmxCols;
  alignas(64) float tmp[kAmxRows * kAmxCols];
  for (int64_t p = p0; p < p1; p += 2) {
    const int C2 = p + 1 < p1 ? 2 : 1;
    const uint16_t* b0 = b.data.get() + p * panel;
    const uint16_t* b1 = b0 + panel;
    const int64_t j = p * kAmxCols, nr = std::min<int64_t>(C2 * kAmxCols, b.N - j);
    for (int64_t i = i0; i < i1; i += 2 * kAmxRows) {
      const int R2 = i + kAmxRows < i1 ? 2 : 1;
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
      const uint16_t* ah = ahi + i * Kp;
      const uint16_t* al = alo + i * Kp;
      if (R2 == 2 && C2 == 2) tiles<2, 2>(ah, al, Kp, b0, b1);
      else if (R2 == 2) tiles<2, 1>(ah, al, Kp, b0, b1);
      else if (C2 == 2) tiles<1, 2>(ah, al, Kp, b0, b1);
      else tiles<1, 1>(ah, al, Kp, b0, b1);
      const int64_t mr = std::min<int64_t>(R2 * kAmxRows, M - i);
      for (int r = 0; r < R2; ++r)
        for (int c = 0; c < C2; ++c) {
          const int64_t ti = i + r * kAmxRows, tj = j + c * kAmxCols;
          const int64_t rows = std::min<int64_t>(kAmxRows, M - ti), cols = std::min<int64_t>(kAmxCols, b.N - tj);
          if (rows <= 0 || cols <= 0) continue;
          float* dst = C + (row0 + ti) * ldc + tj;
          if (rows == kAmxRows && cols == kAmxCols) {
            store_tile(r * 2 + c, dst, ldc);
            continue;
          }
          store_tile(r * 2 + c, tmp, kAmxCols);
          for (int64_t y = 0; y < rows; ++y) std::memcpy(dst + y * ldc, tmp + y * kAmxCols, size_t(cols) * 4);
        }
      if (!epi.trivial()) epilogue(epi, C + (row0 + i) * ldc + j, ldc, row0 + i, j, mr, nr);
    }
  }
  _tile_release();
}

}  // namespace deepep::cpu
