// Internal: the per-ISA kernel table the GEMM driver (sgemm.cpp) calls. Each
// ISA file (sgemm_avx512.cpp, sgemm_avx2.cpp) fills one, compiled with its
// own -m flags; nothing here may be called unless cpu_features says so.
#pragma once
#include <cstdint>

#include "kernels/cpu/sgemm.h"

namespace deepep::cpu {

constexpr int kMaxMR = 8;
constexpr int kMaxNV = 3;

// The epilogue a micro-kernel applies on its registers before it stores
// (GemmEpi's common case: alpha 1, a bias per column, no activation, Relu or
// an ordered Clip, a plain residual), per element (i, j) of its tile:
//   v = acc + bias[j];  v += res[i * res_ld + j] if res_first;
//   v = min(hi, max(lo, v)) if clamp (NaN stays NaN);  v += res[...] if !res_first
struct TileEpi {
  const float* bias = nullptr;  // at the tile's first column, or null
  const float* res = nullptr;   // at the tile's (0, 0), or null
  int64_t res_ld = 0;
  float lo = 0.f, hi = 0.f;
  bool clamp = false, res_first = false;
};

// c[0..mr) x [0..nr) (+)= a x b (NR-strided), kc steps; then te's epilogue
// (te null: none). a: a packed strip (a[k * MR + i], lda ignored) for ukr,
// plain rows (a[i * lda + k]) for ukr_rows. pf (null: none): ceil(kc /
// pf_k_per_line) cache lines from pf on are prefetched into L2, one every
// pf_k_per_line k steps -- B that a later block will read, fetched from
// memory while this tile computes.
using MicroKernel = void (*)(int64_t kc, const float* a, int64_t lda, const float* b, float* c, int64_t ldc,
                             int64_t nr, bool accumulate, const TileEpi* te, const float* pf);
// The epilogue on the tile at global row i0, column j0.
using EpilogueFn = void (*)(const GemmEpi& e, float* c, int64_t ldc, int64_t i0, int64_t j0, int64_t mr,
                            int64_t nr);
// Depthwise 2-D conv of one plane (NCHW): y[oh, ow] = sum w[kh, kw] * x[...]
// (no bias: the epilogue adds it).
struct DwGeom {
  int64_t ih, iw, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw;
};
// Padded plane the depthwise kernel works on (rows x cols), and the slack
// after it that vector loads past a row's end may touch.
inline int64_t dw_padded_h(const DwGeom& g) {
  const int64_t need = (g.oh - 1) * g.sh + (g.kh - 1) * g.dh + 1;
  return need > g.ih + g.ph ? need : g.ih + g.ph;
}
inline int64_t dw_padded_w(const DwGeom& g) {
  const int64_t need = (g.ow - 1) * g.sw + (g.kw - 1) * g.dw + 1;
  return need > g.iw + g.pw ? need : g.iw + g.pw;
}
inline constexpr int64_t dw_slack() { return 64; }
// Scratch floats the depthwise kernel needs.
inline int64_t dw_scratch_floats(const DwGeom& g) { return dw_padded_h(g) * dw_padded_w(g) + dw_slack(); }
using DepthwiseFn = void (*)(const float* x, const float* w, float* y, const DwGeom& g, float* scratch);

// im2col into one NR-wide B strip from per-tap copy segments (stride 1):
// for channel c and tap kk, dst[(c*taps + kk)*NR + t0 + u] = x[c*HW + src + u]
// for u < len over the tap's segments [first[kk], first[kk+1]); entries no
// segment covers are zero (full[kk] != 0: the segments cover all NR).
struct CopySeg {
  int64_t t0, len, src;
};
using Im2colFn = void (*)(const float* x, int64_t HW, int64_t Cg, int64_t taps, const CopySeg* segs,
                          const int64_t* first, const char* full, int NR, float* dst);

struct IsaKernels {
  Tile tile;
  MicroKernel ukr[kMaxMR + 1][kMaxNV + 1] = {};       // [mr][number of vectors]
  MicroKernel ukr_rows[kMaxMR + 1][kMaxNV + 1] = {};  // the same, A read in place
  EpilogueFn epilogue = nullptr;
  DepthwiseFn depthwise = nullptr;
  Im2colFn im2col_s1 = nullptr;
  int pf_k_per_line = 1;  // k steps per line a micro-kernel prefetches
};

#if defined(__x86_64__)
const IsaKernels& avx512_kernels();
const IsaKernels& avx2_kernels();
#endif
// nullptr for Isa::kNone.
const IsaKernels* kernels_of(Isa isa);

}  // namespace deepep::cpu
