// Dead-code elimination (level 1).
// Rewrites: removes every node none of whose outputs reaches a graph output
// (reads by subgraphs count), then every value nothing refers to, unused
// constants included. Of live nodes, unused optional trailing outputs of ops
// whose spec makes them optional (Dropout's mask, BatchNormalization's running
// statistics, MaxPool's indices...) are dropped, so kernels may skip them.
// Must not: touch graph inputs or outputs (a subgraph's are positional), or
// drop an output the spec requires (Split's, TopK's: not in the list below).
// Why: exporters leave dead branches and training-only outputs behind; every
// later pass and the memory planner work on less.
#include <algorithm>
#include <string_view>
#include <unordered_set>

#include "ir/graph_edit.h"
#include "optimizer/pass.h"
#include "optimizer/pattern.h"

namespace deepep {
namespace {

// Ops whose outputs after the first are optional in the ONNX spec.
bool trailing_outputs_optional(const Node& n) {
  static constexpr std::string_view kOps[] = {"Dropout", "BatchNormalization", "MaxPool",
                                              "LayerNormalization", "RNN", "GRU", "LSTM", "Attention"};
  return n.domain.empty() && std::find(std::begin(kOps), std::end(kOps), n.op_type) != std::end(kOps);
}

bool run(Graph& g, PassContext& ctx) {
  // Backward sweep: a node is live when one of its outputs is.
  std::unordered_set<const Value*> live(g.outputs.begin(), g.outputs.end());
  std::unordered_set<const Node*> dead;
  int64_t dropped = 0;
  for (size_t i = g.nodes().size(); i-- > 0;) {
    Node& n = *g.nodes()[i];
    const bool is_live = std::any_of(n.outputs.begin(), n.outputs.end(),
                                     [&](const Value* v) { return v && live.count(v); });
    if (!is_live) {
      dead.insert(&n);
      continue;
    }
    if (trailing_outputs_optional(n))
      while (n.outputs.size() > 1 && (!n.outputs.back() || !live.count(n.outputs.back()))) {
        if (n.outputs.back()) n.outputs.back()->producer = nullptr;
        dropped += n.outputs.back() != nullptr;
        n.outputs.pop_back();
      }
    for (const Value* v : reads_of(n)) live.insert(v);
  }
  const size_t values_before = g.values().size();
  remove_nodes(g, dead);
  const int64_t pruned = int64_t(values_before) - int64_t(g.values().size()) + prune_values(g);
  ctx.count("nodes_removed", int64_t(dead.size()));
  ctx.count("outputs_dropped", dropped);
  ctx.count("values_pruned", pruned);
  return !dead.empty() || dropped > 0 || pruned > 0;
}

}  // namespace

std::unique_ptr<Pass> make_dead_code_elimination() {
  return std::make_unique<FunctionPass>("dead_code_elimination", 1, run);
}

}  // namespace deepep
