// The graph optimizer's entry point: runs the ordered pass pipeline up to a
// fusion level, each level to a fixed point, and reports what each pass did.
//
//   FusionReport r = optimize(*model.graph, {.level = 2});
//   std::cout << r.to_json();
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "optimizer/pass.h"

namespace deepep {

struct OptimizeOptions {
  // 0 none; 1 clean-up; 2 pattern fusions; 3 aggressive (above 3 means 3).
  int level = 2;
  Precision precision = Precision::kFloat32;
  // Rounds of the pass list per level before giving up on a fixed point.
  int max_iterations = 10;
  // Verify the graph after every pass. Unset: on in debug builds (NDEBUG not
  // defined) or when the environment sets DEEPEP_VERIFY_PASSES=1.
  std::optional<bool> verify;
};

struct PassReport {
  std::string name;
  int level = 0;
  int runs = 0;     // times the pass ran (once per round; subgraphs included)
  int changes = 0;  // runs that changed the graph
  double ms = 0;    // time spent in the pass
  std::map<std::string, int64_t> counters;  // what it did, by the pass's own words
};

// The fusion report: what the optimizer did to one graph.
struct FusionReport {
  int level = 0;
  std::string precision;
  int64_t nodes_before = 0;  // all nodes, subgraphs included
  int64_t nodes_after = 0;
  std::vector<int> rounds;  // rounds run at each level 1..level
  bool fixed_point = true;  // false: some level hit max_iterations
  std::vector<PassReport> passes;  // in pipeline order
  // Source ops, by type, inside the final graph's fused nodes (nodes standing
  // for two or more source ops; subgraphs included), and how many such nodes.
  std::map<std::string, int64_t> fused_ops;
  int64_t fused_nodes = 0;

  const PassReport* pass(const std::string& name) const;
  // {"level":2,"precision":"float32","nodes_before":..,"nodes_after":..,
  //  "rounds":[..],"fixed_point":true,"passes":[{"name":..,"level":..,"runs":..,
  //  "changes":..,"ms":..,"counters":{..}}, ...],"fused_nodes":..,"fused_ops":{..}}. Without timings ("ms" left
  // out) the text is the same on every run, e.g. for a .de file's metadata.
  std::string to_json(int indent = -1, bool timings = true) const;
};

// The ordered pass list (all levels); see pipeline.cpp for why this order.
std::vector<std::unique_ptr<Pass>> default_pipeline();

// Optimizes `g` in place (and its subgraphs). Throws deepep::Error when
// verification is on and a pass leaves the graph invalid, naming the pass.
FusionReport optimize(Graph& g, const OptimizeOptions& options = {});
// The same with a given pass list (tests run one pass this way).
FusionReport optimize_with(Graph& g, const std::vector<std::unique_ptr<Pass>>& passes,
                           const OptimizeOptions& options);

// Load-time layout conversion, chosen per device (Engine's `layout` option;
// not a fusion level): every 2-D convolution becomes deepep.FusedConv with
// channels_last = 1, with transposes left only where the NHWC region meets
// other ops; 2-D MaxPool joins the region as deepep.MaxPool with
// channels_last = 1. Returns how many convolutions were converted.
int convert_to_channels_last(Graph& g);

// Load-time fusions for the CPU kernels only (after convert_to_channels_last;
// the GPU runs the nodes they would make through cuDNN unfused): a 1x1 conv
// and the depthwise conv that alone reads its large output become one
// deepep.PointwiseDepthwiseConv; a few-channel conv reading the NHWC region's
// edge transpose reads the NCHW image itself (FusedConv channels_last = 2).
// Returns how many pairs were fused.
int fuse_for_cpu(Graph& g);

}  // namespace deepep
