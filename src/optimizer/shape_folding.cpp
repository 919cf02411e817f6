// Shape-subgraph folding (level 1).
// Exporters compute shapes at run time: Shape -> Gather -> Unsqueeze ->
// Concat -> Reshape. This pass evaluates such int64 values symbolically, as a
// list of dims (known numbers, symbols, unknowns) from the input shapes the
// graph states, through Shape (with start/end), Size, Gather (axis 0, constant
// indices), Unsqueeze/Squeeze of a scalar, Concat (axis 0), Slice (constant,
// axis 0, step 1) and Cast between integer types. Then it rewrites:
//   - a value whose dims are all known becomes a constant (its node goes);
//   - a Reshape target that is still computed becomes a constant when every
//     entry is known, or is the symbol of the input dim at the same position
//     (written 0: "copy"; not under allowzero=1), except at most one that is
//     written -1 ("the rest"); e.g. x: [batch, seq, 768] reshaped to
//     Concat(Shape(x)[0], Shape(x)[1], 12, 64) gets the target [0, 0, 12, 64].
// After an edit it re-runs shape inference so outputs get their symbolic
// shapes, which feeds the next round.
// Must not: trust an unknown dim ("?" is equal to nothing, not even another
// "?"), write -1 when a -1 is already there, or write 0 under allowzero=1.
// Why: these chains are a third of the nodes of many exported transformers,
// and a constant Reshape target is what makes a reshape free and fusable.
#include <unordered_map>
#include <unordered_set>

#include "frontend/onnx_loader.h"
#include "ir/dtype_dispatch.h"
#include "ir/graph_edit.h"
#include "optimizer/pass.h"
#include "optimizer/pattern.h"

namespace deepep {
namespace {

using opt::is_op;

// A 1-D integer value (or a scalar) as dims.
struct ShapeValue {
  SymShape dims;
  bool scalar = false;
  bool known() const {
    for (const Dim& d : dims)
      if (!d.is_known()) return false;
    return true;
  }
};

class Evaluator {
 public:
  std::optional<ShapeValue> eval(const Value* v) {
    if (!v) return std::nullopt;
    auto it = memo_.find(v);
    if (it != memo_.end()) return it->second;
    auto r = compute(v);
    memo_[v] = r;
    return r;
  }

 private:
  std::unordered_map<const Value*, std::optional<ShapeValue>> memo_;

  std::optional<ShapeValue> compute(const Value* v) {
    if (const Tensor* t = opt::constant_of(v)) {
      if (!dtype_is_int(t->dtype()) || t->rank() > 1 || t->numel() > 64) return std::nullopt;
      ShapeValue r{{}, t->rank() == 0};
      for (int64_t x : t->to_int_vector()) r.dims.push_back(Dim::known(x));
      return r;
    }
    const Node* n = v->producer;
    if (!n || n->outputs.size() != 1 || !dtype_is_int(v->dtype)) return std::nullopt;
    if (is_op(*n, "Shape")) return shape(*n);
    if (is_op(*n, "Size")) return size(*n);
    if (is_op(*n, "Cast")) return eval(n->inputs[0]);
    auto in = eval(n->inputs.empty() ? nullptr : n->inputs[0]);
    if (!in) return std::nullopt;
    if (is_op(*n, "Gather")) return gather(*n, *in);
    if (is_op(*n, "Unsqueeze") || is_op(*n, "Squeeze")) {
      auto axes = opt::ints_arg(*n, 1, "axes", std::vector<int64_t>{});
      if (!axes) return std::nullopt;
      const bool unsqueeze = is_op(*n, "Unsqueeze");
      const bool ok = unsqueeze ? in->scalar && axes->size() == 1 && ((*axes)[0] == 0 || (*axes)[0] == -1)
                                : !in->scalar && in->dims.size() == 1 && (axes->empty() || *axes == std::vector<int64_t>{0} ||
                                                                          *axes == std::vector<int64_t>{-1});
      if (!ok) return std::nullopt;
      return ShapeValue{in->dims, !unsqueeze};
    }
    if (is_op(*n, "Concat")) {
      if (n->attr_int("axis", 0) != 0 && n->attr_int("axis", 0) != -1) return std::nullopt;
      ShapeValue r;
      for (const Value* x : n->inputs) {
        auto p = eval(x);
        if (!p || p->scalar) return std::nullopt;
        r.dims.insert(r.dims.end(), p->dims.begin(), p->dims.end());
      }
      return r;
    }
    if (is_op(*n, "Slice")) return slice(*n, *in);
    return std::nullopt;
  }

  static std::optional<ShapeValue> shape(const Node& n) {
    const Value* x = n.inputs[0];
    if (!x || !x->shape) return std::nullopt;
    const int64_t r = int64_t(x->shape->size());
    auto clamp = [&](int64_t i) { return std::clamp(i < 0 ? i + r : i, int64_t(0), r); };
    const int64_t b = clamp(n.attr_int("start", 0)), e = clamp(n.attr_int("end", r));
    ShapeValue out;
    for (int64_t i = b; i < e; ++i) out.dims.push_back((*x->shape)[size_t(i)]);
    return out;
  }

  // Size(x) = the product of x's dims, when all are known.
  static std::optional<ShapeValue> size(const Node& n) {
    const Value* x = n.inputs[0];
    if (!x || !x->shape) return std::nullopt;
    int64_t numel = 1;
    for (const Dim& d : *x->shape) {
      if (!d.is_known()) return std::nullopt;
      numel *= d.value;
    }
    return ShapeValue{{Dim::known(numel)}, true};
  }

  static std::optional<ShapeValue> gather(const Node& n, const ShapeValue& in) {
    const Tensor* idx = n.inputs.size() > 1 ? opt::constant_of(n.inputs[1]) : nullptr;
    if (in.scalar || !idx || idx->rank() > 1 || n.attr_int("axis", 0) != 0) return std::nullopt;
    const int64_t size = int64_t(in.dims.size());
    ShapeValue out{{}, idx->rank() == 0};
    for (int64_t i : idx->to_int_vector()) {
      if (i < -size || i >= size) return std::nullopt;
      out.dims.push_back(in.dims[size_t(i < 0 ? i + size : i)]);
    }
    return out;
  }

  static std::optional<ShapeValue> slice(const Node& n, const ShapeValue& in) {
    auto starts = opt::ints_arg(n, 1, "starts");
    auto ends = opt::ints_arg(n, 2, "ends");
    auto axes = opt::ints_arg(n, 3, "axes", std::vector<int64_t>{0});
    auto steps = opt::ints_arg(n, 4, nullptr, std::vector<int64_t>{1});
    if (in.scalar || !starts || !ends || !axes || !steps || starts->size() != 1 || ends->size() != 1 ||
        axes->size() != 1 || ((*axes)[0] != 0 && (*axes)[0] != -1) || *steps != std::vector<int64_t>{1})
      return std::nullopt;
    const int64_t size = int64_t(in.dims.size());
    auto clamp = [&](int64_t i) { return std::clamp(i < 0 ? i + size : i, int64_t(0), size); };
    const int64_t b = clamp((*starts)[0]), e = clamp((*ends)[0]);
    ShapeValue out;
    for (int64_t i = b; i < e; ++i) out.dims.push_back(in.dims[size_t(i)]);
    return out;
  }
};

Tensor to_tensor(const ShapeValue& s, DType dtype) {
  Tensor t(dtype, s.scalar ? Shape{} : Shape{int64_t(s.dims.size())});
  dispatch_int(dtype, "shape_folding", [&](auto tag) {
    using T = typename decltype(tag)::type;
    for (size_t i = 0; i < s.dims.size(); ++i) t.data<T>()[i] = T(s.dims[i].value);
  });
  return t;
}

// The constant Reshape target for a computed one, if it can be written.
std::optional<std::vector<int64_t>> reshape_target(const Node& n, const ShapeValue& t) {
  const Value* x = n.inputs[0];
  const bool allowzero = n.attr_int("allowzero", 0) != 0;
  std::vector<int64_t> out;
  int unknown = -1;
  for (size_t i = 0; i < t.dims.size(); ++i) {
    const Dim& d = t.dims[i];
    if (d.is_known()) {
      if (d.value == -1 && unknown >= 0) return std::nullopt;
      if (d.value == -1) unknown = int(i);
      out.push_back(d.value);
    } else if (!allowzero && d.is_symbol() && x->shape && i < x->shape->size() && (*x->shape)[i] == d) {
      out.push_back(0);  // copy the input's dim
    } else {
      if (unknown >= 0) return std::nullopt;
      unknown = int(i);
      out.push_back(-1);
    }
  }
  return out;
}

bool run_once(Graph& g, PassContext& ctx) {
  Evaluator ev;
  std::unordered_set<const Node*> dead;
  int64_t targets = 0;
  for (const auto& up : g.nodes()) {
    Node& n = *up;
    if (n.outputs.size() == 1 && n.outputs[0] && !is_op(n, "Reshape")) {
      auto s = ev.eval(n.outputs[0]);
      if (s && s->known()) {
        make_constant(n.outputs[0], to_tensor(*s, n.outputs[0]->dtype));
        dead.insert(&n);
        ctx.count("constants." + n.op_type);
        continue;
      }
    }
    if (is_op(n, "Reshape") && n.inputs.size() > 1 && n.inputs[1] && !n.inputs[1]->data) {
      auto s = ev.eval(n.inputs[1]);
      auto target = s && !s->scalar ? reshape_target(n, *s) : std::nullopt;
      if (!target) continue;
      n.inputs[1] = new_constant(g, opt::derived_name(n.inputs[1]->name, "_folded"), opt::int64_tensor(*target));
      ++targets;
    }
  }
  if (dead.empty() && !targets) return false;
  remove_nodes(g, dead);
  prune_values(g);
  infer_shapes(g);
  ctx.count("reshape_targets", targets);
  return true;
}

// Each fold re-infers shapes, which lets the next layer's shape chain fold:
// repeat within the pass (a 12-layer transformer otherwise needs a pipeline
// round per layer and runs out of rounds).
bool run(Graph& g, PassContext& ctx) {
  bool changed = false;
  for (int i = 0; i < 256 && run_once(g, ctx); ++i) changed = true;
  return changed;
}

}  // namespace

std::unique_ptr<Pass> make_shape_folding() { return std::make_unique<FunctionPass>("shape_folding", 1, run); }

}  // namespace deepep
