// Elementwise binary arithmetic and bitwise ops with numpy broadcasting.
// Integer arithmetic wraps (two's complement) like numpy; integer division
// truncates toward zero and division by zero yields 0 (numpy's result).
#include <cmath>
#include <type_traits>

#include "ops/float_io.h"
#include "ops/op_util.h"

namespace deepep::ops {
namespace {


// Runs out[i] = f(a[ia], b[ib]) over the broadcast shape, with a fast path for
// equal shapes and a scalar right operand.
template <class A, class B, class O, class F>
void broadcast_loop(const Tensor& a, const Tensor& b, Tensor& y, F f) {
  const A* pa = a.data<A>();
  const B* pb = b.data<B>();
  O* out = y.data<O>();
  const Shape& shape = y.shape();
  const int64_t n = y.numel();
  if (a.shape() == shape && b.shape() == shape) {
    for (int64_t i = 0; i < n; ++i) out[i] = f(pa[i], pb[i]);
  } else if (a.shape() == shape && b.numel() == 1) {
    const B s = pb[0];
    for (int64_t i = 0; i < n; ++i) out[i] = f(pa[i], s);
  } else {
    for_each_broadcast<2>(shape, {a.shape(), b.shape()},
                          [&](int64_t i, const auto& off) { out[i] = f(pa[off[0]], pb[off[1]]); });
  }
}

void check_same_dtype(const KernelContext& ctx, const Tensor& a, const Tensor& b) {
  DEEPEP_CHECK(a.dtype() == b.dtype(), ctx.node.describe(), ": input dtypes differ (",
               dtype_name(a.dtype()), " vs ", dtype_name(b.dtype()), ")");
}

// Float types through `ff` on C (float/double); integers through `fi` on T.
template <class Dispatch, class FF, class FI>
void binary_same_type(KernelContext& ctx, Dispatch dispatch, FF ff, FI fi) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  check_same_dtype(ctx, a, b);
  Tensor& y = ctx.output(0, a.dtype(), broadcast_shapes(a.shape(), b.shape(), ctx.node));
  dispatch(a.dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (is_floating_v<T>) {
      using C = compute_t<T>;
      broadcast_loop<T, T, T>(a, b, y, [&](T x, T z) { return T(ff(C(x), C(z))); });
    } else {
      broadcast_loop<T, T, T>(a, b, y, [&](T x, T z) { return T(fi(x, z)); });
    }
  });
}

template <class FF, class FI>
void binary_numeric(KernelContext& ctx, FF ff, FI fi) {
  binary_same_type(
      ctx, [](DType t, const char* w, auto&& f) { return dispatch_numeric(t, w, f); }, ff, fi);
}

template <class FI>
void binary_int(KernelContext& ctx, FI fi) {
  binary_same_type(
      ctx, [](DType t, const char* w, auto&& f) { return dispatch_int(t, w, f); },
      [](auto x, auto) { return x; }, fi);
}

// Wrapping integer arithmetic (no signed-overflow UB, no promotion surprises).
template <class T> T wrap_add(T x, T y) { return T(uint64_t(x) + uint64_t(y)); }
template <class T> T wrap_sub(T x, T y) { return T(uint64_t(x) - uint64_t(y)); }
template <class T> T wrap_mul(T x, T y) { return T(uint64_t(x) * uint64_t(y)); }

template <class T>
T int_div(T x, T y) {
  if (y == 0) return 0;
  if constexpr (std::is_signed_v<T>) {
    if (y == T(-1)) return T(uint64_t(0) - uint64_t(x));  // INT_MIN / -1 wraps
  }
  return T(x / y);  // C++ truncates toward zero
}

// Python/numpy mod: the result takes the divisor's sign.
template <class T>
T int_mod(T x, T y) {
  if (y == 0) return 0;
  if constexpr (std::is_signed_v<T>) {
    if (y == T(-1)) return 0;
    T r = T(x % y);
    if (r != 0 && ((r < 0) != (y < 0))) r = T(r + y);
    return r;
  } else {
    return T(x % y);
  }
}

template <class T>
T int_fmod(T x, T y) {
  if (y == 0) return 0;
  if constexpr (std::is_signed_v<T>) {
    if (y == T(-1)) return 0;
  }
  return T(x % y);  // C++ % takes the dividend's sign, like fmod
}

// Integer power by squaring (wrapping); negative exponents truncate toward zero.
template <class T>
T int_pow(T base, int64_t e) {
  if (e < 0) {
    if (base == 1) return 1;
    if constexpr (std::is_signed_v<T>) {
      if (base == T(-1)) return (e & 1) ? T(-1) : T(1);
    }
    return 0;
  }
  uint64_t r = 1, b = uint64_t(base);
  for (uint64_t k = uint64_t(e); k; k >>= 1) {
    if (k & 1) r *= b;
    b *= b;
  }
  return T(r);
}

// Double to an integer type, truncating; NaN gives 0 and out-of-range values saturate.
template <class T>
T double_to_int(double v) {
  if (std::isnan(v)) return 0;
  v = std::trunc(v);
  if (v <= double(std::numeric_limits<T>::min())) return std::numeric_limits<T>::min();
  if (v >= double(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
  return T(v);
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(Add) {
  def.infer = infer_broadcast;
  def.reference = [](KernelContext& ctx) {
    binary_numeric(ctx, [](auto x, auto y) { return x + y; }, [](auto x, auto y) { return wrap_add(x, y); });
  };
}

DEEPEP_DEFINE_OP(Sub) {
  def.infer = infer_broadcast;
  def.reference = [](KernelContext& ctx) {
    binary_numeric(ctx, [](auto x, auto y) { return x - y; }, [](auto x, auto y) { return wrap_sub(x, y); });
  };
}

DEEPEP_DEFINE_OP(Mul) {
  def.infer = infer_broadcast;
  def.reference = [](KernelContext& ctx) {
    binary_numeric(ctx, [](auto x, auto y) { return x * y; }, [](auto x, auto y) { return wrap_mul(x, y); });
  };
}

DEEPEP_DEFINE_OP(Div) {
  def.infer = infer_broadcast;
  def.reference = [](KernelContext& ctx) {
    binary_numeric(ctx, [](auto x, auto y) { return x / y; }, [](auto x, auto y) { return int_div(x, y); });
  };
}

DEEPEP_DEFINE_OP(Mod) {
  def.infer = infer_broadcast;
  def.reference = [](KernelContext& ctx) {
    const bool fmod = ctx.node.attr_int("fmod", 0) != 0;
    // Float Mod is always fmod (the spec requires fmod=1 for floats; the
    // reference computes fmod either way).
    auto ff = [](auto x, auto y) { return std::fmod(x, y); };
    if (fmod) binary_numeric(ctx, ff, [](auto x, auto y) { return int_fmod(x, y); });
    else binary_numeric(ctx, ff, [](auto x, auto y) { return int_mod(x, y); });
  };
}

DEEPEP_DEFINE_OP(Pow) {
  def.infer = infer_broadcast;  // dtype of the base
  def.reference = [](KernelContext& ctx) {
    // Base and exponent may have different types (Pow-12+); the result has the base's type.
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    Tensor& y = ctx.output(0, a.dtype(), broadcast_shapes(a.shape(), b.shape(), ctx.node));
    dispatch_numeric(a.dtype(), ctx.op(), [&](auto ta) {
      using A = typename decltype(ta)::type;
      dispatch_numeric(b.dtype(), ctx.op(), [&](auto tb) {
        using B = typename decltype(tb)::type;
        if constexpr (std::is_same_v<A, B> && is_floating_v<A>) {
          using C = compute_t<A>;
          broadcast_loop<A, B, A>(a, b, y, [](A x, B e) { return A(std::pow(C(x), C(e))); });
        } else if constexpr (!is_floating_v<A> && !is_floating_v<B>) {
          broadcast_loop<A, B, A>(a, b, y, [](A x, B e) {
            int64_t ei = std::is_unsigned_v<B> && uint64_t(e) > uint64_t(INT64_MAX) ? INT64_MAX : int64_t(e);
            return int_pow(x, ei);
          });
        } else if constexpr (is_floating_v<A>) {
          // Mixed: numpy computes in the promoted type (double here), then casts to A.
          broadcast_loop<A, B, A>(a, b, y, [](A x, B e) { return A(std::pow(double(x), double(e))); });
        } else {
          broadcast_loop<A, B, A>(a, b, y,
                                  [](A x, B e) { return double_to_int<A>(std::pow(double(x), double(e))); });
        }
      });
    });
  };
}

DEEPEP_DEFINE_OP(BitShift) {
  def.infer = infer_broadcast;
  def.reference = [](KernelContext& ctx) {
    const std::string dir = ctx.node.attr_string("direction", "");
    DEEPEP_CHECK(dir == "LEFT" || dir == "RIGHT", ctx.node.describe(),
                 ": direction must be 'LEFT' or 'RIGHT', got '", dir, "'");
    const bool left = dir == "LEFT";
    binary_int(ctx, [left](auto x, auto s) {
      using T = decltype(x);
      constexpr int bits = int(sizeof(T) * 8);
      using U = std::make_unsigned_t<T>;
      // Shifting by the width or more (or a negative amount) gives 0.
      if constexpr (std::is_signed_v<T>) {
        if (s < 0) return T(0);
      }
      if (uint64_t(s) >= uint64_t(bits)) return T(0);
      return left ? T(U(U(x) << s)) : T(U(x) >> s);
    });
  };
}

DEEPEP_DEFINE_OP(BitwiseAnd) {
  def.infer = infer_broadcast;
  def.reference = [](KernelContext& ctx) { binary_int(ctx, [](auto x, auto y) { return x & y; }); };
}

DEEPEP_DEFINE_OP(BitwiseOr) {
  def.infer = infer_broadcast;
  def.reference = [](KernelContext& ctx) { binary_int(ctx, [](auto x, auto y) { return x | y; }); };
}

DEEPEP_DEFINE_OP(BitwiseXor) {
  def.infer = infer_broadcast;
  def.reference = [](KernelContext& ctx) { binary_int(ctx, [](auto x, auto y) { return x ^ y; }); };
}
