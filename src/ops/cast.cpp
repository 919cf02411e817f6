// Cast, CastLike and BitCast.
//  - Between numeric types: integers wrap (numpy astype); floats to integers
//    truncate toward zero, with NaN giving 0 and out-of-range values saturating
//    (numpy leaves these undefined); anything to bool is x != 0.
//  - float8 targets round to nearest even through float; `saturate` (default 1)
//    clamps out-of-range values and infinities to the largest finite value,
//    otherwise they become NaN (or infinity for E5M2), as the ONNX spec says.
//  - float4 E2M1 targets round to nearest even and always saturate to +-6 (the
//    type has no infinity or NaN); float8 E8M0 targets follow `round_mode`
//    ("up" by default) and `saturate`, bit-exact with the ONNX reference.
//  - int4/uint4/int2/uint2 targets keep the low bits, as the ONNX test data and
//    ml_dtypes do (float -9 -> int4 7), unlike the saturating float -> int8..int64
//    casts above: floats truncate toward zero first, and NaN or infinity gives 0.
//    (ml_dtypes goes through int32, so float64 values past 2^31 give it 0; here
//    they keep their low bits too. Float32 values that large agree: they are
//    multiples of 16.) These types are held one element per byte.
#include <cmath>
#include <limits>
#include <type_traits>

#include "ops/narrow_types.h"
#include "ops/op_util.h"

namespace deepep::ops {
namespace {

template <class To, class From>
To convert(From v) {
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else if constexpr (std::is_same_v<To, bool>) {
    if constexpr (is_floating_v<From>) return double(v) != 0.0;  // NaN is true
    else return v != 0;
  } else if constexpr (std::is_same_v<From, bool>) {
    return To(v ? 1 : 0);
  } else if constexpr (is_floating_v<To>) {
    if constexpr (std::is_same_v<To, float16> || std::is_same_v<To, bfloat16>) {
      if constexpr (std::is_same_v<From, float> || std::is_same_v<From, double>) return To(v);
      else if constexpr (is_floating_v<From>) return To(float(v));
      else return To(double(v));
    } else {
      if constexpr (is_floating_v<From> && !std::is_floating_point_v<From>) return To(float(v));
      else return To(v);
    }
  } else if constexpr (is_floating_v<From>) {  // float -> integer
    const double d = double(v);
    if (std::isnan(d)) return 0;
    const double t = std::trunc(d);
    if (t <= double(std::numeric_limits<To>::lowest())) return std::numeric_limits<To>::lowest();
    if (t >= double(std::numeric_limits<To>::max())) return std::numeric_limits<To>::max();
    return To(t);
  } else {
    return To(v);  // integer -> integer: modular, like numpy
  }
}

// Casts between non-float8 types.
Tensor cast_plain(const Tensor& x, DType to, const char* what) {
  Tensor y(to, x.shape());
  const int64_t n = x.numel();
  dispatch_all(x.dtype(), what, [&](auto ftag) {
    using From = typename decltype(ftag)::type;
    dispatch_all(to, what, [&](auto ttag) {
      using To = typename decltype(ttag)::type;
      const From* in = x.data<From>();
      To* out = y.data<To>();
      for (int64_t i = 0; i < n; ++i) out[i] = convert<To, From>(in[i]);
    });
  });
  return y;
}

struct CastOptions {
  bool saturate = true;
  E8M0Round round = E8M0Round::Up;
};

Tensor cast_tensor(const Tensor& x, DType to, const CastOptions& opt, const char* what) {
  if (x.dtype() == to) return x.owner() ? x : x.clone();  // no owner: a caller's buffer
  const int64_t n = x.numel();
  if (is_narrow_float(x.dtype())) {
    // Every narrow float is exact in float32; go on from there.
    Tensor f(DType::kFloat32, x.shape());
    const uint8_t* in = x.data<uint8_t>();
    float* out = f.data<float>();
    for (int64_t i = 0; i < n; ++i) out[i] = narrow_float_value(in[i], x.dtype());
    return cast_tensor(f, to, opt, what);
  }
  if (is_sub_byte_int(x.dtype())) {
    // Every sub-byte integer fits int8 (uint4 up to 15); go on from there.
    Tensor w(DType::kInt8, x.shape());
    const uint8_t* in = x.data<uint8_t>();
    int8_t* out = w.data<int8_t>();
    for (int64_t i = 0; i < n; ++i) out[i] = int8_t(sub_byte_value(in[i], x.dtype()));
    return cast_tensor(w, to, opt, what);
  }
  if (is_f8(to) || to == DType::kFloat8E8M0) {
    // The ONNX reference converts to float32 first for these targets.
    const Tensor f = x.dtype() == DType::kFloat32 ? x : cast_plain(x, DType::kFloat32, what);
    Tensor y(to, x.shape());
    const float* in = f.data<float>();
    uint8_t* out = y.data<uint8_t>();
    if (to == DType::kFloat8E8M0) {
      for (int64_t i = 0; i < n; ++i) out[i] = float_to_e8m0(in[i], opt.round, opt.saturate);
      return y;
    }
    const F8Kind k = f8_kind(to);
    for (int64_t i = 0; i < n; ++i) {
      // float_to_f8 overflows E4M3FN at exactly 464, the midpoint between 448 and
      // the NaN code; round-to-nearest-even gives 448 (even mantissa), as ml_dtypes
      // does. Saturating there yields that value.
      const bool sat = opt.saturate || (k == F8Kind::E4M3FN && std::fabs(in[i]) <= 464.0f);
      out[i] = float_to_f8(in[i], k, sat);
    }
    return y;
  }
  if (to == DType::kFloat4E2M1) {
    // Through float32, as ml_dtypes (the ONNX reference's cast) does: float64
    // sources round twice. Integers past 2^24 saturate either way.
    const Tensor f = x.dtype() == DType::kFloat32 ? x : cast_plain(x, DType::kFloat32, what);
    Tensor y(to, x.shape());
    const float* in = f.data<float>();
    uint8_t* out = y.data<uint8_t>();
    for (int64_t i = 0; i < n; ++i) out[i] = float_to_f4e2m1(in[i]);
    return y;
  }
  if (is_sub_byte_int(to)) {
    Tensor y(to, x.shape());
    uint8_t* out = y.data<uint8_t>();
    if (dtype_is_float(x.dtype())) {
      // float64 holds every source value exactly; truncation is exact.
      const Tensor d = x.dtype() == DType::kFloat64 ? x : cast_plain(x, DType::kFloat64, what);
      const double* in = d.data<double>();
      for (int64_t i = 0; i < n; ++i) {
        if (!std::isfinite(in[i])) {
          out[i] = 0;
        } else {
          // The low bits of trunc(v): fmod is exact, and keeps trunc's sign.
          const double r = std::fmod(std::trunc(in[i]), double(1 << sub_byte_bits(to)));
          out[i] = sub_byte_code(int64_t(r), to);
        }
      }
    } else {
      // Integers and bool: every value (uint64 modulo 2^64) is exact in int64.
      const Tensor w = x.dtype() == DType::kInt64 ? x : cast_plain(x, DType::kInt64, what);
      const int64_t* in = w.data<int64_t>();
      for (int64_t i = 0; i < n; ++i) out[i] = sub_byte_code(in[i], to);
    }
    return y;
  }
  return cast_plain(x, to, what);
}

CastOptions cast_options(const Node& node) {
  CastOptions o;
  o.saturate = node.attr_int("saturate", 1) != 0;
  const std::string mode = node.attr_string("round_mode", "up");
  if (mode == "up") o.round = E8M0Round::Up;
  else if (mode == "down") o.round = E8M0Round::Down;
  else if (mode == "nearest") o.round = E8M0Round::Nearest;
  else DEEPEP_FAIL(node.describe(), ": round_mode must be 'up', 'down' or 'nearest', got '", mode, "'");
  return o;
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

namespace {

DType target_dtype(const Node& node) {
  DEEPEP_CHECK(node.has_attr("to"), node.describe(), ": missing attribute 'to'");
  const int64_t to = node.attr_int("to", 0);
  DEEPEP_CHECK(dtype_supported(int(to)), node.describe(), ": unsupported target dtype (ONNX code ", to, ")");
  return DType(to);
}

}  // namespace

DEEPEP_DEFINE_OP(Cast) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0)) return;
    ctx.set(0, target_dtype(ctx.node), ctx.input(0).shape);
  };
  def.reference = [](KernelContext& ctx) {
    const DType to = target_dtype(ctx.node);
    ctx.set_output(0, cast_tensor(ctx.input(0), to, cast_options(ctx.node), ctx.op()));
  };
}

DEEPEP_DEFINE_OP(CastLike) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0) || !ctx.has_input(1)) return;
    ctx.set(0, ctx.input(1).dtype, ctx.input(0).shape);
  };
  def.reference = [](KernelContext& ctx) {
    ctx.set_output(0, cast_tensor(ctx.input(0), ctx.input(1).dtype(), cast_options(ctx.node), ctx.op()));
  };
}

DEEPEP_DEFINE_OP(BitCast) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0)) return;
    ctx.set(0, target_dtype(ctx.node), ctx.input(0).shape);
  };
  def.reference = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    const DType to = target_dtype(ctx.node);
    // Widths in bits: sub-byte types (held one per byte) reinterpret only as each other.
    const int from_bits = dtype_packed_bits(x.dtype()), to_bits = dtype_packed_bits(to);
    DEEPEP_CHECK(from_bits == to_bits, ctx.node.describe(), ": cannot reinterpret ", dtype_name(x.dtype()),
                 " (", from_bits, " bits) as ", dtype_name(to), " (", to_bits, " bits)");
    if (to == DType::kBool) {
      // Only 0 and 1 are valid bools: normalise other bytes rather than alias them.
      Tensor y(to, x.shape());
      const uint8_t* in = x.data<uint8_t>();
      bool* out = y.data<bool>();
      for (int64_t i = 0, n = x.numel(); i < n; ++i) out[i] = in[i] != 0;
      ctx.set_output(0, std::move(y));
      return;
    }
    // Same bytes, new type: a view sharing the input's storage (copied first when
    // it has no owner, i.e. views a caller's buffer that only lives for the call).
    const Tensor src = x.owner() ? x : x.clone();
    ctx.set_output(0, Tensor::wrap(to, src.shape(), const_cast<void*>(src.raw()), src.owner()));
  };
}
