// Elementwise unary math: y = f(x), same shape. float16/bfloat16/float32 are
// computed in float, float64 in double. Also the unary predicates (IsNaN,
// IsInf) and bitwise/logical negation (Not, BitwiseNot).
#include <cmath>
#include <limits>
#include <type_traits>

#include "ops/float_io.h"
#include "ops/op_util.h"

namespace deepep::ops {
namespace {



// All numeric types: floats go through `ff` in float/double, integers through `fi`
// on the integer itself.
template <class FF, class FI>
void unary_numeric(KernelContext& ctx, FF ff, FI fi) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0, x.dtype(), x.shape());
  dispatch_numeric(x.dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = x.data<T>();
    T* out = y.data<T>();
    const int64_t n = x.numel();
    if constexpr (is_floating_v<T>) {
      using C = compute_t<T>;
      for (int64_t i = 0; i < n; ++i) out[i] = T(ff(C(in[i])));
    } else {
      for (int64_t i = 0; i < n; ++i) out[i] = T(fi(in[i]));
    }
  });
}

bool is_f8(DType t) {
  return t == DType::kFloat8E4M3FN || t == DType::kFloat8E4M3FNUZ || t == DType::kFloat8E5M2 ||
         t == DType::kFloat8E5M2FNUZ;
}
F8Kind f8_kind(DType t) {
  switch (t) {
    case DType::kFloat8E4M3FN: return F8Kind::E4M3FN;
    case DType::kFloat8E4M3FNUZ: return F8Kind::E4M3FNUZ;
    case DType::kFloat8E5M2: return F8Kind::E5M2;
    default: return F8Kind::E5M2FNUZ;
  }
}

// Float predicate (float8 types included): bool output.
template <class P>
void float_predicate(KernelContext& ctx, P p) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0, DType::kBool, x.shape());
  bool* out = y.data<bool>();
  const int64_t n = x.numel();
  if (is_f8(x.dtype())) {
    const F8Kind k = f8_kind(x.dtype());
    const uint8_t* in = x.data<uint8_t>();
    for (int64_t i = 0; i < n; ++i) out[i] = p(double(f8_to_float(in[i], k)));
    return;
  }
  dispatch_float(x.dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = x.data<T>();
    for (int64_t i = 0; i < n; ++i) out[i] = p(double(in[i]));
  });
}

void infer_bool_same_shape(InferContext& ctx) {
  if (!ctx.has_input(0)) return;
  ctx.set(0, DType::kBool, ctx.input(0).shape);
}

// Wrapping negation for integers (INT_MIN stays INT_MIN, like numpy).
template <class T>
T wrap_neg(T v) {
  using U = std::make_unsigned_t<T>;
  return T(U(0) - U(v));
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

#define DEEPEP_UNARY_FLOAT(NAME, EXPR)                                      \
  DEEPEP_DEFINE_OP(NAME) {                                                 \
    def.infer = infer_same_as_input;                                       \
    def.reference = [](KernelContext& ctx) {                               \
      unary_float(ctx, [](auto v) { using C = decltype(v); (void)sizeof(C); return EXPR; }); \
    };                                                                     \
  }

DEEPEP_UNARY_FLOAT(Exp, std::exp(v))
DEEPEP_UNARY_FLOAT(Log, std::log(v))
DEEPEP_UNARY_FLOAT(Sqrt, std::sqrt(v))
DEEPEP_UNARY_FLOAT(Reciprocal, C(1) / v)
DEEPEP_UNARY_FLOAT(Sin, std::sin(v))
DEEPEP_UNARY_FLOAT(Cos, std::cos(v))
DEEPEP_UNARY_FLOAT(Tan, std::tan(v))
DEEPEP_UNARY_FLOAT(Asin, std::asin(v))
DEEPEP_UNARY_FLOAT(Acos, std::acos(v))
DEEPEP_UNARY_FLOAT(Atan, std::atan(v))
DEEPEP_UNARY_FLOAT(Sinh, std::sinh(v))
DEEPEP_UNARY_FLOAT(Cosh, std::cosh(v))
DEEPEP_UNARY_FLOAT(Asinh, std::asinh(v))
DEEPEP_UNARY_FLOAT(Acosh, std::acosh(v))
DEEPEP_UNARY_FLOAT(Atanh, std::atanh(v))
DEEPEP_UNARY_FLOAT(Tanh, std::tanh(v))
DEEPEP_UNARY_FLOAT(Ceil, std::ceil(v))
DEEPEP_UNARY_FLOAT(Floor, std::floor(v))
// Halves round to even (numpy.round / ONNX Round), in the default rounding mode.
DEEPEP_UNARY_FLOAT(Round, std::nearbyint(v))

#undef DEEPEP_UNARY_FLOAT

DEEPEP_DEFINE_OP(Abs) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) {
    unary_numeric(
        ctx, [](auto v) { return std::fabs(v); },
        [](auto v) {
          using T = decltype(v);
          if constexpr (std::is_signed_v<T>) return v < 0 ? wrap_neg(v) : v;
          else return v;
        });
  };
}

DEEPEP_DEFINE_OP(Neg) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) {
    DEEPEP_CHECK(!dtype_is_unsigned_int(ctx.input(0).dtype()), ctx.node.describe(),
                 ": Neg does not accept unsigned dtype ", dtype_name(ctx.input(0).dtype()));
    unary_numeric(
        ctx, [](auto v) { return -v; },
        [](auto v) {
          using T = decltype(v);
          if constexpr (std::is_signed_v<T>) return wrap_neg(v);
          else return v;
        });
  };
}

DEEPEP_DEFINE_OP(Sign) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) {
    // NaN and zero pass through (numpy.sign).
    unary_numeric(
        ctx, [](auto v) { using C = decltype(v); return v > 0 ? C(1) : v < 0 ? C(-1) : v; },
        [](auto v) {
          using T = decltype(v);
          return v > 0 ? T(1) : v < 0 ? T(-1) : T(0);
        });
  };
}

DEEPEP_DEFINE_OP(Erf) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) {
    // Erf-13 admits integer types too: erf of an integer rounds toward zero.
    unary_numeric(
        ctx, [](auto v) { return std::erf(v); },
        [](auto v) { return decltype(v)(std::erf(double(v))); });
  };
}

DEEPEP_DEFINE_OP(IsNaN) {
  def.infer = infer_bool_same_shape;
  def.reference = [](KernelContext& ctx) {
    float_predicate(ctx, [](double v) { return std::isnan(v); });
  };
}

DEEPEP_DEFINE_OP(IsInf) {
  def.infer = infer_bool_same_shape;
  def.reference = [](KernelContext& ctx) {
    const bool neg = ctx.node.attr_int("detect_negative", 1) != 0;
    const bool pos = ctx.node.attr_int("detect_positive", 1) != 0;
    float_predicate(ctx, [=](double v) {
      return std::isinf(v) && ((v > 0 && pos) || (v < 0 && neg));
    });
  };
}

DEEPEP_DEFINE_OP(Not) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    DEEPEP_CHECK(x.dtype() == DType::kBool, ctx.node.describe(), ": expected a bool input, got ",
                 dtype_name(x.dtype()));
    Tensor& y = ctx.output(0, DType::kBool, x.shape());
    const bool* in = x.data<bool>();
    bool* out = y.data<bool>();
    for (int64_t i = 0, n = x.numel(); i < n; ++i) out[i] = !in[i];
  };
}

DEEPEP_DEFINE_OP(BitwiseNot) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    dispatch_int(x.dtype(), ctx.op(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* in = x.data<T>();
      T* out = y.data<T>();
      for (int64_t i = 0, n = x.numel(); i < n; ++i) out[i] = T(~in[i]);
    });
  };
}
