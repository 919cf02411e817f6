// Cast, CastLike and BitCast.
//  - Between numeric types: integers wrap (numpy astype); floats to integers
//    truncate toward zero, with NaN giving 0 and out-of-range values saturating
//    (numpy leaves these undefined); anything to bool is x != 0.
//  - float8 targets round to nearest even through float; `saturate` (default 1)
//    clamps out-of-range values and infinities to the largest finite value,
//    otherwise they become NaN (or infinity for E5M2), as the ONNX spec says.
#include <cmath>
#include <limits>
#include <type_traits>

#include "ops/op_util.h"

namespace deepep::ops {
namespace {

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

Tensor cast_tensor(const Tensor& x, DType to, bool saturate, const char* what) {
  if (x.dtype() == to) return x.owner() ? x : x.clone();  // no owner: a caller's buffer
  if (is_f8(x.dtype())) {
    // float8 -> float32 is exact; go on from there.
    Tensor f(DType::kFloat32, x.shape());
    const F8Kind k = f8_kind(x.dtype());
    const uint8_t* in = x.data<uint8_t>();
    float* out = f.data<float>();
    for (int64_t i = 0, n = x.numel(); i < n; ++i) out[i] = f8_to_float(in[i], k);
    return cast_tensor(f, to, saturate, what);
  }
  if (is_f8(to)) {
    const Tensor f = x.dtype() == DType::kFloat32 ? x : cast_plain(x, DType::kFloat32, what);
    Tensor y(to, x.shape());
    const F8Kind k = f8_kind(to);
    const float* in = f.data<float>();
    uint8_t* out = y.data<uint8_t>();
    for (int64_t i = 0, n = x.numel(); i < n; ++i) {
      // float_to_f8 overflows E4M3FN at exactly 464, the midpoint between 448 and
      // the NaN code; round-to-nearest-even gives 448 (even mantissa), as ml_dtypes
      // does. Saturating there yields that value.
      const bool sat = saturate || (k == F8Kind::E4M3FN && std::fabs(in[i]) <= 464.0f);
      out[i] = float_to_f8(in[i], k, sat);
    }
    return y;
  }
  return cast_plain(x, to, what);
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
    const bool saturate = ctx.node.attr_int("saturate", 1) != 0;
    ctx.set_output(0, cast_tensor(ctx.input(0), to, saturate, ctx.op()));
  };
}

DEEPEP_DEFINE_OP(CastLike) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0) || !ctx.has_input(1)) return;
    ctx.set(0, ctx.input(1).dtype, ctx.input(0).shape);
  };
  def.reference = [](KernelContext& ctx) {
    const bool saturate = ctx.node.attr_int("saturate", 1) != 0;
    ctx.set_output(0, cast_tensor(ctx.input(0), ctx.input(1).dtype(), saturate, ctx.op()));
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
    DEEPEP_CHECK(dtype_size(x.dtype()) == dtype_size(to), ctx.node.describe(), ": cannot reinterpret ",
                 dtype_name(x.dtype()), " (", dtype_size(x.dtype()) * 8, " bits) as ", dtype_name(to), " (",
                 dtype_size(to) * 8, " bits)");
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
