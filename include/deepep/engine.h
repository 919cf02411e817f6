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
  // "cpu", or "cuda" / "cuda:N" in a build with the CUDA backend (docs/CUDA.md).
  std::string device = "cpu";
  // Execution precision: "fp32" (float32 GEMMs and convolutions may use TF32
  // tensor cores on a GPU of compute capability >= 8.0, and bf16x3 on the AMX
  // tiles of an x86 CPU that has them, ~1e-5 relative error: docs/CPU.md),
  // "fp32-strict" (float32 multiply-adds only), or, on a GPU, "fp16"
  // (float32 weights and activations held as float16, fp32 accumulation;
  // inputs and outputs stay float32).
  std::string precision = "fp32";
  // GPU: capture one CUDA graph per input-shape signature and replay it.
  bool cuda_graphs = true;
  // Graph optimization applied when loading an ONNX model (a .de file is
  // already optimized): 0 none, 1 clean-up, 2 pattern fusions, 3 aggressive.
  int fusion_level = 2;
  // Cap on the activation arena (plus workspaces) in bytes; 0: no cap. A plan
  // that needs more is an error naming the bytes required and allowed.
  uint64_t memory_pool_bytes = 0;
  // Plan memory per input-shape signature and reuse one arena (on by default).
  bool plan_memory = true;
  // Activation layout of 2-D convolutions, applied at load: "nchw" (as the
  // model has it), "nhwc" (channels-last convolutions, transposes only where
  // that region meets other ops), or "auto" (the device's faster layout, see
  // docs/ARCHITECTURE.md). The environment variable DEEPEP_LAYOUT=nchw|nhwc
  // overrides it (for A/B measurements).
  std::string layout = "auto";
  // Dtype of float32 outputs: "model" (as the model declares them) or
  // "float16" (returned as float16). With precision "fp16" on a GPU the values
  // are float16 already: this skips widening them and halves the bytes copied
  // back (TensorRT's output I/O formats; torch's float16 models return float16).
  std::string output_dtype = "model";
};

// The memory plan for one input-shape signature (see docs/MEMORY.md).
struct MemoryReport {
  uint64_t naive_bytes = 0;        // every intermediate in its own buffer
  uint64_t planned_bytes = 0;      // the arena
  uint64_t lower_bound_bytes = 0;  // most bytes live at any one step
  uint64_t weights_bytes = 0;
  size_t planned_buffers = 0;
  size_t inplace_reuses = 0;       // outputs planned into an input's buffer (input 0; a FusedConv's residual)
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
  // The convolution layout chosen at load: "nchw" or "nhwc".
  const std::string& layout() const;
  // The graph in the IR's text form.
  std::string graph_text() const;
  size_t node_count() const;
  // The .de metadata (JSON); for an ONNX model, {"fusion": report of the
  // optimization done at load}.
  const std::string& metadata_json() const;

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
  // Zero-copy outputs: results are written into `outputs` (name → caller
  // tensor of the right dtype and shape); others are returned as usual.
  NamedTensors run(const NamedTensors& inputs, const NamedTensors& outputs);
  // The memory plan of the most recent run's input-shape signature.
  MemoryReport memory_report() const;
  ~Session();

 private:
  explicit Session(std::shared_ptr<Engine::Impl> impl);
  std::vector<Tensor> bind_inputs(const NamedTensors& inputs) const;
  std::shared_ptr<Engine::Impl> impl_;
  struct PlanCache;
  std::unique_ptr<PlanCache> plans_;
  friend class Engine;
  friend struct SessionDebug;  // src/runtime/session_debug.h (tests)
};

}  // namespace deepep
