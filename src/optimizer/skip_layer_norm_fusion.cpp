// Skip-LayerNorm fusion (level 2).
// Rewrites: s = Add(a, b); y = LayerNormalization(s, gamma, beta) becomes
// y[, s] = deepep.SkipLayerNorm(X, Skip, gamma, beta)<axis, epsilon>. The
// kernel adds with Add's broadcasting (fast when one operand has the sum's
// shape and the other is its trailing dims, e.g. a [1, seq, d] position
// embedding for [batch, seq, d]: that one goes second when provable), so
// unknown dims (exporters' "?" sequence lengths) need no proof. When s has
// other readers (the transformer residual stream) or is a graph output, the
// fused op also writes s (output 1).
// Must not: rewrite when a rank is unknown (the normalized axis is then
// unknown); when the LayerNorm's
// Mean / InvStdDev outputs are read; when gamma or beta broadcast over more
// than the normalized dims; for types other than float32; or when the fused
// node could not be placed before s's other readers (gamma or beta computed
// after the Add).
// Why: the residual Add and the norm each pass over the activations; fused,
// the sum is normalized while its row is in cache (BERT: 2 per layer).
#include "optimizer/fusion_match.h"
#include "optimizer/pass.h"

namespace deepep {
namespace {

using opt::is_op;

// `skip` is x's shape or x's trailing dims behind leading 1s.
bool trailing_of(const Value* skip, const Value* x) {
  if (!skip->shape || !x->shape || skip->shape->size() > x->shape->size()) return false;
  const SymShape &s = *skip->shape, &xs = *x->shape;
  size_t lead = 0;
  while (lead < s.size() && s[lead].is_known() && s[lead].value == 1) ++lead;
  const size_t off = xs.size() - s.size();
  for (size_t i = lead; i < s.size(); ++i) {
    const Dim &a = s[i], &b = xs[off + i];
    if (!(a.is_known() || a.is_symbol()) || !(a == b)) return false;
  }
  return true;  // element i of x meets skip[i % skip.numel]
}

// gamma/beta broadcast into x.shape[axis:] only.
bool within_norm(const Value* p, int64_t axis, int64_t rank) {
  if (!p) return true;
  if (!p->shape) return false;
  return int64_t(p->shape->size()) <= rank - axis;
}

bool fuse(Graph& g, Node& ln, const UseIndex& uses, PassContext& ctx) {
  if (!is_op(ln, "LayerNormalization") || ln.inputs.size() < 2 || ln.outputs.empty()) return false;
  for (size_t i = 1; i < ln.outputs.size(); ++i)
    if (ln.outputs[i] && (!uses.uses(ln.outputs[i]).empty() || uses.is_output(ln.outputs[i]))) return false;
  Value* s = ln.inputs[0];
  Node* add = s ? s->producer : nullptr;
  if (!add || !is_op(*add, "Add") || add->inputs.size() != 2 || add->outputs.size() != 1 || !opt::is_f32(s)) return false;
  auto rank = opt::rank_of(s);
  if (!rank || *rank < 1) return false;
  const int64_t axis = ln.attr_int("axis", -1) < 0 ? ln.attr_int("axis", -1) + *rank : ln.attr_int("axis", -1);
  if (axis < 0 || axis >= *rank) return false;
  Value* gamma = ln.inputs[1];
  Value* beta = ln.inputs.size() > 2 ? ln.inputs[2] : nullptr;
  if (!within_norm(gamma, axis, *rank) || !within_norm(beta, axis, *rank) || !opt::is_f32(gamma) ||
      (beta && !opt::is_f32(beta)))
    return false;
  Value* x = add->inputs[0];
  Value* skip = add->inputs[1];
  if (!opt::is_f32(x) || !opt::is_f32(skip) || !opt::rank_of(x) || !opt::rank_of(skip)) return false;
  // X first: the operand of the sum's shape, the other its trailing dims
  // when that is provable (the kernel's fast path; it decides at run time).
  if (!(opt::same_shape_of(x, s) && trailing_of(skip, s)) && opt::same_shape_of(skip, s) && trailing_of(x, s))
    std::swap(x, skip);
  const bool keep_sum = uses.sole_consumer(s) != &ln;
  const AttrMap attrs = ln.attrs;  // ln goes below
  std::unordered_set<const Node*> dead{add, &ln};
  std::vector<Value*> ins{x, skip, gamma};
  if (beta) ins.push_back(beta);
  Node* n = nullptr;
  if (!keep_sum) {
    n = opt::replace_chain(g, &ln, "SkipLayerNorm", kDeepepDomain, ins, dead);
  } else {
    // The node goes where the Add was, before s's other readers: gamma and
    // beta must be defined there already.
    for (const Value* p : {gamma, beta})
      if (p && p->producer && p->owner == &g && p->producer->id > add->id) return false;
    Value* y = ln.outputs[0];
    ln.outputs[0] = nullptr;
    add->outputs[0] = nullptr;
    n = insert_node_before(g, add, "SkipLayerNorm", ins, {y, s}, kDeepepDomain);
    n->name = ln.name;
    for (const Node* d : dead) absorb(*n, *d);
    remove_nodes(g, dead);
  }
  for (const char* k : {"axis", "epsilon"})
    if (attrs.count(k)) n->attrs[k] = attrs.at(k);
  ctx.count(keep_sum ? "fused.with_sum" : "fused");
  return true;
}

bool run(Graph& g, PassContext& ctx) {
  return opt::rewrite_to_fixed_point(g, [&](Node& n, const UseIndex& uses) { return fuse(g, n, uses, ctx); });
}

}  // namespace

std::unique_ptr<Pass> make_skip_layer_norm_fusion() {
  return std::make_unique<FunctionPass>("skip_layer_norm_fusion", 2, run);
}

}  // namespace deepep
