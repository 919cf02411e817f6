// Internal: float32 GEMM as bf16x3 on AMX tiles (sgemm_amx.cpp, compiled with
// the AMX and AVX-512 BF16 flags; called only when amx_usable() and the
// calling thread allows it, see cpu_features.h).
//
// Each float x is split into hi = bf16(x) and lo = bf16(x - hi) (round to
// nearest even: x = hi + lo to ~2^-17 relative), and A x B runs as
// hi*hi + hi*lo + lo*hi, three bf16 dot products a tile instruction each,
// accumulated in float32 tiles. The dropped lo*lo term and the split's
// remainder are ~2^-16 of each product: ~1e-5 relative error on random data
// (float FMAs: ~1e-7; TF32: ~5e-4). On Sapphire Rapids one tile dot product
// does 8x the multiply-adds of the core's two FMA units a cycle, so three of
// them can still run at up to 8/3 of the float peak.
#pragma once
#include <cstdint>
#include <memory>

#include "kernels/cpu/sgemm.h"

namespace deepep::cpu {

constexpr int64_t kAmxRows = 16;   // rows of a tile
constexpr int64_t kAmxCols = 16;   // float columns of an accumulator tile
constexpr int64_t kAmxKStep = 32;  // bf16 k values of one tile row

// op(B) as bf16 panels of 16 columns over Kp (K rounded up to 32, zero
// padded): panel p at data + p * 2 * Kp * 16 holds hi then lo, each as
// [Kp / 2][16 columns][2 consecutive k] (the tiles' VNNI layout).
struct AmxB {
  int64_t K = 0, Kp = 0, N = 0, panels = 0;
  std::shared_ptr<uint16_t> data;
};

// The split of a packed op(B): from its float NR-column strips, or, when it
// has none (a weight cached_pack_b split straight away), from b.source.
std::shared_ptr<const AmxB> amx_pack_b(const Packed& b);

// Rows [0, rows) of row-major A (lda) split into hi / lo, each [rows][Kp]
// with k >= K zero.
void amx_split_a(const float* a, int64_t lda, int64_t rows, int64_t K, int64_t Kp, uint16_t* hi, uint16_t* lo);

// Rows [i0, i1) of split A (hi / lo rows of Kp, present up to a multiple of
// 16) x B panels [p0, p1), into C rows row0 + i (M: rows of A, to clip the
// last tile), then the epilogue (its row index: row0 + i).
void amx_gemm_block(const uint16_t* ahi, const uint16_t* alo, int64_t M, const AmxB& b, int64_t i0, int64_t i1,
                    int64_t p0, int64_t p1, float* C, int64_t ldc, int64_t row0, const GemmEpi& epi);

}  // namespace deepep::cpu
