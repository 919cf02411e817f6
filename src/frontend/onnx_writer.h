// IR → ONNX ModelProto bytes: used to store an optimized graph inside a .de file
// (weights kept out of line) and to export a graph for other tools.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "ir/graph.h"

namespace deepep {

// Places a weight's bytes somewhere else and returns (location, offset); the
// ModelProto then references it as external data.
using WeightPlacer = std::function<std::pair<std::string, int64_t>(const Value&)>;

struct OnnxWriteOptions {
  int64_t opset = 17;
  std::map<std::string, int64_t> extra_opsets;  // e.g. {"deepep", 1} for fused ops
  std::string producer = "deepep";
  WeightPlacer place_weight;  // empty: weights are written inline as raw_data
};

std::string write_onnx_bytes(const Graph& g, const OnnxWriteOptions& options);

}  // namespace deepep
