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

// The micro-kernel's k loop, four steps a trip, in assembly. GCC's code for
// the intrinsics loop spends 27 instructions on a 6 x 16 step's 12 FMAs (a
// counter, three pointer bumps, the prefetch test), and unrolled it spills
// accumulators; here a step is its loads, broadcasts and FMAs (and the
// prefetch), and the bumps and branch come once per four steps. Issue slots
// are what a busy host takes first (a core's two hyperthreads share them).
// Rows and vectors past mr / nv are left out by the assembler's .if.
// Accumulators: ymm0-11 (row i, vector v in ymm(2i+v)); B in ymm12-13, A's
// broadcast in ymm14 (ymm14-15 hold the clamp bounds in the tail).
// ROWS: A read in place, rows at a, a + lda, a + 2 lda and a3 = a + 3 lda,
// a3 + lda, a3 + 2 lda; else a packed strip (a[k * 6 + i]).
#define DEEPEP_ROW(I, ADDR, C0, C1)                                                                     \
  ".if %c[mr] > " #I "\n\tvbroadcastss " ADDR ", %%ymm14\n\tvfmadd231ps %%ymm12, %%ymm14, %%ymm" #C0 \
  "\n\t.if %c[nv] > 1\n\tvfmadd231ps %%ymm13, %%ymm14, %%ymm" #C1 "\n\t.endif\n\t.endif\n\t"
#define DEEPEP_B(J) \
  "vmovups " #J "*64(%[b]), %%ymm12\n\t.if %c[nv] > 1\n\tvmovups " #J "*64+32(%[b]), %%ymm13\n\t.endif\n\t"
#define DEEPEP_ROWS_STEP(J)                                                                            \
  DEEPEP_B(J) DEEPEP_ROW(0, #J "*4(%[a])", 0, 1) DEEPEP_ROW(1, #J "*4(%[a],%[lda],1)", 2, 3)           \
  DEEPEP_ROW(2, #J "*4(%[a],%[lda],2)", 4, 5) DEEPEP_ROW(3, #J "*4(%[a3])", 6, 7)                       \
  DEEPEP_ROW(4, #J "*4(%[a3],%[lda],1)", 8, 9) DEEPEP_ROW(5, #J "*4(%[a3],%[lda],2)", 10, 11)
#define DEEPEP_PACKED_STEP(J)                                                                          \
  DEEPEP_B(J) DEEPEP_ROW(0, #J "*24(%[a])", 0, 1) DEEPEP_ROW(1, #J "*24+4(%[a])", 2, 3)                \
  DEEPEP_ROW(2, #J "*24+8(%[a])", 4, 5) DEEPEP_ROW(3, #J "*24+12(%[a])", 6, 7)                          \
  DEEPEP_ROW(4, #J "*24+16(%[a])", 8, 9) DEEPEP_ROW(5, #J "*24+20(%[a])", 10, 11)
// The B prefetch: one line a trip of four k steps (pf + 64 a trip, + 16 a
// tail step: a tile covers ceil(kc / 4) lines, pf_k_per_line = 4). One a
// step asked for a block's next panels faster than memory delivers them and
// measured slower with weights streaming from memory (CPU.md, GEMM).
#define DEEPEP_PF "prefetcht1 (%[pf])\n\t"
#define DEEPEP_ZERO(R) "vxorps %%ymm" #R ", %%ymm" #R ", %%ymm" #R "\n\t"
// The tile whole in assembly (full_tile): the k loop, the k % 4 steps left,
// then C added (flags bit 1: a later K block), the bias (bit 2), the
// residual (bit 8; before the clamp with bit 16, else after), the clamp (bit
// 4: max with lo, min with hi; NaN passes, as in the C++ epilogue), and the
// stores, on the registers, in the C++ epilogue's order. Tiles of whole
// vectors (16 or 8 columns) finish here; a partial last vector stores the
// bare sums (flags 0) to a block for the masked C++ epilogue. Finishing in
// registers matters for short K (MobileNetV2's K = 16-32 pointwise convs).
#define DEEPEP_ROW_C(I, ADDR, C0, C1, OP)                                                                     \
  ".if %c[mr] > " #I "\n\t" OP " " ADDR ", %%ymm" #C0 ", %%ymm" #C0 "\n\t.if %c[nv] > 1\n\t" OP " 32" ADDR \
  ", %%ymm" #C1 ", %%ymm" #C1 "\n\t.endif\n\t.endif\n\t"
#define DEEPEP_ALL_ROWS_C(OP)                                                                                 \
  DEEPEP_ROW_C(0, "(%[c])", 0, 1, OP) DEEPEP_ROW_C(1, "(%[c],%[ldc],1)", 2, 3, OP)                             \
  DEEPEP_ROW_C(2, "(%[c],%[ldc],2)", 4, 5, OP) DEEPEP_ROW_C(3, "(%[a3])", 6, 7, OP)                             \
  DEEPEP_ROW_C(4, "(%[a3],%[ldc],1)", 8, 9, OP) DEEPEP_ROW_C(5, "(%[a3],%[ldc],2)", 10, 11, OP)
#define DEEPEP_ROW_R(I, C0, C1, OP, R)                                                                        \
  ".if %c[mr] > " #I "\n\t" OP " %%ymm" #C0 ", %%ymm" R ", %%ymm" #C0 "\n\t.if %c[nv] > 1\n\t" OP " %%ymm" #C1 \
  ", %%ymm" R ", %%ymm" #C1 "\n\t.endif\n\t.endif\n\t"
#define DEEPEP_ALL_ROWS_R(OP, R)                                                                              \
  DEEPEP_ROW_R(0, 0, 1, OP, R) DEEPEP_ROW_R(1, 2, 3, OP, R) DEEPEP_ROW_R(2, 4, 5, OP, R)                      \
  DEEPEP_ROW_R(3, 6, 7, OP, R) DEEPEP_ROW_R(4, 8, 9, OP, R) DEEPEP_ROW_R(5, 10, 11, OP, R)
#define DEEPEP_ROW_BIAS(I, C0, C1)                                                                            \
  ".if %c[mr] > " #I "\n\tvaddps %%ymm12, %%ymm" #C0 ", %%ymm" #C0 "\n\t.if %c[nv] > 1\n\tvaddps %%ymm13, %%ymm" #C1 \
  ", %%ymm" #C1 "\n\t.endif\n\t.endif\n\t"
#define DEEPEP_ROW_STORE(I, ADDR, C0, C1)                                                                     \
  ".if %c[mr] > " #I "\n\tvmovups %%ymm" #C0 ", " ADDR "\n\t.if %c[nv] > 1\n\tvmovups %%ymm" #C1 ", 32" ADDR   \
  "\n\t.endif\n\t.endif\n\t"
#define DEEPEP_ROW_RES(I, ADDR, C0, C1)                                                                       \
  ".if %c[mr] > " #I "\n\tvaddps " ADDR ", %%ymm" #C0 ", %%ymm" #C0 "\n\t.if %c[nv] > 1\n\tvaddps 32" ADDR      \
  ", %%ymm" #C1 ", %%ymm" #C1 "\n\t.endif\n\t.endif\n\t"
#define DEEPEP_ADD_RES                                                                                         \
  "movq %[res], %[pf]\n\tmovq %[rld], %[n]\n\tleaq (%[pf],%[n],2), %[a]\n\taddq %[n], %[a]\n\t"          \
  DEEPEP_ROW_RES(0, "(%[pf])", 0, 1) DEEPEP_ROW_RES(1, "(%[pf],%[n],1)", 2, 3)                                 \
  DEEPEP_ROW_RES(2, "(%[pf],%[n],2)", 4, 5) DEEPEP_ROW_RES(3, "(%[a])", 6, 7)                                   \
  DEEPEP_ROW_RES(4, "(%[a],%[n],1)", 8, 9) DEEPEP_ROW_RES(5, "(%[a],%[n],2)", 10, 11)
#define DEEPEP_TAIL(STEP, BUMPS)                                                                               \
  "5:\n\tmovq %[rem], %[n]\n\ttestq %[n], %[n]\n\tjz 6f\n\t7:\n\t" STEP BUMPS "decq %[n]\n\tjnz 7b\n\t"         \
  "6:\n\tleaq (%[c],%[ldc],2), %[a3]\n\taddq %[ldc], %[a3]\n\t"                                                \
  "testl $1, %[flags]\n\tjz 8f\n\t" DEEPEP_ALL_ROWS_C("vaddps")                                                \
  "8:\n\ttestl $2, %[flags]\n\tjz 9f\n\tmovq %[bias], %[b]\n\tvmovups (%[b]), %%ymm12\n\t"                      \
  ".if %c[nv] > 1\n\tvmovups 32(%[b]), %%ymm13\n\t.endif\n\t"                                                \
  DEEPEP_ROW_BIAS(0, 0, 1) DEEPEP_ROW_BIAS(1, 2, 3) DEEPEP_ROW_BIAS(2, 4, 5) DEEPEP_ROW_BIAS(3, 6, 7)          \
  DEEPEP_ROW_BIAS(4, 8, 9) DEEPEP_ROW_BIAS(5, 10, 11)                                                          \
  "9:\n\ttestl $8, %[flags]\n\tjz 11f\n\ttestl $16, %[flags]\n\tjz 11f\n\t" DEEPEP_ADD_RES                      \
  "11:\n\ttestl $4, %[flags]\n\tjz 12f\n\tmovq %[lohi], %[b]\n\tvbroadcastss (%[b]), %%ymm14\n\t"             \
  "vbroadcastss 4(%[b]), %%ymm15\n\t" DEEPEP_ALL_ROWS_R("vmaxps", "14") DEEPEP_ALL_ROWS_R("vminps", "15")     \
  "12:\n\ttestl $8, %[flags]\n\tjz 10f\n\ttestl $16, %[flags]\n\tjnz 10f\n\t" DEEPEP_ADD_RES                    \
  "10:\n\t" DEEPEP_ROW_STORE(0, "(%[c])", 0, 1) DEEPEP_ROW_STORE(1, "(%[c],%[ldc],1)", 2, 3)                   \
  DEEPEP_ROW_STORE(2, "(%[c],%[ldc],2)", 4, 5) DEEPEP_ROW_STORE(3, "(%[a3])", 6, 7)                           \
  DEEPEP_ROW_STORE(4, "(%[a3],%[ldc],1)", 8, 9) DEEPEP_ROW_STORE(5, "(%[a3],%[ldc],2)", 10, 11)
#define DEEPEP_MAIN_START \
  DEEPEP_ZERO(0) DEEPEP_ZERO(1) DEEPEP_ZERO(2) DEEPEP_ZERO(3) DEEPEP_ZERO(4) DEEPEP_ZERO(5) DEEPEP_ZERO(6)        \
  DEEPEP_ZERO(7) DEEPEP_ZERO(8) DEEPEP_ZERO(9) DEEPEP_ZERO(10) DEEPEP_ZERO(11) "testq %[n], %[n]\n\tjz 5f\n\t"  \
  ".p2align 4\n\t1:\n\t"
#define DEEPEP_TILE_OPERANDS                                                                                   \
  : [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [pf] "+r"(pf), [n] "+r"(trips)                                   \
  : [lda] "r"(lda_bytes), [c] "r"(c), [ldc] "r"(ldc_bytes), [rem] "m"(rem), [flags] "m"(flags),               \
    [bias] "m"(bias), [lohi] "m"(lohi_p), [res] "m"(res), [rld] "m"(res_ld_bytes), [mr] "i"(MR), [nv] "i"(NV)                                            \
  : "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",   \
    "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

// flags: 1 add C, 2 add bias (16 floats), 4 clamp to [lohi[0], lohi[1]],
// 8 add the residual (rows res_ld apart), 16 before the clamp (else after).
template <int MR, int NV, bool ROWS, bool PF>
inline void full_tile(int64_t kc, const float* a, int64_t lda, const float* b, const float* pf, float* c,
                      int64_t ldc, int flags, const float* bias, const float* lohi, const float* res,
                      int64_t res_ld) {
  static_assert(MR >= 1 && MR <= 6 && NV >= 1 && NV <= 2);
  const float* a3 = MR > 3 ? a + 3 * lda : a;
  const int64_t lda_bytes = lda * int64_t(sizeof(float)), ldc_bytes = ldc * int64_t(sizeof(float));
  int64_t trips = kc / 4;
  const int64_t rem = kc % 4;
  const float* lohi_p = lohi;
  const int64_t res_ld_bytes = res_ld * int64_t(sizeof(float));
  if constexpr (ROWS && PF) {
    asm volatile(DEEPEP_MAIN_START DEEPEP_PF DEEPEP_ROWS_STEP(0) DEEPEP_ROWS_STEP(1) DEEPEP_ROWS_STEP(2)
                     DEEPEP_ROWS_STEP(3)
                 "addq $16, %[a]\n\taddq $16, %[a3]\n\taddq $256, %[b]\n\taddq $64, %[pf]\n\tdecq %[n]\n\tjnz 1b\n\t"
                 DEEPEP_TAIL(DEEPEP_PF DEEPEP_ROWS_STEP(0),
                             "addq $4, %[a]\n\taddq $4, %[a3]\n\taddq $64, %[b]\n\taddq $16, %[pf]\n\t")
                     DEEPEP_TILE_OPERANDS);
  } else if constexpr (ROWS) {
    asm volatile(DEEPEP_MAIN_START DEEPEP_ROWS_STEP(0) DEEPEP_ROWS_STEP(1) DEEPEP_ROWS_STEP(2) DEEPEP_ROWS_STEP(3)
                 "addq $16, %[a]\n\taddq $16, %[a3]\n\taddq $256, %[b]\n\tdecq %[n]\n\tjnz 1b\n\t"
                 DEEPEP_TAIL(DEEPEP_ROWS_STEP(0), "addq $4, %[a]\n\taddq $4, %[a3]\n\taddq $64, %[b]\n\t")
                     DEEPEP_TILE_OPERANDS);
  } else if constexpr (PF) {
    asm volatile(DEEPEP_MAIN_START DEEPEP_PF DEEPEP_PACKED_STEP(0) DEEPEP_PACKED_STEP(1) DEEPEP_PACKED_STEP(2)
                     DEEPEP_PACKED_STEP(3)
                 "addq $96, %[a]\n\taddq $256, %[b]\n\taddq $64, %[pf]\n\tdecq %[n]\n\tjnz 1b\n\t"
                 DEEPEP_TAIL(DEEPEP_PF DEEPEP_PACKED_STEP(0), "addq $24, %[a]\n\taddq $64, %[b]\n\taddq $16, %[pf]\n\t")
                     DEEPEP_TILE_OPERANDS);
  } else {
    asm volatile(DEEPEP_MAIN_START DEEPEP_PACKED_STEP(0) DEEPEP_PACKED_STEP(1) DEEPEP_PACKED_STEP(2)
                     DEEPEP_PACKED_STEP(3) "addq $96, %[a]\n\taddq $256, %[b]\n\tdecq %[n]\n\tjnz 1b\n\t"
                 DEEPEP_TAIL(DEEPEP_PACKED_STEP(0), "addq $24, %[a]\n\taddq $64, %[b]\n\t") DEEPEP_TILE_OPERANDS);
  }
}
#undef DEEPEP_ROW_C
#undef DEEPEP_ALL_ROWS_C
#undef DEEPEP_ROW_R
#undef DEEPEP_ALL_ROWS_R
#undef DEEPEP_ROW_BIAS
#undef DEEPEP_ROW_STORE
#undef DEEPEP_TAIL
#undef DEEPEP_ROW_RES
#undef DEEPEP_ADD_RES
#undef DEEPEP_MAIN_START
#undef DEEPEP_TILE_OPERANDS
#undef DEEPEP_ROW
#undef DEEPEP_B
#undef DEEPEP_ROWS_STEP
#undef DEEPEP_PACKED_STEP
#undef DEEPEP_PF
#undef DEEPEP_ZERO

template <int MR, int NV, bool ROWS>
void ukr(int64_t kc, const float* a, int64_t lda, const float* b, float* c, int64_t ldc, int64_t nr,
         bool accumulate, const TileEpi* te, const float* pf) {
  // The tile's lines of C (and of the residual the epilogue reads), fetched
  // while the k loop runs: a C that is not in cache (a conv's fresh output
  // rows) otherwise stalls the stores on its misses.
  // Measured on resnet50 (2 threads, 2-vCPU EPYC): its 56x56 64->256 convs
  // 1.29-1.53 -> 1.03-1.17 ms a call, the model 81-83 -> 68-73 ms.
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + nr - 1), _MM_HINT_T0);
    if (te && te->res) {
      _mm_prefetch(reinterpret_cast<const char*>(te->res + i * te->res_ld), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(te->res + i * te->res_ld + nr - 1), _MM_HINT_T0);
    }
  }
  if (nr == 8 * NV) {
    const bool res = te && te->res;
    const int flags = (accumulate ? 1 : 0) | (te && te->bias ? 2 : 0) | (te && te->clamp ? 4 : 0) |
                      (res ? 8 : 0) | (res && te->res_first ? 16 : 0);
    const float lohi[2] = {te ? te->lo : 0.f, te ? te->hi : 0.f};
    const float* bias = te ? te->bias : nullptr;
    const float* rp = res ? te->res : nullptr;
    const int64_t rld = res ? te->res_ld : 0;
    if (pf) full_tile<MR, NV, ROWS, true>(kc, a, lda, b, pf, c, ldc, flags, bias, lohi, rp, rld);
    else full_tile<MR, NV, ROWS, false>(kc, a, lda, b, pf, c, ldc, flags, bias, lohi, rp, rld);
    return;
  }
  // A partial last vector: the same loop leaves the accumulators in a block
  // (flags 0: stored as they are, rows 16 floats apart) for the masked
  // epilogue below.
  alignas(32) float sums[6 * 16];
  if (pf) full_tile<MR, NV, ROWS, true>(kc, a, lda, b, pf, sums, 16, 0, nullptr, nullptr, nullptr, 0);
  else full_tile<MR, NV, ROWS, false>(kc, a, lda, b, pf, sums, 16, 0, nullptr, nullptr, nullptr, 0);
  __m256 acc[MR][NV];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_load_ps(sums + i * 16 + v * 8);
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
  k.pf_k_per_line = 4;  // DEEPEP_PF
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
