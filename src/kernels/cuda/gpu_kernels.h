// The GPU kernel table: one entry per op (domain, op_type) the CUDA backend
// runs, separate from OpDef (the CPU op table). The CUDA executor
// (src/runtime/cuda_executor.cpp) looks every node up at load time; a node
// without an entry is a load-time error naming it.
//
// A kernel sees device tensors (pointer, dtype, shape) for its inputs and
// outputs, already placed by the memory plan, plus host copies of inputs the
// runtime knows on the host (constants and shape arithmetic). `prepare` runs
// once per input-shape signature, outside graph capture: it validates,
// chooses algorithms (cuBLASLt heuristics, cuDNN) and returns the workspace
// bytes it needs. `run` only enqueues work on the stream (it is captured into
// a CUDA graph), so it must not synchronize or allocate.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "deepep/tensor.h"
#include "ir/graph.h"

namespace deepep::cuda {

struct DeviceCaps;

struct GpuTensor {
  void* data = nullptr;
  DType dtype = DType::kUndefined;
  Shape shape;
  const Tensor* host = nullptr;  // host copy when known on the host (constants, shape values)
  // The bytes are the kernel's own layout of this constant, made at upload by
  // GpuKernel::upload (shape and dtype stay the graph's).
  bool reordered = false;
  // The bytes stay as they are for the whole run (a weight, a host-known value,
  // a graph input): a row block may read them whole (GpuKernel::row_block).
  bool fixed = false;
  int64_t numel() const { return shape_numel(shape); }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype); }
  bool defined() const { return dtype != DType::kUndefined; }
};

struct GpuContext {
  cudaStream_t stream = nullptr;
  cublasLtHandle_t lt = nullptr;
  cudnnHandle_t dnn = nullptr;
  void* workspace = nullptr;     // shared by all nodes (they run in order)
  size_t workspace_bytes = 0;
  int* error_flag = nullptr;     // device int: kernels set it on bad data (Gather indices)
  bool allow_tf32 = true;        // fp32 GEMM/conv on tensor cores (cc >= 8.0, not strict)
  int cc_major = 0, cc_minor = 0;
};

struct GpuNode {
  const Node& node;
  std::vector<GpuTensor> in;   // undefined for omitted optional inputs
  std::vector<GpuTensor> out;  // shapes/dtypes set by the executor from shape inference
  std::shared_ptr<void> state; // per node and signature, set by prepare
  // Rows of output 0 (all dims but the last, flattened) this node makes when the
  // executor runs the plan in row waves (GpuKernel::row_block); -1: all of them.
  int64_t window_begin = 0, window_rows = -1;
  bool has_input(size_t i) const { return i < in.size() && in[i].defined(); }
};

struct GpuKernel {
  // Validates and chooses algorithms for these shapes; returns workspace bytes.
  std::function<size_t(GpuContext&, GpuNode&)> prepare;
  std::function<void(GpuContext&, GpuNode&)> run;
  // Output 0 is a view of input 0's bytes (Reshape, Flatten, Squeeze, ...):
  // no work, no buffer of its own.
  bool view = false;
  // Optional weight layout: called once at weight upload for each constant
  // input of each node of this op, with the host tensor; returns the tensor
  // whose bytes go to the device instead (same dtype and element count, the
  // kernel's layout, e.g. FusedConv channels_last: W OIHW -> OHWI for cuDNN's
  // NHWC filter), or an undefined Tensor to upload it as is. The node then
  // sees that input with `reordered` set; the value's plain copy is uploaded
  // only when some other node reads it.
  std::function<Tensor(const Node&, size_t input, const Tensor& host)> upload;
  // Optional: output 0 can be made a block of rows at a time (its rows: all
  // dims but the last, flattened). Returns the inputs whose rows go with
  // output 0's (sliced alike; the others are read whole), or nullopt when this
  // node cannot be split. The executor splits the producer of a large graph
  // output so that the output's copy to the host overlaps its computation.
  std::function<std::optional<std::vector<size_t>>(const GpuNode&)> row_inputs;
  // Optional, for nodes whose rows are more than slices of their inputs (an
  // embedding gather, a skip added every few rows, causal attention): `n`
  // making rows [r0, r0 + count) of its outputs alone, or nullopt when it
  // cannot. The executor then runs the whole plan in waves of rows, so that a
  // large output's first rows cross PCIe while the later ones are computed.
  // A block reads the same rows of what it slices; anything it reads whole
  // must be GpuTensor::fixed (other rows of a value made this run are not made
  // yet when the block runs).
  std::function<std::optional<GpuNode>(const GpuNode& n, int64_t r0, int64_t count)> row_block;
  // row_block's rows also read the earlier rows of their sequence (causal
  // attention reads the keys of every row before it): those inputs stay intact
  // until the run ends.
  bool reads_earlier_rows = false;
};

// nullptr when the CUDA backend has no kernel for the op.
const GpuKernel* find_gpu_kernel(const std::string& domain, const std::string& op_type);
// Every (domain.)op_type the table holds, sorted (docs, tests).
std::vector<std::string> gpu_kernel_names();

// Elementwise fusion kind of an op on the GPU: output follows inputs' float
// precision (the executor keeps a value float32 when one input is kept so).
bool gpu_op_is_elementwise(const std::string& domain, const std::string& op_type);

// Releases cached GEMM algorithm choices (tests).
void clear_gemm_cache();

}  // namespace deepep::cuda
