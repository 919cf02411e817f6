// Matchers shared by the level-2 pattern fusions (gelu, layer norm, skip
// layer norm, attention, matmul and conv epilogues): scalar constants,
// operands of binary ops, readers, activation recognition, and the rewrite
// that replaces a matched chain by one node.
#pragma once
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "ir/graph_edit.h"
#include "ir/op_registry.h"
#include "optimizer/pattern.h"

namespace deepep::opt {

// The value of a one-element float constant, else nullopt.
std::optional<double> scalar_of(const Value* v);
// `v` is a one-element float constant within relative tolerance `rtol` of `want`.
bool is_scalar(const Value* v, double want, double rtol = 1e-5);
// For a two-input node reading `v`: the other input (v itself for op(v, v));
// nullptr when `n` does not read v or has not two inputs.
Value* other_operand(const Node& n, const Value* v);
// The distinct nodes reading `v` through node inputs; empty when a subgraph
// reads it or it is a graph output (a value that must stay).
std::vector<Node*> readers(const UseIndex& uses, const Value* v);
bool is_f32(const Value* v);
// Same symbolic shape, known rank (opt::same_shape).
inline bool same_shape_of(const Value* a, const Value* b) { return a && b && same_shape(a->shape, b->shape); }

// An activation a fused op's epilogue can apply (ops/fused_epilogue.h).
struct Activation {
  std::string name;            // "Relu", "Gelu", "SiLU", ...
  std::vector<float> params;   // activation_params
  std::vector<Node*> nodes;    // the matched nodes (one, or Sigmoid + Mul for SiLU)
  Value* out = nullptr;        // the activation's output
};
// The activation applied to `v` by its reader(s): Relu, LeakyRelu, Sigmoid,
// Tanh, Gelu (approximate none/tanh), Clip with constant bounds, HardSigmoid,
// HardSwish, Swish / x * Sigmoid(x) (SiLU). `v` must be read by nothing else.
std::optional<Activation> match_activation(const UseIndex& uses, Value* v);

// Replaces the chain ending at `last` (whose output 0 the new node takes
// over) by one node of `domain`.`op` placed where `last` was, then removes
// `dead` (which must include `last`). Returns the new node.
Node* replace_chain(Graph& g, Node* last, const std::string& op, const std::string& domain,
                    std::vector<Value*> inputs, const std::unordered_set<const Node*>& dead);

// Runs `try_at(node, uses)` on each node in order; after a rewrite (it
// returns true) the use index is rebuilt and the scan starts again, until a
// whole scan rewrites nothing. Returns whether anything changed.
template <class F>
bool rewrite_to_fixed_point(Graph& g, F&& try_at) {
  bool changed = false;
  for (bool again = true; again;) {
    again = false;
    UseIndex uses(g);
    for (size_t i = 0; i < g.nodes().size(); ++i)
      if (try_at(*g.nodes()[i], uses)) {
        again = changed = true;
        break;
      }
  }
  return changed;
}

}  // namespace deepep::opt
