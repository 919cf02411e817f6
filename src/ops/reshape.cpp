// Ops that only change the shape, never the bytes: Reshape, Flatten, Squeeze,
// Unsqueeze. Outputs share the input's storage (see view_as).
#include <map>

#include "ops/tensor_util.h"

namespace deepep::ops {
namespace {
using namespace tensor_detail;

// Resolves Reshape's target (0 copies the input dim unless allowzero, -1 is inferred).
Shape reshape_target(const Node& node, const Shape& in, const std::vector<int64_t>& spec,
                     bool allowzero) {
  Shape out(spec.size());
  int infer_at = -1;
  int64_t known = 1;
  for (size_t i = 0; i < spec.size(); ++i) {
    int64_t d = spec[i];
    if (d == -1) {
      DEEPEP_CHECK(infer_at < 0, node.describe(), ": shape ", shape_str(spec),
                   " has more than one -1");
      infer_at = int(i);
      continue;
    }
    DEEPEP_CHECK(d >= 0, node.describe(), ": shape ", shape_str(spec), " has invalid dim ", d);
    if (d == 0 && !allowzero) {
      DEEPEP_CHECK(i < in.size(), node.describe(), ": shape ", shape_str(spec),
                   " copies dim ", i, " (0) but the input ", shape_str(in), " has rank ",
                   in.size());
      d = in[i];
    }
    out[i] = d;
    known *= d;
  }
  const int64_t n = shape_numel(in);
  if (infer_at >= 0) {
    DEEPEP_CHECK(known != 0 && n % known == 0, node.describe(), ": cannot reshape ",
                 shape_str(in), " to ", shape_str(spec));
    out[size_t(infer_at)] = n / known;
  }
  DEEPEP_CHECK(shape_numel(out) == n, node.describe(), ": cannot reshape ", shape_str(in),
               " (", n, " elements) to ", shape_str(spec));
  return out;
}

void infer_reshape(InferContext& ctx) {
  if (!ctx.has_input(0)) return;
  const DType dt = ctx.input(0).dtype;
  auto spec = const_ints(ctx, 1);
  if (!spec) {
    int64_t len = infer_len1d(ctx, 1);
    ctx.set(0, dt, len >= 0 ? std::optional<SymShape>(SymShape(size_t(len))) : std::nullopt);
    return;
  }
  const bool allowzero = ctx.node.attr_int("allowzero", 0) != 0;
  const std::optional<SymShape>& in = ctx.input(0).shape;
  SymShape out(spec->size());
  int infer_at = -1;
  for (size_t i = 0; i < spec->size(); ++i) {
    int64_t d = (*spec)[i];
    if (d == -1) infer_at = int(i);
    else if (d == 0 && !allowzero) out[i] = in && i < in->size() ? (*in)[i] : Dim{};
    else if (d >= 0) out[i] = Dim::known(d);
  }
  if (infer_at >= 0 && in) {
    // Cancel symbols the output copies; what is left of the input is the -1.
    int64_t in_known = 1, out_known = 1;
    std::map<std::string, int> syms;
    bool ok = true;
    for (const Dim& d : *in) {
      if (d.is_known()) in_known *= d.value;
      else if (d.is_symbol()) ++syms[d.symbol];
      else ok = false;
    }
    for (size_t i = 0; i < out.size() && ok; ++i) {
      if (int(i) == infer_at) continue;
      const Dim& d = out[i];
      if (d.is_known()) out_known *= d.value;
      else if (d.is_symbol() && syms[d.symbol] > 0) --syms[d.symbol];
      else ok = false;
    }
    std::vector<std::string> left;
    for (auto& [s, c] : syms)
      for (int k = 0; k < c; ++k) left.push_back(s);
    if (ok && left.empty() && out_known != 0 && in_known % out_known == 0)
      out[size_t(infer_at)] = Dim::known(in_known / out_known);
    else if (ok && left.size() == 1 && in_known == out_known)
      out[size_t(infer_at)] = Dim::sym(left[0]);
  }
  ctx.set(0, dt, out);
}

// Squeeze/Unsqueeze axes: input 1 (opset >= 13) or the `axes` attribute.
std::optional<std::vector<int64_t>> axes_of(const KernelContext& ctx) {
  return ints_from_input_or_attr(ctx, 1, "axes");
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;
using namespace deepep::ops::tensor_detail;

DEEPEP_DEFINE_OP(Reshape) {
  def.infer = infer_reshape;
  def.reference = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    std::vector<int64_t> spec = shape_input(ctx, 1, "shape");
    Shape out = reshape_target(ctx.node, x.shape(), spec, ctx.node.attr_int("allowzero", 0) != 0);
    ctx.set_output(0, view_as(x, out));
  };
}

DEEPEP_DEFINE_OP(Flatten) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0)) return;
    const Value& x = ctx.input(0);
    if (!x.shape) {
      ctx.set(0, x.dtype, SymShape(2));
      return;
    }
    const int64_t r = int64_t(x.shape->size());
    int64_t axis = ctx.node.attr_int("axis", 1);
    if (axis < 0) axis += r;
    DEEPEP_CHECK(axis >= 0 && axis <= r, ctx.node.describe(), ": axis out of range");
    ctx.set(0, x.dtype,
            SymShape{dim_product(*x.shape, 0, size_t(axis)),
                     dim_product(*x.shape, size_t(axis), size_t(r))});
  };
  def.reference = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    const int64_t r = x.rank();
    int64_t axis = ctx.node.attr_int("axis", 1);
    DEEPEP_CHECK(axis >= -r && axis <= r, ctx.node.describe(), ": axis ", axis,
                 " is out of range for rank ", r);
    if (axis < 0) axis += r;
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < r; ++d) (d < axis ? outer : inner) *= x.dim(int(d));
    ctx.set_output(0, view_as(x, {outer, inner}));
  };
}

DEEPEP_DEFINE_OP(Squeeze) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0)) return;
    const Value& x = ctx.input(0);
    bool present = false;
    auto axes = const_ints_or_attr(ctx, 1, "axes", &present);
    if (!x.shape || (present && !axes)) {
      int64_t n = infer_len1d(ctx, 1);
      if (x.shape && n >= 0 && int64_t(x.shape->size()) >= n)
        ctx.set(0, x.dtype, SymShape(x.shape->size() - size_t(n)));
      else
        ctx.set(0, x.dtype, std::nullopt);
      return;
    }
    const int64_t r = int64_t(x.shape->size());
    std::vector<bool> drop(size_t(r), false);
    if (!present) {
      for (int64_t d = 0; d < r; ++d) {
        const Dim& dd = (*x.shape)[size_t(d)];
        if (!dd.is_known()) {  // may or may not be 1
          ctx.set(0, x.dtype, std::nullopt);
          return;
        }
        drop[size_t(d)] = dd.value == 1;
      }
    } else {
      for (int64_t a : *axes) drop[size_t(axis_in(a, r, ctx.node))] = true;
    }
    SymShape out;
    for (int64_t d = 0; d < r; ++d)
      if (!drop[size_t(d)]) out.push_back((*x.shape)[size_t(d)]);
    ctx.set(0, x.dtype, out);
  };
  def.reference = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    const int64_t r = x.rank();
    std::vector<bool> drop(size_t(r), false);
    auto axes = axes_of(ctx);
    if (!axes) {
      for (int64_t d = 0; d < r; ++d) drop[size_t(d)] = x.dim(int(d)) == 1;
    } else {
      for (int64_t a : *axes) {
        int64_t d = axis_in(a, r, ctx.node);
        DEEPEP_CHECK(r > 0, ctx.node.describe(), ": cannot squeeze a scalar");
        DEEPEP_CHECK(x.dim(int(d)) == 1, ctx.node.describe(), ": cannot squeeze axis ", a,
                     " of shape ", shape_str(x.shape()), " (its size is not 1)");
        drop[size_t(d)] = true;
      }
    }
    Shape out;
    for (int64_t d = 0; d < r; ++d)
      if (!drop[size_t(d)]) out.push_back(x.dim(int(d)));
    ctx.set_output(0, view_as(x, out));
  };
}

namespace {
// Output rank r + axes.size(); returns which output dims are the new 1s.
std::vector<bool> unsqueeze_positions(const Node& node, int64_t r, const std::vector<int64_t>& axes) {
  const int64_t out_r = r + int64_t(axes.size());
  std::vector<bool> is_new(size_t(out_r), false);
  for (int64_t a : axes) {
    int64_t d = a < 0 ? a + out_r : a;
    DEEPEP_CHECK(d >= 0 && d < out_r, node.describe(), ": axis ", a,
                 " is out of range for output rank ", out_r);
    DEEPEP_CHECK(!is_new[size_t(d)], node.describe(), ": axis ", a, " is repeated");
    is_new[size_t(d)] = true;
  }
  return is_new;
}
}  // namespace

DEEPEP_DEFINE_OP(Unsqueeze) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0)) return;
    const Value& x = ctx.input(0);
    bool present = false;
    auto axes = const_ints_or_attr(ctx, 1, "axes", &present);
    if (!x.shape || !axes) {
      int64_t n = infer_len1d(ctx, 1);
      if (x.shape && n >= 0) ctx.set(0, x.dtype, SymShape(x.shape->size() + size_t(n)));
      else ctx.set(0, x.dtype, std::nullopt);
      return;
    }
    auto is_new = unsqueeze_positions(ctx.node, int64_t(x.shape->size()), *axes);
    SymShape out;
    size_t k = 0;
    for (bool b : is_new) out.push_back(b ? Dim::known(1) : (*x.shape)[k++]);
    ctx.set(0, x.dtype, out);
  };
  def.reference = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    auto axes = axes_of(ctx);
    DEEPEP_CHECK(axes.has_value(), ctx.node.describe(), ": axes are required");
    auto is_new = unsqueeze_positions(ctx.node, x.rank(), *axes);
    Shape out;
    int k = 0;
    for (bool b : is_new) out.push_back(b ? 1 : x.dim(k++));
    ctx.set_output(0, view_as(x, out));
  };
}
