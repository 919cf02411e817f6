// deepep.PointwiseDepthwiseConv: a 1x1 conv and the depthwise conv that is
// its only reader, as one node (MobileNet's expand + depthwise pair), made at
// load time for the CPU by the pointwise_depthwise_fusion pass
// (src/optimizer/pointwise_depthwise_fusion.cpp) so the fast kernel can keep
// the expanded map, the block's largest, in cache a few rows at a time
// instead of writing it out and reading it back.
//   inputs:  X, W1 [E, C, 1, 1], B1 (optional, [E]): the pointwise conv;
//            W2 [E, 1, KH, KW], B2 (optional, [E]): the depthwise conv
//   attrs:   the depthwise FusedConv's (group = E, strides, pads,
//            dilations, kernel_shape, auto_pad, its epilogue without a
//            residual, channels_last), and the pointwise conv's epilogue as
//            pointwise_activation / pointwise_activation_params
//   output:  the depthwise conv's Y
// float32. The reference is the two deepep.FusedConv references in turn.
#include "ops/channels_last.h"
#include "ops/fused_epilogue.h"
#include "ops/float_io.h"
#include "ops/tensor_util.h"

namespace deepep::ops {
namespace {

const OpDef& fused_conv_def() {
  static const OpDef* def = find_op(kDeepepDomain, "FusedConv");
  DEEPEP_CHECK(def && def->reference, "deepep.PointwiseDepthwiseConv: this build has no deepep.FusedConv");
  return *def;
}

// The pointwise stage as a FusedConv node of its own.
Node pointwise_node(const Node& node) {
  Node pw;
  pw.op_type = "FusedConv";
  pw.domain = kDeepepDomain;
  pw.name = node.name + "/pointwise";
  pw.def = &fused_conv_def();
  if (node.has_attr("channels_last")) pw.attrs["channels_last"] = node.attrs.at("channels_last");
  if (node.has_attr("pointwise_activation")) pw.attrs["activation"] = node.attrs.at("pointwise_activation");
  if (node.has_attr("pointwise_activation_params"))
    pw.attrs["activation_params"] = node.attrs.at("pointwise_activation_params");
  return pw;
}

void pointwise_depthwise_reference(KernelContext& ctx) {
  const Node& node = ctx.node;
  DEEPEP_CHECK(ctx.num_inputs() >= 4 && ctx.has_input(0) && ctx.has_input(1) && ctx.has_input(3), node.describe(),
               ": needs X, W1 and W2 (inputs 0, 1 and 3)");
  const Tensor& w1 = ctx.input(1);
  DEEPEP_CHECK(w1.rank() == 4 && w1.dim(2) == 1 && w1.dim(3) == 1, node.describe(),
               ": W1 must be a 1x1 conv weight [E, C, 1, 1], got ", shape_str(w1.shape()));
  const Node pw = pointwise_node(node);
  KernelContext first{pw, {&ctx.input(0), &w1, ctx.has_input(2) ? &ctx.input(2) : nullptr}, {}, ctx.subgraphs,
                      nullptr};
  first.outputs.resize(1);
  fused_conv_def().reference(first);
  // The depthwise stage reads this node's own attributes (the pointwise_*
  // ones mean nothing to it).
  KernelContext second{node, {&first.outputs[0], &ctx.input(3), ctx.has_input(4) ? &ctx.input(4) : nullptr}, {},
                       ctx.subgraphs, ctx.allocator};
  second.outputs.resize(1);
  fused_conv_def().reference(second);
  ctx.set_output(0, std::move(second.outputs[0]));
}

// The expanded map's value: X's with W1's output channels.
Value expanded_value(const InferContext& ctx) {
  Value e;
  const Value& x = ctx.input(0);
  e.dtype = x.dtype;
  const Tensor* w1 = ctx.constant(1);
  const bool nhwc = channels_last(ctx.node);
  if (x.shape && x.shape->size() == 4) {
    e.shape = x.shape;
    Dim& c = (*e.shape)[nhwc ? 3 : 1];
    if (w1 && w1->rank() == 4) c = Dim::known(w1->dim(0));
    else if (ctx.input(1).shape && !ctx.input(1).shape->empty()) c = (*ctx.input(1).shape)[0];
    else c = Dim{};
  }
  return e;
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_FUSED_OP(PointwiseDepthwiseConv) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0) || !ctx.has_input(1) || !ctx.has_input(3)) return;
    const Value e = expanded_value(ctx);
    InferContext inner{ctx.node, {&e, ctx.inputs[3], ctx.has_input(4) ? ctx.inputs[4] : nullptr}, {}};
    inner.outputs.resize(1);
    if (const OpDef& fc = fused_conv_def(); fc.infer) fc.infer(inner);
    ctx.set(0, inner.outputs[0].dtype, inner.outputs[0].shape);
  };
  def.reference = with_float32_compute(pointwise_depthwise_reference);
  def.cost = [](const Node& n, const std::vector<Shape>& in, const std::vector<Shape>& out) {
    Cost c;
    if (in.size() < 4 || out.empty() || in[0].size() != 4 || in[1].size() != 4 || in[3].size() != 4) return c;
    const Shape& x = in[0];
    const int64_t pixels = x[0] * (channels_last(n) ? x[1] * x[2] : x[2] * x[3]);
    const int64_t E = in[1][0], C = in[1][1];
    c.flops = 2.0 * double(pixels) * double(C) * double(E) + 2.0 * double(shape_numel(out[0])) * double(in[3][2] * in[3][3]);
    c.bytes = 4.0 * double(shape_numel(x) + shape_numel(in[1]) + shape_numel(in[3]) + shape_numel(out[0]));
    return c;
  };
}
