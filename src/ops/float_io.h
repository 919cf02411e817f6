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

// A float32 copy of a float16/bfloat16 tensor.
inline Tensor widened_to_float32(const Tensor& t) {
  Tensor w(DType::kFloat32, t.shape());
  float* out = w.data<float>();
  dispatch_float(t.dtype(), "widen", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = t.data<T>();
    for (int64_t i = 0, n = t.numel(); i < n; ++i) out[i] = float(in[i]);
  });
  return w;
}

// Wraps a float32 kernel so it also takes float16/bfloat16 tensors, the way
// precision lowering hands them to the GEMM/conv fused ops: 16-bit inputs are
// widened to float32, the kernel accumulates in float32, and its float32
// outputs are rounded once to the 16-bit type of input 0.
inline KernelFn with_float32_compute(KernelFn kernel) {
  return [kernel = std::move(kernel)](KernelContext& ctx) {
    const DType low = ctx.has_input(0) ? ctx.input(0).dtype() : DType::kFloat32;
    if (low != DType::kFloat16 && low != DType::kBFloat16) return kernel(ctx);
    std::vector<Tensor> wide(size_t(ctx.num_inputs()));
    KernelContext sub{ctx.node, ctx.inputs, {}, ctx.subgraphs, nullptr};
    for (int i = 0; i < ctx.num_inputs(); ++i) {
      if (!ctx.has_input(i)) continue;
      const DType dt = ctx.input(i).dtype();
      if (dt != DType::kFloat16 && dt != DType::kBFloat16) continue;
      wide[size_t(i)] = widened_to_float32(ctx.input(i));
      sub.inputs[size_t(i)] = &wide[size_t(i)];
    }
    sub.outputs.resize(ctx.outputs.size());
    kernel(sub);
    for (size_t i = 0; i < sub.outputs.size(); ++i) {
      const Tensor& r = sub.outputs[i];
      if (!r.defined()) continue;
      if (r.dtype() != DType::kFloat32) {
        ctx.set_output(int(i), r);
        continue;
      }
      Tensor& y = ctx.output(int(i), low, r.shape());
      const float* in = r.data<float>();
      dispatch_float(low, ctx.op(), [&](auto tag) {
        using T = typename decltype(tag)::type;
        T* out = y.data<T>();
        for (int64_t k = 0, n = r.numel(); k < n; ++k) out[k] = T(in[k]);
      });
    }
  };
}

}  // namespace deepep::ops
