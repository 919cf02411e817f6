// Constant folding (level 1).
// Rewrites: a node whose inputs are all constants (omitted optional inputs
// allowed) is evaluated once, now, with its op's reference kernel; its outputs
// become constants and the node goes. One forward sweep folds whole chains.
// Must not: fold control flow (If/Loop/Scan) or anything with subgraphs,
// random ops (their outputs differ per run), ops this build has no kernel for,
// or Quantize/DequantizeLinear (int8 weights stay int8 for the quantized
// kernels of later levels). Outputs over kMaxFoldBytes (64 MiB) stay computed
// at run time, so the model file does not balloon. A kernel that throws
// leaves the node alone: the runtime reports the error with its inputs.
// Why: exporters emit weight transposes, casts and shape arithmetic on
// constants; computing them per run is waste. Shape inference runs again
// after a fold: a Reshape whose target just became constant gets its shape.
#include <unordered_set>

#include "frontend/onnx_loader.h"
#include "ir/graph_edit.h"
#include "ir/op_registry.h"
#include "optimizer/pass.h"
#include "optimizer/pattern.h"

namespace deepep {
namespace {

bool foldable(const Node& n) {
  if (!n.def || !n.def->reference || !opt::is_pure(n)) return false;
  if (opt::is_op(n, "QuantizeLinear") || opt::is_op(n, "DequantizeLinear")) return false;
  if (n.outputs.empty()) return false;
  for (const Value* v : n.inputs)
    if (v && !v->data) return false;
  // Skip before running when the inferred output size is already too big.
  for (const Value* v : n.outputs) {
    if (!v || !v->shape) continue;
    double bytes = double(dtype_size(v->dtype));
    for (const Dim& d : *v->shape) bytes *= d.is_known() ? double(d.value) : 1.0;
    if (bytes > double(opt::kMaxFoldBytes)) return false;
  }
  return true;
}

// Runs the reference kernel; empty when it throws or an output is too big.
std::vector<Tensor> evaluate(const Node& n) {
  KernelContext kc{n, {}, {}};
  for (const Value* v : n.inputs) kc.inputs.push_back(v ? &*v->data : nullptr);
  kc.outputs.resize(n.outputs.size());
  try {
    n.def->reference(kc);
  } catch (const std::exception&) {
    return {};
  }
  for (size_t i = 0; i < n.outputs.size(); ++i) {
    if (!n.outputs[i]) continue;
    if (!kc.outputs[i].defined() || kc.outputs[i].nbytes() > opt::kMaxFoldBytes) return {};
  }
  return std::move(kc.outputs);
}

bool run(Graph& g, PassContext& ctx) {
  std::unordered_set<const Node*> folded;
  for (const auto& up : g.nodes()) {
    Node& n = *up;
    if (!foldable(n)) continue;
    std::vector<Tensor> out = evaluate(n);
    if (out.empty()) continue;
    for (size_t i = 0; i < n.outputs.size(); ++i)
      if (n.outputs[i]) make_constant(n.outputs[i], std::move(out[i]));
    folded.insert(&n);
    ctx.count("folded." + n.op_type);
  }
  if (folded.empty()) return false;
  remove_nodes(g, folded);
  infer_shapes(g);  // readers of new constants (Reshape targets...) may now infer shapes
  ctx.count("nodes_folded", int64_t(folded.size()));
  return true;
}

}  // namespace

std::unique_ptr<Pass> make_constant_folding() {
  return std::make_unique<FunctionPass>("constant_folding", 1, run);
}

}  // namespace deepep
