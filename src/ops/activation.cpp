// Activation functions: elementwise y = f(x) with float attributes (alpha,
// beta, ...), plus PRelu, whose slope broadcasts to x. float16/bfloat16/float32
// are computed in float, float64 in double.
#include <cmath>
#include <type_traits>

#include "ops/float_io.h"
#include "ops/op_util.h"

namespace deepep::ops {
namespace {



// sigmoid without overflow for large |v|.
template <class C>
C sigmoid(C v) {
  if (v >= 0) return C(1) / (C(1) + std::exp(-v));
  const C e = std::exp(v);
  return e / (C(1) + e);
}

// log(1 + exp(v)) without overflow.
template <class C>
C softplus(C v) {
  return std::max(v, C(0)) + std::log1p(std::exp(-std::fabs(v)));
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(Relu) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) {
    // Relu-14 admits signed integers as well as floats.
    const Tensor& x = ctx.input(0);
    DEEPEP_CHECK(!dtype_is_unsigned_int(x.dtype()), ctx.node.describe(),
                 ": Relu does not accept unsigned dtype ", dtype_name(x.dtype()));
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    dispatch_numeric(x.dtype(), ctx.op(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* in = x.data<T>();
      T* out = y.data<T>();
      // NaN passes through (numpy.maximum(x, 0) propagates NaN).
      for (int64_t i = 0, n = x.numel(); i < n; ++i) out[i] = in[i] < T(0) ? T(0) : in[i];
    });
  };
}

DEEPEP_DEFINE_OP(LeakyRelu) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) {
    const float alpha = ctx.node.attr_float("alpha", 0.01f);
    unary_float(ctx, [=](auto v) { using C = decltype(v); return v < 0 ? C(alpha) * v : v; });
  };
}

DEEPEP_DEFINE_OP(Elu) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) {
    const float alpha = ctx.node.attr_float("alpha", 1.0f);
    unary_float(ctx, [=](auto v) {
      using C = decltype(v);
      return v < 0 ? C(alpha) * (std::exp(v) - C(1)) : v;
    });
  };
}

DEEPEP_DEFINE_OP(Selu) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) {
    const float alpha = ctx.node.attr_float("alpha", 1.67326319217681884765625f);
    const float gamma = ctx.node.attr_float("gamma", 1.05070102214813232421875f);
    unary_float(ctx, [=](auto v) {
      using C = decltype(v);
      return v <= 0 ? C(gamma) * (C(alpha) * std::exp(v) - C(alpha)) : C(gamma) * v;
    });
  };
}

DEEPEP_DEFINE_OP(Celu) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) {
    const float alpha = ctx.node.attr_float("alpha", 1.0f);
    DEEPEP_CHECK(alpha != 0, ctx.node.describe(), ": alpha must not be 0");
    unary_float(ctx, [=](auto v) {
      using C = decltype(v);
      const C a = C(alpha);
      return std::max(C(0), v) + std::min(C(0), a * (std::exp(v / a) - C(1)));
    });
  };
}

DEEPEP_DEFINE_OP(Sigmoid) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) { unary_float(ctx, [](auto v) { return sigmoid(v); }); };
}

DEEPEP_DEFINE_OP(HardSigmoid) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) {
    const float alpha = ctx.node.attr_float("alpha", 0.2f);
    const float beta = ctx.node.attr_float("beta", 0.5f);
    unary_float(ctx, [=](auto v) {
      using C = decltype(v);
      return std::max(C(0), std::min(C(1), C(alpha) * v + C(beta)));
    });
  };
}

DEEPEP_DEFINE_OP(HardSwish) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) {
    unary_float(ctx, [](auto v) {
      using C = decltype(v);
      return v * std::max(C(0), std::min(C(1), v / C(6) + C(0.5)));
    });
  };
}

DEEPEP_DEFINE_OP(Softplus) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) { unary_float(ctx, [](auto v) { return softplus(v); }); };
}

DEEPEP_DEFINE_OP(Softsign) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) {
    unary_float(ctx, [](auto v) { using C = decltype(v); return v / (C(1) + std::fabs(v)); });
  };
}

DEEPEP_DEFINE_OP(Mish) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) {
    unary_float(ctx, [](auto v) { return v * std::tanh(softplus(v)); });
  };
}

DEEPEP_DEFINE_OP(Gelu) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) {
    const std::string approx = ctx.node.attr_string("approximate", "none");
    if (approx == "none") {
      unary_float(ctx, [](auto v) {
        using C = decltype(v);
        return C(0.5) * v * (C(1) + std::erf(v * C(M_SQRT1_2)));
      });
    } else {
      DEEPEP_CHECK(approx == "tanh", ctx.node.describe(), ": approximate must be 'none' or 'tanh', got '",
                   approx, "'");
      unary_float(ctx, [](auto v) {
        using C = decltype(v);
        const C k = C(0.79788456080286535588);  // sqrt(2 / pi)
        return C(0.5) * v * (C(1) + std::tanh(k * (v + C(0.044715) * v * v * v)));
      });
    }
  };
}

DEEPEP_DEFINE_OP(Swish) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) {
    const float alpha = ctx.node.attr_float("alpha", 1.0f);
    unary_float(ctx, [=](auto v) { using C = decltype(v); return v * sigmoid(C(alpha) * v); });
  };
}

DEEPEP_DEFINE_OP(ThresholdedRelu) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) {
    const float alpha = ctx.node.attr_float("alpha", 1.0f);
    unary_float(ctx, [=](auto v) { using C = decltype(v); return v > C(alpha) ? v : C(0); });
  };
}

DEEPEP_DEFINE_OP(Shrink) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) {
    // Shrink admits every numeric type; integers go through double and truncate.
    const double bias = ctx.node.attr_float("bias", 0.0f);
    const double lambd = ctx.node.attr_float("lambd", 0.5f);
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    dispatch_numeric(x.dtype(), ctx.op(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      using C = std::conditional_t<is_floating_v<T> && !std::is_same_v<T, double>, float, double>;
      const T* in = x.data<T>();
      T* out = y.data<T>();
      const C b = C(bias), l = C(lambd);
      for (int64_t i = 0, n = x.numel(); i < n; ++i) {
        const C v = C(in[i]);
        out[i] = T(v < -l ? v + b : v > l ? v - b : C(0));
      }
    });
  };
}

DEEPEP_DEFINE_OP(PRelu) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    const Tensor& slope = ctx.input(1);
    DEEPEP_CHECK(x.dtype() == slope.dtype(), ctx.node.describe(), ": input dtypes differ (",
                 dtype_name(x.dtype()), " vs ", dtype_name(slope.dtype()), ")");
    // The slope broadcasts unidirectionally to X.
    const Shape shape = broadcast_shapes(x.shape(), slope.shape(), ctx.node);
    DEEPEP_CHECK(shape == x.shape(), ctx.node.describe(), ": slope of shape ", shape_str(slope.shape()),
                 " does not broadcast to X of shape ", shape_str(x.shape()));
    Tensor& y = ctx.output(0, x.dtype(), shape);
    dispatch_numeric(x.dtype(), ctx.op(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* px = x.data<T>();
      const T* ps = slope.data<T>();
      T* out = y.data<T>();
      for_each_broadcast<2>(shape, {x.shape(), slope.shape()}, [&](int64_t i, const auto& off) {
        const T v = px[off[0]];
        if constexpr (is_floating_v<T>) {
          using C = compute_t<T>;
          out[i] = v < T(0) ? T(C(ps[off[1]]) * C(v)) : v;
        } else {
          out[i] = v < T(0) ? T(uint64_t(ps[off[1]]) * uint64_t(v)) : v;
        }
      });
    });
  };
}
