// The public C++ API.
//
//   auto engine = deepep::Engine::load("model.onnx");
//   auto session = engine->create_session();
//   auto outputs = session->run({{"input", tensor}});
//
// An Engine is a loaded model on a device, immutable and shareable between
// threads; a Session holds one caller's run state.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "deepep/tensor.h"

namespace deepep {

// One model input or output. dims[i] is -1 where the dimension is symbolic
// (symbols[i] names it) or unknown (symbols[i] empty).
struct TensorInfo {
  std::string name;
  DType dtype = DType::kUndefined;
  bool has_shape = false;
  std::vector<int64_t> dims;
  std::vector<std::string> symbols;
  std::string shape_str() const;  // "[batch, 3, 224, 224]"
};

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct EngineOptions {
  std::string device = "cpu";
};

class Session;

class Engine {
 public:
  // Loads an ONNX model. Throws deepep::Error naming the problem when the file
  // is missing, corrupt, or uses ops or dtypes DeepEP does not support.
  static std::shared_ptr<Engine> load(const std::string& path, const EngineOptions& options = {});

  const std::vector<TensorInfo>& inputs() const;
  const std::vector<TensorInfo>& outputs() const;
  const std::string& device() const;
  // The graph in the IR's text form.
  std::string graph_text() const;
  size_t node_count() const;

  std::unique_ptr<Session> create_session() const;
  // Convenience: one run on a fresh session.
  NamedTensors run(const NamedTensors& inputs) const;

  struct Impl;
  explicit Engine(std::shared_ptr<Impl> impl);
  ~Engine();

 private:
  std::shared_ptr<Impl> impl_;
  friend class Session;
};

class Session {
 public:
  // Validates inputs against the model (names, dtypes, ranks, dimensions,
  // consistent symbols) and runs it; outputs come back in model order.
  NamedTensors run(const NamedTensors& inputs);
  ~Session();

 private:
  explicit Session(std::shared_ptr<Engine::Impl> impl);
  std::shared_ptr<Engine::Impl> impl_;
  friend class Engine;
};

}  // namespace deepep
