#include "kernels/cpu/conv_plan.h"

#include <algorithm>
#include <vector>

#include "ops/fused_epilogue.h"
#include "ops/gemm_util.h"

namespace deepep::cpu {
namespace {
bool is_f32(const Tensor* t) { return t && t->dtype() == DType::kFloat32; }

// The executor asks a fast kernel's supports() and then, on the same thread,
// runs it with the same inputs: run() takes the plan supports() made rather
// than reading the node's attributes a second time (~1 us a conv, which
// small maps and tiny models notice). Keyed by everything the plan reads
// but the attributes (the node, its inputs' tensors, dtypes and shapes);
// used once.
struct PlanMemo {
  static constexpr int kInputs = 4, kRank = 4;
  const Node* node = nullptr;
  int node_id = -1, inputs = 0;
  bool channels_last = false, fused = false, ok = false;
  const Tensor* in[kInputs] = {};
  DType dtype[kInputs] = {};
  int64_t rank[kInputs] = {};
  int64_t dims[kInputs][kRank] = {};
  ConvPlan plan{};

  // False (and nothing kept) for calls it cannot describe.
  bool describe(const KernelContext& ctx, bool cl, bool fu) {
    if (ctx.num_inputs() > kInputs) return false;
    node = &ctx.node, node_id = ctx.node.id, inputs = ctx.num_inputs(), channels_last = cl, fused = fu;
    for (int i = 0; i < inputs; ++i) {
      const Tensor* t = ctx.inputs[size_t(i)];
      in[i] = t;
      if (!t) continue;
      if (t->rank() > kRank) return false;
      dtype[i] = t->dtype(), rank[i] = t->rank();
      std::copy(t->shape().begin(), t->shape().end(), dims[i]);
    }
    return true;
  }
  bool matches(const PlanMemo& o) const {
    if (node != o.node || node_id != o.node_id || inputs != o.inputs || channels_last != o.channels_last ||
        fused != o.fused)
      return false;
    for (int i = 0; i < inputs; ++i) {
      if (in[i] != o.in[i]) return false;
      if (in[i] && (dtype[i] != o.dtype[i] || rank[i] != o.rank[i] || !std::equal(dims[i], dims[i] + rank[i], o.dims[i])))
        return false;
    }
    return true;
  }
};
thread_local PlanMemo t_memo;

bool compute_conv_plan(const KernelContext& ctx, bool channels_last, bool fused, ConvPlan& p);
}  // namespace

bool make_conv_plan(const KernelContext& ctx, bool channels_last, bool fused, ConvPlan& p) {
  PlanMemo call;
  if (!call.describe(ctx, channels_last, fused)) return compute_conv_plan(ctx, channels_last, fused, p);
  if (t_memo.node && t_memo.matches(call)) {
    t_memo.node = nullptr;  // used once
    p = t_memo.plan;
    return t_memo.ok;
  }
  call.ok = compute_conv_plan(ctx, channels_last, fused, call.plan);
  p = call.plan;
  t_memo = call;
  return call.ok;
}

namespace {
bool compute_conv_plan(const KernelContext& ctx, bool channels_last, bool fused, ConvPlan& p) {
  if ((ctx.node.attr_int("channels_last", 0) != 0) != channels_last) return false;
  if (ctx.num_inputs() < 2 || !is_f32(ctx.inputs[0]) || !is_f32(ctx.inputs[1])) return false;
  const Tensor& x = *ctx.inputs[0];
  const Tensor& w = *ctx.inputs[1];
  if (x.rank() != 4 || w.rank() != 4) return false;
  p.N = x.dim(0);
  if (channels_last) p.H = x.dim(1), p.W = x.dim(2), p.C = x.dim(3);
  else p.C = x.dim(1), p.H = x.dim(2), p.W = x.dim(3);
  p.M = w.dim(0), p.KH = w.dim(2), p.KW = w.dim(3);
  p.group = ctx.node.attr_int("group", 1);
  if (p.group < 1 || p.C % p.group != 0 || p.M % p.group != 0) return false;
  p.Cg = p.C / p.group;
  p.Mg = p.M / p.group;
  if (w.dim(1) != p.Cg || p.Cg < 1 || p.KH < 1 || p.KW < 1) return false;
  if (ctx.node.has_attr("kernel_shape") && ctx.node.attr_ints("kernel_shape") != std::vector<int64_t>{p.KH, p.KW})
    return false;
  ops::SpatialGeom g;
  try {
    g = ops::conv_geometry(ctx.node, Shape{p.H, p.W}, {p.KH, p.KW});
  } catch (const Error&) {
    return false;
  }
  p.OH = g.out[0], p.OW = g.out[1];
  p.sh = g.s[0], p.sw = g.s[1], p.ph = g.pb[0], p.pw = g.pb[1], p.dh = g.d[0], p.dw = g.d[1];
  if (p.OH < 0 || p.OW < 0) return false;
  if (ctx.has_input(2) && (!is_f32(ctx.inputs[2]) || ctx.inputs[2]->numel() != p.M)) return false;
  if (!fused) return true;
  ops::Act act;
  if (!ops::act_from_name(ctx.node.attr_string("activation", ""), act)) return false;
  if (int(ctx.node.attr_floats("activation_params", {}).size()) != ops::act_param_count(act)) return false;
  if (ctx.has_input(3)) {
    const Tensor* r = ctx.inputs[3];
    const Shape y = channels_last ? Shape{p.N, p.OH, p.OW, p.M} : Shape{p.N, p.M, p.OH, p.OW};
    if (!is_f32(r) || r->shape() != y) return false;
  }
  return true;
}
}  // namespace

const float* residual_apart(const float* res, const float* y, int64_t n) {
  if (!res || res + n <= y || y + n <= res) return res;
  thread_local std::vector<float> copy;
  copy.assign(res, res + n);
  return copy.data();
}

}  // namespace deepep::cpu
