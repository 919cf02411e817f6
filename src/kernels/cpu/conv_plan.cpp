#include "kernels/cpu/conv_plan.h"

#include <algorithm>
#include <vector>

#include "ops/channels_last.h"
#include "ops/fused_epilogue.h"
#include "ops/gemm_util.h"

namespace deepep::cpu {
namespace {
bool is_f32(const Tensor* t) { return t && t->dtype() == DType::kFloat32; }

// The plan as a node's cache keeps it (NodeCache: made by the first
// supports() for the inputs' types and shapes, then read by run() and by
// every later run's run() while those stay: reading the node's attributes
// costs ~1 us a conv, which small maps and tiny models notice). Keyed by
// the layout and op asked for: a FusedConv's NCHW and NHWC kernels both ask.
struct CachedConvPlan {
  bool channels_last, fused, ok;
  ConvPlan plan;
};

bool compute_conv_plan(const KernelContext& ctx, bool channels_last, bool fused, ConvPlan& p);
}  // namespace

bool make_conv_plan(const KernelContext& ctx, bool channels_last, bool fused, ConvPlan& p) {
  if (ctx.cache)
    if (const CachedConvPlan* c = ctx.cache->plan<CachedConvPlan>();
        c && c->channels_last == channels_last && c->fused == fused) {
      p = c->plan;
      return c->ok;
    }
  const bool ok = compute_conv_plan(ctx, channels_last, fused, p);
  if (ctx.cache) ctx.cache->set_plan(CachedConvPlan{channels_last, fused, ok, p});
  return ok;
}

namespace {
bool compute_conv_plan(const KernelContext& ctx, bool channels_last, bool fused, ConvPlan& p) {
  if ((ctx.node.attr_int("channels_last", 0) != 0) != channels_last) return false;
  if (ctx.num_inputs() < 2 || !is_f32(ctx.inputs[0]) || !is_f32(ctx.inputs[1])) return false;
  const Tensor& x = *ctx.inputs[0];
  const Tensor& w = *ctx.inputs[1];
  if (x.rank() != 4 || w.rank() != 4) return false;
  p.N = x.dim(0);
  p.x_nchw = ops::nchw_input(ctx.node);
  if (channels_last && !p.x_nchw) p.H = x.dim(1), p.W = x.dim(2), p.C = x.dim(3);
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
  p.epi = ops::Epilogue{};
  if (!fused) return true;
  if (!ops::act_from_name(ctx.node.attr_string("activation", ""), p.epi.act)) return false;
  const std::vector<float> params = ctx.node.attr_floats("activation_params", {});
  if (int(params.size()) != ops::act_param_count(p.epi.act)) return false;
  if (params.size() > 0) p.epi.p0 = params[0];
  if (params.size() > 1) p.epi.p1 = params[1];
  p.epi.residual_first = ctx.node.attr_int("residual_before_activation", 0) != 0;
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
