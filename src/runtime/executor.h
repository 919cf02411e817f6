// Runs a graph node by node on the CPU with each op's kernel, releasing every
// intermediate after its last use. Subgraphs (If/Loop/Scan bodies) run through
// the same executor and read enclosing values through a scope chain.
#pragma once
#include <unordered_map>
#include <vector>

#include "ir/op_registry.h"

namespace deepep {

// Directs where the top-level graph's kernel outputs live (memory planning),
// sees each node's inputs before it runs and its outputs after (and may
// replace an output, e.g. by a copy, before the executor stores it).
class RunHooks : public OutputAllocator {
 public:
  virtual void before_node(const Node& node, const std::vector<const Tensor*>& inputs) {}
  virtual void after_node(const Node& node, std::vector<Tensor>& outputs) {}
};

// An Executor caches per graph and node (last uses, each node's NodeCache:
// the kernel chosen and its plan), so the graphs it runs must not change
// between its runs; a Session keeps one across its runs.
class Executor : public SubgraphRunner {
 public:
  // Runs the top-level graph `g`; `hooks` (optional) places its outputs.
  std::vector<Tensor> run_graph(const Graph& g, const std::vector<Tensor>& inputs, RunHooks* hooks);
  // Runs `g` with its inputs bound in order; returns its outputs in order.
  std::vector<Tensor> run(const Graph& g, const std::vector<Tensor>& inputs) override;
  // For each value of `g`, the index of the last node that reads it (graph
  // outputs: the node count), counting subgraphs' reads of enclosing values.
  const std::unordered_map<const Value*, int>& last_uses(const Graph& g);

 private:
  struct Scope {
    const Scope* parent = nullptr;
    std::unordered_map<const Value*, Tensor> values;
    const Tensor* find(const Value* v) const;
  };
  std::vector<Tensor> run_in(const Graph& g, const std::vector<Tensor>& inputs, const Scope* parent,
                             RunHooks* hooks);

  std::unordered_map<const Graph*, std::unordered_map<const Value*, int>> last_use_cache_;
  std::unordered_map<const Graph*, std::vector<NodeCache>> node_caches_;  // one per node, in graph order
  std::vector<const Scope*> scope_stack_;
};

}  // namespace deepep
