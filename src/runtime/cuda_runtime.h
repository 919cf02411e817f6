// The CUDA backend as the engine sees it. This header has no CUDA types, so
// engine.cpp and the Python bindings compile the same with or without CUDA;
// a build without CUDA (DEEPEP_WITH_CUDA=OFF, or no CUDA compiler found)
// links cuda_none.cpp, whose functions report that CUDA is not built in.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "deepep/engine.h"
#include "ir/graph.h"

namespace deepep {

// What the hardware probe reads off one GPU (cuda_probe.cpp).
struct GpuDeviceInfo {
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;
  std::string tensor_cores;        // "Volta", "Turing", "Ampere", "Ada", "Hopper", "Blackwell", "" (none)
  int sm_count = 0;
  int clock_khz = 0;               // peak SM clock
  uint64_t memory_bytes = 0;
  int memory_bus_bits = 0;
  int memory_clock_khz = 0;
  double memory_bandwidth_gbs = 0; // bus width x memory clock x 2 (DDR)
  int l2_bytes = 0;
  int smem_per_block_optin = 0;
  int smem_per_sm = 0;
  int fp32_cores_per_sm = 0;
  double peak_fp32_tflops = 0;     // FMA = 2 flops, no tensor cores
  double peak_fp16_tflops = 0;     // dense fp16 tensor-core rate with fp32 accumulation (0: none)
  bool tf32 = false;               // fp32 GEMMs may use TF32 tensor cores (cc >= 8.0)
  bool bf16 = false;
  int driver_version = 0, runtime_version = 0;
};

// True when this build has the CUDA backend.
bool cuda_built();
// The GPUs the CUDA runtime sees; empty when none (no driver, no device, or
// not built with CUDA). `why` (optional) gets the reason when empty.
std::vector<GpuDeviceInfo> cuda_devices(std::string* why = nullptr);
// "cpu" -> -1; "cuda" -> 0; "cuda:N" -> N. Anything else is an InputError.
int parse_device(const std::string& device);

// Execution options of a model on a GPU.
struct CudaOptions {
  int device = 0;
  bool fp16 = false;         // float32 activations and weights held as float16 (fp32 accumulation)
  bool strict_fp32 = false;  // no TF32 for float32 GEMMs and convolutions
  bool graphs = true;        // capture one CUDA graph per input-shape signature and replay it
  uint64_t memory_pool_bytes = 0;
  bool fp16_outputs = false;  // float32 outputs come back as float16 (EngineOptions::output_dtype)
  bool poison = false;       // fill the arena with NaN bytes (0xFF) when planned: catches unwritten outputs
};

class CudaModel;  // weights on one device, the checked node list
class CudaSession {
 public:
  virtual ~CudaSession() = default;
  // Runs the model on host inputs (validated by the caller); outputs are host tensors.
  virtual std::vector<Tensor> run(const std::vector<Tensor>& inputs) = 0;
  virtual MemoryReport memory_report() const = 0;
};

// Uploads the weights once and checks that every node has a GPU kernel (a
// node without one is an error naming it). `g` must outlive the model.
std::shared_ptr<CudaModel> cuda_load(const Graph& g, const CudaOptions& options);
std::unique_ptr<CudaSession> cuda_session(const std::shared_ptr<CudaModel>& model);

}  // namespace deepep
