// Internal: the per-ISA inner loops of the channels-last (NHWC) conv kernels
// (ops_conv_nhwc.cpp). Each ISA file (ops_conv_nhwc_avx512.cpp,
// ops_conv_nhwc_avx2.cpp) fills one table from the shared code in
// ops_conv_nhwc_isa.h, compiled with its own -m flags; nothing here may be
// called unless cpu_features says so.
#pragma once
#include <cstdint>

#include <memory>

#include "kernels/cpu/conv_plan.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/sgemm.h"
#include "ops/fused_epilogue.h"

namespace deepep::cpu {

// Depthwise conv, channels last, channel multiplier 1:
//   y[n, oy, ox, c] = epi(sum_{ky,kx} w[ky*KW + kx][c] * x[n, iy, ix, c] + bias[c], res[n, oy, ox, c])
// with w the weight reordered to [KH*KW][C] (channel vectors contiguous).
struct NhwcDwArgs {
  const float* x = nullptr;
  const float* w = nullptr;
  const float* bias = nullptr;  // [C] or null
  const float* res = nullptr;   // y's shape or null
  float* y = nullptr;
  int64_t H = 0, W = 0, C = 0, OH = 0, OW = 0, KH = 0, KW = 0;
  int64_t sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  ops::Act act = ops::Act::kNone;
  float p0 = 0.f, p1 = 0.f;
  bool res_first = false;
  // Depthwise only: x holds the input rows from this one of the N*H rows
  // (n, iy) on, a window of the input (the fused pointwise-depthwise
  // kernel's expanded rows); every row a call reads must be in it.
  int64_t x_row0 = 0;
  // Depthwise only: channels [c_begin, c_end) of the C (c_end 0: all), a
  // thread's share of a map with too few rows to split.
  int64_t c_begin = 0, c_end = 0;
};
// Output rows [r0, r1) of the N*OH rows (n, oy).
using NhwcDwFn = void (*)(const NhwcDwArgs& a, int64_t r0, int64_t r1);

// Direct conv, channels last, few input channels (an RGB stem: the implicit
// GEMM's K = KH*KW*C is too short to pay for packing A):
//   y[n, oy, ox, m] = epi(sum_{ky,kx,c} W[m][c][ky][kx] * x[n, iy, ix, c] + bias[m], res)
// with w the weight reordered into blocks of output channels (below); M a
// multiple of the vector width. The depthwise
// arguments, C the input channels, bias [M].
struct NhwcDirectArgs : NhwcDwArgs {
  int64_t M = 0;        // output channels
  bool x_nchw = false;  // x is [N, C, H, W] (FusedConv channels_last = 2)
};
// The direct conv's weight, block by block of output channels: from m0 on,
// the widest of direct_max_vectors(vw) * vw, 2 * vw and vw channels that
// fits in M (vw: the ISA's vector width); block [m0, m0 + width) is
// [KH*KW*C][width] at w + m0 * KH*KW*C, so a tile's weights are one
// contiguous run.
constexpr int64_t direct_max_vectors(int64_t vw) { return vw == 16 ? 4 : 2; }  // of the 32 / 16 registers
inline int64_t direct_block_width(int64_t vw, int64_t M, int64_t m0) {
  for (int64_t nb = direct_max_vectors(vw); nb > 1; nb /= 2)
    if (m0 + nb * vw <= M) return nb * vw;
  return vw;
}
// Output rows [r0, r1) of the N*OH rows (n, oy).
using NhwcDirectFn = void (*)(const NhwcDirectArgs& a, int64_t r0, int64_t r1);

// The GEMM's operand packing from R row pointers (R = MR for A strips, NR
// for B strips): dst[u * R + r] = src[r][u] for u < len, r < R
// (src[r] == nullptr: zeros).
using PackRowsFn = void (*)(const float* const* src, int64_t len, int R, float* dst);
// dst[j * ldd + i] = src[i * lds + j] for i < rows, j < cols.
using TransposeFn = void (*)(const float* src, int64_t lds, int64_t rows, int64_t cols, float* dst, int64_t ldd);

// out[i] = the max of src[0][i], ..., src[taps - 1][i] for i < n (taps >= 1),
// in MaxPool's order: each later value replaces the running max only when
// greater, so a NaN met first stays and a later one is skipped.
using MaxTapsFn = void (*)(const float* const* src, int64_t taps, int64_t n, float* out);

struct NhwcKernels {
  NhwcDwFn depthwise = nullptr;
  NhwcDirectFn direct = nullptr;
  PackRowsFn pack_rows = nullptr;
  TransposeFn transpose = nullptr;
  MaxTapsFn max_taps = nullptr;
};

// The depthwise loop's weight, plan p's W [C, 1, KH, KW] as [KH*KW][C]
// (Packed with R = 1), cached by the weight's storage when w_const.
std::shared_ptr<const Packed> nhwc_depthwise_weight(Isa isa, const ConvPlan& p, const Tensor& w, bool w_const);
// The direct loops' (depthwise, few-input-channel) geometry and epilogue.
void fill_direct_args(NhwcDwArgs& a, const ConvPlan& p, const ops::Epilogue& e, const float* X, const float* w,
                      const float* bias, const float* res, float* Y);

#if defined(__x86_64__)
const NhwcKernels& nhwc_avx512_kernels();
const NhwcKernels& nhwc_avx2_kernels();
#endif
// nullptr for Isa::kNone.
const NhwcKernels* nhwc_kernels_of(Isa isa);

}  // namespace deepep::cpu
