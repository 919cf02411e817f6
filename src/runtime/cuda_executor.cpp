// The CUDA executor: runs an optimized graph on one GPU.
//
// Load (cuda_load): every node is either a GPU node (its op has an entry in
// the GPU kernel table, src/kernels/cuda/gpu_kernels.h) or a host node: shape
// arithmetic whose inputs are all known on the host (constants, Shape/Size
// outputs, and what is computed from them only), evaluated once per
// input-shape signature with the CPU reference kernel. Any other node is a
// load-time error naming it: there is no CPU fallback for tensor work. The
// weights GPU nodes read are uploaded once into one device block (float16 in
// fp16 mode, except constants float16 cannot hold), in a kernel's own layout
// where its GpuKernel::upload asks for one (FusedConv channels_last: W for
// cuDNN's NHWC filter).
//
// Per input-shape signature (Plan): shapes come from the ops' shape
// inference on concrete shapes, every device value gets a slot in one
// activation arena (one cudaMalloc) placed by the memory planner
// (memory_planner.h) from value lifetimes, views (Reshape, Flatten, ...)
// alias their input's slot, and each kernel's prepare() chooses algorithms.
// The first run is eager; later runs replay a CUDA graph captured from the
// whole sequence (input copies from pinned staging, kernels, output copies
// to pinned staging).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <list>
#include <map>
#include <mutex>
#include <optional>

#include "deepep/half.h"
#include "ir/op_registry.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gpu_kernels.h"
#include "kernels/cuda/launch.h"
#include "runtime/cuda_output_blocks.h"
#include "runtime/cuda_runtime.h"
#include "runtime/memory_planner.h"

namespace deepep {

using cuda::GpuContext;
using cuda::GpuKernel;
using cuda::GpuNode;
using cuda::GpuTensor;

namespace {
constexpr uint64_t kAlign = 256;
constexpr uint64_t kDirectCopyBytes = uint64_t(4) << 20;
uint64_t align_up(uint64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

bool env_on(const char* name) {
  const char* v = std::getenv(name);
  return v && *v && std::strcmp(v, "0") != 0;
}

// Makes `device` current for this thread for the guard's lifetime.
struct DeviceGuard {
  int prev = -1;
  explicit DeviceGuard(int device) {
    cudaGetDevice(&prev);
    if (prev != device) DEEPEP_CUDA(cudaSetDevice(device), "selecting the GPU");
  }
  ~DeviceGuard() {
    int cur = -1;
    cudaGetDevice(&cur);
    if (prev >= 0 && cur != prev) cudaSetDevice(prev);
  }
};

bool is_shape_op(const Node& n) {
  return (n.domain.empty() || n.domain == "ai.onnx") && (n.op_type == "Shape" || n.op_type == "Size");
}
bool has_subgraph(const Node& n) {
  for (const auto& [k, a] : n.attrs)
    if (!a.graphs.empty()) return true;
  return false;
}

// Host float32 -> the device dtype's bytes.
void convert_host(const Tensor& t, DType to, uint8_t* dst) {
  if (t.dtype() == to) {
    std::memcpy(dst, t.raw(), t.nbytes());
    return;
  }
  DEEPEP_CHECK(t.dtype() == DType::kFloat32 && to == DType::kFloat16, "internal: cannot convert ", dtype_name(t.dtype()),
               " to ", dtype_name(to));
  const float* s = t.data<float>();
  uint16_t* d = reinterpret_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < t.numel(); ++i) d[i] = float_to_half_bits(s[i]);
}

// Host copy into pinned staging; large inputs on up to 8 threads of the CPU
// pool (one thread copied ResNet-50's 77 MB batch of 128 at a few GB/s,
// longer than the GPU's whole run).
void copy_to_staging(void* dst, const void* src, size_t n) {
  constexpr size_t kChunk = size_t(4) << 20;
  if (n < 2 * kChunk) {
    std::memcpy(dst, src, n);
    return;
  }
  cpu::ThreadPool::global().parallel_for(int64_t((n + kChunk - 1) / kChunk), 1, 8, [&](int64_t b, int64_t e) {
    const size_t lo = size_t(b) * kChunk, hi = std::min(n, size_t(e) * kChunk);
    std::memcpy(static_cast<uint8_t*>(dst) + lo, static_cast<const uint8_t*>(src) + lo, hi - lo);
  });
}

bool fits_half(const Tensor& t) {
  if (t.dtype() != DType::kFloat32) return true;
  const float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i)
    if (std::isfinite(p[i]) && std::fabs(p[i]) > 65504.f) return false;
  return true;
}
}  // namespace

class CudaModel {
 public:
  const Graph& g;
  CudaOptions opt;
  GpuDeviceInfo info;
  std::vector<const GpuKernel*> kernel;  // by node index; nullptr: host node
  std::vector<char> host_known;          // by value id
  std::vector<char> on_device;           // by value id: some GPU node (or the output copy) reads it, or a GPU node makes it
  std::vector<char> kept32;              // by value id: float32 stays float32 in fp16 mode
  std::vector<void*> weight;             // by value id: constants in the weight block
  // (node id, input index) -> the kernel's reordered copy of that constant
  // input in the weight block (GpuKernel::upload).
  std::map<std::pair<int, size_t>, void*> reordered;
  void* weights = nullptr;
  uint64_t weights_bytes = 0;
  bool needs_cudnn = false;

  CudaModel(const Graph& graph, const CudaOptions& o) : g(graph), opt(o) {}
  ~CudaModel() {
    if (weights) {
      DeviceGuard d(opt.device);
      cudaFree(weights);
    }
  }
};

namespace {

void analyse(CudaModel& m) {
  const Graph& g = m.g;
  const size_t nv = g.values().size();
  m.host_known.assign(nv, 0);
  m.on_device.assign(nv, 0);
  for (const auto& v : g.values())
    if (v->data) m.host_known[size_t(v->id)] = 1;
  std::vector<std::string> missing;
  m.kernel.assign(g.nodes().size(), nullptr);
  std::vector<char>& kept32 = m.kept32;
  kept32.assign(nv, 0);
  for (const auto& v : g.values())
    if (v->data && m.opt.fp16 && !fits_half(*v->data)) kept32[size_t(v->id)] = 1;
  for (const auto& np : g.nodes()) {
    const Node& n = *np;
    DEEPEP_CHECK(n.def, n.describe(), ": unknown op");
    bool all_host = !has_subgraph(n);
    for (const Value* v : n.inputs)
      if (v && (v->owner != &g || !m.host_known[size_t(v->id)])) all_host = false;
    if (is_shape_op(n) || all_host) {
      for (const Value* v : n.outputs)
        if (v) m.host_known[size_t(v->id)] = 1;
      continue;
    }
    const GpuKernel* k = cuda::find_gpu_kernel(n.domain, n.op_type);
    if (!k) {
      missing.push_back(n.describe());
      continue;
    }
    m.kernel[size_t(n.id)] = k;
    if (n.op_type == "Conv" || n.op_type == "FusedConv") m.needs_cudnn = true;
    for (const Value* v : n.inputs)
      if (v) m.on_device[size_t(v->id)] = 1;
    bool keep = false;
    if (cuda::gpu_op_is_elementwise(n.domain, n.op_type))
      for (const Value* v : n.inputs)
        if (v && kept32[size_t(v->id)]) keep = true;
    for (const Value* v : n.outputs)
      if (v) {
        m.on_device[size_t(v->id)] = 1;
        if (keep) kept32[size_t(v->id)] = 1;
      }
  }
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 8; ++i) list += (i ? ", " : "") + missing[i];
    if (missing.size() > 8) list += detail::concat(" and ", missing.size() - 8, " more");
    throw Error(detail::concat("cannot run this model on ", m.opt.device < 0 ? "cpu" : "cuda:" + std::to_string(m.opt.device),
                               ": ", missing.size(), " node(s) have no CUDA kernel: ", list));
  }
  for (const Value* v : g.outputs) m.on_device[size_t(v->id)] = m.host_known[size_t(v->id)] ? 0 : 1;
}

// The dtype a value of logical dtype `t` has on the device.
DType device_dtype(const CudaModel& m, size_t id, DType t) {
  return t == DType::kFloat32 && m.opt.fp16 && !m.kept32[id] ? DType::kFloat16 : t;
}

void upload_weights(CudaModel& m) {
  const Graph& g = m.g;
  m.weight.assign(g.values().size(), nullptr);
  // Kernels' own layouts of constant inputs (GpuKernel::upload): one copy per
  // (node, input); a constant every GPU reader takes reordered has no plain
  // copy on the device.
  struct Reordered {
    int node;
    size_t input;
    const Value* v;
    Tensor t;
    uint64_t off = 0;
  };
  std::vector<Reordered> reord;
  std::vector<char> plain(g.values().size(), 0);
  for (const auto& np : g.nodes()) {
    const GpuKernel* k = m.kernel[size_t(np->id)];
    if (!k) continue;
    for (size_t i = 0; i < np->inputs.size(); ++i) {
      const Value* v = np->inputs[i];
      if (!v) continue;
      if (v->data && k->upload) {
        Tensor t = k->upload(*np, i, *v->data);
        if (t.defined()) {
          DEEPEP_CHECK(t.dtype() == v->data->dtype() && t.numel() == v->data->numel(), np->describe(),
                       ": internal: the reordered weight changes dtype or size");
          reord.push_back({np->id, i, v, std::move(t)});
          continue;
        }
      }
      plain[size_t(v->id)] = 1;
    }
  }
  for (const Reordered& r : reord)
    if (!plain[size_t(r.v->id)]) m.on_device[size_t(r.v->id)] = 0;
  uint64_t total = 0;
  std::vector<std::pair<const Value*, uint64_t>> place;
  for (const auto& v : g.values()) {
    if (!v->data || !m.on_device[size_t(v->id)]) continue;
    place.emplace_back(v.get(), total);
    total += align_up(uint64_t(v->data->numel()) * dtype_size(device_dtype(m, size_t(v->id), v->data->dtype())));
  }
  for (Reordered& r : reord) {
    r.off = total;
    total += align_up(uint64_t(r.t.numel()) * dtype_size(device_dtype(m, size_t(r.v->id), r.t.dtype())));
  }
  m.weights_bytes = total;
  if (total == 0) return;
  std::vector<uint8_t> host(total);
  for (const auto& [v, off] : place)
    convert_host(*v->data, device_dtype(m, size_t(v->id), v->data->dtype()), host.data() + off);
  for (const Reordered& r : reord) convert_host(r.t, device_dtype(m, size_t(r.v->id), r.t.dtype()), host.data() + r.off);
  DEEPEP_CUDA(cudaMalloc(&m.weights, total),
              detail::concat("uploading ", total, " bytes of weights to cuda:", m.opt.device));
  DEEPEP_CUDA(cudaMemcpy(m.weights, host.data(), total, cudaMemcpyHostToDevice), "uploading the weights");
  // A pageable copy may still be in flight when cudaMemcpy returns; sessions'
  // streams do not wait for the default stream.
  DEEPEP_CUDA(cudaDeviceSynchronize(), "uploading the weights");
  for (const auto& [v, off] : place) m.weight[size_t(v->id)] = static_cast<uint8_t*>(m.weights) + off;
  for (const Reordered& r : reord) m.reordered[{r.node, r.input}] = static_cast<uint8_t*>(m.weights) + r.off;
}

// ---------------------------------------------------------------- sessions
struct PinnedBuffer {
  void* p = nullptr;
  size_t bytes = 0;
  PinnedBuffer() = default;
  PinnedBuffer(const PinnedBuffer&) = delete;
  ~PinnedBuffer() {
    if (p) cudaFreeHost(p);
  }
  void reserve(size_t n, const char* what) {
    if (n <= bytes && p) return;
    if (p) cudaFreeHost(p);
    p = nullptr;
    DEEPEP_CUDA(cudaMallocHost(&p, std::max<size_t>(n, 64)), what);
    bytes = n;
  }
};

struct DeviceBuffer {
  void* p = nullptr;
  size_t bytes = 0;
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (p) cudaFree(p);
  }
  void allocate(size_t n, const std::string& what) {
    if (p) cudaFree(p);
    p = nullptr;
    bytes = n;
    DEEPEP_CUDA(cudaMalloc(&p, std::max<size_t>(n, kAlign)), what);
  }
};

struct InputSlot {
  size_t value;         // value id
  void* raw = nullptr;  // where the caller's bytes land on the device
  size_t bytes = 0;
  size_t pin_off = 0;
  bool convert = false;
};
struct OutputSlot {
  size_t value;
  DType dtype = DType::kUndefined;  // of the result: the logical dtype, or float16 (CudaOptions::fp16_outputs)
  void* raw = nullptr;  // device bytes in the result's dtype
  size_t bytes = 0;
  size_t pin_off = 0;
  bool convert = false;
  bool host = false;  // a host-known output: copied from the plan's host tensor
  bool direct = false;  // large: copied straight into the result's pinned buffer on the copy stream
};
// One block of a direct output: converted (when the device dtype differs) and
// copied to the host after node `after` of the plan (the end when it is
// nodes.size()), on the copy stream, while the nodes after it run.
struct OutputCopy {
  size_t output;
  size_t after;
  uint64_t offset, bytes;  // in the result's bytes
};

struct Plan {
  std::vector<std::pair<DType, Shape>> signature;
  std::vector<Shape> shape;         // by value id
  std::vector<DType> dtype;         // logical, by value id
  std::vector<DType> dev;           // on the device, by value id
  std::vector<Tensor> host;         // by value id: host-known values
  std::vector<void*> ptr;           // by value id: device bytes
  std::vector<GpuNode> nodes;       // GPU nodes in order
  std::vector<int> gather_nodes;    // node ids whose kernels may set an error flag
  std::vector<InputSlot> inputs;
  std::vector<OutputSlot> outputs;
  std::vector<OutputCopy> copies;  // by `after`
  DeviceBuffer arena;
  PinnedBuffer pin_in, pin_out;
  std::vector<std::vector<std::shared_ptr<PinnedBuffer>>> out_pool;  // per output: results handed out
  size_t workspace = 0;
  cudaGraphExec_t exec = nullptr;
  cudaGraph_t graph = nullptr;               // exec's graph: its copy nodes are re-pointed per run
  std::vector<cudaGraphNode_t> copy_nodes;   // by copies index
  std::vector<void*> exec_dst;               // by output: where exec's copies write now
  bool ran_once = false;
  size_t waves = 0;         // row waves the nodes run in (0: none)
  std::string waves_off;    // why there are none (DEEPEP_CUDA_VERBOSE)
  std::string graph_error;  // why this plan runs eagerly
  MemoryReport report;
  ~Plan() { drop_graph(); }
  void drop_graph() {
    if (exec) cudaGraphExecDestroy(exec);
    if (graph) cudaGraphDestroy(graph);
    exec = nullptr, graph = nullptr;
    copy_nodes.clear();
    exec_dst.clear();
  }
};

class CudaSessionImpl : public CudaSession {
 public:
  explicit CudaSessionImpl(std::shared_ptr<CudaModel> m) : m_(std::move(m)) {
    DeviceGuard d(m_->opt.device);
    DEEPEP_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "creating a CUDA stream");
    DEEPEP_CUDA(cublasLtCreate(&ctx_.lt), "creating the cuBLASLt handle");
    if (m_->needs_cudnn) {
      DEEPEP_CUDA(cudnnCreate(&ctx_.dnn), "creating the cuDNN handle");
      DEEPEP_CUDA(cudnnSetStream(ctx_.dnn, stream_), "binding cuDNN to the stream");
    }
    DEEPEP_CUDA(cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking), "creating a CUDA stream");
    DEEPEP_CUDA(cudaEventCreateWithFlags(&fork_, cudaEventDisableTiming), "creating a CUDA event");
    DEEPEP_CUDA(cudaEventCreateWithFlags(&join_, cudaEventDisableTiming), "creating a CUDA event");
    ctx_.stream = stream_;
    ctx_.allow_tf32 = m_->info.tf32 && !m_->opt.strict_fp32;
    ctx_.cc_major = m_->info.cc_major, ctx_.cc_minor = m_->info.cc_minor;
    flags_.allocate(sizeof(int) * std::max<size_t>(1, m_->g.nodes().size()), "allocating error flags");
    DEEPEP_CUDA(cudaMemsetAsync(flags_.p, 0, flags_.bytes, stream_), "clearing error flags");
    DEEPEP_CUDA(cudaStreamSynchronize(stream_), "clearing error flags");
    ctx_.error_flag = static_cast<int*>(flags_.p);
    pin_flags_.reserve(flags_.bytes, "allocating pinned error flags");
    grow_workspace(size_t(32) << 20);
  }
  ~CudaSessionImpl() override {
    DeviceGuard d(m_->opt.device);
    plans_.clear();
    if (ctx_.lt) cublasLtDestroy(ctx_.lt);
    if (ctx_.dnn) cudnnDestroy(ctx_.dnn);
    if (fork_) cudaEventDestroy(fork_);
    if (join_) cudaEventDestroy(join_);
    if (copy_stream_) cudaStreamDestroy(copy_stream_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  std::vector<Tensor> run(const std::vector<Tensor>& inputs) override {
    DeviceGuard d(m_->opt.device);
    std::vector<std::pair<DType, Shape>> sig;
    for (const Tensor& t : inputs) sig.emplace_back(t.dtype(), t.shape());
    Plan* p = find(sig);
    if (!p) p = make_plan(sig, inputs);
    last_ = p;
    // Caller bytes -> pinned staging.
    for (size_t i = 0; i < p->inputs.size(); ++i)
      if (p->inputs[i].bytes) copy_to_staging(static_cast<uint8_t*>(p->pin_in.p) + p->inputs[i].pin_off, inputs[i].raw(), p->inputs[i].bytes);
    // Large outputs land in pinned buffers that become the results (one DMA,
    // no host-side copy or page faults); a buffer the caller still holds from
    // an earlier run is not reused.
    std::vector<std::shared_ptr<PinnedBuffer>> direct(p->outputs.size());
    std::vector<void*> dst(p->outputs.size(), nullptr);
    for (size_t i = 0; i < p->outputs.size(); ++i) {
      const OutputSlot& o = p->outputs[i];
      if (o.host || !o.direct || !o.bytes) continue;
      direct[i] = take_pinned(*p, i, o.bytes);
      dst[i] = direct[i]->p;
    }
    const bool debug_sync = env_on("DEEPEP_CUDA_SYNC");
    if (p->ran_once && m_->opt.graphs && !debug_sync && !p->exec && p->graph_error.empty()) {
      capture(*p, dst);
      if (env_on("DEEPEP_CUDA_VERBOSE"))
        std::fprintf(stderr, "deepep cuda: plan of %zu GPU nodes in %zu row wave(s), arena %llu bytes, workspace %zu bytes: %s\n",
                     p->nodes.size(), std::max<size_t>(1, p->waves), static_cast<unsigned long long>(p->report.planned_bytes), workspace_.bytes,
                     p->exec ? "CUDA graph captured" : ("runs eagerly: " + p->graph_error).c_str());
      if (env_on("DEEPEP_CUDA_VERBOSE") && !p->waves_off.empty())
        std::fprintf(stderr, "deepep cuda: no row waves: %s\n", p->waves_off.c_str());
    }
    if (p->exec) retarget(*p, dst);
    if (p->exec) {
      DEEPEP_CUDA(cudaGraphLaunch(p->exec, stream_), "launching the CUDA graph");
    } else {
      enqueue(*p, dst, debug_sync);
    }
    DEEPEP_CUDA(cudaStreamSynchronize(stream_), "running the model on the GPU (set DEEPEP_CUDA_SYNC=1 to find the op)");
    p->ran_once = true;
    const int* flags = static_cast<const int*>(pin_flags_.p);
    for (int id : p->gather_nodes)
      if (flags[id])
        throw Error(detail::concat(m_->g.nodes()[size_t(id)]->describe(), ": an index is out of range"));
    std::vector<Tensor> outs;
    for (const OutputSlot& o : p->outputs) {
      if (o.host) {
        outs.push_back(p->host[o.value].clone());
        continue;
      }
      const size_t i = outs.size();
      if (direct[i]) {
        outs.push_back(Tensor::wrap(o.dtype, p->shape[o.value], direct[i]->p,
                                    std::static_pointer_cast<void>(direct[i])));
        continue;
      }
      Tensor t(o.dtype, p->shape[o.value]);
      if (o.bytes)
        std::memcpy(t.raw(), static_cast<const uint8_t*>(p->pin_out.p) + o.pin_off, o.bytes);
      outs.push_back(std::move(t));
    }
    return outs;
  }

  MemoryReport memory_report() const override { return last_ ? last_->report : MemoryReport{}; }

 private:
  static constexpr size_t kMaxPlans = 8;

  // A pinned buffer of output `i` that no earlier result still uses (at most
  // kPinnedPerOutput kept per output; past that, one for this result alone).
  static constexpr size_t kPinnedPerOutput = 3;
  std::shared_ptr<PinnedBuffer> take_pinned(Plan& p, size_t i, size_t bytes) {
    if (p.out_pool.size() <= i) p.out_pool.resize(p.outputs.size());
    for (auto& b : p.out_pool[i])
      if (b.use_count() == 1) return b;
    auto b = std::make_shared<PinnedBuffer>();
    b->reserve(bytes, "allocating pinned output memory");
    if (p.out_pool[i].size() < kPinnedPerOutput) p.out_pool[i].push_back(b);
    return b;
  }

  // Points the captured graph's output copies at this run's result buffers.
  void retarget(Plan& p, const std::vector<void*>& dst) {
    for (size_t k = 0; k < p.copies.size(); ++k) {
      const OutputCopy& c = p.copies[k];
      if (p.exec_dst[c.output] == dst[c.output]) continue;
      const OutputSlot& o = p.outputs[c.output];
      const cudaError_t e = cudaGraphExecMemcpyNodeSetParams1D(
          p.exec, p.copy_nodes[k], static_cast<char*>(dst[c.output]) + c.offset,
          static_cast<const char*>(o.raw) + c.offset, c.bytes, cudaMemcpyDeviceToHost);
      if (e != cudaSuccess) {  // this plan runs eagerly from now on
        cudaGetLastError();
        p.drop_graph();
        p.graph_error = std::string("re-pointing the output copies failed: ") + cudaGetErrorString(e);
        return;
      }
    }
    for (const OutputCopy& c : p.copies) p.exec_dst[c.output] = dst[c.output];
  }

  Plan* find(const std::vector<std::pair<DType, Shape>>& sig) {
    for (auto it = plans_.begin(); it != plans_.end(); ++it)
      if ((*it)->signature == sig) {
        plans_.splice(plans_.begin(), plans_, it);
        return plans_.front().get();
      }
    return nullptr;
  }

  void grow_workspace(size_t bytes) {
    if (bytes <= workspace_.bytes && workspace_.p) return;
    DEEPEP_CUDA(cudaStreamSynchronize(stream_), "growing the GPU workspace");
    workspace_.allocate(bytes, detail::concat("allocating a ", bytes, "-byte GPU workspace"));
    ctx_.workspace = workspace_.p;
    ctx_.workspace_bytes = workspace_.bytes;
    for (auto& p : plans_) p->drop_graph();  // captured graphs hold the old pointer
  }

  // Shapes (and host values) of every value for this signature.
  void infer_shapes(Plan& p, const std::vector<Tensor>& inputs) {
    const Graph& g = m_->g;
    const size_t nv = g.values().size();
    p.shape.assign(nv, {});
    p.dtype.assign(nv, DType::kUndefined);
    p.host.assign(nv, Tensor());
    std::vector<char> known(nv, 0);
    for (const auto& v : g.values()) {
      p.dtype[size_t(v->id)] = v->dtype;
      if (v->data) {
        p.shape[size_t(v->id)] = v->data->shape();
        p.host[size_t(v->id)] = *v->data;
        known[size_t(v->id)] = 1;
      }
    }
    for (size_t i = 0; i < g.inputs.size(); ++i) {
      const size_t id = size_t(g.inputs[i]->id);
      p.shape[id] = inputs[i].shape();
      known[id] = 1;
    }
    for (const auto& np : g.nodes()) {
      const Node& n = *np;
      if (!m_->kernel[size_t(n.id)]) {  // host node: the CPU reference on host values
        KernelContext ctx{n, {}, {}, nullptr, nullptr};
        std::vector<Tensor> shape_inputs;
        shape_inputs.reserve(n.inputs.size());
        for (const Value* v : n.inputs) {
          if (!v) {
            ctx.inputs.push_back(nullptr);
            continue;
          }
          const size_t id = size_t(v->id);
          if (is_shape_op(n) && !p.host[id].defined()) {
            // Shape/Size read only the shape: give them a shape-only view.
            shape_inputs.push_back(Tensor::wrap(p.dtype[id], p.shape[id], nullptr, nullptr));
            ctx.inputs.push_back(&shape_inputs.back());
          } else {
            DEEPEP_CHECK(p.host[id].defined(), n.describe(), ": input '", v->name, "' is not known on the host");
            ctx.inputs.push_back(&p.host[id]);
          }
        }
        ctx.outputs.resize(n.outputs.size());
        n.def->reference(ctx);
        for (size_t i = 0; i < n.outputs.size(); ++i)
          if (n.outputs[i]) {
            const size_t id = size_t(n.outputs[i]->id);
            p.host[id] = ctx.outputs[i];
            p.shape[id] = ctx.outputs[i].shape();
            p.dtype[id] = ctx.outputs[i].dtype();
            known[id] = 1;
          }
        continue;
      }
      DEEPEP_CHECK(n.def->infer, n.describe(), ": the op has no shape inference, which the CUDA backend needs");
      std::vector<Value> tmp(n.inputs.size());
      InferContext ic{n, {}, {}};
      for (size_t i = 0; i < n.inputs.size(); ++i) {
        const Value* v = n.inputs[i];
        if (!v) {
          ic.inputs.push_back(nullptr);
          continue;
        }
        const size_t id = size_t(v->id);
        DEEPEP_CHECK(known[id], n.describe(), ": input '", v->name, "' has no shape");
        tmp[i].name = v->name;
        tmp[i].dtype = p.dtype[id];
        tmp[i].shape = to_sym_shape(p.shape[id]);
        if (p.host[id].defined()) tmp[i].data = p.host[id];
        ic.inputs.push_back(&tmp[i]);
      }
      ic.outputs.resize(n.outputs.size());
      n.def->infer(ic);
      for (size_t i = 0; i < n.outputs.size(); ++i) {
        if (!n.outputs[i]) continue;
        const auto& o = ic.outputs[i];
        Shape s;
        bool ok = o.shape.has_value();
        if (ok)
          for (const Dim& d : *o.shape) {
            ok = ok && d.is_known();
            s.push_back(d.value);
          }
        DEEPEP_CHECK(ok, n.describe(), ": the shape of output '", n.outputs[i]->name,
                     "' is not known before running (data-dependent shapes are not supported on the CUDA backend)");
        const size_t id = size_t(n.outputs[i]->id);
        p.shape[id] = s;
        if (o.dtype != DType::kUndefined) p.dtype[id] = o.dtype;
        known[id] = 1;
      }
    }
  }

  Plan* make_plan(const std::vector<std::pair<DType, Shape>>& sig, const std::vector<Tensor>& inputs) {
    const Graph& g = m_->g;
    auto plan = std::make_unique<Plan>();
    Plan& p = *plan;
    p.signature = sig;
    infer_shapes(p, inputs);
    const size_t nv = g.values().size();
    const int nn = int(g.nodes().size());
    const int last_step = nn + 1;
    p.dev.assign(nv, DType::kUndefined);
    for (size_t id = 0; id < nv; ++id) p.dev[id] = device_dtype(*m_, id, p.dtype[id]);
    auto dev_dtype = [&](size_t id) { return p.dev[id]; };
    auto bytes_of = [&](size_t id) { return uint64_t(shape_numel(p.shape[id])) * dtype_size(dev_dtype(id)); };
    // Buffers: one per root value; views map to their input's root.
    std::vector<int> root(nv, -1), buffer(nv, -1);
    std::vector<BufferRequest> req;
    auto new_buffer = [&](uint64_t bytes, int first, int last) {
      req.push_back({std::max<uint64_t>(align_up(bytes), kAlign), first, last});
      return int(req.size()) - 1;
    };
    auto touch = [&](size_t id, int step) {
      const int b = buffer[size_t(root[id] >= 0 ? root[id] : int(id))];
      if (b >= 0) req[size_t(b)].last = std::max(req[size_t(b)].last, step);
    };
    // Graph inputs (step 0).
    for (size_t i = 0; i < g.inputs.size(); ++i) {
      const size_t id = size_t(g.inputs[i]->id);
      if (!m_->on_device[id]) continue;
      buffer[id] = new_buffer(bytes_of(id), 0, 0);
    }
    // Host values GPU nodes read: uploaded once, live the whole run.
    for (size_t id = 0; id < nv; ++id)
      if (m_->host_known[id] && m_->on_device[id] && !m_->weight[id]) buffer[id] = new_buffer(bytes_of(id), 0, last_step);
    for (const auto& np : g.nodes()) {
      const Node& n = *np;
      const GpuKernel* k = m_->kernel[size_t(n.id)];
      if (!k) continue;
      const int step = n.id + 1;
      for (const Value* v : n.inputs)
        if (v && buffer[size_t(root[size_t(v->id)] >= 0 ? root[size_t(v->id)] : v->id)] >= 0) touch(size_t(v->id), step);
      for (size_t i = 0; i < n.outputs.size(); ++i) {
        const Value* v = n.outputs[i];
        if (!v) continue;
        const size_t id = size_t(v->id);
        if (k->view && i == 0 && n.inputs[0]) {
          const size_t in = size_t(n.inputs[0]->id);
          root[id] = root[in] >= 0 ? root[in] : int(in);
          continue;
        }
        buffer[id] = new_buffer(bytes_of(id), step, step);
      }
    }
    for (const Value* v : g.outputs)
      if (!m_->host_known[size_t(v->id)]) touch(size_t(v->id), last_step);
    // Input staging when the device dtype differs (fp16 mode), output staging likewise.
    std::vector<int> in_stage(g.inputs.size(), -1), out_stage(g.outputs.size(), -1);
    for (size_t i = 0; i < g.inputs.size(); ++i) {
      const size_t id = size_t(g.inputs[i]->id);
      if (m_->on_device[id] && dev_dtype(id) != p.dtype[id])
        in_stage[i] = new_buffer(uint64_t(shape_numel(p.shape[id])) * dtype_size(p.dtype[id]), 0, 0);
    }
    auto result_dtype = [&](size_t id) {
      return m_->opt.fp16_outputs && p.dtype[id] == DType::kFloat32 ? DType::kFloat16 : p.dtype[id];
    };
    // The GPU node that makes each output's bytes (its root value as output 0), if any: large outputs are
    // copied (and converted) right after it, while later nodes run.
    std::vector<const Node*> maker(g.outputs.size(), nullptr);
    for (size_t i = 0; i < g.outputs.size(); ++i) {
      const size_t id = size_t(g.outputs[i]->id);
      const Value* r = g.values()[size_t(root[id] >= 0 ? root[id] : int(id))].get();
      if (r->producer && m_->kernel[size_t(r->producer->id)] && !r->producer->outputs.empty() &&
          r->producer->outputs[0] == r)
        maker[i] = r->producer;
    }
    std::vector<char> is_input(nv, 0);
    for (const Value* v : g.inputs) is_input[size_t(v->id)] = 1;
    // A GPU node's tensors (no device bytes before the memory plan).
    auto gpu_node = [&](const Node& n) {
      GpuNode gn{n, {}, {}, nullptr};
      auto tensor_of = [&](const Value* v) {
        GpuTensor t;
        if (!v) return t;
        const size_t id = size_t(v->id);
        t.data = p.ptr.empty() ? nullptr : p.ptr[id];
        t.dtype = dev_dtype(id);
        t.shape = p.shape[id];
        if (p.host[id].defined()) t.host = &p.host[id];
        t.fixed = m_->weight[id] || m_->host_known[id] || is_input[id];
        return t;
      };
      for (const Value* v : n.inputs) gn.in.push_back(tensor_of(v));
      for (size_t i = 0; i < gn.in.size(); ++i)
        if (auto it = m_->reordered.find({n.id, i}); it != m_->reordered.end()) {
          gn.in[i].data = it->second;
          gn.in[i].reordered = true;
        }
      for (const Value* v : n.outputs) gn.out.push_back(tensor_of(v));
      return gn;
    };
    // Row waves (cuda_output_blocks.h): values whose rows one wave leaves for the next (inputs, outputs,
    // what causal attention reads) live the whole run.
    const WaveChoice wave = choose_waves(p, maker, result_dtype, gpu_node);
    if (!wave.rows.empty()) {
      auto whole_run = [&](size_t id) {
        const int b = buffer[size_t(root[id] >= 0 ? root[id] : int(id))];
        if (b >= 0) req[size_t(b)].first = 0, req[size_t(b)].last = last_step;
      };
      for (const Value* v : g.inputs) whole_run(size_t(v->id));
      for (const Value* v : g.outputs) whole_run(size_t(v->id));
      if (wave.inside_items)  // whole items a wave: causal attention reads its own wave's rows alone
        for (const auto& np : g.nodes())
          if (const GpuKernel* k = m_->kernel[size_t(np->id)]; k && k->reads_earlier_rows)
            for (const Value* v : np->inputs)
              if (v) whole_run(size_t(v->id));
    }
    p.waves_off = wave.why_not;
    for (size_t i = 0; i < g.outputs.size(); ++i) {
      const size_t id = size_t(g.outputs[i]->id);
      if (!m_->host_known[id] && dev_dtype(id) != result_dtype(id))
        out_stage[i] = new_buffer(uint64_t(shape_numel(p.shape[id])) * dtype_size(result_dtype(id)),
                                  maker[i] && wave.rows.empty() ? maker[i]->id + 1 : 0, last_step);
    }
    MemoryPlan mp = plan_memory(req);
    const uint64_t cap = m_->opt.memory_pool_bytes;
    if (cap && mp.arena_bytes > cap)
      throw Error(detail::concat("memory pool too small: the GPU plan for these input shapes needs ", mp.arena_bytes,
                                 " bytes, memory_pool_size allows ", cap));
    p.arena.allocate(mp.arena_bytes, detail::concat("allocating the ", mp.arena_bytes, "-byte activation arena on cuda:",
                                                     m_->opt.device));
    // On this session's stream (non-blocking: it does not wait for the legacy
    // default stream, so a plain cudaMemset could land after the inputs' copy).
    if (m_->opt.poison || env_on("DEEPEP_CUDA_POISON")) {
      DEEPEP_CUDA(cudaMemsetAsync(p.arena.p, 0xFF, mp.arena_bytes, stream_), "poisoning the arena");
      DEEPEP_CUDA(cudaStreamSynchronize(stream_), "poisoning the arena");
    }
    uint8_t* base = static_cast<uint8_t*>(p.arena.p);
    p.ptr.assign(nv, nullptr);
    for (size_t id = 0; id < nv; ++id) {
      if (m_->weight[id]) p.ptr[id] = m_->weight[id];
      else if (buffer[id] >= 0) p.ptr[id] = base + mp.offsets[size_t(buffer[id])];
    }
    for (size_t id = 0; id < nv; ++id)  // views: the root's bytes
      if (root[id] >= 0) p.ptr[id] = p.ptr[size_t(root[id])];
    // Host values on the device: upload now (they are fixed for this signature).
    for (size_t id = 0; id < nv; ++id)
      if (m_->host_known[id] && m_->on_device[id] && !m_->weight[id] && p.host[id].defined()) {
        std::vector<uint8_t> bytes(bytes_of(id));
        Tensor h = p.host[id];
        if (h.dtype() == DType::kFloat32 && dev_dtype(id) == DType::kFloat16) convert_host(h, DType::kFloat16, bytes.data());
        else std::memcpy(bytes.data(), h.raw(), h.nbytes());
        if (!bytes.empty())
          DEEPEP_CUDA(cudaMemcpyAsync(p.ptr[id], bytes.data(), bytes.size(), cudaMemcpyHostToDevice, stream_),
                      "uploading shape values");
        DEEPEP_CUDA(cudaStreamSynchronize(stream_), "uploading shape values");
      }
    // Staging.
    size_t pin_in = 0, pin_out = 0;
    for (size_t i = 0; i < g.inputs.size(); ++i) {
      const size_t id = size_t(g.inputs[i]->id);
      InputSlot s{id};
      s.bytes = inputs[i].nbytes();
      s.pin_off = pin_in;
      pin_in += align_up(s.bytes);
      if (m_->on_device[id]) {
        s.convert = in_stage[i] >= 0;
        s.raw = s.convert ? base + mp.offsets[size_t(in_stage[i])] : p.ptr[id];
      } else {
        s.bytes = 0;  // only its shape is read
      }
      p.inputs.push_back(s);
    }
    for (size_t i = 0; i < g.outputs.size(); ++i) {
      const size_t id = size_t(g.outputs[i]->id);
      OutputSlot s{id};
      s.dtype = result_dtype(id);
      s.host = m_->host_known[id];
      if (!s.host) {
        s.bytes = uint64_t(shape_numel(p.shape[id])) * dtype_size(s.dtype);
        s.convert = out_stage[i] >= 0;
        s.raw = s.convert ? base + mp.offsets[size_t(out_stage[i])] : p.ptr[id];
        // Small outputs ride the graph into pinned memory (lowest latency); large
        // ones are copied once, after the run, into the result tensor: a pinned
        // hop would cost a second pass over the bytes on the host.
        s.direct = s.bytes >= kDirectCopyBytes;
        if (!s.direct) {
          s.pin_off = pin_out;
          pin_out += align_up(s.bytes);
        }
      }
      p.outputs.push_back(s);
    }
    p.pin_in.reserve(pin_in, "allocating pinned input staging");
    p.pin_out.reserve(pin_out, "allocating pinned output staging");
    // Direct outputs by the node that makes them (a node making two of them: copied whole after it).
    std::map<int, std::vector<size_t>> made_by;
    for (size_t i = 0; i < p.outputs.size(); ++i)
      if (p.outputs[i].direct && p.outputs[i].bytes) made_by[maker[i] ? maker[i]->id : nn].push_back(i);
    auto copy_whole = [&](size_t output) {
      p.copies.push_back({output, p.nodes.size() - 1, 0, p.outputs[output].bytes});
    };
    // GPU nodes: tensors, then prepare (algorithm choice, workspace).
    std::vector<std::pair<const GpuKernel*, GpuNode>> gpu_nodes;
    for (const auto& np : g.nodes()) {
      const Node& n = *np;
      if (const GpuKernel* k = m_->kernel[size_t(n.id)]) {
        gpu_nodes.emplace_back(k, gpu_node(n));
        if (n.op_type == "Gather") p.gather_nodes.push_back(n.id);
      }
    }
    size_t ws = 0;
    auto prepare = [&](const GpuKernel& k, GpuNode& x) {
      try {
        if (k.prepare) ws = std::max(ws, k.prepare(ctx_, x));
      } catch (const Error& e) {
        const std::string msg = e.what();
        if (msg.find(x.node.op_type) == std::string::npos) throw Error(detail::concat(x.node.describe(), ": ", msg));
        throw;
      }
    };
    // Each wave: every node on its rows (all waves' blocks are made first: one the kernel refuses, and the plan
    // runs unwaved).
    std::vector<std::vector<GpuNode>> waved;
    for (const auto& [r0, count] : wave.rows) {
      std::vector<GpuNode> nodes;
      bool all = true;
      for (const auto& [k, gn] : gpu_nodes) {
        if (k->view) continue;
        // Earlier rows were kept only when waves split items: otherwise such a node's window must hold whole
        // items of its own (its output's leading dim).
        const Shape& os = gn.out[0].shape;
        const int64_t item_rows = os.size() >= 2 && os[0] > 0 ? shape_numel(os) / os.back() / os[0] : 0;
        const bool whole = item_rows > 0 && r0 % item_rows == 0 && count % item_rows == 0;
        std::optional<GpuNode> b = !k->reads_earlier_rows || wave.inside_items || whole
                                       ? cuda::block_of(*k, gn, r0, count)
                                       : std::nullopt;
        if (!b) {
          all = false;
          p.waves_off = detail::concat(gn.node.describe(), " refuses rows [", r0, ", ", r0 + count, ")");
          break;
        }
        nodes.push_back(std::move(*b));
      }
      if (!all) {
        waved.clear();
        break;
      }
      waved.push_back(std::move(nodes));
    }
    p.waves = waved.size();
    if (!waved.empty())
      for (auto& [k, gn] : gpu_nodes)
        if (k->view) prepare(*k, gn);  // no work; checks the shapes
    // A node (a wave's block of rows [r0, r0 + count), or count 0: the whole node), then the copies of
    // the outputs it makes, its rows of them (split into blocks with their own copies when it makes one
    // large output alone).
    auto emit = [&](const GpuKernel& k, GpuNode&& n, int64_t r0, int64_t count) {
      auto made = made_by.find(n.node.id);
      if (made != made_by.end() && made->second.size() == 1 &&
          split_for_copy(p, n, k, made->second[0], r0, [&](GpuNode& x) { prepare(k, x); }))
        return;
      prepare(k, n);
      p.nodes.push_back(std::move(n));
      if (made == made_by.end()) return;
      for (size_t i : made->second) {
        if (count == 0) {
          copy_whole(i);
          continue;
        }
        const uint64_t row_bytes = p.outputs[i].bytes / uint64_t(wave.total_rows);
        p.copies.push_back({i, p.nodes.size() - 1, uint64_t(r0) * row_bytes, uint64_t(count) * row_bytes});
      }
    };
    for (size_t w = 0; w < waved.size(); ++w)
      for (GpuNode& b : waved[w])
        emit(*m_->kernel[size_t(b.node.id)], std::move(b), wave.rows[w].first, wave.rows[w].second);
    if (waved.empty())
      for (auto& [k, gn] : gpu_nodes) emit(*k, std::move(gn), 0, 0);
    if (auto rest = made_by.find(nn); rest != made_by.end())  // made by no GPU node (a graph input, say)
      for (size_t i : rest->second) p.copies.push_back({i, p.nodes.size(), 0, p.outputs[i].bytes});
    p.workspace = ws;
    grow_workspace(ws);
    // Report.
    p.report.naive_bytes = 0;
    for (const BufferRequest& r : req) p.report.naive_bytes += r.bytes;
    p.report.planned_bytes = mp.arena_bytes;
    p.report.lower_bound_bytes = mp.lower_bound_bytes;
    p.report.weights_bytes = m_->weights_bytes;
    p.report.planned_buffers = req.size();
    if (plans_.size() >= kMaxPlans) plans_.pop_back();
    plans_.push_front(std::move(plan));
    return plans_.front().get();
  }

  // Adds node `n`, which makes rows [first_row, ...) of direct output `output`,
  // as blocks of its rows (each prepared), each followed by the copy of its
  // part of the output; false when it cannot be split (nothing added then: a
  // block the kernel refuses makes the whole node run as one, and its own
  // prepare reports any error).
  template <class Prepare>
  bool split_for_copy(Plan& p, const GpuNode& n, const GpuKernel& k, size_t output, int64_t first_row,
                      Prepare&& prepare) {
    const OutputSlot& o = p.outputs[output];
    if (n.out.empty() || n.out[0].shape.empty() || n.out[0].shape.back() == 0) return false;
    const int64_t cols = n.out[0].shape.back(), rows = n.out[0].numel() / cols;
    const uint64_t row_bytes = uint64_t(cols) * dtype_size(o.dtype);
    if (uint64_t(first_row + rows) * row_bytes > o.bytes) return false;
    const int64_t per = cuda::output_block_rows(rows, uint64_t(rows) * row_bytes);
    if (per >= rows) return false;
    std::vector<GpuNode> blocks;
    try {
      for (int64_t r0 = 0; r0 < rows; r0 += per) {
        std::optional<GpuNode> b = cuda::block_of(k, n, r0, std::min(per, rows - r0));
        if (!b) return false;
        blocks.push_back(std::move(*b));
        prepare(blocks.back());
      }
    } catch (const Error&) {
      return false;  // a block shape the kernel does not take: the whole node runs as one
    }
    for (size_t b = 0; b < blocks.size(); ++b) {
      const int64_t r0 = first_row + int64_t(b) * per, count = blocks[b].out[0].numel() / cols;
      p.nodes.push_back(std::move(blocks[b]));
      p.copies.push_back({output, p.nodes.size() - 1, uint64_t(r0) * row_bytes, uint64_t(count) * row_bytes});
    }
    return true;
  }

  // Row waves for this plan (cuda_output_blocks.h): the largest device output
  // made by a GPU node, when every GPU node makes rows of its grid, each from
  // the same rows of what it reads (or the earlier rows of its sequence:
  // causal attention), everything else it reads being weights, constants or
  // graph inputs. Whether each node takes each wave's rows is checked when
  // the blocks are made.
  struct WaveChoice {
    std::vector<std::pair<int64_t, int64_t>> rows;
    int64_t total_rows = 0;
    bool inside_items = false;  // waves may split a batch item (a sequence)
    std::string why_not;        // DEEPEP_CUDA_VERBOSE
  };
  template <class ResultDtype, class MakeNode>
  WaveChoice choose_waves(const Plan& p, const std::vector<const Node*>& maker, ResultDtype&& result_dtype,
                          MakeNode&& gpu_node) const {
    const Graph& g = m_->g;
    const char* env = std::getenv("DEEPEP_CUDA_WAVES");
    const int forced = env && *env ? std::atoi(env) : 0;
    auto no = [](std::string why) { return WaveChoice{{}, 0, false, std::move(why)}; };
    if (env && *env && forced <= 1) return no("DEEPEP_CUDA_WAVES=" + std::string(env));
    int out = -1;
    uint64_t best = 0;
    for (size_t i = 0; i < g.outputs.size(); ++i) {
      const size_t id = size_t(g.outputs[i]->id);
      const uint64_t bytes = uint64_t(shape_numel(p.shape[id])) * dtype_size(result_dtype(id));
      if (maker[i] && !m_->host_known[id] && (forced > 1 || bytes >= kDirectCopyBytes) && bytes > best)
        best = bytes, out = int(i);
    }
    if (out < 0) return no("no large output made on the GPU");
    const Shape& grid = p.shape[size_t(maker[size_t(out)]->outputs[0]->id)];
    const int64_t rows = cuda::grid_rows(grid);
    if (rows <= 0) return no("an empty output");
    for (const auto& np : g.nodes()) {
      const GpuKernel* k = m_->kernel[size_t(np->id)];
      if (!k || k->view) continue;
      if (np->outputs.empty() || !np->outputs[0] || cuda::grid_rows(p.shape[size_t(np->outputs[0]->id)]) != rows)
        return no(np->describe() + " makes other rows than the output's " + std::to_string(rows));
      if (k->row_block) continue;
      const GpuNode gn = gpu_node(*np);
      std::optional<std::vector<size_t>> rows_in;
      try {
        if (k->row_inputs) rows_in = k->row_inputs(gn);
      } catch (const Error&) {
      }
      if (!rows_in) return no(np->describe() + " cannot run by rows");
      for (size_t i = 0; i < gn.in.size(); ++i)
        if (gn.has_input(i) && !gn.in[i].fixed && std::find(rows_in->begin(), rows_in->end(), i) == rows_in->end())
          return no(np->describe() + " reads '" + np->inputs[i]->name + "' whole");  // made this run
    }
    const int64_t items = grid.size() >= 3 ? grid[0] : 1;
    WaveChoice c{cuda::row_waves(rows, items, best, forced), rows, items < 2, {}};
    if (c.rows.empty()) c.why_not = "the output is too small for waves";
    return c;
  }

  void enqueue(Plan& p, const std::vector<void*>& dst, bool debug_sync) {
    cudaStream_t s = stream_;
    DEEPEP_CUDA(cudaMemsetAsync(flags_.p, 0, flags_.bytes, s), "clearing error flags");
    for (const InputSlot& in : p.inputs) {
      if (!in.bytes) continue;
      DEEPEP_CUDA(cudaMemcpyAsync(in.raw, static_cast<uint8_t*>(p.pin_in.p) + in.pin_off, in.bytes,
                                  cudaMemcpyHostToDevice, s),
                  "copying inputs to the GPU");
      if (in.convert) {
        cuda::convert(in.raw, int(p.dtype[in.value]), p.ptr[in.value], int(p.dev[in.value]),
                      shape_numel(p.shape[in.value]), s);
        DEEPEP_CUDA_LAUNCHED("converting inputs");
      }
    }
    // Direct outputs: converted on the stream, then copied on the copy stream
    // (forked after the node that made them, joined at the end).
    size_t next_copy = 0;
    auto copy_out = [&](size_t after) {
      for (; next_copy < p.copies.size() && p.copies[next_copy].after == after; ++next_copy) {
        const OutputCopy& c = p.copies[next_copy];
        const OutputSlot& o = p.outputs[c.output];
        if (o.convert) {
          const size_t es = dtype_size(o.dtype), ds = dtype_size(p.dev[o.value]);
          cuda::convert(static_cast<const char*>(p.ptr[o.value]) + c.offset / es * ds, int(p.dev[o.value]),
                        static_cast<char*>(o.raw) + c.offset, int(o.dtype), int64_t(c.bytes / es), s);
          DEEPEP_CUDA_LAUNCHED("converting outputs");
        }
        DEEPEP_CUDA(cudaEventRecord(fork_, s), "ordering the output copies");
        DEEPEP_CUDA(cudaStreamWaitEvent(copy_stream_, fork_, 0), "ordering the output copies");
        DEEPEP_CUDA(cudaMemcpyAsync(static_cast<char*>(dst[c.output]) + c.offset, static_cast<const char*>(o.raw) + c.offset,
                                    c.bytes, cudaMemcpyDeviceToHost, copy_stream_),
                    "copying outputs from the GPU");
      }
    };
    for (size_t i = 0; i < p.nodes.size(); ++i) {
      GpuNode& n = p.nodes[i];
      try {
        m_->kernel[size_t(n.node.id)]->run(ctx_, n);
      } catch (const Error& e) {
        const std::string msg = e.what();
        if (msg.find(n.node.op_type) == std::string::npos) throw Error(detail::concat(n.node.describe(), ": ", msg));
        throw;
      }
      if (debug_sync) DEEPEP_CUDA(cudaStreamSynchronize(s), n.node.describe());
      copy_out(i);
    }
    copy_out(p.nodes.size());
    if (!p.copies.empty()) {
      DEEPEP_CUDA(cudaEventRecord(join_, copy_stream_), "ordering the output copies");
      DEEPEP_CUDA(cudaStreamWaitEvent(s, join_, 0), "ordering the output copies");
    }
    for (const OutputSlot& o : p.outputs) {
      if (o.host || !o.bytes || o.direct) continue;
      if (o.convert) {
        cuda::convert(p.ptr[o.value], int(p.dev[o.value]), o.raw, int(o.dtype),
                      shape_numel(p.shape[o.value]), s);
        DEEPEP_CUDA_LAUNCHED("converting outputs");
      }
      if (!o.direct)
        DEEPEP_CUDA(cudaMemcpyAsync(static_cast<uint8_t*>(p.pin_out.p) + o.pin_off, o.raw, o.bytes,
                                    cudaMemcpyDeviceToHost, s),
                    "copying outputs from the GPU");
    }
    DEEPEP_CUDA(cudaMemcpyAsync(pin_flags_.p, flags_.p, flags_.bytes, cudaMemcpyDeviceToHost, s), "reading error flags");
  }

  void capture(Plan& p, const std::vector<void*>& dst) {
    cudaGraph_t graph = nullptr;
    DEEPEP_CUDA(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "starting CUDA graph capture");
    try {
      enqueue(p, dst, false);
    } catch (const Error& e) {
      cudaStreamEndCapture(stream_, &graph);
      if (graph) cudaGraphDestroy(graph);
      cudaGetLastError();
      p.graph_error = e.what();  // runs eagerly from now on
      return;
    }
    const cudaError_t e = cudaStreamEndCapture(stream_, &graph);
    if (e != cudaSuccess || !graph) {
      cudaGetLastError();
      p.graph_error = std::string("capture failed: ") + cudaGetErrorString(e);
      return;
    }
    const cudaError_t ie = cudaGraphInstantiate(&p.exec, graph, 0);
    p.graph = graph;
    if (ie != cudaSuccess) {
      cudaGetLastError();
      p.exec = nullptr;
      p.drop_graph();
      p.graph_error = std::string("instantiation failed: ") + cudaGetErrorString(ie);
      return;
    }
    // The copy nodes, to re-point at each run's result buffers.
    std::vector<const void*> to;
    for (const OutputCopy& c : p.copies) to.push_back(static_cast<const char*>(dst[c.output]) + c.offset);
    p.copy_nodes = cuda::memcpy_nodes_writing(graph, to);
    for (cudaGraphNode_t node : p.copy_nodes)
      if (!node) {
        p.drop_graph();
        p.graph_error = "the output copies were not found in the captured graph";
        return;
      }
    p.exec_dst = dst;
  }

  std::shared_ptr<CudaModel> m_;
  cudaStream_t stream_ = nullptr;
  cudaStream_t copy_stream_ = nullptr;  // direct outputs' copies to the host
  cudaEvent_t fork_ = nullptr, join_ = nullptr;
  GpuContext ctx_;
  DeviceBuffer workspace_, flags_;
  PinnedBuffer pin_flags_;
  std::list<std::unique_ptr<Plan>> plans_;
  Plan* last_ = nullptr;
};

}  // namespace

std::shared_ptr<CudaModel> cuda_load(const Graph& g, const CudaOptions& options) {
  std::string why;
  const std::vector<GpuDeviceInfo> devs = cuda_devices(&why);
  DEEPEP_CHECK(!devs.empty(), "device 'cuda:", options.device, "' is not available: ", why);
  DEEPEP_CHECK(options.device >= 0 && size_t(options.device) < devs.size(), "device 'cuda:", options.device,
               "' is not available: ", devs.size(), " CUDA device(s) found");
  auto m = std::make_shared<CudaModel>(g, options);
  m->info = devs[size_t(options.device)];
  DeviceGuard d(options.device);
  analyse(*m);
  upload_weights(*m);
  return m;
}

std::unique_ptr<CudaSession> cuda_session(const std::shared_ptr<CudaModel>& model) {
  return std::make_unique<CudaSessionImpl>(model);
}

}  // namespace deepep
