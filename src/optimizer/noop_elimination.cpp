// No-op elimination (level 1).
// Rewrites: a node that provably returns its input unchanged is removed and
// its output's readers read the input instead:
//   Identity; Dropout in inference (training_mode absent or constant false,
//   mask output absent or unused); Cast/CastLike to the input's own dtype;
//   Reshape/Expand/Flatten/Squeeze/Unsqueeze whose output shape provably
//   equals the input's (static or same-symbol dims), or a Reshape whose
//   constant target copies every dim (0, the dim itself, or one -1 among
//   matches); Transpose with the identity perm; Slice with unit steps whose
//   output shape provably equals the input's or whose every range is [0, end
//   of dim]; and Squeeze(Unsqueeze(x)) / Unsqueeze(Squeeze(x)) on the same
//   axes (the pair's output reads x).
// Must not: remove a Cast that changes the dtype, a Dropout whose mask is
// read or that may train, a Reshape/Slice whose shapes are merely unknown,
// a Transpose that permutes, or a node whose removal would rename a graph
// input into an output (then it stays: replace_all_uses refuses).
// Why: exporters and earlier folding leave these behind; each costs a copy
// and hides patterns from the fusions.
#include <climits>
#include <unordered_set>

#include "ir/graph_edit.h"
#include "optimizer/pass.h"
#include "optimizer/pattern.h"

namespace deepep {
namespace {

using opt::is_op;

bool shape_preserving(const Node& n) {
  for (const char* op : {"Reshape", "Expand", "Flatten", "Squeeze", "Unsqueeze", "Slice"})
    if (is_op(n, op)) return true;
  return false;
}

// A constant Reshape target that reproduces x's shape: each entry copies
// (0, unless allowzero) or equals the known dim, with at most one -1.
bool reshape_target_copies(const Node& n) {
  const Tensor* t = n.inputs.size() > 1 ? opt::constant_of(n.inputs[1]) : nullptr;
  const Value* x = n.inputs[0];
  if (!t || !x->shape || t->numel() != int64_t(x->shape->size())) return false;
  const bool allowzero = n.attr_int("allowzero", 0) != 0;
  int minus_one = 0;
  for (int64_t i = 0; i < t->numel(); ++i) {
    const int64_t e = t->get_int(i);
    const Dim& d = (*x->shape)[size_t(i)];
    if (e == -1) ++minus_one;
    else if (!((e == 0 && !allowzero) || (d.is_known() && d.value == e))) return false;
  }
  return minus_one <= 1;
}

bool slice_is_full(const Node& n) {
  const Value* x = n.inputs[0];
  auto starts = opt::ints_arg(n, 1, "starts");
  auto ends = opt::ints_arg(n, 2, "ends");
  auto steps = opt::ints_arg(n, 4, nullptr, std::vector<int64_t>{});
  if (!steps) return false;
  for (int64_t s : *steps)
    if (s != 1) return false;
  if (opt::same_shape(x->shape, n.outputs[0]->shape)) return true;
  if (!starts || !ends || starts->size() != ends->size() || !x->shape) return false;
  const int64_t rank = int64_t(x->shape->size());
  std::vector<int64_t> all(starts->size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = int64_t(i);
  auto axes = opt::ints_arg(n, 3, "axes", all);
  if (!axes || axes->size() != starts->size()) return false;
  for (size_t i = 0; i < starts->size(); ++i) {
    int64_t axis = (*axes)[i] < 0 ? (*axes)[i] + rank : (*axes)[i];
    if (axis < 0 || axis >= rank || (*starts)[i] != 0) return false;
    const Dim& d = (*x->shape)[size_t(axis)];
    const bool to_end = (*ends)[i] >= INT32_MAX || (d.is_known() && (*ends)[i] >= d.value);
    if (!to_end) return false;
  }
  return true;
}

// Squeeze(Unsqueeze(x, a), a) or Unsqueeze(Squeeze(x, a), a): returns x.
Value* undone_pair(const Node& n) {
  const bool squeeze = is_op(n, "Squeeze");
  if (!squeeze && !is_op(n, "Unsqueeze")) return nullptr;
  Node* inner = opt::producer_of(n.inputs[0], squeeze ? "Unsqueeze" : "Squeeze");
  if (!inner) return nullptr;
  Value* x = inner->inputs[0];
  auto outer_axes = opt::ints_arg(n, 1, "axes");
  auto inner_axes = opt::ints_arg(*inner, 1, "axes");
  auto rank = opt::rank_of(x);
  if (!outer_axes || !inner_axes || !rank || outer_axes->empty() || inner_axes->empty()) return nullptr;
  // Both axis lists index the larger of the two ranks: the unsqueezed one.
  const int64_t wide = squeeze ? *rank + int64_t(inner_axes->size()) : *rank;
  auto a = opt::normalize_axes(*outer_axes, wide);
  auto b = opt::normalize_axes(*inner_axes, wide);
  return a && b && *a == *b ? x : nullptr;
}

// The value `n` forwards unchanged, or nullptr.
Value* forwarded(const Node& n, const UseIndex& uses) {
  if (n.inputs.empty() || !n.inputs[0] || n.outputs.empty() || !n.outputs[0]) return nullptr;
  Value* x = n.inputs[0];
  const Value* y = n.outputs[0];
  if (is_op(n, "Identity")) return x;
  if (is_op(n, "Dropout")) {
    const bool mask_unused = n.outputs.size() < 2 || !n.outputs[1] ||
                             (uses.uses(n.outputs[1]).empty() && !uses.is_output(n.outputs[1]));
    auto training = opt::ints_arg(n, 2, nullptr, std::vector<int64_t>{0});
    return mask_unused && training && training->at(0) == 0 ? x : nullptr;
  }
  if (n.outputs.size() != 1) return nullptr;
  if (is_op(n, "Cast"))
    return n.has_attr("to") && x->dtype != DType::kUndefined && int64_t(x->dtype) == n.attr_int("to", 0) ? x : nullptr;
  if (is_op(n, "CastLike"))
    return n.inputs.size() > 1 && n.inputs[1] && x->dtype != DType::kUndefined && x->dtype == n.inputs[1]->dtype ? x : nullptr;
  if (is_op(n, "Transpose")) {
    auto perm = opt::ints_arg(n, -1, "perm");
    auto rank = opt::rank_of(x);
    if (!perm) return rank && *rank <= 1 ? x : nullptr;  // the default reverses the dims
    for (size_t i = 0; i < perm->size(); ++i)
      if ((*perm)[i] != int64_t(i)) return nullptr;
    return x;
  }
  if (Value* z = undone_pair(n)) return z;
  if (!shape_preserving(n) || x->dtype != y->dtype) return nullptr;
  if (is_op(n, "Slice")) return slice_is_full(n) ? x : nullptr;
  if (opt::same_shape(x->shape, y->shape)) return x;
  if (is_op(n, "Reshape") && reshape_target_copies(n)) return x;
  return nullptr;
}

bool run(Graph& g, PassContext& ctx) {
  UseIndex uses(g);
  std::unordered_set<const Node*> removed;
  for (const auto& up : g.nodes()) {
    Node& n = *up;
    Value* x = forwarded(n, uses);
    if (!x || !replace_all_uses(g, n.outputs[0], x)) continue;
    removed.insert(&n);
    ctx.count("removed." + n.op_type);
  }
  remove_nodes(g, removed);
  return !removed.empty();
}

}  // namespace

std::unique_ptr<Pass> make_noop_elimination() {
  return std::make_unique<FunctionPass>("noop_elimination", 1, run);
}

}  // namespace deepep
