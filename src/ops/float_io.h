// Small helpers shared by the reference kernels that compute in float/double.
#pragma once
#include <type_traits>
#include <vector>

#include "ops/op_util.h"

namespace deepep::ops {

// The type float kernels compute in: double for double, float otherwise
// (float16/bfloat16 are storage types).
template <class T>
using compute_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

// Float types only: out[i] = T(f(C(in[i]))), same shape and dtype as input 0.
template <class F>
void unary_float(KernelContext& ctx, F f) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0, x.dtype(), x.shape());
  dispatch_float(x.dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const T* in = x.data<T>();
    T* out = y.data<T>();
    for (int64_t i = 0, n = x.numel(); i < n; ++i) out[i] = T(f(C(in[i])));
  });
}

// Every element of a numeric tensor as double (statistics are computed in double).
inline std::vector<double> as_doubles(const Tensor& t, const char* what) {
  std::vector<double> v(size_t(t.numel()));
  dispatch_numeric(t.dtype(), what, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p = t.data<T>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = double(p[i]);
  });
  return v;
}

// Stores doubles into a float tensor of the same element count, rounding once.
inline void store_doubles(Tensor& t, const std::vector<double>& v, const char* what) {
  dispatch_float(t.dtype(), what, [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = t.data<T>();
    for (size_t i = 0; i < v.size(); ++i) p[i] = T(v[i]);
  });
}

}  // namespace deepep::ops
