// Channels-last convolutions (load time, per device: not part of a fusion
// level; convert_to_channels_last in pipeline.cpp runs it with
// transpose_cancellation and dead-code elimination).
// Rewrites every 2-D Conv / deepep.FusedConv (X and W of rank 4, a float
// type, X's rank known) into deepep.FusedConv with channels_last = 1:
//   Transpose(X, [0,2,3,1]) -> FusedConv(channels_last) -> Transpose([0,3,1,2]) -> y
// and the residual input through Transpose([0,2,3,1]). Between two
// convolutions the back-to-back pair composes to the identity and goes; a
// transpose stays only where the NHWC region meets other ops (the input
// image, global pooling, Flatten).
// 2-D MaxPool whose Indices output is unused becomes deepep.MaxPool with
// channels_last = 1 the same way, so ResNet's stem pooling joins the region
// (no transposes around it).
// Must not: touch 1-D/3-D convolutions or pools, nodes already channels-last,
// a node whose X rank is unknown, or a MaxPool whose Indices are read.
// Why: cuDNN's fp16 tensor-core convolutions and CPU implicit-GEMM kernels
// want the channel innermost; NCHW makes them transpose on every call.
#include "ir/graph_edit.h"
#include "ir/op_registry.h"
#include "ops/channels_last.h"
#include "optimizer/pass.h"
#include "optimizer/pattern.h"

namespace deepep {
namespace {

using ops::kToNchw;
using ops::kToNhwc;

bool is_float(const Value* v) {
  return v && (v->dtype == DType::kFloat32 || v->dtype == DType::kFloat16 || v->dtype == DType::kBFloat16);
}

std::optional<SymShape> permuted(const std::optional<SymShape>& s, const std::vector<int64_t>& perm) {
  if (!s || s->size() != perm.size()) return std::nullopt;
  return ops::permuted(*s, perm);
}

Attribute perm_attr(const std::vector<int64_t>& perm) {
  Attribute a;
  a.kind = Attribute::Kind::kInts;
  a.ints = perm;
  return a;
}

// A Transpose of `in` by `perm` into a new value, inserted before `before`.
Value* transposed(Graph& g, const Node* before, Value* in, const std::vector<int64_t>& perm) {
  Value* out = new_value(g, in->name + (perm == kToNhwc ? "_nhwc" : "_nchw"), in->dtype, permuted(in->shape, perm));
  Node* t = insert_node_before(g, before, "Transpose", {in}, {out});
  t->attrs["perm"] = perm_attr(perm);
  return out;
}

bool convertible(const Node& n) {
  const bool conv = n.domain.empty() && n.op_type == "Conv";
  const bool fused = n.domain == kDeepepDomain && n.op_type == "FusedConv";
  if (!(conv || fused) || n.inputs.size() < 2 || n.outputs.size() != 1 || !n.outputs[0]) return false;
  if (fused && n.attr_int("channels_last", 0) != 0) return false;
  const Value* x = n.inputs[0];
  if (!is_float(x) || !x->shape || x->shape->size() != 4) return false;
  if (opt::rank_of(n.inputs[1]).value_or(0) != 4) return false;
  const Value* res = fused && n.inputs.size() > 3 ? n.inputs[3] : nullptr;
  return !res || (res->shape && res->shape->size() == 4);
}

bool pool_convertible(const Node& n) {
  if (!n.domain.empty() || n.op_type != "MaxPool" || n.inputs.size() != 1 || n.outputs.empty() || !n.outputs[0])
    return false;
  if (n.outputs.size() > 1 && n.outputs[1]) return false;  // Indices (dead-code elimination drops unread ones)
  if (n.attr_ints("kernel_shape").size() != 2) return false;
  const Value* x = n.inputs[0];
  return is_float(x) && x->shape && x->shape->size() == 4;
}

// n as its deepep-domain op `op_type` (the fusion report keeps the source op).
void become(Node& n, const char* op_type) {
  Node src = n;
  n.op_type = op_type;
  n.domain = kDeepepDomain;
  n.def = find_op(kDeepepDomain, op_type);
  n.absorbed.clear();
  absorb(n, src);
}

bool run(Graph& g, PassContext& ctx) {
  std::vector<Node*> todo;
  for (const auto& n : g.nodes())
    if (convertible(*n) || pool_convertible(*n)) todo.push_back(n.get());
  for (Node* n : todo) {
    const bool pool = n->op_type == "MaxPool";
    n->inputs[0] = transposed(g, n, n->inputs[0], kToNhwc);
    if (n->inputs.size() > 3 && n->inputs[3]) n->inputs[3] = transposed(g, n, n->inputs[3], kToNhwc);
    if (pool) {
      become(*n, "MaxPool");
      n->outputs.resize(1);
    } else if (n->op_type == "Conv") {
      become(*n, "FusedConv");
    }
    n->attrs["channels_last"] = Attribute{};
    n->attrs["channels_last"].i = 1;
    // y keeps its name and readers; the node now writes y's NHWC twin.
    Value* y = n->outputs[0];
    Value* y_nhwc = new_value(g, y->name + "_nhwc", y->dtype, permuted(y->shape, kToNhwc));
    n->outputs[0] = y_nhwc;
    y_nhwc->producer = n;
    const auto& nodes = g.nodes();
    const Node* next = nullptr;
    for (size_t i = 0; i < nodes.size(); ++i)
      if (nodes[i].get() == n) {
        next = i + 1 < nodes.size() ? nodes[i + 1].get() : nullptr;
        break;
      }
    Node* back = insert_node_before(g, next, "Transpose", {y_nhwc}, {y});
    back->attrs["perm"] = perm_attr(kToNchw);
    ctx.count(pool ? "channels_last.pool" : "channels_last.conv");
  }
  return !todo.empty();
}

}  // namespace

std::unique_ptr<Pass> make_channels_last() { return std::make_unique<FunctionPass>("channels_last", 2, run); }

}  // namespace deepep
