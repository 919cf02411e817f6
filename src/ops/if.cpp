// If (opsets 1-25): runs then_branch or else_branch, which read the enclosing
// graph's values directly and take no inputs; the branch's outputs are the
// node's outputs. Tensor values only (the loader rejects sequence/optional).
#include <cstring>

#include "ops/op_util.h"

namespace deepep::ops {
namespace {

const Graph& branch(const Node& n, const char* name) {
  const Attribute* a = n.attr(name);
  DEEPEP_CHECK(a && !a->graphs.empty() && a->graphs[0], n.describe(), ": missing graph attribute '",
               name, "'");
  return *a->graphs[0];
}

// Copies a branch result into output i's own storage (from the runtime's
// allocator). A branch may return an enclosing value or a view of one; if the
// output aliased it, a memory plan measured on a run that took the other
// branch would let later nodes overwrite the output.
void emit(KernelContext& ctx, int i, const Tensor& t) {
  Tensor& o = ctx.output(i, t.dtype(), t.shape());
  if (t.nbytes()) std::memcpy(o.raw(), t.raw(), t.nbytes());
}

// Merges the symbolic shapes of the two branches' outputs: equal dims stay,
// differing dims become unknown; differing ranks leave the shape unknown.
std::optional<SymShape> merge(const std::optional<SymShape>& a, const std::optional<SymShape>& b) {
  if (!a || !b || a->size() != b->size()) return std::nullopt;
  SymShape s = *a;
  for (size_t i = 0; i < s.size(); ++i)
    if (!(s[i] == (*b)[i])) s[i] = Dim{};
  return s;
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(If) {
  def.infer = [](InferContext& ctx) {
    const Graph& then_g = branch(ctx.node, "then_branch");
    const Graph& else_g = branch(ctx.node, "else_branch");
    const Tensor* cond = ctx.constant(0);
    for (size_t i = 0; i < ctx.outputs.size(); ++i) {
      const Value* t = i < then_g.outputs.size() ? then_g.outputs[i] : nullptr;
      const Value* e = i < else_g.outputs.size() ? else_g.outputs[i] : nullptr;
      if (!t || !e) continue;
      if (cond && cond->numel() == 1) {  // the branch is known: take its type as is
        const Value* v = cond->get_int(0) != 0 ? t : e;
        ctx.set(int(i), v->dtype, v->shape);
        continue;
      }
      ctx.set(int(i), t->dtype != DType::kUndefined ? t->dtype : e->dtype, merge(t->shape, e->shape));
    }
  };
  def.reference = [](KernelContext& ctx) {
    const Node& n = ctx.node;
    const Tensor& cond = ctx.input(0);
    DEEPEP_CHECK(cond.numel() == 1, n.describe(), ": the condition must hold one element, got shape ",
                 shape_str(cond.shape()));
    DEEPEP_CHECK(ctx.subgraphs, n.describe(), ": no subgraph runner available");
    const bool take_then = cond.get_int(0) != 0;
    const char* which = take_then ? "then_branch" : "else_branch";
    const Graph& g = branch(n, which);
    DEEPEP_CHECK(g.inputs.empty(), n.describe(), ": ", which, " must take no inputs, it has ",
                 g.inputs.size());
    DEEPEP_CHECK(g.outputs.size() == ctx.outputs.size(), n.describe(), ": ", which, " has ",
                 g.outputs.size(), " outputs, the node has ", ctx.outputs.size());
    std::vector<Tensor> outs = ctx.subgraphs->run(g, {});
    for (size_t i = 0; i < outs.size(); ++i)
      if (ctx.output_requested(int(i))) emit(ctx, int(i), outs[i]);
  };
}
