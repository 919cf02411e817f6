#include "deepep/engine.h"

#include <cstdlib>
#include <cstring>
#include <list>
#include <map>
#include <optional>

#include "format/de_file.h"
#include "frontend/onnx_loader.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/thread_pool.h"
#include "optimizer/pipeline.h"
#include "runtime/cuda_runtime.h"
#include "runtime/executor.h"
#include "runtime/session_debug.h"

namespace deepep {

std::string TensorInfo::shape_str() const {
  if (!has_shape) return "[?]";
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    s += i ? ", " : "";
    s += dims[i] >= 0 ? std::to_string(dims[i]) : (symbols[i].empty() ? "?" : symbols[i]);
  }
  return s + "]";
}

struct Engine::Impl {
  EngineOptions options;
  OnnxModel model;
  std::shared_ptr<void> mapping;  // a .de file's mapped weights
  std::string metadata_json = "{}";
  std::string device;
  std::string layout = "nchw";
  std::vector<TensorInfo> inputs, outputs;
  std::shared_ptr<CudaModel> cuda;  // set when the device is a GPU
};

namespace {
TensorInfo info_of(const Value* v) {
  TensorInfo t;
  t.name = v->name;
  t.dtype = v->dtype;
  t.has_shape = v->shape.has_value();
  if (v->shape)
    for (const Dim& d : *v->shape) {
      t.dims.push_back(d.is_known() ? d.value : -1);
      t.symbols.push_back(d.is_known() ? "" : d.symbol);
    }
  return t;
}

// Checks one input against its spec, binding symbols to sizes as it goes.
void validate_input(const TensorInfo& spec, const Tensor& t, std::map<std::string, int64_t>& syms) {
  if (spec.dtype != DType::kUndefined && t.dtype() != spec.dtype)
    throw InputError(detail::concat("input '", spec.name, "': expected dtype ",
                                    dtype_name(spec.dtype), ", got ", dtype_name(t.dtype())));
  if (!spec.has_shape) return;
  if (t.rank() != int(spec.dims.size()))
    throw InputError(detail::concat("input '", spec.name, "': expected rank ", spec.dims.size(),
                                    " (shape ", spec.shape_str(), "), got shape ",
                                    shape_str(t.shape())));
  for (int i = 0; i < t.rank(); ++i) {
    if (spec.dims[i] >= 0 && spec.dims[i] != t.dim(i))
      throw InputError(detail::concat("input '", spec.name, "': dimension ", i, " must be ",
                                      spec.dims[i], " (shape ", spec.shape_str(), "), got shape ",
                                      shape_str(t.shape())));
    if (spec.dims[i] < 0 && !spec.symbols[i].empty()) {
      auto [it, fresh] = syms.emplace(spec.symbols[i], t.dim(i));
      if (!fresh && it->second != t.dim(i))
        throw InputError(detail::concat("input '", spec.name, "': dimension ", i, " ('",
                                        spec.symbols[i], "') is ", t.dim(i),
                                        ", but another input set '", spec.symbols[i], "' to ",
                                        it->second));
    }
  }
}
// The layout the user asked for (DEEPEP_LAYOUT overrides the option), with
// "auto" resolved per device from measurements on the zoo CNNs: NHWC on CUDA
// (cuDNN NHWC with fused epilogues: resnet50 b128 fp16 8.5 vs 13.7 ms NCHW on
// an H200, bench/results/gpu_nhwc_2026-11-28.txt) and on a CPU with fast
// kernels (NHWC/NCHW at 2 threads 0.74 resnet50, 0.54 mobilenetv2, 0.82
// resnet152: bench/results/cpu_nhwc_2026-11-28.md). Without them (no AVX2,
// or DEEPEP_CPU_ISA=none) the reference runs, for which the transposes are
// pure cost: NCHW.
std::string resolve_layout(const EngineOptions& options, bool gpu) {
  std::string want = options.layout;
  if (const char* env = std::getenv("DEEPEP_LAYOUT"); env && *env) want = env;
  DEEPEP_CHECK(want == "auto" || want == "nchw" || want == "nhwc", "layout '", want,
               "' is not known: choose auto, nchw or nhwc");
  if (want != "auto") return want;
  return gpu || cpu::active_isa() != cpu::Isa::kNone ? "nhwc" : "nchw";
}
}  // namespace

std::shared_ptr<Engine> Engine::load(const std::string& path, const EngineOptions& options) {
  const int cuda_device = parse_device(options.device);
  DEEPEP_CHECK(options.precision == "fp32" || options.precision == "fp32-strict" || options.precision == "fp16",
               "precision '", options.precision, "' is not known: choose fp32, fp32-strict or fp16");
  DEEPEP_CHECK(cuda_device >= 0 || options.precision != "fp16", "precision 'fp16' applies to GPU devices; on the "
               "CPU convert the model instead (deepep convert --precision)");
  if (cuda_device >= 0 && !cuda_built())
    throw Error(detail::concat("device '", options.device,
                               "' is not available: this build of DeepEP has no CUDA backend (use device='cpu', or "
                               "rebuild with -DDEEPEP_WITH_CUDA=ON)"));
  const std::string layout = resolve_layout(options, cuda_device >= 0);
  DEEPEP_CHECK(options.output_dtype == "model" || options.output_dtype == "float16", "output_dtype '",
               options.output_dtype, "' is not known: choose model or float16");
  auto impl = std::make_shared<Impl>();
  if (is_de_file(path)) {
    DeFile de = load_de_file(path);
    impl->model = std::move(de.model);
    impl->mapping = std::move(de.mapping);
    impl->metadata_json = std::move(de.metadata_json);
  } else {
    impl->model = load_onnx_file(path);
    DEEPEP_CHECK(options.fusion_level >= 0 && options.fusion_level <= 3, "fusion level ",
                 options.fusion_level, " is out of range: choose 0 (none) to 3 (aggressive)");
    OptimizeOptions o;
    o.level = options.fusion_level;
    FusionReport r = optimize(*impl->model.graph, o);
    impl->metadata_json = "{\"fusion\": " + r.to_json(-1, false) + "}";
  }
  impl->device = cuda_device < 0 ? std::string("cpu") : "cuda:" + std::to_string(cuda_device);
  impl->options = options;
  impl->layout = layout;
  if (impl->layout == "nhwc") convert_to_channels_last(*impl->model.graph);
  if (impl->layout == "nhwc" && cuda_device < 0 && options.fusion_level >= 2) fuse_for_cpu(*impl->model.graph);
  if (cuda_device >= 0) {
    CudaOptions co;
    co.device = cuda_device;
    co.fp16 = options.precision == "fp16";
    co.strict_fp32 = options.precision == "fp32-strict";
    co.graphs = options.cuda_graphs;
    co.memory_pool_bytes = options.memory_pool_bytes;
    co.fp16_outputs = options.output_dtype == "float16";
    impl->cuda = cuda_load(*impl->model.graph, co);
  }
  for (const Value* v : impl->model.graph->inputs) impl->inputs.push_back(info_of(v));
  for (const Value* v : impl->model.graph->outputs) {
    impl->outputs.push_back(info_of(v));
    if (options.output_dtype == "float16" && v->dtype == DType::kFloat32) impl->outputs.back().dtype = DType::kFloat16;
  }
  return std::make_shared<Engine>(std::move(impl));
}

Engine::Engine(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;
const std::vector<TensorInfo>& Engine::inputs() const { return impl_->inputs; }
const std::vector<TensorInfo>& Engine::outputs() const { return impl_->outputs; }
const std::string& Engine::device() const { return impl_->device; }
const std::string& Engine::layout() const { return impl_->layout; }
std::string Engine::graph_text() const { return impl_->model.graph->to_text(); }
size_t Engine::node_count() const { return impl_->model.graph->nodes().size(); }
const std::string& Engine::metadata_json() const { return impl_->metadata_json; }
std::unique_ptr<Session> Engine::create_session() const {
  return std::unique_ptr<Session>(new Session(impl_));
}
NamedTensors Engine::run(const NamedTensors& inputs) const { return create_session()->run(inputs); }

// Plans per input-shape signature, most recent first; bounded so a stream of
// new shapes cannot grow memory without limit.
struct Session::PlanCache {
  static constexpr size_t kMaxPlans = 8;
  struct Entry {
    std::vector<std::pair<DType, Shape>> signature;
    ArenaPlan plan;
    std::shared_ptr<void> arena;
  };
  std::list<Entry> entries;
  std::unique_ptr<CudaSession> cuda;  // runs the model when the engine is on a GPU
  MemoryReport last;
  const Entry* last_entry = nullptr;
  size_t last_inplace_hits = 0, last_fallbacks = 0, last_copied_views = 0;  // of the last replay
  bool last_run_serial = false;  // the last run handed the pool's workers no loop
  Executor executor;  // kept across runs: its per-graph last-use maps are built once
  std::optional<uint64_t> weights;  // the graph's constant bytes (fixed after load)

  Entry* find(const std::vector<std::pair<DType, Shape>>& sig) {
    for (auto it = entries.begin(); it != entries.end(); ++it)
      if (it->signature == sig) {
        entries.splice(entries.begin(), entries, it);
        return &entries.front();
      }
    return nullptr;
  }
};

Session::Session(std::shared_ptr<Engine::Impl> impl)
    : impl_(std::move(impl)), plans_(std::make_unique<PlanCache>()) {
  if (impl_->cuda) plans_->cuda = cuda_session(impl_->cuda);
}
Session::~Session() = default;

MemoryReport Session::memory_report() const {
  return plans_->cuda ? plans_->cuda->memory_report() : plans_->last;
}

std::vector<Tensor> Session::bind_inputs(const NamedTensors& inputs) const {
  std::map<std::string, const Tensor*> given;
  for (const auto& [name, t] : inputs) {
    if (!given.emplace(name, &t).second)
      throw InputError(detail::concat("input '", name, "' was given twice"));
  }
  std::string names;
  for (const auto& s : impl_->inputs) names += (names.empty() ? "" : ", ") + s.name;
  std::vector<Tensor> bound;
  std::map<std::string, int64_t> syms;
  for (const TensorInfo& spec : impl_->inputs) {
    auto it = given.find(spec.name);
    if (it == given.end())
      throw InputError(detail::concat("missing input '", spec.name, "' (", dtype_name(spec.dtype),
                                      spec.shape_str(), "); the model's inputs are: ", names));
    validate_input(spec, *it->second, syms);
    bound.push_back(*it->second);
    given.erase(it);
  }
  if (!given.empty())
    throw InputError(detail::concat("unknown input '", given.begin()->first,
                                    "'; the model's inputs are: ", names));
  return bound;
}

namespace {
// On the intra-op pool: GPT-2's logits are millions of values.
Tensor to_float16(const Tensor& t) {
  Tensor h(DType::kFloat16, t.shape());
  const float* src = t.data<float>();
  uint16_t* dst = static_cast<uint16_t*>(h.raw());
  cpu::ThreadPool::global().parallel_for(t.numel(), 1 << 16, 0, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) dst[i] = float_to_half_bits(src[i]);
  });
  return h;
}

uint64_t weights_bytes(const Graph& g) {
  uint64_t b = 0;
  for (const auto& v : g.values())
    if (v->data) b += v->data->nbytes();
  return b;
}
}  // namespace

NamedTensors Session::run(const NamedTensors& inputs) { return run(inputs, {}); }

NamedTensors Session::run(const NamedTensors& inputs, const NamedTensors& outputs) {
  const Graph& g = *impl_->model.graph;
  std::vector<Tensor> bound = bind_inputs(inputs);
  std::map<const Value*, Tensor> caller_outputs;
  for (const auto& [name, t] : outputs) {
    const Value* v = nullptr;
    for (const Value* o : g.outputs)
      if (o->name == name) v = o;
    if (!v) throw InputError(detail::concat("preallocated output '", name, "' is not an output of the model"));
    caller_outputs[v] = t;
  }
  Executor& ex = plans_->executor;
  // CPU float32 GEMMs may run as bf16x3 on AMX tiles unless "fp32-strict".
  cpu::Fp32PrecisionScope precision(impl_->options.precision == "fp32");
  // CPU runs keep the pool's workers spinning between loops (GPU runs do not
  // use them), unless the last run gave them none (a small model: every op
  // on the caller's thread). A run that does share loops is picked up by
  // the workers anyway and restores the scope for the next one.
  std::optional<cpu::ThreadPool::RunScope> spinning;
  if (!plans_->cuda && !plans_->last_run_serial) spinning.emplace();
  const uint64_t loops_before = cpu::ThreadPool::loops_shared();
  std::vector<Tensor> outs;
  if (plans_->cuda) {
    outs = plans_->cuda->run(bound);
  } else if (!impl_->options.plan_memory) {
    outs = ex.run_graph(g, bound, nullptr);
  } else {
    std::vector<std::pair<DType, Shape>> sig;
    for (const Tensor& t : bound) sig.emplace_back(t.dtype(), t.shape());
    PlanCache::Entry* e = plans_->find(sig);
    if (!e) {
      // First run of this signature: measure, then plan.
      PlanRecorder rec(g, ex.last_uses(g));
      outs = ex.run_graph(g, bound, &rec);
      PlanCache::Entry fresh{sig, rec.finish(), nullptr};
      const uint64_t need = fresh.plan.memory.arena_bytes;
      const uint64_t cap = impl_->options.memory_pool_bytes;
      if (cap && need > cap)
        throw Error(detail::concat("memory pool too small: the plan for input shapes ",
                                   [&] {
                                     std::string s;
                                     for (const auto& [d, sh] : sig) s += shape_str(sh);
                                     return s;
                                   }(),
                                   " needs ", need, " bytes, memory_pool_size allows ", cap));
      void* p = std::aligned_alloc(kArenaAlign, std::max<uint64_t>(kArenaAlign, (need + kArenaAlign - 1) / kArenaAlign * kArenaAlign));
      DEEPEP_CHECK(p, "out of memory allocating a ", need, "-byte activation arena");
      fresh.arena = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
      if (plans_->entries.size() >= PlanCache::kMaxPlans) {
        if (plans_->last_entry == &plans_->entries.back()) plans_->last_entry = nullptr;
        plans_->entries.pop_back();
      }
      plans_->entries.push_front(std::move(fresh));
      e = &plans_->entries.front();
    } else {
      ArenaAllocator alloc(e->plan, static_cast<uint8_t*>(e->arena.get()), e->arena, &caller_outputs);
      outs = ex.run_graph(g, bound, &alloc);
      plans_->last_inplace_hits = alloc.inplace_hits();
      plans_->last_fallbacks = alloc.fallbacks();
      plans_->last_copied_views = alloc.copied_views();
    }
    const MemoryPlan& m = e->plan.memory;
    if (!plans_->weights) plans_->weights = weights_bytes(g);
    plans_->last = {m.naive_bytes, m.arena_bytes, m.lower_bound_bytes, *plans_->weights,
                    e->plan.buffers.size(), e->plan.inplace_reuses};
    plans_->last_entry = e;
    // Nothing handed back may live in the arena the next run reuses.
    for (Tensor& t : outs)
      if (t.owner() == e->arena) t = t.clone();
  }
  if (!plans_->cuda) plans_->last_run_serial = cpu::ThreadPool::loops_shared() == loops_before;
  // An output that views a caller's input buffer (no owner) must not outlive it.
  for (Tensor& t : outs)
    if (!t.owner()) t = t.clone();
  // output_dtype "float16": what is still float32 here (the CPU's results; a GPU output known at load).
  if (impl_->options.output_dtype == "float16")
    for (Tensor& t : outs)
      if (t.dtype() == DType::kFloat32) t = to_float16(t);
  NamedTensors result;
  for (size_t i = 0; i < outs.size(); ++i) {
    auto it = caller_outputs.find(g.outputs[i]);
    if (it != caller_outputs.end()) {
      Tensor& dst = it->second;
      if (dst.dtype() != outs[i].dtype() || dst.shape() != outs[i].shape())
        throw InputError(detail::concat("preallocated output '", g.outputs[i]->name, "' is ",
                                        dtype_name(dst.dtype()), shape_str(dst.shape()),
                                        " but the model produced ", dtype_name(outs[i].dtype()),
                                        shape_str(outs[i].shape())));
      if (dst.raw() != outs[i].raw()) std::memcpy(dst.raw(), outs[i].raw(), dst.nbytes());
      result.emplace_back(g.outputs[i]->name, dst);
    } else {
      result.emplace_back(g.outputs[i]->name, std::move(outs[i]));
    }
  }
  return result;
}

const ArenaPlan* SessionDebug::last_plan(const Session& s) {
  const auto* e = s.plans_->last_entry;
  return e ? &e->plan : nullptr;
}
size_t SessionDebug::cached_plans(const Session& s) { return s.plans_->entries.size(); }
size_t SessionDebug::last_inplace_hits(const Session& s) { return s.plans_->last_inplace_hits; }
size_t SessionDebug::last_fallbacks(const Session& s) { return s.plans_->last_fallbacks; }
size_t SessionDebug::last_copied_views(const Session& s) { return s.plans_->last_copied_views; }

}  // namespace deepep
