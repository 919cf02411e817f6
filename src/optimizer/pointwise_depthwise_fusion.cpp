// Pointwise + depthwise conv fusion (load time, CPU only: not part of a
// fusion level; fuse_for_cpu in pipeline.cpp runs it after the channels-last
// pass, whose deepep.FusedConv nodes it matches).
// Rewrites
//   E = FusedConv(X, W1[, B1])   1x1, stride 1, no padding, one group,
//                                no residual, channels_last
//   Y = FusedConv(E, W2[, B2])   depthwise (group = E's channels, W2
//                                [E, 1, KH, KW]), no residual, channels_last
// with E read by nothing else, into Y = deepep.PointwiseDepthwiseConv(X, W1,
// B1, W2, B2) (src/ops/fused_pointwise_depthwise.cpp), when E is a large
// map: at least kMinExpandedBytes per image (MobileNet's expand + depthwise
// at 112x112 to 28x28).
// Must not: fuse a pair whose E has another reader or is a graph output, a
// conv with a residual, a strided/padded/grouped 1x1, an E whose height,
// width or channels are unknown, types other than float32.
// Why: the expanded map is the block's largest (MobileNetV2's 112x112x96 is
// 4.8 MB): written by the 1x1 conv and read back by the depthwise one it
// goes through memory twice; the fused kernel makes it a few rows at a time
// into a buffer that stays in the core's cache. Small maps stay in cache
// anyway, and the fused kernel recomputes the rows two threads' bands share,
// so they are left alone.
#include "ops/channels_last.h"
#include "optimizer/fusion_match.h"
#include "optimizer/pass.h"

namespace deepep {
namespace {

using opt::is_op;

// Smallest expanded map (bytes) worth fusing: above the 14x14x576 (451 KB)
// of MobileNetV2's late blocks, which stay in L2 between the two convs.
constexpr int64_t kMinExpandedBytes = 512 * 1024;

bool is_channels_last_conv(const Node& n) {
  return n.domain == kDeepepDomain && n.op_type == "FusedConv" && n.outputs.size() == 1 && n.outputs[0] &&
         n.inputs.size() >= 2 && n.inputs.size() <= 3 && n.attr_int("channels_last", 0) == 1 && opt::is_f32(n.inputs[0]) &&
         opt::is_f32(n.inputs[1]) && n.inputs[1]->data && n.inputs[1]->data->rank() == 4 &&
         (n.inputs.size() < 3 || !n.inputs[2] || opt::is_f32(n.inputs[2]));
}

bool all_equal(const std::vector<int64_t>& v, int64_t want) {
  for (int64_t x : v)
    if (x != want) return false;
  return true;
}

bool is_pointwise(const Node& n) {
  const Tensor& w = *n.inputs[1]->data;
  const std::string pad = n.attr_string("auto_pad", "NOTSET");
  return w.dim(2) == 1 && w.dim(3) == 1 && n.attr_int("group", 1) == 1 && all_equal(n.attr_ints("strides", {}), 1) &&
         all_equal(n.attr_ints("pads", {}), 0) && (pad == "NOTSET" || pad == "VALID");
}

bool is_depthwise(const Node& n, int64_t channels) {
  const Tensor& w = *n.inputs[1]->data;
  return w.dim(0) == channels && w.dim(1) == 1 && n.attr_int("group", 1) == channels;
}

bool fuse(Graph& g, Node& d, const UseIndex& uses, PassContext& ctx) {
  if (!is_channels_last_conv(d)) return false;
  Value* e = d.inputs[0];
  Node* p = e->producer;
  if (!p || !is_channels_last_conv(*p) || uses.sole_consumer(e) != &d || !is_pointwise(*p)) return false;
  const int64_t channels = p->inputs[1]->data->dim(0);
  if (!is_depthwise(d, channels) || !e->shape || e->shape->size() != 4) return false;
  // Per image (the kernel walks one image's rows at a time; a symbolic batch
  // does not matter).
  int64_t bytes = 4;
  for (size_t i = 1; i < 4; ++i) {
    const Dim& dim = (*e->shape)[i];
    if (!dim.is_known()) return false;
    bytes *= dim.value;
  }
  if (bytes < kMinExpandedBytes) return false;
  AttrMap attrs = d.attrs;
  if (p->has_attr("activation")) attrs["pointwise_activation"] = p->attrs.at("activation");
  if (p->has_attr("activation_params")) attrs["pointwise_activation_params"] = p->attrs.at("activation_params");
  auto input = [](const Node& n, size_t i) { return i < n.inputs.size() ? n.inputs[i] : nullptr; };
  std::vector<Value*> ins{p->inputs[0], p->inputs[1], input(*p, 2), d.inputs[1], input(d, 2)};
  Node* f = opt::replace_chain(g, &d, "PointwiseDepthwiseConv", kDeepepDomain, ins, {p, &d});
  f->attrs = std::move(attrs);
  ctx.count("fused.pointwise_depthwise");
  return true;
}

bool run(Graph& g, PassContext& ctx) {
  return opt::rewrite_to_fixed_point(g, [&](Node& n, const UseIndex& uses) { return fuse(g, n, uses, ctx); });
}

}  // namespace

std::unique_ptr<Pass> make_pointwise_depthwise_fusion() {
  return std::make_unique<FunctionPass>("pointwise_depthwise_fusion", 2, run);
}

}  // namespace deepep
