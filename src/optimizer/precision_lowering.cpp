// Precision lowering (level 3): with OptimizeOptions.precision float16 or
// bfloat16, float32 computation and weights move to that type, while the
// model keeps float32 inputs and outputs.
//
// Rewrites: each node on the lowering list (ops whose kernels run float16 and
// bfloat16: elementwise math, MatMul/Gemm/Conv and deepep.FusedMatMul/
// FusedConv, pooling, data movement) that
// reads or writes float32 gets its float32 inputs in the target type (constant
// weights converted once, saturating to the type's finite range; computed
// values through one shared Cast, placed before their first lowered reader)
// and writes the target type. Where a lowered value is read by a node kept in
// float32, a graph output or a subgraph, one Cast back to float32 keeps the
// original value (and name). Cast from an integer or bool to float32 is
// lowered by retargeting it.
//
// Keeps in float32 (Casts go around them): reductions (Reduce*, ArgMax...),
// normalizations (LayerNormalization, RMSNormalization, BatchNormalization,
// InstanceNormalization, GroupNormalization, MeanVarianceNormalization,
// LpNormalization), Softmax/LogSoftmax/Hardmax, deepep.SkipLayerNorm and
// deepep.Attention, every op not on the list (its kernel may lack the type;
// e.g. Resize, RNNs), and
// Casts from a float type (explicit conversions stay as written).
// Range guard: an elementwise op whose output feeds a normalization or
// Softmax stays in float32 too, so the residual stream of a transformer
// (Add before LayerNorm) and the masked scores before Softmax (Add/Where with
// float32-min masks) neither overflow nor lose their bits; so does the op
// feeding an Exp (the x - max(x) of a hand-written softmax, where x may be far
// beyond 16-bit precision); for float16, Exp itself stays float32 too (it
// overflows above 11).
//
// The decision depends only on op types and on which values are float32, so a
// second run changes nothing: lowered nodes no longer touch float32, kept ones
// are kept again, inserted Casts read a float type.
// Precision float32 (and tf32, a GPU math mode) and int8 change nothing here.
#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>
#include <unordered_set>

#include "ir/dtype_dispatch.h"
#include "ir/graph_edit.h"
#include "ir/op_registry.h"
#include "optimizer/pass.h"
#include "optimizer/pattern.h"

namespace deepep {
namespace {

// Ops whose reference kernels take float16 and bfloat16 for every float input
// (they dispatch on dispatch_float/numeric/by_size, or convert to float).
const std::unordered_set<std::string>& lowerable_ops() {
  static const std::unordered_set<std::string> kOps = {
      // elementwise math
      "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Neg", "Abs", "Reciprocal", "Sqrt",
      "Exp", "Log", "Tanh", "Erf", "Sigmoid", "Relu", "LeakyRelu", "Elu", "Selu", "Celu", "Gelu",
      "HardSigmoid", "HardSwish", "Softplus", "Softsign", "Mish", "Swish", "ThresholdedRelu", "PRelu",
      "Clip", "Where", "Floor", "Ceil", "Sin", "Cos", "Identity",
      // matrix products and convolutions (float accumulation)
      "MatMul", "Gemm", "Conv", "ConvTranspose",
      // windowed pools (not global reductions)
      "MaxPool", "AveragePool",
      // data movement
      "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat", "Split", "Slice", "Gather",
      "GatherElements", "GatherND", "Expand", "Tile", "Pad", "DepthToSpace", "SpaceToDepth"};
  return kOps;
}

// Readers whose input must not have overflowed or lost its range.
bool is_range_sensitive(const Node& n) {
  static const std::unordered_set<std::string> kOps = {
      "LayerNormalization", "RMSNormalization", "BatchNormalization", "InstanceNormalization",
      "GroupNormalization", "MeanVarianceNormalization", "LpNormalization", "Softmax", "LogSoftmax"};
  static const std::unordered_set<std::string> kFused = {"SkipLayerNorm", "Attention"};
  return n.domain.empty() ? kOps.count(n.op_type) > 0 : n.domain == kDeepepDomain && kFused.count(n.op_type) > 0;
}

bool is_elementwise(const Node& n) {
  return n.def && (n.def->kind == FusionKind::kElementwise || n.def->kind == FusionKind::kBroadcast);
}

// A copy of float32 constant `t` in `to`, out-of-range finite values clamped to
// the largest finite value of `to` (float32's min as a mask stays a huge
// negative number instead of becoming -inf and then NaN in 0 * -inf).
Tensor convert_saturating(const Tensor& t, DType to) {
  Tensor r(to, t.shape());
  const float* in = t.data<float>();
  const float max = to == DType::kFloat16 ? 65504.0f : float(bfloat16::from_bits(0x7f7f));
  dispatch_float(to, "precision_lowering", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* out = r.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      float v = in[i];
      if (std::isfinite(v)) v = std::clamp(v, -max, max);
      out[i] = T(v);
    }
  });
  return r;
}

const char* suffix_of(DType t) { return t == DType::kFloat16 ? "_fp16" : "_bf16"; }

class Lowering {
 public:
  Lowering(Graph& g, PassContext& ctx, DType to) : g_(g), ctx_(ctx), to_(to), uses_(g) {}

  bool run() {
    // Casts are decided last: they follow their readers.
    for (const auto& n : g_.nodes())
      if (touches_f32(*n) && !is_int_to_float_cast(*n) && lowerable(*n)) low_set_.insert(n.get());
    std::vector<Node*> low;
    int kept = 0;
    std::vector<Node*> order;  // the lowered nodes and the shape readers, in node order
    for (const auto& node : g_.nodes()) {
      Node* n = node.get();
      if (!touches_f32(*n)) continue;
      if (low_set_.count(n) || (is_int_to_float_cast(*n) && !needs_f32(n->outputs[0]))) {
        low.push_back(n);
        order.push_back(n);
      } else if (is_shape_reader(*n)) {
        order.push_back(n);
      } else if (!is_float_cast(*n)) {
        ++kept;
      }
    }
    if (low.empty()) return false;
    ctx_.count("kept_float32", kept);
    low_set_.insert(low.begin(), low.end());
    for (Node* n : order) {
      if (low_set_.count(n)) {
        lower(*n);
        continue;
      }
      // Shape/Size read no data: they take a lowered value as it is.
      for (Value*& v : n->inputs)
        if (auto it = low_.find(v); v && it != low_.end()) v = it->second;
    }
    prune_values(g_);
    return true;
  }

 private:
  bool touches_f32(const Node& n) const {
    for (const Value* v : n.inputs)
      if (v && v->dtype == DType::kFloat32) return true;
    for (const Value* v : n.outputs)
      if (v && v->dtype == DType::kFloat32) return true;
    return false;
  }

  // int/bool -> float32: retargeted to the target type when every reader is
  // lowered (else it stays: a large integer would lose bits on the way).
  static bool is_int_to_float_cast(const Node& n) {
    return opt::is_op(n, "Cast") && n.inputs.size() == 1 && n.inputs[0] && !opt::is_float(n.inputs[0]->dtype) &&
           n.outputs.size() == 1 && n.outputs[0] && n.outputs[0]->dtype == DType::kFloat32;
  }

  // Whether v is read by a normalization, Softmax or Exp, directly or through
  // Casts between float types (after a first run, a lowered Exp reads a Cast
  // of v: a second run must decide the same).
  bool feeds_range_sensitive(const Value* v, int depth = 0) const {
    if (!v || depth > 2) return false;
    for (const Use& u : uses_.uses(v)) {
      if (is_range_sensitive(*u.node) || opt::is_op(*u.node, "Exp")) return true;
      if (is_float_cast(*u.node) && feeds_range_sensitive(u.node->outputs[0], depth + 1)) return true;
    }
    return false;
  }

  // Readers of a value's shape only, which take any type.
  static bool is_shape_reader(const Node& n) { return opt::is_op(n, "Shape") || opt::is_op(n, "Size"); }

  static bool is_float_cast(const Node& n) {
    return opt::is_op(n, "Cast") && n.inputs.size() == 1 && n.inputs[0] && opt::is_float(n.inputs[0]->dtype);
  }

  bool lowerable(const Node& n) const {
    if (n.domain == kDeepepDomain) {
      // The GEMM/conv fused ops take 16-bit tensors and accumulate in float32;
      // SkipLayerNorm and Attention (a norm, a softmax) stay float32.
      if (n.op_type != "FusedMatMul" && n.op_type != "FusedConv") return false;
    } else if (!n.domain.empty() || !lowerable_ops().count(n.op_type)) {
      return false;
    }
    if (to_ == DType::kFloat16 && n.op_type == "Exp") return false;
    for (const auto& [k, a] : n.attrs)
      if (!a.graphs.empty()) return false;
    if (is_elementwise(n))
      for (const Value* v : n.outputs)
        if (feeds_range_sensitive(v)) return false;
    return true;
  }

  // v in the target type, for lowered readers placed at or after `before`.
  Value* low_of(Value* v, const Node* before) {
    if (auto it = low_.find(v); it != low_.end()) return it->second;
    Value* nv;
    if (v->data) {
      nv = new_constant(g_, opt::derived_name(v->name, suffix_of(to_)), convert_saturating(*v->data, to_));
      ctx_.count("constants_converted");
    } else {
      nv = new_value(g_, opt::derived_name(v->name, suffix_of(to_)), to_, v->shape);
      Node* c = insert_node_before(g_, before, "Cast", {v}, {nv});
      c->name = nv->name;
      c->opset = before ? before->opset : 0;
      c->attrs["to"].i = int64_t(to_);
      ctx_.count("casts");
    }
    low_[v] = nv;
    return nv;
  }

  // Whether v (an output of a lowered node) is still needed in float32.
  bool needs_f32(const Value* v) const {
    if (uses_.is_output(v)) return true;
    for (const Use& u : uses_.uses(v))
      if (u.input < 0 || !(low_set_.count(u.node) || is_shape_reader(*u.node))) return true;
    return false;
  }

  void lower(Node& n) {
    for (Value*& v : n.inputs)
      if (v && v->dtype == DType::kFloat32) v = low_of(v, &n);
    if (n.op_type == "Cast") n.attrs["to"].i = int64_t(to_);
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      Value* o = n.outputs[k];
      if (!o || o->dtype != DType::kFloat32) continue;
      Value* lo = new_value(g_, opt::derived_name(o->name, suffix_of(to_)), to_, o->shape);
      n.outputs[k] = lo;
      lo->producer = &n;
      o->producer = nullptr;
      low_[o] = lo;
      if (needs_f32(o)) {
        // o keeps its name and float32 type, now made by a Cast right after n.
        const size_t next = size_t(n.id) + 1;
        const Node* anchor = next < g_.nodes().size() ? g_.nodes()[next].get() : nullptr;
        Node* c = insert_node_before(g_, anchor, "Cast", {lo}, {o});
        c->name = o->name + "_to_float32";
        c->opset = n.opset;
        c->attrs["to"].i = int64_t(DType::kFloat32);
        ctx_.count("casts");
      }
    }
    ctx_.count("lowered");
  }

  Graph& g_;
  PassContext& ctx_;
  DType to_;
  UseIndex uses_;  // of the graph before lowering: decisions and f32 readers
  std::unordered_set<const Node*> low_set_;
  std::unordered_map<const Value*, Value*> low_;
};

bool run(Graph& g, PassContext& ctx) {
  DType to;
  if (ctx.precision == Precision::kFloat16) to = DType::kFloat16;
  else if (ctx.precision == Precision::kBFloat16) to = DType::kBFloat16;
  else return false;
  return Lowering(g, ctx, to).run();
}

}  // namespace

std::unique_ptr<Pass> make_precision_lowering() {
  return std::make_unique<FunctionPass>("precision_lowering", 3, run);
}

}  // namespace deepep
