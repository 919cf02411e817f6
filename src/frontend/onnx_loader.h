// ONNX → IR. Parses the protobuf, resolves external-data weights, folds
// Constant nodes into initializers, converts subgraphs, and reports every op
// DeepEP lacks in one error before anything runs.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "ir/graph.h"

namespace deepep {

struct OnnxModel {
  std::unique_ptr<Graph> graph;
  int64_t ir_version = 0;
  int64_t opset = 0;  // default-domain opset
  std::string producer;
};

// Loads `path`. External-data files are resolved relative to its folder.
OnnxModel load_onnx_file(const std::string& path);
// Resolves an external-data reference to a tensor without copying (a .de
// file's weight section); returns an undefined Tensor to fall back to files.
using ExternalResolver = std::function<Tensor(const std::string& location, int64_t offset,
                                              int64_t length, DType dtype, const Shape& shape)>;

// Loads a serialized ModelProto held in memory.
OnnxModel load_onnx_bytes(const std::string& bytes, const std::string& base_dir,
                          const std::string& display_name,
                          const ExternalResolver& resolver = nullptr);

// Runs each op's shape inference over the graph (and its subgraphs), filling
// value dtypes and shapes that the model did not state.
void infer_shapes(Graph& g);

}  // namespace deepep
