// Internal: the row kernels of row_kernels.h, written once with GCC vector
// extensions on top of isa_common.h (vf, vload, vexp, ...). Include it only
// from an ISA file, after isa_common.h (same namespace rules).
#include <cmath>

#include "kernels/cpu/row_kernels.h"

namespace deepep::cpu::DEEPEP_ISA_NS {
namespace {

typedef uint8_t vb __attribute__((vector_size(VW)));

inline double hsum(vf v) {
  double s = 0;
  for (int l = 0; l < VW; ++l) s += double(v[l]);
  return s;
}
inline float hmax(vf v) {
  float m = v[0];
  for (int l = 1; l < VW; ++l) m = m < v[l] ? v[l] : m;
  return m;
}

// exp that underflows to 0 below the smallest normal result (exp(-inf) = 0).
inline vf vexp0(vf x) {
  const vf e = vexp(x);
  return x < -87.33654f ? splat(0.f) : e;
}

inline float apply_mask1(float v, const SoftmaxRowArgs& a, int64_t j) {
  switch (a.mode) {
    case RowMask::kAdd: return v + static_cast<const float*>(a.mask)[j * a.mstep];
    case RowMask::kKeep: return static_cast<const bool*>(a.mask)[j * a.mstep] ? v : a.fill;
    case RowMask::kDrop: return static_cast<const bool*>(a.mask)[j * a.mstep] ? a.fill : v;
    default: return v;
  }
}

template <RowMask M>
inline void softmax_scores(float* s, int64_t n, const SoftmaxRowArgs& a, vf& vmx, int64_t& j) {
  const vf fill = splat(a.fill);
  for (; j + VW <= n; j += VW) {
    vf v = vload(s + j) * a.scale;
    if constexpr (M == RowMask::kAdd) {
      const float* m = static_cast<const float*>(a.mask);
      v += a.mstep ? vload(m + j) : splat(m[0]);
    } else if constexpr (M == RowMask::kKeep || M == RowMask::kDrop) {
      const bool* m = static_cast<const bool*>(a.mask);
      vi on;
      if (a.mstep) {
        vb b;
        std::memcpy(&b, m + j, sizeof(b));
        on = __builtin_convertvector(b, vi) != 0;
      } else {
        on = vi{} + (m[0] ? -1 : 0);
      }
      if constexpr (M == RowMask::kKeep) v = on ? v : fill;
      else v = on ? fill : v;
    }
    vstore(s + j, v);
    vmx = vmax(vmx, v);
  }
}

void softmax_row(float* s, int64_t n, const SoftmaxRowArgs& a) {
  if (n <= 0) return;
  const float ninf = -INFINITY;
  vf vmx = splat(ninf);
  int64_t j = 0;
  switch (a.mode) {
    case RowMask::kNone: softmax_scores<RowMask::kNone>(s, n, a, vmx, j); break;
    case RowMask::kAdd: softmax_scores<RowMask::kAdd>(s, n, a, vmx, j); break;
    case RowMask::kKeep: softmax_scores<RowMask::kKeep>(s, n, a, vmx, j); break;
    case RowMask::kDrop: softmax_scores<RowMask::kDrop>(s, n, a, vmx, j); break;
  }
  float mx = hmax(vmx);
  for (; j < n; ++j) {
    s[j] = apply_mask1(s[j] * a.scale, a, j);
    mx = mx < s[j] ? s[j] : mx;
  }
  vf vsum = splat(0.f);
  j = 0;
  for (; j + VW <= n; j += VW) {
    const vf e = vexp0(vload(s + j) - mx);
    vstore(s + j, e);
    vsum += e;
  }
  if (j < n) {
    alignas(64) float tmp[VW];
    for (int l = 0; l < VW; ++l) tmp[l] = j + l < n ? s[j + l] : ninf;
    const vf e = vexp0(vload(tmp) - mx);
    vstore(tmp, e);
    for (int64_t l = 0; j + l < n; ++l) s[j + l] = tmp[l];
    vsum += e;  // pads give 0 (NaN when the row is all -inf, as the reference)
  }
  const float inv = float(1.0 / hsum(vsum));
  j = 0;
  for (; j + VW <= n; j += VW) vstore(s + j, vload(s + j) * inv);
  for (; j < n; ++j) s[j] *= inv;
}

void layer_norm_row(const float* x, const float* skip, const float* bias, const float* gamma, const float* beta,
                    float* y, float* sum, int64_t n, double eps) {
  if (n <= 0) return;
  float* st = sum ? sum : y;  // the sum, staged in Y when not requested
  vf acc = splat(0.f);
  double tail = 0;
  int64_t j = 0;
  for (; j + VW <= n; j += VW) {
    vf v = vload(x + j);
    if (skip) v += vload(skip + j);
    if (bias) v += vload(bias + j);
    vstore(st + j, v);
    acc += v;
  }
  for (; j < n; ++j) {
    float v = x[j];
    if (skip) v += skip[j];
    if (bias) v += bias[j];
    st[j] = v;
    tail += double(v);
  }
  const double mean = (hsum(acc) + tail) / double(n);
  const float fm = float(mean);
  vf vacc = splat(0.f);
  tail = 0;
  j = 0;
  for (; j + VW <= n; j += VW) {
    const vf d = vload(st + j) - fm;
    vacc += d * d;
  }
  for (; j < n; ++j) {
    const double d = double(st[j]) - mean;
    tail += d * d;
  }
  const double var = (hsum(vacc) + tail) / double(n);
  const float inv = float(1.0 / std::sqrt(var + eps));
  j = 0;
  for (; j + VW <= n; j += VW) {
    vf v = (vload(st + j) - fm) * inv * vload(gamma + j);
    if (beta) v += vload(beta + j);
    vstore(y + j, v);
  }
  for (; j < n; ++j) y[j] = (st[j] - fm) * inv * gamma[j] + (beta ? beta[j] : 0.f);
}

RowKernels make_row_kernels() {
  RowKernels k;
  k.softmax_row = softmax_row;
  k.layer_norm_row = layer_norm_row;
  return k;
}

}  // namespace
}  // namespace deepep::cpu::DEEPEP_ISA_NS
