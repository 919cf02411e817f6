// GELU fusion (level 2).
// Rewrites the exported GELU formulas into one ONNX Gelu node:
//   erf form:  x * 0.5 * (1 + Erf(x / 1.4142135))   -> Gelu(x)
//              (or Erf(x * 0.70710678))
//   tanh form: 0.5 * x * (1 + Tanh(0.7978846 * (x + 0.044715 * x^3)))
//              -> Gelu<approximate="tanh">(x), x^3 as Pow(x, 3), x*x*x or x*(x*x)
// in any operand order and association of the outer product x * 0.5 * (1 + ..)
// (x*0.5 may also be Div(x, 2)). Constants match within 1e-5 relative.
// Must not: rewrite when an intermediate value (everything but x) has
// another reader or is a graph output, when a constant differs (a scaled
// Erf is not GELU), or when x differs between the branches.
// Why: BERT's erf GELU is 5 nodes and GPT-2's tanh GELU 8, each a pass over
// the FF activations; Gelu is one, and the matmul epilogue fusion then takes
// it into the FF GEMM.
#include <cmath>

#include "optimizer/fusion_match.h"
#include "optimizer/pass.h"

namespace deepep {
namespace {

using opt::is_op;
using opt::is_scalar;
using opt::other_operand;

constexpr double kSqrt2 = 1.4142135623730951, kSqrtHalf = 0.7071067811865476;
constexpr double kSqrt2OverPi = 0.7978845608028654, kCubeCoeff = 0.044715;

// `v` = Mul(x, c) / Mul(c, x) / Div(x, 1/c) with c ~ want: returns x.
Value* scaled_input(const Value* v, double want_mul) {
  Node* p = v ? v->producer : nullptr;
  if (!p || !p->domain.empty() || p->inputs.size() != 2) return nullptr;
  if (p->op_type == "Mul") {
    if (is_scalar(p->inputs[1], want_mul)) return p->inputs[0];
    if (is_scalar(p->inputs[0], want_mul)) return p->inputs[1];
  } else if (p->op_type == "Div") {
    if (is_scalar(p->inputs[1], 1.0 / want_mul)) return p->inputs[0];
  }
  return nullptr;
}

// The outer product: `a` = (1 + f(x)); finds the node whose output is
// x * 0.5 * a (any association), collecting the matched nodes.
Node* match_outer(const UseIndex& uses, Value* a, Value* x, std::vector<Node*>& nodes) {
  Node* m1 = uses.sole_consumer(a);
  if (!m1 || !is_op(*m1, "Mul") || m1->outputs.size() != 1) return nullptr;
  Value* t = other_operand(*m1, a);
  if (t == a) return nullptr;
  if (t == x || is_scalar(t, 0.5)) {
    // (x * a) * 0.5   or   (0.5 * a) * x
    Node* m2 = uses.sole_consumer(m1->outputs[0]);
    if (!m2 || !is_op(*m2, "Mul") || m2->outputs.size() != 1) return nullptr;
    Value* u = other_operand(*m2, m1->outputs[0]);
    if (!(t == x ? is_scalar(u, 0.5) : u == x)) return nullptr;
    nodes.push_back(m1);
    nodes.push_back(m2);
    return m2;
  }
  // (x * 0.5) * a
  if (!t || !t->producer || uses.sole_consumer(t) != m1 || scaled_input(t, 0.5) != x) return nullptr;
  nodes.push_back(t->producer);
  nodes.push_back(m1);
  return m1;
}

// Add(f, 1) / Add(1, f) reading `f` only: its output.
Value* plus_one(const UseIndex& uses, const Value* f, std::vector<Node*>& nodes) {
  Node* add = uses.sole_consumer(f);
  if (!add || !is_op(*add, "Add") || add->outputs.size() != 1 || !is_scalar(other_operand(*add, f), 1.0)) return nullptr;
  nodes.push_back(add);
  return add->outputs[0];
}

// x^3 as Pow(x, 3), Mul(x, Mul(x, x)) or Mul(Mul(x, x), x): x, and the nodes.
Value* cube_base(const UseIndex& uses, const Value* c, std::vector<Node*>& nodes) {
  Node* p = c ? c->producer : nullptr;
  if (!p || uses.sole_consumer(c) == nullptr) return nullptr;
  if (is_op(*p, "Pow") && p->inputs.size() == 2 && is_scalar(p->inputs[1], 3.0)) {
    nodes.push_back(p);
    return p->inputs[0];
  }
  if (!is_op(*p, "Mul") || p->inputs.size() != 2) return nullptr;
  for (int k = 0; k < 2; ++k) {
    Value* sq = p->inputs[size_t(k)];
    Value* x = p->inputs[size_t(1 - k)];
    Node* q = sq->producer;
    if (q && is_op(*q, "Mul") && q->inputs.size() == 2 && q->inputs[0] == x && q->inputs[1] == x &&
        uses.sole_consumer(sq) == p) {
      nodes.push_back(q);
      nodes.push_back(p);
      return x;
    }
  }
  return nullptr;
}

bool fuse(Graph& g, Node& n, const UseIndex& uses, PassContext& ctx) {
  if (n.outputs.size() != 1 || n.inputs.size() != 1 || !n.domain.empty()) return false;
  std::vector<Node*> nodes{&n};
  Value* x = nullptr;
  bool tanh_form = false;
  if (n.op_type == "Erf") {
    Value* in = n.inputs[0];
    if (uses.sole_consumer(in) != &n || !in->producer) return false;
    x = scaled_input(in, kSqrtHalf);
    if (!x && in->producer->op_type == "Div" && is_scalar(in->producer->inputs[1], kSqrt2)) x = in->producer->inputs[0];
    if (!x) return false;
    nodes.push_back(in->producer);
  } else if (n.op_type == "Tanh") {
    // Tanh(k * (x + 0.044715 * x^3))
    Value* in = n.inputs[0];
    if (uses.sole_consumer(in) != &n || !in->producer || !is_op(*in->producer, "Mul")) return false;
    Node* mk = in->producer;
    Value* inner = is_scalar(mk->inputs[1], kSqrt2OverPi) ? mk->inputs[0]
                   : is_scalar(mk->inputs[0], kSqrt2OverPi) ? mk->inputs[1] : nullptr;
    if (!inner || !inner->producer || !is_op(*inner->producer, "Add") || uses.sole_consumer(inner) != mk) return false;
    Node* add = inner->producer;
    if (add->inputs.size() != 2) return false;
    for (int k = 0; k < 2 && !x; ++k) {
      Value* cand = add->inputs[size_t(k)];
      Value* term = add->inputs[size_t(1 - k)];
      Node* mc = term ? term->producer : nullptr;
      if (!mc || !is_op(*mc, "Mul") || mc->inputs.size() != 2 || uses.sole_consumer(term) != add) continue;
      Value* cube = is_scalar(mc->inputs[1], kCubeCoeff) ? mc->inputs[0]
                    : is_scalar(mc->inputs[0], kCubeCoeff) ? mc->inputs[1] : nullptr;
      std::vector<Node*> cn;
      if (cube && cube_base(uses, cube, cn) == cand) {
        x = cand;
        nodes.insert(nodes.end(), {mk, add, mc});
        nodes.insert(nodes.end(), cn.begin(), cn.end());
      }
    }
    if (!x) return false;
    tanh_form = true;
  } else {
    return false;
  }
  Value* a = plus_one(uses, n.outputs[0], nodes);
  if (!a) return false;
  Node* root = match_outer(uses, a, x, nodes);
  if (!root || !opt::is_float(x->dtype)) return false;
  std::unordered_set<const Node*> dead(nodes.begin(), nodes.end());
  Node* gelu = opt::replace_chain(g, root, "Gelu", "", {x}, dead);
  if (tanh_form) {
    Attribute at;
    at.kind = Attribute::Kind::kString;
    at.s = "tanh";
    gelu->attrs["approximate"] = at;
  }
  ctx.count(tanh_form ? "fused.tanh" : "fused.erf");
  return true;
}

bool run(Graph& g, PassContext& ctx) {
  return opt::rewrite_to_fixed_point(g, [&](Node& n, const UseIndex& uses) { return fuse(g, n, uses, ctx); });
}

}  // namespace

std::unique_ptr<Pass> make_gelu_fusion() { return std::make_unique<FunctionPass>("gelu_fusion", 2, run); }

}  // namespace deepep
