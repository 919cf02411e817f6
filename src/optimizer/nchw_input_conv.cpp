// NCHW input for few-channel convs (load time, CPU only: not part of a
// fusion level; fuse_for_cpu in pipeline.cpp runs it after the
// channels-last pass, whose edge transposes it removes).
// Rewrites
//   T = Transpose(X, [0,2,3,1])   X float32, rank 4, C <= kNchwInputMaxChannels
//   Y = FusedConv(T, W, ...)      channels_last = 1, one group
// with T read by nothing else, into Y = FusedConv(X, W, ...) with
// channels_last = 2 (X stays NCHW; Y and the residual NHWC, ops/channels_last.h).
// Must not: touch a transpose with another reader (or a graph output), a
// grouped conv (depthwise: the direct conv takes one group only), a conv
// already channels_last = 2, X of more channels or of unknown channels.
// Why: an RGB image enters the NHWC region through a transpose of its own
// (MobileNetV2's 224x224x3: 0.12-0.15 ms a run, 1.5 % of the model, reading
// and writing 600 KB); the CPU direct conv copies each input row into a
// zero-padded window anyway, and gathers it from the three planes as cheaply.
// (MLAS's first NCHWc conv reads the NCHW image the same way.)
#include "ops/channels_last.h"
#include "optimizer/fusion_match.h"
#include "optimizer/pass.h"

namespace deepep {
namespace {

bool rewrite(Node& n, const UseIndex& uses, PassContext& ctx) {
  if (n.domain != kDeepepDomain || n.op_type != "FusedConv" || n.attr_int("channels_last", 0) != 1) return false;
  if (n.inputs.empty() || n.attr_int("group", 1) != 1) return false;
  Value* t = n.inputs[0];
  const Node* tr = t ? t->producer : nullptr;
  if (!tr || !tr->domain.empty() || tr->op_type != "Transpose" || tr->inputs.size() != 1 ||
      tr->attr_ints("perm", {}) != ops::kToNhwc || uses.sole_consumer(t) != &n)
    return false;
  Value* x = tr->inputs[0];
  if (!opt::is_f32(x) || !x->shape || x->shape->size() != 4) return false;
  const Dim& c = (*x->shape)[1];
  if (!c.is_known() || c.value < 1 || c.value > ops::kNchwInputMaxChannels) return false;
  n.inputs[0] = x;
  n.attrs["channels_last"].i = 2;
  ctx.count("nchw_input_conv");
  return true;
}

bool run(Graph& g, PassContext& ctx) {
  return opt::rewrite_to_fixed_point(g, [&](Node& n, const UseIndex& uses) { return rewrite(n, uses, ctx); });
}

}  // namespace

std::unique_ptr<Pass> make_nchw_input_conv() { return std::make_unique<FunctionPass>("nchw_input_conv", 2, run); }

}  // namespace deepep
