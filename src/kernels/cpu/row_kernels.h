// Internal: vectorized per-row kernels of the attention and normalization
// fast kernels (ops_attention.cpp, ops_norm.cpp). Each ISA file
// (sgemm_avx512.cpp, sgemm_avx2.cpp) fills one table from
// row_kernels_impl.h, compiled with its own -m flags; nothing here may be
// called unless cpu_features says so.
#pragma once
#include <cstdint>

#include "kernels/cpu/cpu_features.h"

namespace deepep::cpu {

// Attention scores of one query row, in place: v = scale * s[j] (+ mask), then
// softmax over j < n. Mask (optional, element j at m[j * mstep], mstep 0 or
// 1): kAdd adds a float; kKeep / kDrop put `fill` where the bool is false /
// true. The exponentials underflow to exactly 0 (as std::exp does); a row of
// -inf gives NaN, as the reference.
enum class RowMask { kNone, kAdd, kKeep, kDrop };
struct SoftmaxRowArgs {
  float scale = 1.f;
  RowMask mode = RowMask::kNone;
  const void* mask = nullptr;
  int64_t mstep = 0;
  float fill = 0.f;
};
using SoftmaxRowFn = void (*)(float* s, int64_t n, const SoftmaxRowArgs& a);

// LayerNorm of one row of n values: s = x (+ skip) (+ bias), stored to sum
// when sum != nullptr; y = (s - mean) / sqrt(var + eps) * gamma + beta
// (beta optional). Mean and variance in double over float partial sums of
// one vector each (two passes over s, which stays in L1). y may be x.
using LayerNormRowFn = void (*)(const float* x, const float* skip, const float* bias, const float* gamma,
                                const float* beta, float* y, float* sum, int64_t n, double eps);

struct RowKernels {
  SoftmaxRowFn softmax_row = nullptr;
  LayerNormRowFn layer_norm_row = nullptr;
};

#if defined(__x86_64__)
const RowKernels& avx512_row_kernels();
const RowKernels& avx2_row_kernels();
#endif
// nullptr for Isa::kNone.
inline const RowKernels* row_kernels_of(Isa isa) {
#if defined(__x86_64__)
  if (isa == Isa::kAvx512) return &avx512_row_kernels();
  if (isa == Isa::kAvx2) return &avx2_row_kernels();
#endif
  (void)isa;
  return nullptr;
}

}  // namespace deepep::cpu
