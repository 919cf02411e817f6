// Internal: code shared by the ISA files, written once with GCC vector
// extensions and compiled by each of them under its own flags. Include it
// only from an ISA file, after defining DEEPEP_ISA_NS (the namespace that
// keeps each ISA's copies apart: the same inline function compiled with two
// sets of flags must never be merged by the linker) and DEEPEP_VW (floats
// per vector). Uses nothing from the standard library that could be
// instantiated with these flags and shared.
#include <cstdint>
#include <cstring>

#include "kernels/cpu/gemm_isa.h"

namespace deepep::cpu::DEEPEP_ISA_NS {
namespace {

constexpr int VW = DEEPEP_VW;
typedef float vf __attribute__((vector_size(VW * 4)));
typedef int32_t vi __attribute__((vector_size(VW * 4)));
using ops::Act;

inline vf splat(float x) { return vf{} + x; }
// std::max / std::min, NaN behaviour included (the first argument wins
// unless the second compares greater / less).
inline vf vmax(vf a, vf b) { return a < b ? b : a; }
inline vf vmin(vf a, vf b) { return b < a ? b : a; }
inline vf vload(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline void vstore(float* p, vf v) { std::memcpy(p, &v, sizeof(v)); }

// exp: Cody-Waite reduction to [-ln2/2, ln2/2], degree-6 polynomial (Cephes
// expf), scaled by 2^n through the exponent bits. Relative error ~2 ulp.
inline vf vexp(vf x) {
  x = x < -87.33654f ? splat(-87.33654f) : x;  // NaN passes through
  x = x > 88.37626f ? splat(88.37626f) : x;
  vf fx = x * 1.44269504088896341f;
  fx = (fx + 12582912.f) - 12582912.f;  // round to nearest
  vf r = x - fx * 0.693359375f;
  r = r + fx * 2.12194440e-4f;
  vf y = splat(1.9875691500E-4f);
  y = y * r + 1.3981999507E-3f;
  y = y * r + 8.3334519073E-3f;
  y = y * r + 4.1665795894E-2f;
  y = y * r + 1.6666665459E-1f;
  y = y * r + 5.0000001201E-1f;
  y = y * r * r + r + 1.f;
  const vi n = __builtin_convertvector(fx, vi);
  const vi bits = (n + 127) << 23;
  vf scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return y * scale;
}

inline vf vabs(vf x) {
  vi b;
  std::memcpy(&b, &x, sizeof(b));
  b &= 0x7fffffff;
  vf r;
  std::memcpy(&r, &b, sizeof(r));
  return r;
}

// erf: Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7).
inline vf verf(vf x) {
  const vf ax = vabs(x);
  const vf t = 1.f / (1.f + 0.3275911f * ax);
  vf p = splat(1.061405429f);
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  const vf y = 1.f - p * t * vexp(-ax * ax);
  return x < 0.f ? -y : y;
}

// tanh = sign(x) (1 - 2 / (exp(2|x|) + 1)); absolute error ~1e-7.
inline vf vtanh(vf x) {
  const vf ax = vabs(x);
  const vf y = 1.f - 2.f / (vexp(2.f * ax) + 1.f);
  return x < 0.f ? -y : y;
}

inline vf vsigmoid(vf x) { return 1.f / (1.f + vexp(-x)); }

template <Act A>
inline vf vact(vf v, float p0, float p1) {
  if constexpr (A == Act::kRelu) {
    const vf r = v > 0.f ? v : splat(0.f);
    return v != v ? v : r;  // NaN stays NaN
  } else if constexpr (A == Act::kLeakyRelu) {
    return v >= 0.f ? v : v * p0;
  } else if constexpr (A == Act::kSigmoid) {
    return vsigmoid(v);
  } else if constexpr (A == Act::kTanh) {
    return vtanh(v);
  } else if constexpr (A == Act::kSiLU) {
    return v * vsigmoid(v);
  } else if constexpr (A == Act::kGelu) {
    return 0.5f * v * (1.f + verf(v * 0.70710678118654752f));
  } else if constexpr (A == Act::kGeluTanh) {
    return 0.5f * v * (1.f + vtanh(0.79788456080286535588f * (v + 0.044715f * v * v * v)));
  } else if constexpr (A == Act::kClip) {
    return v < p0 ? splat(p0) : (v > p1 ? splat(p1) : v);
  } else if constexpr (A == Act::kHardSigmoid) {
    return vmax(splat(0.f), vmin(splat(1.f), v * p0 + p1));
  } else if constexpr (A == Act::kHardSwish) {
    return v * vmax(splat(0.f), vmin(splat(1.f), v * (1.f / 6.f) + 0.5f));
  } else {
    return v;
  }
}

template <Act A>
void epilogue_impl(const GemmEpi& e, float* c, int64_t ldc, int64_t i0, int64_t j0, int64_t mr, int64_t nr) {
  const bool per_row = e.bias_per_row;
  for (int64_t i = 0; i < mr; ++i) {
    float* ci = c + i * ldc;
    const int64_t gi = i0 + i;
    const float* res = nullptr;
    if (e.res) res = e.res + (e.res_row_off ? e.res_row_off[gi] : gi * e.res_ld) + j0 * e.res_col_step;
    const float* bias = e.bias ? (per_row ? e.bias + gi : e.bias + j0) : nullptr;
    const int64_t rs = e.res_col_step;
    for (int64_t j = 0; j < nr; j += VW) {
      const int64_t n = nr - j < VW ? nr - j : VW;
      alignas(64) float tmp[VW] = {};
      vf v;
      if (n == VW) v = vload(ci + j);
      else {
        for (int64_t t = 0; t < n; ++t) tmp[t] = ci[j + t];
        v = vload(tmp);
      }
      v *= e.alpha;
      if (bias) {
        if (per_row) v += *bias;
        else if (n == VW) v += vload(bias + j);
        else {
          for (int64_t t = 0; t < n; ++t) tmp[t] = bias[j + t];
          v += vload(tmp);
        }
      }
      vf r = {};
      if (res) {
        if (rs == 1 && n == VW) r = vload(res + j);
        else if (rs == 0) r = splat(*res);
        else {
          for (int64_t t = 0; t < n; ++t) tmp[t] = res[(j + t) * rs];
          for (int64_t t = n; t < VW; ++t) tmp[t] = 0.f;
          r = vload(tmp);
        }
      }
      if (res && e.res_first) v += r;
      v = vact<A>(v, e.p0, e.p1);
      if (res && !e.res_first) v += r;
      if (n == VW) vstore(ci + j, v);
      else {
        vstore(tmp, v);
        for (int64_t t = 0; t < n; ++t) ci[j + t] = tmp[t];
      }
    }
  }
}

void epilogue(const GemmEpi& e, float* c, int64_t ldc, int64_t i0, int64_t j0, int64_t mr, int64_t nr) {
  switch (e.act) {
    case Act::kNone: return epilogue_impl<Act::kNone>(e, c, ldc, i0, j0, mr, nr);
    case Act::kRelu: return epilogue_impl<Act::kRelu>(e, c, ldc, i0, j0, mr, nr);
    case Act::kLeakyRelu: return epilogue_impl<Act::kLeakyRelu>(e, c, ldc, i0, j0, mr, nr);
    case Act::kSigmoid: return epilogue_impl<Act::kSigmoid>(e, c, ldc, i0, j0, mr, nr);
    case Act::kTanh: return epilogue_impl<Act::kTanh>(e, c, ldc, i0, j0, mr, nr);
    case Act::kSiLU: return epilogue_impl<Act::kSiLU>(e, c, ldc, i0, j0, mr, nr);
    case Act::kGelu: return epilogue_impl<Act::kGelu>(e, c, ldc, i0, j0, mr, nr);
    case Act::kGeluTanh: return epilogue_impl<Act::kGeluTanh>(e, c, ldc, i0, j0, mr, nr);
    case Act::kClip: return epilogue_impl<Act::kClip>(e, c, ldc, i0, j0, mr, nr);
    case Act::kHardSigmoid: return epilogue_impl<Act::kHardSigmoid>(e, c, ldc, i0, j0, mr, nr);
    case Act::kHardSwish: return epilogue_impl<Act::kHardSwish>(e, c, ldc, i0, j0, mr, nr);
  }
}

inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }
inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
// floor(a / b) for b > 0.
inline int64_t floordiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// Lanes 0, 2, 4, ... of the 2*VW floats a:b.
inline vf even_lanes(vf a, vf b) {
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#if DEEPEP_VW == 16
  return __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
#else
  return __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14);
#endif
#else
  vi idx;
  for (int l = 0; l < VW; ++l) idx[l] = 2 * l;
  return __builtin_shuffle(a, b, idx);
#endif
}

// Depthwise conv of one plane: the plane is copied once into a zero-padded
// scratch (dw_scratch_floats), so the taps need no bounds checks; each
// output row is then VW outputs at a time, one FMA per tap on unaligned loads
// (stride 1), or on the even lanes of two loads (stride 2, dilation 1), or
// scalar for other strides.
void depthwise(const float* x, const float* w, float* y, const DwGeom& g, float* pad) {
  const int64_t Hp = dw_padded_h(g), Wp = dw_padded_w(g);
  for (int64_t i = 0, n = Hp * Wp + dw_slack(); i < n; ++i) pad[i] = 0.f;
  for (int64_t r = 0; r < g.ih; ++r) {
    float* __restrict dst = pad + (r + g.ph) * Wp + g.pw;
    const float* __restrict src = x + r * g.iw;
    for (int64_t c = 0; c < g.iw; ++c) dst[c] = src[c];
  }
  const int64_t taps = g.kh * g.kw;
  float wv[64];
  const bool vec_ok = taps <= 64 && (g.sw == 1 || (g.sw == 2 && g.dw == 1));
  if (vec_ok)
    for (int64_t t = 0; t < taps; ++t) wv[t] = w[t];
  for (int64_t oh = 0; oh < g.oh; ++oh) {
    float* yr = y + oh * g.ow;
    const float* prow = pad + oh * g.sh * Wp;
    if (!vec_ok) {
      for (int64_t o = 0; o < g.ow; ++o) {
        float acc = 0.f;
        for (int64_t kh = 0; kh < g.kh; ++kh)
          for (int64_t kw = 0; kw < g.kw; ++kw)
            acc += w[kh * g.kw + kw] * prow[kh * g.dh * Wp + o * g.sw + kw * g.dw];
        yr[o] = acc;
      }
      continue;
    }
    for (int64_t o = 0; o < g.ow; o += VW) {
      vf acc = splat(0.f);
      for (int64_t kh = 0; kh < g.kh; ++kh) {
        const float* pr = prow + kh * g.dh * Wp;
        for (int64_t kw = 0; kw < g.kw; ++kw) {
          vf v;
          if (g.sw == 1) {
            v = vload(pr + o + kw * g.dw);
          } else {
            const float* q = pr + 2 * o + kw;
            v = even_lanes(vload(q), vload(q + VW));
          }
          acc += wv[kh * g.kw + kw] * v;
        }
      }
      if (o + VW <= g.ow) {
        vstore(yr + o, acc);
      } else {
        alignas(64) float tmp[VW];
        vstore(tmp, acc);
        for (int64_t t = 0; o + t < g.ow; ++t) yr[o + t] = tmp[t];
      }
    }
  }
}

// Copies n floats (n > 0): whole vectors, the last one overlapping the one
// before it (same values), scalar only when n < VW.
inline void copy_run(float* __restrict d, const float* __restrict s, int64_t n) {
  if (n < VW) {
    for (int64_t u = 0; u < n; ++u) d[u] = s[u];
    return;
  }
  int64_t u = 0;
  for (; u + VW <= n; u += VW) vstore(d + u, vload(s + u));
  if (u < n) vstore(d + n - VW, vload(s + n - VW));
}

void im2col_s1(const float* x, int64_t HW, int64_t Cg, int64_t taps, const CopySeg* segs, const int64_t* first,
               const char* full, int NR, float* dst) {
  const vf zero = splat(0.f);
  for (int64_t c = 0; c < Cg; ++c) {
    const float* xc = x + c * HW;
    for (int64_t kk = 0; kk < taps; ++kk) {
      float* d = dst + (c * taps + kk) * NR;
      if (!full[kk]) {
        int u = 0;
        for (; u + VW <= NR; u += VW) vstore(d + u, zero);
        for (; u < NR; ++u) d[u] = 0.f;
      }
      for (int64_t si = first[kk]; si < first[kk + 1]; ++si) copy_run(d + segs[si].t0, xc + segs[si].src, segs[si].len);
    }
  }
}

}  // namespace
}  // namespace deepep::cpu::DEEPEP_ISA_NS
