// MatMul + Add -> Gemm (level 2).
// Rewrites: y = MatMul(A, W) read only by z = Add(y, b) (or Add(b, y)), with
// A of rank 2, W a constant [K, N] and b a constant bias along the last dim
// ([N] or [1, N]), becomes z = Gemm(A, W, b): one kernel call with the bias in
// its epilogue, and the form later passes fuse activations into.
// Must not: rewrite when y has another reader or is a graph output; when A's
// rank is not known to be 2; when W or b is not constant, b is not per-column
// (a [M, N] or [M, 1] b is a different broadcast), or the dtypes are not one
// float type.
// Decision for A of rank 3 or more (transformer activations [batch, seq, K]):
// MatMul+Add stays. ONNX Gemm is 2-D only, and Reshape-Gemm-Reshape costs two
// nodes and a symbolic shape subgraph to win nothing over a MatMul kernel that
// adds the bias itself. A fused node in the `deepep` domain is the right
// target, but no kernel for one exists yet (the op table has only the default
// domain), and a pass must never produce a node nothing can run: when a
// deepep-domain MatMul-with-bias kernel lands, its case belongs here.
#include <unordered_set>

#include "ir/graph_edit.h"
#include "optimizer/pass.h"
#include "optimizer/pattern.h"

namespace deepep {
namespace {

using opt::is_op;

bool is_row_bias(const Tensor* b, DType dtype, int64_t n) {
  if (!b || b->dtype() != dtype || b->numel() != n || b->rank() < 1 || b->rank() > 2) return false;
  return b->dim(-1) == n;
}

bool run(Graph& g, PassContext& ctx) {
  UseIndex uses(g);
  std::unordered_set<const Node*> dead;
  // By index: inserting the Gemm shifts the nodes after the current one.
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    Node& mm = *g.nodes()[i];
    if (!is_op(mm, "MatMul") || mm.inputs.size() != 2 || mm.outputs.size() != 1) continue;
    Value* a = mm.inputs[0];
    const Tensor* w = opt::constant_of(mm.inputs[1]);
    Node* add = uses.sole_consumer(mm.outputs[0]);
    if (!a || opt::rank_of(a) != 2 || !w || w->rank() != 2 || !opt::is_float(w->dtype()) ||
        a->dtype != w->dtype() || !add || !is_op(*add, "Add") || add->inputs.size() != 2 || add->outputs.size() != 1)
      continue;
    Value* bias = add->inputs[0] == mm.outputs[0] ? add->inputs[1] : add->inputs[0];
    if (!is_row_bias(opt::constant_of(bias), w->dtype(), w->dim(1))) continue;
    // Placed where the Add was: after A's and W's producers, before z's readers.
    Value* z = add->outputs[0];
    add->outputs[0] = nullptr;
    Node* gemm = insert_node_before(g, add, "Gemm", {a, mm.inputs[1], bias}, {z});
    gemm->name = mm.name.empty() ? add->name : mm.name;
    absorb(*gemm, mm);
    absorb(*gemm, *add);
    dead.insert(&mm);
    dead.insert(add);
    ctx.count("fused");
  }
  remove_nodes(g, dead);
  return !dead.empty();
}

}  // namespace

std::unique_ptr<Pass> make_matmul_add_to_gemm() {
  return std::make_unique<FunctionPass>("matmul_add_to_gemm", 2, run);
}

}  // namespace deepep
