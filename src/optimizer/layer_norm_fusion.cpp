// LayerNorm / RMSNorm fusion (level 2).
// Rewrites the decomposed normalizations exporters write below opset 17:
//   LayerNorm: m = ReduceMean(x, axes); d = Sub(x, m);
//              v = ReduceMean(Pow(d, 2) | Mul(d, d), axes);
//              n = Div(d, Sqrt(Add(v, eps)))  (or Mul(d, Reciprocal(Sqrt(..))));
//              y = Add(Mul(n, gamma), beta)   (gamma and beta each optional)
//              -> LayerNormalization(x, gamma, beta)<axis, epsilon>
//   RMSNorm:   r = Sqrt(Add(ReduceMean(Pow(x, 2) | Mul(x, x), axes), eps));
//              y = Mul(Div(x, r) | Mul(x, Reciprocal(r)), gamma)
//              -> RMSNormalization(x, gamma)<axis, epsilon>
// in any operand order of the commutative ops; a missing gamma becomes a
// constant of ones (the normalized dims must then be known).
// Must not: rewrite when the reduction axes are not the trailing dims
// [axis, rank) (the normalized axes) or differ between the two means; when
// ReduceMean drops the reduced dims (keepdims = 0); when gamma or beta is not
// a constant that varies over the normalized dims only (a per-row scale is
// not LayerNorm's); when eps is not a constant scalar; or when an
// intermediate value has another reader or is a graph output.
// Why: 9 nodes (and passes over the activations) per norm become one kernel.
#include "optimizer/fusion_match.h"
#include "optimizer/pass.h"

namespace deepep {
namespace {

using opt::is_op;
using opt::other_operand;

// ReduceMean over a trailing block of axes with keepdims: the first axis.
std::optional<int64_t> mean_axis(const Node& n, int64_t rank) {
  if (!is_op(n, "ReduceMean") || n.outputs.size() != 1 || n.attr_int("keepdims", 1) != 1) return std::nullopt;
  auto axes = opt::ints_arg(n, 1, "axes");
  if (!axes || axes->empty()) return std::nullopt;
  auto norm = opt::normalize_axes(*axes, rank);
  if (!norm) return std::nullopt;
  for (size_t i = 0; i < norm->size(); ++i)
    if ((*norm)[i] != rank - int64_t(norm->size()) + int64_t(i)) return std::nullopt;
  return norm->front();
}

// `p` squares `d`: Pow(d, 2) or Mul(d, d).
bool squares(const Node& p, const Value* d) {
  if (p.outputs.size() != 1 || p.inputs.size() != 2) return false;
  if (is_op(p, "Pow")) return p.inputs[0] == d && opt::is_scalar(p.inputs[1], 2.0);
  return is_op(p, "Mul") && p.inputs[0] == d && p.inputs[1] == d;
}

// A constant that broadcasts into the normalized dims x.shape[axis:] only.
bool is_norm_param(const Value* p, const Value* x, int64_t axis) {
  const Tensor* t = opt::constant_of(p);
  if (!t || t->dtype() != x->dtype || !x->shape) return false;
  const SymShape& xs = *x->shape;
  const int64_t rank = int64_t(xs.size());
  if (t->rank() > rank - axis) return false;
  for (int i = 0; i < t->rank(); ++i) {
    const int64_t d = t->dim(t->rank() - 1 - i);
    const Dim& xd = xs[size_t(rank - 1 - i)];
    if (d != 1 && !(xd.is_known() && xd.value == d)) return false;
  }
  return true;
}

struct Tail {
  Value* gamma = nullptr;
  Value* beta = nullptr;
  Node* last = nullptr;
};

// After the normalized value `nv` (produced by `last`): Mul(gamma), then Add(beta) for LayerNorm.
Tail scale_shift(const UseIndex& uses, Value* nv, Node* last, const Value* x, int64_t axis, bool shift,
                 std::vector<Node*>& nodes) {
  Tail t{nullptr, nullptr, last};
  Node* mul = uses.sole_consumer(nv);
  if (mul && is_op(*mul, "Mul") && mul->outputs.size() == 1 && is_norm_param(other_operand(*mul, nv), x, axis)) {
    t.gamma = other_operand(*mul, nv);
    nodes.push_back(mul);
    t.last = mul;
    nv = mul->outputs[0];
  }
  if (!shift) return t;
  Node* add = uses.sole_consumer(nv);
  if (add && is_op(*add, "Add") && add->outputs.size() == 1 && is_norm_param(other_operand(*add, nv), x, axis)) {
    t.beta = other_operand(*add, nv);
    nodes.push_back(add);
    t.last = add;
  }
  return t;
}

// From the variance/mean-square value `v`: Add(eps), Sqrt, then Div(d, .) or
// Mul(d, Reciprocal(.)) reading `d`. Returns the node producing the normalized value.
Node* normalize_by(const UseIndex& uses, Value* v, const Value* d, double& eps, std::vector<Node*>& nodes) {
  Node* add = uses.sole_consumer(v);
  if (!add || !is_op(*add, "Add") || add->outputs.size() != 1) return nullptr;
  auto e = opt::scalar_of(other_operand(*add, v));
  if (!e) return nullptr;
  Node* sq = uses.sole_consumer(add->outputs[0]);
  if (!sq || !is_op(*sq, "Sqrt") || sq->outputs.size() != 1) return nullptr;
  Node* next = uses.sole_consumer(sq->outputs[0]);
  if (!next) return nullptr;
  std::vector<Node*> found{add, sq};
  if (is_op(*next, "Div")) {
    if (next->inputs.size() != 2 || next->inputs[0] != d || next->inputs[1] != sq->outputs[0]) return nullptr;
  } else if (is_op(*next, "Reciprocal") && next->outputs.size() == 1) {
    Node* mul = uses.sole_consumer(next->outputs[0]);
    if (!mul || !is_op(*mul, "Mul") || other_operand(*mul, next->outputs[0]) != d) return nullptr;
    found.push_back(next);
    next = mul;
  } else {
    return nullptr;
  }
  if (next->outputs.size() != 1) return nullptr;
  found.push_back(next);
  eps = *e;
  nodes.insert(nodes.end(), found.begin(), found.end());
  return next;
}

Value* ones_for(Graph& g, const Value* x, int64_t axis, const std::string& base) {
  const SymShape& xs = *x->shape;
  Shape s;
  for (size_t i = size_t(axis); i < xs.size(); ++i) {
    if (!xs[i].is_known()) return nullptr;
    s.push_back(xs[i].value);
  }
  return new_constant(g, base, opt::from_doubles(x->dtype, s, std::vector<double>(size_t(shape_numel(s)), 1.0)));
}

void set_norm_attrs(Node* n, int64_t axis, double eps) {
  Attribute a;
  a.kind = Attribute::Kind::kInt;
  a.i = axis;
  n->attrs["axis"] = a;
  Attribute e;
  e.kind = Attribute::Kind::kFloat;
  e.f = float(eps);
  n->attrs["epsilon"] = e;
}

// LayerNorm from its first ReduceMean `mean`.
bool fuse_layer_norm(Graph& g, Node& mean, const UseIndex& uses, PassContext& ctx) {
  Value* x = mean.inputs.empty() ? nullptr : mean.inputs[0];
  auto rank = opt::rank_of(x);
  if (!rank || !opt::is_float(x->dtype)) return false;
  auto axis = mean_axis(mean, *rank);
  if (!axis) return false;
  Node* sub = uses.sole_consumer(mean.outputs[0]);
  if (!sub || !is_op(*sub, "Sub") || sub->inputs.size() != 2 || sub->inputs[0] != x || sub->inputs[1] != mean.outputs[0] ||
      sub->outputs.size() != 1)
    return false;
  Value* d = sub->outputs[0];
  const std::vector<Node*> rs = opt::readers(uses, d);
  if (rs.size() != 2) return false;
  // One reader squares d (then a second mean), the other divides by the std.
  for (int k = 0; k < 2; ++k) {
    Node* sq = rs[size_t(k)];
    if (!squares(*sq, d)) continue;
    Node* var = uses.sole_consumer(sq->outputs[0]);
    if (!var || mean_axis(*var, *rank) != axis || var->inputs[0] != sq->outputs[0]) return false;
    std::vector<Node*> nodes{&mean, sub, sq, var};
    double eps = 0;
    Node* div = normalize_by(uses, var->outputs[0], d, eps, nodes);
    if (!div) return false;
    // d's readers are exactly the square and the division (or its Mul).
    size_t d_reads = 0;
    for (const Use& u : uses.uses(d)) d_reads += u.node == sq || u.node == div;
    if (d_reads != uses.uses(d).size()) return false;
    Tail t = scale_shift(uses, div->outputs[0], div, x, *axis, true, nodes);
    Value* gamma = t.gamma ? t.gamma : ones_for(g, x, *axis, x->name + "_ln_scale");
    if (!gamma) return false;
    std::vector<Value*> ins{x, gamma};
    if (t.beta) ins.push_back(t.beta);
    std::unordered_set<const Node*> dead(nodes.begin(), nodes.end());
    Node* ln = opt::replace_chain(g, t.last, "LayerNormalization", "", ins, dead);
    set_norm_attrs(ln, *axis - *rank, eps);
    ctx.count("fused.LayerNormalization");
    return true;
  }
  return false;
}

// RMSNorm from its ReduceMean `ms` of x squared.
bool fuse_rms_norm(Graph& g, Node& ms, const UseIndex& uses, PassContext& ctx) {
  Value* s = ms.inputs.empty() ? nullptr : ms.inputs[0];
  Node* sq = s ? s->producer : nullptr;
  if (!sq || uses.sole_consumer(s) != &ms || sq->inputs.empty()) return false;
  Value* x = sq->inputs[0];
  if (!squares(*sq, x)) return false;
  auto rank = opt::rank_of(x);
  if (!rank || !opt::is_float(x->dtype)) return false;
  auto axis = mean_axis(ms, *rank);
  if (!axis) return false;
  std::vector<Node*> nodes{sq, &ms};
  double eps = 0;
  Node* div = normalize_by(uses, ms.outputs[0], x, eps, nodes);
  if (!div) return false;
  Tail t = scale_shift(uses, div->outputs[0], div, x, *axis, false, nodes);
  Value* gamma = t.gamma ? t.gamma : ones_for(g, x, *axis, x->name + "_rms_scale");
  if (!gamma) return false;
  std::unordered_set<const Node*> dead(nodes.begin(), nodes.end());
  Node* rms = opt::replace_chain(g, t.last, "RMSNormalization", "", {x, gamma}, dead);
  set_norm_attrs(rms, *axis - *rank, eps);
  ctx.count("fused.RMSNormalization");
  return true;
}

bool run(Graph& g, PassContext& ctx) {
  // LayerNorm first: its variance part alone is an RMSNorm of x - mean.
  bool changed = opt::rewrite_to_fixed_point(g, [&](Node& n, const UseIndex& uses) {
    return is_op(n, "ReduceMean") && fuse_layer_norm(g, n, uses, ctx);
  });
  changed = opt::rewrite_to_fixed_point(g, [&](Node& n, const UseIndex& uses) {
    return is_op(n, "ReduceMean") && fuse_rms_norm(g, n, uses, ctx);
  }) || changed;
  return changed;
}

}  // namespace

std::unique_ptr<Pass> make_layer_norm_fusion() {
  return std::make_unique<FunctionPass>("layer_norm_fusion", 2, run);
}

}  // namespace deepep
