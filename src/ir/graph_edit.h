// Graph editing for optimizer passes: who reads a value, redirecting reads,
// creating and inserting nodes and constants, removing nodes and whatever
// nothing refers to any more, and the verifier that checks a graph after
// every pass.
//
// Reads through subgraphs count: an If/Loop/Scan body may read a value of an
// enclosing graph directly, and such a read is a use by the node that owns the
// body (Use::input == -1). Every edit here keeps that in view.
#pragma once
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "ir/graph.h"

namespace deepep {

// One read of a value: node->inputs[input], or (input == -1) a read by one of
// the node's subgraphs, at any depth.
struct Use {
  Node* node = nullptr;
  int input = -1;
};

// All reads of values by the nodes of one graph, built in one sweep. Stale
// after any edit of the graph: rebuild it then.
class UseIndex {
 public:
  explicit UseIndex(const Graph& g);
  const std::vector<Use>& uses(const Value* v) const;  // in node order
  bool is_output(const Value* v) const { return outputs_.count(v) != 0; }
  // The node reading `v` when it is read exactly once, by a node input, and
  // is not a graph output: the condition for fusing v's producer into it.
  Node* sole_consumer(const Value* v) const;

 private:
  std::unordered_map<const Value*, std::vector<Use>> uses_;
  std::unordered_set<const Value*> outputs_;
};

// The values `n` reads: its inputs, and what its subgraphs read or return
// from enclosing graphs (each once).
std::vector<const Value*> reads_of(const Node& n);
// Reads of `v` by nodes of `g` (one sweep; use UseIndex for many questions).
std::vector<Use> uses_of(const Graph& g, const Value* v);
bool is_graph_output(const Graph& g, const Value* v);

// Whether replace_all_uses(g, from, to) can keep g's output names: when `from`
// is an output of g, `to` takes its name, so `to` must be a value of g that is
// neither a graph input nor already a graph output.
bool can_replace_all_uses(const Graph& g, const Value* from, const Value* to);
// Makes every read of `from` (nodes of g and of its subgraphs, g's outputs)
// read `to` instead. `from` must belong to g. If `from` is an output of g,
// `to` is renamed to `from`'s name (and `from` gets a fresh one) so the model's
// output names stay stable. Returns false, changing nothing, when
// can_replace_all_uses says no.
bool replace_all_uses(Graph& g, Value* from, Value* to);

// A new value of g named `base` or `base_N`.
Value* new_value(Graph& g, const std::string& base, DType dtype,
                 std::optional<SymShape> shape = std::nullopt);
// A new constant of g holding `t`.
Value* new_constant(Graph& g, const std::string& base, Tensor t);
// Turns `v` into a constant holding `t` (its producer is forgotten; remove
// the producing node, e.g. with remove_nodes).
void make_constant(Value* v, Tensor t);

// Inserts a node before `before` (nullptr: at the end), so it is placed
// after its inputs' producers when `before` is after them. Outputs get the
// node as producer; a default-domain op gets its OpDef from the op table.
Node* insert_node_before(Graph& g, const Node* before, const std::string& op_type,
                         std::vector<Value*> inputs, std::vector<Value*> outputs,
                         const std::string& domain = "");
// Records that `fused` now computes what `n` did: n's absorbed op counts, or
// n itself when it is a source node. The fusion report sums these over the
// final graph (which source ops ended up inside fused kernels).
void absorb(Node& fused, const Node& n);
// Removes the nodes, forgets them as producers, then prunes (see below).
void remove_nodes(Graph& g, const std::unordered_set<const Node*>& dead);
// Removes values of g that nothing refers to: no node (of g or a subgraph)
// reads or produces them and they are not graph inputs or outputs. Unused
// constants go too. Returns how many were removed.
int prune_values(Graph& g);

// Checks the invariants every pass must keep, for g and its subgraphs: names
// unique and ids dense; each value produced once (by a node of its graph, or
// a graph input, or a constant); nodes in topological order, so every input is
// defined before the node that reads it; subgraph reads resolve to values of
// an enclosing graph defined before the owning node; graph outputs defined.
// Throws deepep::Error naming the graph, node and value at fault.
void verify(const Graph& g);

}  // namespace deepep
