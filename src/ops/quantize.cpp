// QuantizeLinear, DequantizeLinear (per-tensor, per-axis and blocked scales
// and zero points; 2-, 4-, 8-, 16- and 32-bit integer, float8 and float4 E2M1
// quantized types; float8 E8M0 scales) and DynamicQuantizeLinear. Arithmetic
// follows the ONNX reference: the division x / scale is rounded in the promoted
// float type of x and scale, integer results round half to even and saturate
// to the type's range; float4 results round to nearest even and saturate to +-6.
// The zero point enters float4 the way the spec's formula says, y = x / scale +
// zp and x = (y - zp) * scale (the reference skips it when dequantizing; zero
// points of float types are zero in practice).
#include <cmath>
#include <limits>

#include "ops/gemm_util.h"
#include "ops/narrow_types.h"

namespace deepep::ops {
namespace {

double element(const Tensor& t, int64_t i) {
  if (is_narrow_float(t.dtype())) return double(narrow_float_value(t.data<uint8_t>()[i], t.dtype()));
  if (is_sub_byte_int(t.dtype())) return double(sub_byte_value(t.data<uint8_t>()[i], t.dtype()));
  return t.get_double(i);
}

std::vector<double> all_values(const Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[i] = element(t, i);
  return v;
}

// Maps an element of x to the index of its scale / zero point.
struct ParamIndex {
  enum Mode { kScalar, kAxis, kBlocked } mode = kScalar;
  int64_t outer = 1, dim = 1, inner = 1, block = 1, sdim = 1;
  int64_t operator()(int64_t i) const {
    switch (mode) {
      case kScalar: return 0;
      case kAxis: return (i / inner) % dim;
      case kBlocked: {
        const int64_t in = i % inner, a = (i / inner) % dim, o = i / (inner * dim);
        return (o * sdim + a / block) * inner + in;
      }
    }
    return 0;
  }
};

ParamIndex param_index(const Node& node, const Shape& xs, const Tensor& scale) {
  ParamIndex p;
  const int64_t block = node.attr_int("block_size", 0);
  const Shape& ss = scale.shape();
  if (block <= 0 && scale.numel() == 1 && ss.size() <= 1) return p;
  const int64_t rank = int64_t(xs.size());
  const int64_t axis = normalize_axis(node.attr_int("axis", 1), rank, node);
  p.dim = rank ? xs[axis] : 1;
  p.outer = 1;
  for (int64_t d = 0; d < axis; ++d) p.outer *= xs[d];
  for (int64_t d = axis + 1; d < rank; ++d) p.inner *= xs[d];
  if (block <= 0) {
    DEEPEP_CHECK(ss.size() == 1 && ss[0] == p.dim, node.describe(), ": per-axis scale must be 1-D of size ",
                 p.dim, " (axis ", axis, " of ", shape_str(xs), "), got ", shape_str(ss));
    p.mode = ParamIndex::kAxis;
    return p;
  }
  DEEPEP_CHECK(int64_t(ss.size()) == rank, node.describe(), ": blocked scale ", shape_str(ss),
               " must have the rank of x ", shape_str(xs));
  for (int64_t d = 0; d < rank; ++d) {
    const int64_t want = d == axis ? (xs[d] + block - 1) / block : xs[d];
    DEEPEP_CHECK(ss[d] == want, node.describe(), ": blocked scale ", shape_str(ss), " does not fit x ",
                 shape_str(xs), " with block_size ", block, " on axis ", axis);
  }
  p.mode = ParamIndex::kBlocked;
  p.block = block;
  p.sdim = ss[axis];
  return p;
}

int float_rank(DType t) {
  switch (t) {
    case DType::kFloat64: return 3;
    case DType::kFloat32: return 2;
    default: return 1;  // float16, bfloat16
  }
}

// The dtype numpy computes x / scale in.
DType division_dtype(const Node& node, DType x, DType s) {
  if (const int64_t p = node.attr_int("precision", 0); p != 0) return DType(p);
  if (!dtype_is_float(x)) return DType::kFloat64;
  if (x == s) return x;
  const int rx = float_rank(x), rs = float_rank(s);
  if (rx == rs) return DType::kFloat32;  // float16 with bfloat16
  return rx > rs ? x : s;
}

double round_to(DType t, double v) {
  switch (t) {
    case DType::kFloat32: return double(float(v));
    case DType::kFloat16: return double(float(float16(float(v))));
    case DType::kBFloat16: return double(float(bfloat16(float(v))));
    default: return v;
  }
}

bool int_range(DType t, double& lo, double& hi) {
  switch (t) {
    case DType::kInt8: lo = -128, hi = 127; return true;
    case DType::kUInt8: lo = 0, hi = 255; return true;
    case DType::kInt16: lo = -32768, hi = 32767; return true;
    case DType::kUInt16: lo = 0, hi = 65535; return true;
    case DType::kInt32: lo = -2147483648.0, hi = 2147483647.0; return true;
    case DType::kInt4: case DType::kUInt4: case DType::kInt2: case DType::kUInt2: {
      int l, h;
      sub_byte_range(t, l, h);
      lo = l, hi = h;
      return true;
    }
    default: return false;
  }
}

void store_int(Tensor& y, int64_t i, double v) {
  switch (y.dtype()) {
    case DType::kInt8: y.data<int8_t>()[i] = int8_t(v); break;
    case DType::kUInt8: y.data<uint8_t>()[i] = uint8_t(v); break;
    case DType::kInt16: y.data<int16_t>()[i] = int16_t(v); break;
    case DType::kUInt16: y.data<uint16_t>()[i] = uint16_t(v); break;
    case DType::kInt32: y.data<int32_t>()[i] = int32_t(v); break;
    default: y.data<uint8_t>()[i] = sub_byte_code(int64_t(v), y.dtype()); break;  // 4- and 2-bit
  }
}

DType quantize_out_dtype(const Node& node, const std::optional<DType>& zp_dtype) {
  const int64_t od = node.attr_int("output_dtype", 0);
  if (zp_dtype) {
    DEEPEP_CHECK(od == 0 || DType(od) == *zp_dtype, node.describe(), ": output_dtype ", od,
                 " does not match the zero point's dtype ", dtype_name(*zp_dtype));
    return *zp_dtype;
  }
  if (od != 0) {
    DEEPEP_CHECK(dtype_supported(int(od)), node.describe(), ": output_dtype ", od,
                 " is not a type DeepEP supports");
    return DType(od);
  }
  return DType::kUInt8;
}

void quantize_kernel(KernelContext& ctx) {
  const Node& node = ctx.node;
  const Tensor& x = ctx.input(0);
  const Tensor& scale = ctx.input(1);
  const Tensor* zp = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  const DType out = quantize_out_dtype(node, zp ? std::optional<DType>(zp->dtype()) : std::nullopt);
  double lo = 0, hi = 0;
  const bool integer = int_range(out, lo, hi);
  const bool f4 = out == DType::kFloat4E2M1;
  DEEPEP_CHECK(integer || is_f8(out) || f4, node.describe(), ": cannot quantize to ", dtype_name(out),
               " (int2/uint2/int4/uint4/int8/uint8/int16/uint16/int32, float8 and float4e2m1 types are supported)");
  DEEPEP_CHECK(dtype_is_float(scale.dtype()), node.describe(), ": y_scale must be a float type");
  const ParamIndex pi = param_index(node, x.shape(), scale);
  if (zp) DEEPEP_CHECK(zp->shape() == scale.shape() || (zp->numel() == 1 && scale.numel() == 1),
                       node.describe(), ": zero point ", shape_str(zp->shape()),
                       " must have the scale's shape ", shape_str(scale.shape()));
  const std::vector<double> sv = all_values(scale);
  const std::vector<double> zv = zp && (integer || f4) ? all_values(*zp) : std::vector<double>{};
  const DType div = division_dtype(node, x.dtype(), scale.dtype());
  // numpy adds a float4 zero point in float32, or float64 after a float64 division.
  const DType f4_sum = div == DType::kFloat64 ? DType::kFloat64 : DType::kFloat32;
  const bool saturate = node.attr_int("saturate", 1) != 0;
  Tensor& y = ctx.output(0, out, x.shape());
  const int64_t n = x.numel();
  const bool fast = x.dtype() == DType::kFloat32 && div == DType::kFloat32;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t k = pi(i);
    double q;
    if (fast) q = double(x.data<float>()[i] / float(sv[k]));
    else q = round_to(div, element(x, i) / round_to(div, sv[k]));
    if (integer) {
      double r = std::nearbyint(q) + (zv.empty() ? 0.0 : zv[k]);
      if (std::isnan(r)) r = 0;
      store_int(y, i, std::clamp(r, lo, hi));
    } else if (f4) {
      // No saturate attribute: float4 has no infinity or NaN and always saturates.
      // The reference always adds the zero point (0 when absent), so -0 becomes +0.
      y.data<uint8_t>()[i] = float_to_f4e2m1(float(round_to(f4_sum, q + (zv.empty() ? 0.0 : zv[k]))));
    } else {
      y.data<uint8_t>()[i] = float_to_f8(float(q), f8_kind(out), saturate);
    }
  }
}

void dequantize_kernel(KernelContext& ctx) {
  const Node& node = ctx.node;
  const Tensor& x = ctx.input(0);
  const Tensor& scale = ctx.input(1);
  const Tensor* zp = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  double lo, hi;
  DEEPEP_CHECK(int_range(x.dtype(), lo, hi) || is_f8(x.dtype()) || x.dtype() == DType::kFloat4E2M1,
               node.describe(), ": cannot dequantize ", dtype_name(x.dtype()));
  DEEPEP_CHECK(dtype_is_float(scale.dtype()) && !is_f8(scale.dtype()) && scale.dtype() != DType::kFloat4E2M1,
               node.describe(), ": x_scale must be float32, float16, bfloat16, float64 or float8e8m0");
  const ParamIndex pi = param_index(node, x.shape(), scale);
  if (zp) {
    DEEPEP_CHECK(zp->dtype() == x.dtype(), node.describe(), ": zero point dtype ",
                 dtype_name(zp->dtype()), " differs from x's ", dtype_name(x.dtype()));
    DEEPEP_CHECK(zp->shape() == scale.shape() || (zp->numel() == 1 && scale.numel() == 1),
                 node.describe(), ": zero point ", shape_str(zp->shape()),
                 " must have the scale's shape ", shape_str(scale.shape()));
  }
  const std::vector<double> sv = all_values(scale);
  std::vector<double> zv = zp && !is_f8(x.dtype()) ? all_values(*zp) : std::vector<double>{};
  const int64_t od = node.attr_int("output_dtype", 0);
  DEEPEP_CHECK(od != 0 || scale.dtype() != DType::kFloat8E8M0, node.describe(),
               ": a float8e8m0 x_scale needs the output_dtype attribute");
  const DType out = od ? DType(od) : scale.dtype();
  DEEPEP_CHECK(out == DType::kFloat32 || out == DType::kFloat16 || out == DType::kBFloat16 ||
                   out == DType::kFloat64,
               node.describe(), ": output_dtype must be a float type");
  Tensor& y = ctx.output(0, out, x.shape());
  // numpy computes in float64 when either operand needs it (float64 scale, int32 zero point).
  const bool wide = scale.dtype() == DType::kFloat64 || (x.dtype() == DType::kInt32 && zp);
  dispatch_float(out, ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* py = y.data<T>();
    for (int64_t i = 0, n = x.numel(); i < n; ++i) {
      const int64_t k = pi(i);
      // (float32(x) - zero point) in float32, times the scale.
      const float dx = float(element(x, i)) - (zv.empty() ? 0.f : float(zv[k]));
      if (wide) py[i] = T((element(x, i) - (zv.empty() ? 0.0 : zv[k])) * sv[k]);
      else py[i] = T(dx * float(sv[k]));
    }
  });
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(QuantizeLinear) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0)) return;
    std::optional<DType> zpd;
    if (ctx.has_input(2)) zpd = ctx.input(2).dtype;
    ctx.set(0, quantize_out_dtype(ctx.node, zpd), ctx.input(0).shape);
  };
  def.reference = quantize_kernel;
}

DEEPEP_DEFINE_OP(DequantizeLinear) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0)) return;
    const int64_t od = ctx.node.attr_int("output_dtype", 0);
    DType dt = od ? DType(od) : ctx.has_input(1) ? ctx.input(1).dtype : DType::kFloat32;
    ctx.set(0, dt, ctx.input(0).shape);
  };
  def.reference = dequantize_kernel;
}

DEEPEP_DEFINE_OP(DynamicQuantizeLinear) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0)) return;
    ctx.set(0, DType::kUInt8, ctx.input(0).shape);
    if (ctx.outputs.size() > 1) ctx.set(1, ctx.input(0).dtype, SymShape{});
    if (ctx.outputs.size() > 2) ctx.set(2, DType::kUInt8, SymShape{});
  };
  def.reference = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    DEEPEP_CHECK(x.dtype() == DType::kFloat32, ctx.node.describe(), ": x must be float32, got ",
                 dtype_name(x.dtype()));
    const float* px = x.data<float>();
    const int64_t n = x.numel();
    float mx = 0.f, mn = 0.f;  // the range always includes 0
    for (int64_t i = 0; i < n; ++i) {
      mx = std::max(mx, px[i]);
      mn = std::min(mn, px[i]);
    }
    const float scale = (mx == mn ? 1.f : mx - mn) / 255.f;
    const float zp = std::nearbyint(std::clamp(0.f - mn / scale, 0.f, 255.f));
    Tensor& y = ctx.output(0, DType::kUInt8, x.shape());
    uint8_t* py = y.data<uint8_t>();
    for (int64_t i = 0; i < n; ++i)
      py[i] = uint8_t(std::clamp(std::nearbyint(px[i] / scale) + zp, 0.f, 255.f));
    if (ctx.outputs.size() > 1) *ctx.output(1, DType::kFloat32, {}).data<float>() = scale;
    if (ctx.outputs.size() > 2) *ctx.output(2, DType::kUInt8, {}).data<uint8_t>() = uint8_t(zp);
  };
}
