// The op table. Every op DeepEP knows is one line of ops.def; everything per
// op (shape/type inference, fusion kind, cost, the reference kernel that is the
// test oracle) hangs off its OpDef, defined in src/ops/<stem>.cpp with
// DEEPEP_DEFINE_OP(Name) { ... }.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "deepep/tensor.h"
#include "ir/graph.h"

namespace deepep {

// The classic fusion lattice: a fuser may merge a producer into a consumer when
// the kinds allow it (elementwise < broadcast < injective < reduction <
// output-fusable < opaque).
enum class FusionKind { kElementwise, kBroadcast, kInjective, kReduction, kOutputFusable, kOpaque };
const char* fusion_kind_name(FusionKind k);

enum OpFlags : unsigned {
  kNoFlags = 0,
  kInplace = 1u << 0,      // output 0 may reuse input 0's buffer
  kCommutative = 1u << 1,  // inputs 0 and 1 may be swapped
  kControlFlow = 1u << 2,  // runs subgraphs
  // Output 0 may reuse input 3's buffer (a fused epilogue's residual, read
  // element for element where it writes): every kernel of the op must give
  // the same result when Y and the residual are one buffer.
  kInplaceResidual = 1u << 3,
};

struct Cost {
  double flops = 0;
  double bytes = 0;
};

class SubgraphRunner;

// Where kernel outputs live: the runtime hands out slices of a planned arena
// (or caller buffers) through this; without one, outputs get fresh storage.
class OutputAllocator {
 public:
  virtual ~OutputAllocator() = default;
  virtual Tensor allocate(const Node& node, int output, DType dtype, const Shape& shape) = 0;
};

class NodeCache;

// What a reference kernel sees: concrete inputs, and outputs to fill.
struct KernelContext {
  const Node& node;
  std::vector<const Tensor*> inputs;  // nullptr for omitted optional inputs
  std::vector<Tensor> outputs;        // one per node output; kernels assign them
  SubgraphRunner* subgraphs = nullptr;
  OutputAllocator* allocator = nullptr;
  // This node's cache in the running Session (null where nobody keeps one,
  // e.g. a kernel test): the kernel chosen for these inputs and a fast
  // kernel's plan, kept while the inputs' types and shapes stay the same.
  NodeCache* cache = nullptr;

  int num_inputs() const { return int(inputs.size()); }
  bool has_input(int i) const { return i < num_inputs() && inputs[i] != nullptr; }
  const Tensor& input(int i) const;
  // Allocates output i with the given type and shape and returns it.
  Tensor& output(int i, DType dtype, const Shape& shape);
  void set_output(int i, Tensor t);
  bool output_requested(int i) const;
  const char* op() const { return node.op_type.c_str(); }
};

// Runs If/Loop/Scan bodies; implemented by the runtime.
class SubgraphRunner {
 public:
  virtual ~SubgraphRunner() = default;
  // Runs `body` with its graph inputs bound to `inputs`; returns its outputs.
  virtual std::vector<Tensor> run(const Graph& body, const std::vector<Tensor>& inputs) = 0;
};

// What shape inference sees: input types/shapes (and data, when constant).
struct InferContext {
  const Node& node;
  std::vector<const Value*> inputs;  // nullptr for omitted optional inputs
  struct Out {
    DType dtype = DType::kUndefined;
    std::optional<SymShape> shape;
  };
  std::vector<Out> outputs;

  bool has_input(int i) const { return i < int(inputs.size()) && inputs[i] != nullptr; }
  const Value& input(int i) const { return *inputs[i]; }
  // The data of input i when it is a constant, else nullptr.
  const Tensor* constant(int i) const;
  // Ignores an output the node does not have (a malformed model may list
  // fewer outputs than the op defines).
  void set(int i, DType dt, std::optional<SymShape> shape) {
    if (i >= 0 && size_t(i) < outputs.size()) outputs[size_t(i)] = {dt, std::move(shape)};
  }
};

using KernelFn = std::function<void(KernelContext&)>;
using InferFn = std::function<void(InferContext&)>;
using CostFn = std::function<Cost(const Node&, const std::vector<Shape>& in, const std::vector<Shape>& out)>;

// A fast kernel of an op (src/kernels/<backend>/): the executor runs the first
// candidate whose `supports` accepts the node's concrete inputs, else the
// reference. A fast kernel must produce what the reference does (tests compare
// them on random data) for every input it claims; it may decline anything.
struct FastKernel {
  std::string name;                                      // e.g. "cpu.packed_gemm"
  std::function<bool(const KernelContext&)> supports;    // empty: always
  KernelFn run;
};

// Per node of a graph a Session runs (the Executor keeps one per node): what
// select_kernel picked and what that kernel derived from the node's
// attributes and its inputs' types and shapes (ORT builds such state in its
// kernel objects at load; here it is made on the first run and again
// whenever an input's type or shape, or the kernel environment, changes).
// A fast kernel's supports() and run() both may look up and set the plan.
class NodeCache {
 public:
  // Whether `inputs` and `environment` are what the cache was made for.
  bool matches(const std::vector<const Tensor*>& inputs, uint64_t environment) const;
  // Forgets the kernel and plan and remembers `inputs`' types and shapes.
  void reset(const std::vector<const Tensor*>& inputs, uint64_t environment);

  const KernelFn* kernel = nullptr;

  // The plan of type T, or null if none (or one of another type) is kept.
  template <class T>
  T* plan() const {
    return plan_type_ == &type_tag<T> ? static_cast<T*>(plan_.get()) : nullptr;
  }
  template <class T>
  T& set_plan(T value) {
    auto p = std::make_shared<T>(std::move(value));
    plan_ = p;
    plan_type_ = &type_tag<T>;
    return *p;
  }

 private:
  template <class T>
  static constexpr char type_tag = 0;
  std::vector<int64_t> signature_;  // environment, then per input: dtype (or -1 when absent), rank, dims
  std::shared_ptr<void> plan_;
  const void* plan_type_ = nullptr;
};

// A kernel's plan of type T for ctx: the one ctx.cache keeps, else make()'s
// (kept there when there is a cache; without one, made on every call).
template <class T, class Make>
T cached_plan(const KernelContext& ctx, Make&& make) {
  if (!ctx.cache) return make();
  if (const T* p = ctx.cache->plan<T>()) return *p;
  return ctx.cache->set_plan<T>(make());
}

struct OpDef {
  std::string name;    // the op_type
  std::string domain;  // "" for ONNX ops, "deepep" for DeepEP's fused ops
  FusionKind kind = FusionKind::kOpaque;
  unsigned flags = kNoFlags;
  InferFn infer;      // may be empty: outputs then have unknown shapes
  KernelFn reference;
  CostFn cost;        // may be empty: a default from bytes moved is used
  std::vector<FastKernel> cpu;  // fast CPU kernels, registered by src/kernels/cpu
};

// The kernel the executor runs for `ctx`: the first fast kernel that supports
// it, else the reference. With ctx.cache set, the choice is kept there and
// supports() asked again only when the inputs' types or shapes or the kernel
// environment (cpu::kernel_environment: the ISA in use, the float32
// precision allowed) differ from the last call's.
const KernelFn& select_kernel(const OpDef& def, const KernelContext& ctx);

// The domain of DeepEP's own (fused) ops; ONNX ops have the empty domain.
inline constexpr const char* kDeepepDomain = "deepep";

// Looks up an op of the default ONNX domain; nullptr if DeepEP lacks it.
const OpDef* find_op(const std::string& op_type);
// Looks up an op of `domain` ("" / "ai.onnx" or "deepep"); nullptr if unknown.
const OpDef* find_op(const std::string& domain, const std::string& op_type);
const std::map<std::string, OpDef>& all_ops();
// Cost of a node on concrete shapes (falls back to elements and bytes moved).
Cost node_cost(const Node& n, const std::vector<Tensor*>& in, const std::vector<Tensor*>& out);

}  // namespace deepep

// In src/ops/<stem>.cpp:  DEEPEP_DEFINE_OP(Relu) { def.reference = ...; def.infer = ...; }
// DeepEP's own ops (domain "deepep", listed with DEEPEP_FUSED_OP in
// src/ops/fused.def) use DEEPEP_DEFINE_FUSED_OP(FusedMatMul) { ... }.
#define DEEPEP_DEFINE_OP(NAME) void ::deepep::ops::define_##NAME(::deepep::OpDef& def)
#define DEEPEP_DEFINE_FUSED_OP(NAME) void ::deepep::ops::define_deepep_##NAME(::deepep::OpDef& def)
namespace deepep::ops {
#define DEEPEP_OP(NAME, KIND, FLAGS) void define_##NAME(::deepep::OpDef& def);
#define DEEPEP_FUSED_OP(NAME, KIND, FLAGS) void define_deepep_##NAME(::deepep::OpDef& def);
#include "ir/ops.def"
#undef DEEPEP_OP
#undef DEEPEP_FUSED_OP
}  // namespace deepep::ops
