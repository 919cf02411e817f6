// Pad (modes constant/reflect/edge/wrap; pads as attribute before opset 11, as
// input after; axes input from opset 18; negative pads crop) and CenterCropPad
// (centre crop or zero pad each axis to a target size). Both map every output
// coordinate of each axis to an input coordinate (or "fill") and copy.
#include "ops/tensor_util.h"

namespace deepep::ops {
namespace {
using namespace tensor_detail;

// out[i] = in[sum_d maps[d][idx_d] * stride_d], or `fill` where any map is -1.
void copy_mapped(const Tensor& in, Tensor& out, const std::vector<std::vector<int64_t>>& maps,
                 const void* fill, const char* what) {
  if (out.numel() == 0) return;
  const auto st = strides_of(in.shape());
  const int rank = out.rank();
  dispatch_by_size(in.dtype(), what, [&](auto tag) {
    using T = typename decltype(tag)::type;
    T f;
    std::memcpy(&f, fill, sizeof(T));
    const T* src = in.data<T>();
    T* dst = out.data<T>();
    if (rank == 0) {
      dst[0] = src[0];
      return;
    }
    int64_t i = 0;
    auto rec = [&](auto&& self, int d, int64_t base, bool valid) -> void {
      const auto& m = maps[size_t(d)];
      const int64_t n = out.dim(d);
      if (d == rank - 1) {
        for (int64_t k = 0; k < n; ++k, ++i) dst[i] = valid && m[size_t(k)] >= 0 ? src[base + m[size_t(k)]] : f;
        return;
      }
      for (int64_t k = 0; k < n; ++k) {
        const int64_t c = m[size_t(k)];
        self(self, d + 1, base + (c >= 0 ? c * st[size_t(d)] : 0), valid && c >= 0);
      }
    };
    rec(rec, 0, 0, true);
  });
}

enum class Mode { kConstant, kReflect, kEdge, kWrap };

Mode mode_of(const Node& node) {
  const std::string m = node.attr_string("mode", "constant");
  if (m == "constant") return Mode::kConstant;
  if (m == "reflect") return Mode::kReflect;
  if (m == "edge") return Mode::kEdge;
  if (m == "wrap") return Mode::kWrap;
  DEEPEP_FAIL(node.describe(), ": unknown mode '", m, "' (expected constant, reflect, edge, wrap)");
}

// Full per-axis (begin, end) pads for a rank-r input from the pads list and axes.
void full_pads(const Node& node, int64_t r, const std::vector<int64_t>& pads,
               const std::optional<std::vector<int64_t>>& axes_in, std::vector<int64_t>& pb,
               std::vector<int64_t>& pe) {
  std::vector<int64_t> axes;
  if (axes_in) {
    axes = *axes_in;
  } else {
    for (int64_t i = 0; i < r; ++i) axes.push_back(i);
  }
  DEEPEP_CHECK(pads.size() == 2 * axes.size(), node.describe(), ": pads has ", pads.size(),
               " entries, expected 2 x ", axes.size());
  pb.assign(size_t(r), 0);
  pe.assign(size_t(r), 0);
  const size_t na = axes.size();
  for (size_t i = 0; i < na; ++i) {
    const size_t a = size_t(axis_in(axes[i], r, node));
    pb[a] = pads[i];
    pe[a] = pads[na + i];
  }
}

// Input coordinate for output coordinate o of an axis: the input is first
// cropped to [lo, hi) by negative pads, then padded by `before` per `mode`.
int64_t pad_source(int64_t o, int64_t before, int64_t lo, int64_t hi, Mode mode) {
  const int64_t n = hi - lo;
  int64_t c = o - before;
  if (c >= 0 && c < n) return lo + c;
  switch (mode) {
    case Mode::kConstant: return -1;
    case Mode::kEdge: c = c < 0 ? 0 : n - 1; break;
    case Mode::kWrap: c = ((c % n) + n) % n; break;
    case Mode::kReflect:
      if (n == 1) {
        c = 0;
      } else {
        const int64_t period = 2 * (n - 1);
        c = ((c % period) + period) % period;
        if (c >= n) c = period - c;
      }
      break;
  }
  return lo + c;
}

void pad_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t r = x.rank();
  const Mode mode = mode_of(ctx.node);
  std::vector<int64_t> pads;
  if (ctx.has_input(1)) pads = shape_input(ctx, 1, "pads");
  else pads = ctx.node.attr_ints(ctx.node.has_attr("pads") ? "pads" : "paddings");
  std::optional<std::vector<int64_t>> axes;
  if (ctx.has_input(3)) axes = shape_input(ctx, 3, "axes");
  std::vector<int64_t> pb, pe;
  full_pads(ctx.node, r, pads, axes, pb, pe);

  // The fill value as raw bytes of x's dtype.
  const size_t es = dtype_size(x.dtype());
  uint64_t fill = 0;
  if (ctx.has_input(2) && ctx.input(2).numel() > 0) {
    const Tensor& v = ctx.input(2);
    DEEPEP_CHECK(v.dtype() == x.dtype(), ctx.node.describe(), ": constant_value dtype ",
                 dtype_name(v.dtype()), " differs from data dtype ", dtype_name(x.dtype()));
    std::memcpy(&fill, v.raw(), es);
  } else if (!ctx.has_input(2) && ctx.node.has_attr("value")) {
    const float f = ctx.node.attr_float("value", 0.f);
    if (f != 0.f)
      dispatch_all(x.dtype(), ctx.op(), [&](auto tag) {
        using T = typename decltype(tag)::type;
        T t;
        if constexpr (std::is_same_v<T, bool>) t = f != 0.f;
        else t = T(f);
        std::memcpy(&fill, &t, sizeof(T));
      });
  }

  Shape out(static_cast<size_t>(r));
  std::vector<std::vector<int64_t>> maps(static_cast<size_t>(r));
  for (int64_t d = 0; d < r; ++d) {
    const int64_t n = x.dim(int(d));
    const int64_t lo = std::max<int64_t>(0, -pb[size_t(d)]);
    const int64_t hi = n - std::max<int64_t>(0, -pe[size_t(d)]);
    out[size_t(d)] = n + pb[size_t(d)] + pe[size_t(d)];
    DEEPEP_CHECK(out[size_t(d)] >= 0 && hi >= lo, ctx.node.describe(), ": pads ", shape_str(pads),
                 " crop more than axis ", d, " of shape ", shape_str(x.shape()), " holds");
    const int64_t before = std::max<int64_t>(0, pb[size_t(d)]);
    const bool padded = out[size_t(d)] > hi - lo;
    DEEPEP_CHECK(!padded || mode == Mode::kConstant || hi > lo, ctx.node.describe(),
                 ": cannot pad an empty axis ", d, " in ", ctx.node.attr_string("mode", ""),
                 " mode");
    maps[size_t(d)].resize(size_t(out[size_t(d)]));
    for (int64_t o = 0; o < out[size_t(d)]; ++o)
      maps[size_t(d)][size_t(o)] = pad_source(o, before, lo, hi, mode);
  }
  Tensor& y = ctx.output(0, x.dtype(), out);
  copy_mapped(x, y, maps, &fill, ctx.op());
}

void infer_pad(InferContext& ctx) {
  if (!ctx.has_input(0)) return;
  const Value& x = ctx.input(0);
  if (!x.shape) {
    ctx.set(0, x.dtype, std::nullopt);
    return;
  }
  const int64_t r = int64_t(x.shape->size());
  bool present = false;
  auto pads = const_ints_or_attr(ctx, 1, ctx.node.has_attr("paddings") ? "paddings" : "pads", &present);
  std::optional<std::vector<int64_t>> axes;
  bool axes_known = true;
  if (ctx.has_input(3)) {
    axes = const_ints(ctx, 3);
    axes_known = axes.has_value();
  }
  SymShape out = *x.shape;
  if (!pads || !axes_known) {
    if (axes_known && axes)
      for (int64_t a : *axes) out[size_t(axis_in(a, r, ctx.node))] = Dim{};
    else
      for (auto& d : out) d = Dim{};
    ctx.set(0, x.dtype, out);
    return;
  }
  std::vector<int64_t> pb, pe;
  full_pads(ctx.node, r, *pads, axes, pb, pe);
  for (size_t d = 0; d < out.size(); ++d) {
    const int64_t add = pb[d] + pe[d];
    if (out[d].is_known()) out[d] = Dim::known(out[d].value + add);
    else if (add != 0) out[d] = Dim{};
  }
  ctx.set(0, x.dtype, out);
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;
using namespace deepep::ops::tensor_detail;

DEEPEP_DEFINE_OP(Pad) {
  def.infer = infer_pad;
  def.reference = pad_kernel;
}

DEEPEP_DEFINE_OP(CenterCropPad) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0)) return;
    const Value& x = ctx.input(0);
    auto shape = const_ints(ctx, 1);
    if (!x.shape) {
      ctx.set(0, x.dtype, std::nullopt);
      return;
    }
    const int64_t r = int64_t(x.shape->size());
    std::vector<int64_t> axes = ctx.node.attr_ints("axes");
    if (!ctx.node.has_attr("axes"))
      for (int64_t i = 0; i < r; ++i) axes.push_back(i);
    SymShape out = *x.shape;
    for (size_t i = 0; i < axes.size(); ++i) {
      Dim& d = out[size_t(axis_in(axes[i], r, ctx.node))];
      d = shape && i < shape->size() ? Dim::known((*shape)[i]) : Dim{};
    }
    ctx.set(0, x.dtype, out);
  };
  def.reference = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    const std::vector<int64_t> shape = shape_input(ctx, 1, "shape");
    const int64_t r = x.rank();
    std::vector<int64_t> axes = ctx.node.attr_ints("axes");
    if (!ctx.node.has_attr("axes"))
      for (int64_t i = 0; i < r; ++i) axes.push_back(i);
    DEEPEP_CHECK(shape.size() == axes.size(), ctx.node.describe(), ": shape has ", shape.size(),
                 " entries for ", axes.size(), " axes");
    Shape out = x.shape();
    std::vector<bool> seen(size_t(r), false);
    for (size_t i = 0; i < axes.size(); ++i) {
      const size_t a = size_t(axis_in(axes[i], r, ctx.node));
      DEEPEP_CHECK(!seen[a], ctx.node.describe(), ": axis ", axes[i], " is repeated");
      seen[a] = true;
      DEEPEP_CHECK(shape[i] >= 0, ctx.node.describe(), ": invalid target size ", shape[i]);
      out[a] = shape[i];
    }
    std::vector<std::vector<int64_t>> maps(static_cast<size_t>(r));
    for (int64_t d = 0; d < r; ++d) {
      const int64_t n = x.dim(int(d)), m = out[size_t(d)];
      // Crop starts (n - m) / 2 into the input; padding puts the input (m - n) / 2 in.
      const int64_t shift = m <= n ? (n - m) / 2 : -((m - n) / 2);
      maps[size_t(d)].resize(size_t(m));
      for (int64_t o = 0; o < m; ++o) {
        const int64_t c = o + shift;
        maps[size_t(d)][size_t(o)] = c >= 0 && c < n ? c : -1;
      }
    }
    Tensor& y = ctx.output(0, x.dtype(), out);
    const uint64_t zero = 0;
    copy_mapped(x, y, maps, &zero, ctx.op());
  };
}
