// Common-subexpression elimination (level 1).
// Rewrites: two nodes with the same op (and domain), the same inputs (in
// either order for ops flagged commutative) and exactly equal attributes
// compute the same thing: the later one's outputs are replaced by the
// earlier one's and it goes. Equal small constants (same dtype, shape and
// bytes, up to 64 KiB) are merged first, so nodes reading copies of one
// constant also merge. One forward sweep; merges cascade downstream.
// Must not: merge random ops or control flow / nodes with subgraphs
// (opt::is_pure), ops of other domains than ONNX's (their semantics, side
// effects included, are unknown here), nodes whose attributes differ in any way (a float's bits,
// a list's order), or a merge that would lose a graph output's name (two
// outputs computed alike both stay).
// Why: exporters repeat shape computations and constants per layer; merged,
// they fold and fuse once.
#include <cstdint>
#include <unordered_map>
#include <unordered_set>

#include "ir/graph_edit.h"
#include "ir/op_registry.h"
#include "optimizer/pass.h"
#include "optimizer/pattern.h"

namespace deepep {
namespace {

constexpr size_t kMaxMergedConstantBytes = 64 << 10;

bool replace_outputs(Graph& g, const std::vector<Value*>& from, const std::vector<Value*>& to) {
  for (size_t i = 0; i < from.size(); ++i)
    if (from[i] && !can_replace_all_uses(g, from[i], to[i])) return false;
  for (size_t i = 0; i < from.size(); ++i)
    if (from[i]) replace_all_uses(g, from[i], to[i]);
  return true;
}

int64_t merge_constants(Graph& g) {
  std::unordered_map<uint64_t, std::vector<Value*>> seen;
  int64_t merged = 0;
  std::vector<Value*> constants;
  for (const auto& v : g.values())
    if (v->data && v->data->nbytes() <= kMaxMergedConstantBytes) constants.push_back(v.get());
  for (Value* v : constants) {
    auto& bucket = seen[tensor_digest(*v->data)];
    Value* same = nullptr;
    for (Value* c : bucket)
      if (opt::same_tensor(*c->data, *v->data)) same = c;
    if (same && replace_outputs(g, {v}, {same})) ++merged;
    else bucket.push_back(v);
  }
  return merged;
}

std::string node_key(const Node& n) {
  std::string key = detail::concat(n.domain, '|', n.op_type, '|', n.outputs.size());
  // Inputs by identity, not by index: a subgraph node may read a value of an
  // enclosing graph, whose index can equal that of one of the subgraph's own.
  std::vector<uintptr_t> ids;
  for (const Value* v : n.inputs) ids.push_back(reinterpret_cast<uintptr_t>(v));
  if (n.def && (n.def->flags & kCommutative) && ids.size() == 2 && ids[1] < ids[0]) std::swap(ids[0], ids[1]);
  for (uintptr_t id : ids) {
    key += '|';
    key += std::to_string(id);
  }
  return key;
}

bool same_computation(const Node& a, const Node& b) {
  for (size_t i = 0; i < a.outputs.size(); ++i)
    if (!a.outputs[i] && b.outputs[i]) return false;  // a did not compute what b needs
  return opt::same_attributes(a, b);
}

bool run(Graph& g, PassContext& ctx) {
  const int64_t constants = merge_constants(g);
  std::unordered_map<std::string, std::vector<Node*>> seen;
  std::unordered_set<const Node*> merged;
  for (const auto& up : g.nodes()) {
    Node& n = *up;
    if (!n.domain.empty() || !opt::is_pure(n) || n.outputs.empty()) continue;
    auto& bucket = seen[node_key(n)];
    Node* same = nullptr;
    for (Node* m : bucket)
      if (same_computation(*m, n)) same = m;
    if (same && replace_outputs(g, n.outputs, same->outputs)) {
      merged.insert(&n);
      ctx.count("merged." + n.op_type);
    } else {
      bucket.push_back(&n);
    }
  }
  remove_nodes(g, merged);
  if (constants) prune_values(g);
  ctx.count("nodes_merged", int64_t(merged.size()));
  ctx.count("constants_merged", constants);
  return !merged.empty() || constants > 0;
}

}  // namespace

std::unique_ptr<Pass> make_common_subexpression_elimination() {
  return std::make_unique<FunctionPass>("common_subexpression_elimination", 1, run);
}

}  // namespace deepep
