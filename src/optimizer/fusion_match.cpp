#include "optimizer/fusion_match.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace deepep::opt {

std::optional<double> scalar_of(const Value* v) {
  const Tensor* t = constant_of(v);
  if (!t || t->numel() != 1 || !is_float(t->dtype())) return std::nullopt;
  return t->get_double(0);
}

bool is_scalar(const Value* v, double want, double rtol) {
  auto s = scalar_of(v);
  return s && std::fabs(*s - want) <= rtol * std::fabs(want);
}

Value* other_operand(const Node& n, const Value* v) {
  if (n.inputs.size() != 2) return nullptr;
  if (n.inputs[0] == v) return n.inputs[1];
  if (n.inputs[1] == v) return n.inputs[0];
  return nullptr;
}

std::vector<Node*> readers(const UseIndex& uses, const Value* v) {
  std::vector<Node*> out;
  if (uses.is_output(v)) return {};
  for (const Use& u : uses.uses(v)) {
    if (u.input < 0) return {};
    if (std::find(out.begin(), out.end(), u.node) == out.end()) out.push_back(u.node);
  }
  return out;
}

bool is_f32(const Value* v) { return v && v->dtype == DType::kFloat32; }

std::optional<Activation> match_activation(const UseIndex& uses, Value* v) {
  const std::vector<Node*> rs = readers(uses, v);
  // SiLU: x * Sigmoid(x), x read by exactly the two.
  if (rs.size() == 2) {
    for (int k = 0; k < 2; ++k) {
      Node* s = rs[size_t(k)];
      Node* m = rs[size_t(1 - k)];
      if (is_op(*s, "Sigmoid") && is_op(*m, "Mul") && s->outputs.size() == 1 && m->outputs.size() == 1 &&
          other_operand(*m, v) == s->outputs[0] && uses.sole_consumer(s->outputs[0]) == m &&
          uses.uses(v).size() == 2)
        return Activation{"SiLU", {}, {s, m}, m->outputs[0]};
    }
    return std::nullopt;
  }
  Node* n = uses.sole_consumer(v);
  if (!n || !n->domain.empty() || n->outputs.size() != 1 || n->inputs.empty() || n->inputs[0] != v) return std::nullopt;
  Activation a{n->op_type, {}, {n}, n->outputs[0]};
  const std::string& op = n->op_type;
  if (op == "Relu" || op == "Sigmoid" || op == "Tanh" || op == "HardSwish") return a;
  if (op == "Gelu") {
    const std::string approx = n->attr_string("approximate", "none");
    if (approx == "none") return a;
    if (approx == "tanh") return a.name = "GeluTanh", a;
    return std::nullopt;
  }
  if (op == "LeakyRelu") return a.params = {n->attr_float("alpha", 0.01f)}, a;
  if (op == "HardSigmoid") return a.params = {n->attr_float("alpha", 0.2f), n->attr_float("beta", 0.5f)}, a;
  if (op == "Swish") {
    if (n->attr_float("alpha", 1.0f) != 1.0f) return std::nullopt;
    return a.name = "SiLU", a;
  }
  if (op == "Clip") {
    float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
    if (n->opset > 0 && n->opset < 11) {
      lo = n->attr_float("min", lo);
      hi = n->attr_float("max", hi);
    } else {
      for (int i = 1; i <= 2; ++i) {
        if (int(n->inputs.size()) <= i || !n->inputs[size_t(i)]) continue;
        auto s = scalar_of(n->inputs[size_t(i)]);
        if (!s) return std::nullopt;
        (i == 1 ? lo : hi) = float(*s);
      }
    }
    if (!(lo <= hi)) return std::nullopt;  // Clip with min > max is all max: not worth a case
    return a.params = {lo, hi}, a;
  }
  return std::nullopt;
}

Node* replace_chain(Graph& g, Node* last, const std::string& op, const std::string& domain,
                    std::vector<Value*> inputs, const std::unordered_set<const Node*>& dead) {
  Value* out = last->outputs[0];
  last->outputs[0] = nullptr;
  Node* n = insert_node_before(g, last, op, std::move(inputs), {out}, domain);
  n->name = last->name;
  for (const Node* d : dead) absorb(*n, *d);
  remove_nodes(g, dead);
  return n;
}

}  // namespace deepep::opt
