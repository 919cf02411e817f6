// Slice: starts/ends/axes as attributes (opset < 10) or inputs with steps
// (opset >= 10; opset 0, i.e. unknown, means the current form as for every
// other op, and more than one input always means the input form); negative
// indices count from the end, out-of-range ones clamp (INT64_MAX / INT64_MIN
// mean "to the end"), negative steps walk backwards.
#include <limits>

#include "ops/slice_bounds.h"
#include "ops/tensor_util.h"

namespace deepep::ops {
namespace {
using namespace tensor_detail;

struct SliceArgs {
  std::vector<int64_t> starts, ends, axes, steps;
};

// Normalizes and validates the axes and steps for a rank-r input.
void complete_args(const Node& node, SliceArgs& a, int64_t r) {
  DEEPEP_CHECK(a.starts.size() == a.ends.size(), node.describe(), ": starts has ", a.starts.size(),
               " entries but ends has ", a.ends.size());
  const size_t n = a.starts.size();
  if (a.axes.empty() && n > 0) {
    a.axes.resize(n);
    for (size_t i = 0; i < n; ++i) a.axes[i] = int64_t(i);
  }
  if (a.steps.empty()) a.steps.assign(n, 1);
  DEEPEP_CHECK(a.axes.size() == n && a.steps.size() == n, node.describe(),
               ": starts, ends, axes and steps must have the same length");
  std::vector<bool> seen(size_t(r), false);
  for (size_t i = 0; i < n; ++i) {
    a.axes[i] = axis_in(a.axes[i], r, node);
    DEEPEP_CHECK(r > 0 && !seen[size_t(a.axes[i])], node.describe(), ": axis ", a.axes[i],
                 " is repeated");
    seen[size_t(a.axes[i])] = true;
    DEEPEP_CHECK(a.steps[i] != 0, node.describe(), ": steps must not be 0");
  }
}

SliceArgs args_from_kernel(const KernelContext& ctx) {
  SliceArgs a;
  if ((ctx.node.opset > 0 && ctx.node.opset < 10) || ctx.num_inputs() == 1) {
    a.starts = ctx.node.attr_ints("starts");
    a.ends = ctx.node.attr_ints("ends");
    a.axes = ctx.node.attr_ints("axes");
    return a;
  }
  a.starts = shape_input(ctx, 1, "starts");
  a.ends = shape_input(ctx, 2, "ends");
  if (ctx.has_input(3)) a.axes = shape_input(ctx, 3, "axes");
  if (ctx.has_input(4)) a.steps = shape_input(ctx, 4, "steps");
  return a;
}

void infer_slice(InferContext& ctx) {
  if (!ctx.has_input(0)) return;
  const Value& x = ctx.input(0);
  if (!x.shape) {
    ctx.set(0, x.dtype, std::nullopt);
    return;
  }
  const int64_t r = int64_t(x.shape->size());
  SliceArgs a;
  bool known = true;
  if ((ctx.node.opset > 0 && ctx.node.opset < 10) || ctx.inputs.size() == 1) {
    a.starts = ctx.node.attr_ints("starts");
    a.ends = ctx.node.attr_ints("ends");
    a.axes = ctx.node.attr_ints("axes");
  } else {
    auto s = const_ints(ctx, 1), e = const_ints(ctx, 2);
    known = s && e;
    if (s) a.starts = *s;
    if (e) a.ends = *e;
    if (ctx.has_input(3)) {
      auto ax = const_ints(ctx, 3);
      if (!ax) {
        ctx.set(0, x.dtype, SymShape(size_t(r)));  // rank only
        return;
      }
      a.axes = *ax;
    }
    if (ctx.has_input(4)) {
      auto st = const_ints(ctx, 4);
      known = known && st;
      if (st) a.steps = *st;
    }
    if (!known && a.axes.empty()) {
      int64_t n = std::max(infer_len1d(ctx, 1), infer_len1d(ctx, 2));
      if (n < 0) {
        ctx.set(0, x.dtype, SymShape(size_t(r)));
        return;
      }
      for (int64_t i = 0; i < n; ++i) a.axes.push_back(i);
    }
  }
  SymShape out = *x.shape;
  if (!known) {
    for (int64_t ax : a.axes) out[size_t(axis_in(ax, r, ctx.node))] = Dim{};
    ctx.set(0, x.dtype, out);
    return;
  }
  complete_args(ctx.node, a, r);
  for (size_t i = 0; i < a.starts.size(); ++i) {
    Dim& d = out[size_t(a.axes[i])];
    if (d.is_known()) {
      int64_t s, len;
      resolve_slice_axis(a.starts[i], a.ends[i], a.steps[i], d.value, &s, &len);
      d = Dim::known(len);
    } else {
      // A symbolic dim keeps its name only for a whole-axis slice, forwards or reversed.
      constexpr int64_t kBig = std::numeric_limits<int32_t>::max();
      const bool whole_fwd = a.steps[i] == 1 && (a.starts[i] == 0 || a.starts[i] <= -kBig) &&
                             a.ends[i] >= kBig;
      const bool whole_rev = a.steps[i] == -1 && (a.starts[i] == -1 || a.starts[i] >= kBig) &&
                             a.ends[i] <= -kBig;
      if (!whole_fwd && !whole_rev) d = Dim{};
    }
  }
  ctx.set(0, x.dtype, out);
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;
using namespace deepep::ops::tensor_detail;

DEEPEP_DEFINE_OP(Slice) {
  def.infer = infer_slice;
  def.reference = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    SliceArgs a = args_from_kernel(ctx);
    complete_args(ctx.node, a, x.rank());
    const std::vector<int64_t> st = strides_of(x.shape());
    Shape out = x.shape();
    std::vector<int64_t> ost = st;
    int64_t base = 0;
    for (size_t i = 0; i < a.starts.size(); ++i) {
      const size_t d = size_t(a.axes[i]);
      int64_t s, len;
      resolve_slice_axis(a.starts[i], a.ends[i], a.steps[i], x.dim(int(d)), &s, &len);
      out[d] = len;
      if (len > 0) base += s * st[d];
      ost[d] = len > 1 ? st[d] * a.steps[i] : 0;
    }
    Tensor& y = ctx.output(0, x.dtype(), out);
    copy_strided(x, y, ost, base, ctx.op());
  };
}
