// Conv + activation + residual fusion (level 2).
// Rewrites, one step at a time (each step grows the epilogue of the node
// before it), into deepep.FusedConv (src/ops/fused_conv.cpp):
//   y = Conv(X, W[, B]) or deepep.FusedConv(...), float32
// followed by, as y's only reader:
//   - an activation (Relu, LeakyRelu, Sigmoid, Tanh, Gelu none/tanh, Clip with
//     constant bounds -- ReLU6 --, HardSigmoid, HardSwish, Swish or
//     x*Sigmoid(x)) while it has none; after a residual it marks
//     residual_before_activation (ResNet's Relu(conv + identity));
//   - Add(y, r) / Add(r, y) with r float32 of y's shape (provably: same
//     symbolic shape of the Add's output and y) while it has no residual.
// Must not: fuse when y has another reader or is a graph output; a second
// activation or residual; an Add that broadcasts (a per-channel constant is
// conv_batchnorm_fold's, which runs before, into the bias); types other than
// float32.
// Why: after conv_batchnorm_fold every ResNet/MobileNet block is
// Conv -> Relu/Clip and Conv -> Add -> Relu; fused, no BatchNorm, ReLU or Add
// is left as a kernel of its own and each costs no pass over the activations.
#include "optimizer/fusion_match.h"
#include "optimizer/pass.h"

namespace deepep {
namespace {

using opt::is_op;

bool fuse(Graph& g, Node& n, const UseIndex& uses, PassContext& ctx) {
  const bool fused = n.domain == kDeepepDomain && n.op_type == "FusedConv";
  if (!(is_op(n, "Conv") || fused) || n.outputs.size() != 1 || n.inputs.size() < 2) return false;
  if (!opt::is_f32(n.inputs[0]) || !opt::is_f32(n.inputs[1]) || opt::rank_of(n.inputs[1]).value_or(0) < 3) return false;
  Value* b = n.inputs.size() > 2 ? n.inputs[2] : nullptr;
  Value* res = fused && n.inputs.size() > 3 ? n.inputs[3] : nullptr;
  std::string act = fused ? n.attr_string("activation", "") : "";
  std::vector<float> params = fused ? n.attr_floats("activation_params", {}) : std::vector<float>{};
  bool res_first = fused && n.attr_int("residual_before_activation", 0) != 0;
  Value* y = n.outputs[0];
  std::vector<Node*> nodes{&n};
  Node* last = nullptr;
  std::string what;
  Node* c = uses.sole_consumer(y);
  if (c && is_op(*c, "Add") && c->inputs.size() == 2 && c->outputs.size() == 1) {
    Value* o = opt::other_operand(*c, y);
    if (res || o == y || !opt::is_f32(o) || !opt::same_shape_of(c->outputs[0], y) || !opt::same_shape_of(o, y))
      return false;
    res = o;
    nodes.push_back(c);
    last = c;
    what = "residual";
  } else if (auto a = opt::match_activation(uses, y); a && act.empty()) {
    act = a->name;
    params = a->params;
    res_first = res != nullptr;
    nodes.insert(nodes.end(), a->nodes.begin(), a->nodes.end());
    last = a->nodes.back();
    what = "activation." + a->name;
  } else {
    return false;
  }
  AttrMap attrs;
  for (const auto& [k, at] : n.attrs)
    if (k != "activation" && k != "activation_params" && k != "residual_before_activation") attrs[k] = at;
  std::vector<Value*> ins{n.inputs[0], n.inputs[1]};
  if (b || res) ins.push_back(b);
  if (res) ins.push_back(res);
  std::unordered_set<const Node*> dead(nodes.begin(), nodes.end());
  Node* f = opt::replace_chain(g, last, "FusedConv", kDeepepDomain, ins, dead);
  f->attrs = std::move(attrs);
  if (!act.empty()) {
    Attribute at;
    at.kind = Attribute::Kind::kString;
    at.s = act;
    f->attrs["activation"] = at;
    if (!params.empty()) {
      Attribute p;
      p.kind = Attribute::Kind::kFloats;
      p.floats = params;
      f->attrs["activation_params"] = p;
    }
  }
  if (res && res_first && !act.empty()) {
    Attribute at;
    at.kind = Attribute::Kind::kInt;
    at.i = 1;
    f->attrs["residual_before_activation"] = at;
  }
  ctx.count("fused." + what);
  return true;
}

bool run(Graph& g, PassContext& ctx) {
  return opt::rewrite_to_fixed_point(g, [&](Node& n, const UseIndex& uses) { return fuse(g, n, uses, ctx); });
}

}  // namespace

std::unique_ptr<Pass> make_conv_activation_fusion() {
  return std::make_unique<FunctionPass>("conv_activation_fusion", 2, run);
}

}  // namespace deepep
