// Internal: the Winograd transforms (conv_winograd.h), written once and
// compiled by each ISA file (conv_winograd_avx512.cpp, conv_winograd_avx2.cpp)
// under its own flags and namespace (DEEPEP_ISA_NS, DEEPEP_VW as for
// isa_common.h). Each tile's a x a pixels are loaded as channel vectors and
// transformed in registers; the transform matrices are compile-time
// constants, so after unrolling a zero coefficient costs nothing and +-1 is
// an add or subtract.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "kernels/cpu/isa_common.h"
#pragma GCC diagnostic pop
#include "kernels/cpu/conv_winograd.h"

namespace deepep::cpu::DEEPEP_ISA_NS {
namespace {

// B^T (input) and A^T (output) of F(2,3) and F(4,3) (Lavin & Gray 2015; the
// F(4,3) points 0, +-1, +-2 and infinity).
struct F2 {
  static constexpr int m = 2, a = 4;
  static constexpr float BT[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
  static constexpr float AT[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
};
struct F4 {
  static constexpr int m = 4, a = 6;
  static constexpr float BT[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                                     {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
  static constexpr float AT[4][6] = {
      {1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
};

// out[i * so] = sum_k mx[i][k] * in[k * si].
template <int R, int K>
__attribute__((always_inline)) inline void apply(const float (&mx)[R][K], const vf* in, int si, vf* out, int so) {
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) {
    vf acc = splat(0.f);
    bool first = true;
#pragma GCC unroll 8
    for (int k = 0; k < K; ++k) {
      const float c = mx[i][k];
      if (c == 0.f) continue;
      const vf x = in[k * si];
      if (first) acc = c == 1.f ? x : (c == -1.f ? -x : x * c);
      else acc = c == 1.f ? acc + x : (c == -1.f ? acc - x : acc + x * c);
      first = false;
    }
    out[i * so] = acc;
  }
}

// Tile t's image, first input row and column (may be negative: padding).
struct TileAt {
  int64_t n, ty, tx, iy0, ix0;
};
inline TileAt tile_at(const WinoGeom& g, int64_t t) {
  TileAt r;
  const int64_t per = g.tiles_y * g.tiles_x, rem = t % per;
  r.n = t / per;
  r.ty = rem / g.tiles_x;
  r.tx = rem % g.tiles_x;
  r.iy0 = r.ty * g.m - g.ph;
  r.ix0 = r.tx * g.m - g.pw;
  return r;
}

template <class F, bool EDGE>
__attribute__((always_inline)) inline void input_tile(const WinoGeom& g, const float* xn, int64_t iy0, int64_t ix0,
                                                      float* v, int64_t es) {
  constexpr int a = F::a;
  const int64_t C = g.C;
  for (int64_t c0 = 0; c0 < C; c0 += VW) {
    vf d[a][a], t[a][a], o[a][a];
#pragma GCC unroll 6
    for (int r = 0; r < a; ++r)
#pragma GCC unroll 6
      for (int s = 0; s < a; ++s) {
        const int64_t iy = iy0 + r, ix = ix0 + s;
        if (EDGE && (iy < 0 || iy >= g.H || ix < 0 || ix >= g.W)) d[r][s] = splat(0.f);
        else d[r][s] = vload(xn + (iy * g.W + ix) * C + c0);
      }
#pragma GCC unroll 6
    for (int s = 0; s < a; ++s) apply(F::BT, &d[0][s], a, &t[0][s], a);  // B^T d
#pragma GCC unroll 6
    for (int r = 0; r < a; ++r) apply(F::BT, &t[r][0], 1, &o[r][0], 1);  // (B^T d) B
#pragma GCC unroll 6
    for (int r = 0; r < a; ++r)
#pragma GCC unroll 6
      for (int s = 0; s < a; ++s) vstore(v + (r * a + s) * es + c0, o[r][s]);
  }
}

template <class F>
void input(const WinoGeom& g, const float* X, int64_t t0, int64_t t1, float* V, int64_t es) {
  for (int64_t t = t0; t < t1; ++t) {
    const TileAt at = tile_at(g, t);
    const float* xn = X + at.n * g.H * g.W * g.C;
    float* v = V + (t - t0) * g.C;
    if (at.iy0 >= 0 && at.ix0 >= 0 && at.iy0 + F::a <= g.H && at.ix0 + F::a <= g.W)
      input_tile<F, false>(g, xn, at.iy0, at.ix0, v, es);
    else
      input_tile<F, true>(g, xn, at.iy0, at.ix0, v, es);
  }
}

template <class F>
void output(const WinoGeom& g, const GemmEpi& epi, const float* Mt, int64_t es, int64_t t0, int64_t t1, float* Y) {
  constexpr int a = F::a, m = F::m;
  const int64_t M = g.M;
  for (int64_t t = t0; t < t1; ++t) {
    const TileAt at = tile_at(g, t);
    const int64_t oy0 = at.ty * m, ox0 = at.tx * m;
    const int64_t rows = imin(m, g.OH - oy0), cols = imin(m, g.OW - ox0);
    float* yt = Y + ((at.n * g.OH + oy0) * g.OW + ox0) * M;
    const float* mt = Mt + (t - t0) * M;
    for (int64_t c0 = 0; c0 < M; c0 += VW) {
      vf d[a][a], u[m][a], o[m][m];
#pragma GCC unroll 6
      for (int r = 0; r < a; ++r)
#pragma GCC unroll 6
        for (int s = 0; s < a; ++s) d[r][s] = vload(mt + (r * a + s) * es + c0);
#pragma GCC unroll 6
      for (int s = 0; s < a; ++s) apply(F::AT, &d[0][s], a, &u[0][s], a);  // A^T m
#pragma GCC unroll 4
      for (int r = 0; r < m; ++r) apply(F::AT, &u[r][0], 1, &o[r][0], 1);  // (A^T m) A
      if (rows == m && cols == m) {
#pragma GCC unroll 4
        for (int r = 0; r < m; ++r)
#pragma GCC unroll 4
          for (int s = 0; s < m; ++s) vstore(yt + (r * g.OW + s) * M + c0, o[r][s]);
      } else {
        for (int r = 0; r < rows; ++r)
          for (int s = 0; s < cols; ++s) vstore(yt + (r * g.OW + s) * M + c0, o[r][s]);
      }
    }
    if (!epi.trivial()) {
      const int64_t pix0 = (at.n * g.OH + oy0) * g.OW + ox0;
      for (int64_t r = 0; r < rows; ++r)
        epilogue(epi, yt + r * g.OW * M, M, pix0 + r * g.OW, 0, cols, M);
    }
  }
}

WinogradKernels make_winograd() {
  WinogradKernels k;
  k.input[0] = input<F2>;
  k.input[1] = input<F4>;
  k.output[0] = output<F2>;
  k.output[1] = output<F4>;
  return k;
}

}  // namespace
}  // namespace deepep::cpu::DEEPEP_ISA_NS
