// Internal: Winograd convolution for the channels-last conv (ops_conv_nhwc.cpp):
// 3x3, stride 1, no dilation, one group, channel counts in whole vectors.
// F(m, 3) with m = 2 (4x4 input tiles, 2.25x fewer multiplies than direct)
// or m = 4 (6x6 tiles, 4x fewer; larger transform error), Lavin & Gray 2015:
//   V_e = (B^T d B)_e   per input tile d (a x a pixels, a = m + 2) and channel,
//   M_e = V_e x U_e     a*a GEMMs [tiles x C] x [C x M], U = G g G^T of the
//                       weight, transformed and packed once,
//   y   = A^T M A       per tile and output channel, then the conv's epilogue.
// The transforms are per-ISA code (conv_winograd_isa.h), vectorized across
// channels (contiguous in NHWC); the GEMMs are the fast GEMM's (sgemm.h).
#pragma once
#include <cstdint>

#include "kernels/cpu/conv_plan.h"
#include "kernels/cpu/sgemm.h"

namespace deepep::cpu {

// One conv's tiling: images [N, H, W, C] -> [N, OH, OW, M], output tiles of
// m x m pixels, tiles_y x tiles_x per image, T = N * tiles_y * tiles_x in all.
struct WinoGeom {
  int m = 0;
  int64_t N = 0, H = 0, W = 0, C = 0, M = 0, OH = 0, OW = 0, ph = 0, pw = 0;
  int64_t tiles_y = 0, tiles_x = 0, T = 0;
};

// Input transform of tiles [t0, t1): V[e * es + (t - t0) * C + c] for the
// a*a positions e of each tile.
using WinoInputFn = void (*)(const WinoGeom& g, const float* X, int64_t t0, int64_t t1, float* V, int64_t es);
// Output transform of tiles [t0, t1) from Mt[e * es + (t - t0) * M + m] into
// Y (pixels outside the image dropped), then `epi` on the tiles' pixels
// (rows = pixel index, res_ld = M).
using WinoOutputFn = void (*)(const WinoGeom& g, const GemmEpi& epi, const float* Mt, int64_t es, int64_t t0,
                              int64_t t1, float* Y);

struct WinogradKernels {
  WinoInputFn input[2] = {};  // [0]: F(2,3), [1]: F(4,3)
  WinoOutputFn output[2] = {};
};

#if defined(__x86_64__)
const WinogradKernels& winograd_avx512_kernels();
const WinogradKernels& winograd_avx2_kernels();
#endif

// The output tile size m (2 or 4) Winograd runs this conv with on isa, or 0:
// the conv is not a 3x3 / stride 1 / dilation 1 / one-group conv with C and
// M multiples of the vector width, or direct (implicit GEMM) measured faster
// for its shape. DEEPEP_CONV_WINOGRAD=0|2|4 (or set_winograd_override)
// forces the choice for every conv Winograd can take.
int winograd_tile(Isa isa, const ConvPlan& p);
// Tests: force m (0, 2 or 4; -1 clears); returns the previous override.
int set_winograd_override(int m);

// Y = epi(conv(X, W)) for a plan winograd_tile() took with m; W is the
// [M, C, 3, 3] weight (w_const: cached by the tensor's storage).
void winograd_conv(Isa isa, int m, const ConvPlan& p, const float* X, const Tensor& w, bool w_const,
                   const GemmEpi& epi, float* Y);

}  // namespace deepep::cpu
