// MatMul + bias + activation + residual fusion (level 2).
// Rewrites, one step at a time (each step grows the epilogue of the node
// before it; the pass repeats until nothing grows), into deepep.FusedMatMul
// (src/ops/fused_matmul.cpp):
//   y = MatMul(A, W)  (A of any rank, W a constant 2-D float32 weight)
//   y = Gemm(A, W, C) (transA = 0, A 2-D, W constant, C absent or a constant
//                      per-column bias or scalar; alpha kept, beta folded into
//                      the bias) -- only when there is an epilogue to add
//   y = deepep.FusedMatMul(...)
// followed by, as y's only reader:
//   - Add(y, b) / Add(b, y), b a constant row bias ([N]; [1, N] when A is at
//     least 2-D), while the node has no bias, activation or residual yet;
//   - an activation (Relu, LeakyRelu, Sigmoid, Tanh, Gelu none/tanh, Clip
//     with constant bounds, HardSigmoid, HardSwish, Swish or x*Sigmoid(x))
//     while it has none; after a residual it marks residual_before_activation;
//   - Add(y, r) / Add(r, y), any other float32 r whose Add output has y's
//     shape (so the residual never enlarges the output), while it has none.
// Also MatMul(A, Transpose<[1,0]>(W)) with W a constant 2-D float32 weight
// that constant folding left (too big to fold: GPT-2's tied lm_head) becomes
// FusedMatMul<trans_b=1>(A, W): the GEMM reads W transposed, no copy per run.
// Must not: fuse when y has another reader or is a graph output; when W is
// not a constant 2-D float32 (the attention products are attention_fusion's);
// when A's or r's type is not float32; when the Add would broadcast y to a
// larger shape or the shapes are not provably equal; a second activation or
// residual (the epilogue has one of each); or a Gemm with transA, a non-row C,
// or nothing to fuse (plain Gemm is as fast).
// Why: the bias, the activation and the residual are each a pass over the
// GEMM's output; in the epilogue they cost nothing extra. Runs after
// gelu_fusion (Gelu must exist to be taken) and after skip_layer_norm_fusion
// (an Add feeding a LayerNorm is better fused there).
#include "optimizer/fusion_match.h"
#include "optimizer/pass.h"

namespace deepep {
namespace {

using opt::is_op;

struct State {
  Node* node = nullptr;
  Value *a = nullptr, *w = nullptr, *bias = nullptr, *res = nullptr;
  std::string act;
  std::vector<float> params;
  bool res_first = false;
  int64_t trans_b = 0;
  float alpha = 1.f;
  bool gemm = false;     // a Gemm: converted only with an epilogue
  double beta = 1.0;     // the Gemm's, folded into its bias
};

const Tensor* weight_of(const Value* w) {
  const Tensor* t = opt::constant_of(w);
  return t && t->rank() == 2 && t->dtype() == DType::kFloat32 ? t : nullptr;
}

std::optional<State> state_of(Node& n) {
  State s;
  s.node = &n;
  if (n.outputs.size() != 1 || n.inputs.size() < 2) return std::nullopt;
  s.a = n.inputs[0];
  s.w = n.inputs[1];
  if (!opt::is_f32(s.a) || !weight_of(s.w)) return std::nullopt;
  if (is_op(n, "MatMul")) {
    if (n.inputs.size() != 2) return std::nullopt;
    return s;
  }
  if (is_op(n, "Gemm")) {
    if (n.attr_int("transA", 0) != 0 || opt::rank_of(s.a) != 2) return std::nullopt;
    s.gemm = true;
    s.trans_b = n.attr_int("transB", 0);
    s.alpha = n.attr_float("alpha", 1.f);
    s.beta = n.attr_float("beta", 1.f);
    if (n.inputs.size() > 2 && n.inputs[2]) {
      const Tensor* c = opt::constant_of(n.inputs[2]);
      const int64_t N = weight_of(s.w)->dim(s.trans_b ? 0 : 1);
      const bool row = c && c->dtype() == DType::kFloat32 &&
                       (c->numel() == 1 || (c->numel() == N && c->rank() >= 1 && c->rank() <= 2 && c->dim(-1) == N));
      if (!row) return std::nullopt;
      s.bias = n.inputs[2];
    }
    return s;
  }
  if (n.domain == kDeepepDomain && n.op_type == "FusedMatMul") {
    s.trans_b = n.attr_int("trans_b", 0);
    s.alpha = n.attr_float("alpha", 1.f);
    s.bias = n.inputs.size() > 2 ? n.inputs[2] : nullptr;
    s.res = n.inputs.size() > 3 ? n.inputs[3] : nullptr;
    s.act = n.attr_string("activation", "");
    s.params = n.attr_floats("activation_params", {});
    s.res_first = n.attr_int("residual_before_activation", 0) != 0;
    return s;
  }
  return std::nullopt;
}

bool is_row_bias(const Value* b, int64_t n, const Value* a) {
  const Tensor* t = opt::constant_of(b);
  if (!t || t->dtype() != DType::kFloat32 || t->numel() != n || t->dim(-1) != n) return false;
  if (t->rank() == 1) return true;
  auto ra = opt::rank_of(a);
  return t->rank() == 2 && ra && *ra >= 2;
}

// MatMul(A, Transpose<[1,0]>(W)), W a constant 2-D float32 weight too big
// to fold (GPT-2's tied lm_head, 154 MB): the GEMM reads W transposed.
bool fuse_transposed_weight(Graph& g, Node& n, const UseIndex& uses, PassContext& ctx) {
  if (!is_op(n, "MatMul") || n.inputs.size() != 2 || n.outputs.size() != 1 || !opt::is_f32(n.inputs[0])) return false;
  Value* wt = n.inputs[1];
  Node* t = wt ? wt->producer : nullptr;
  if (!t || !is_op(*t, "Transpose") || t->inputs.size() != 1 || uses.sole_consumer(wt) != &n ||
      !weight_of(t->inputs[0]) || t->attr_ints("perm", {1, 0}) != std::vector<int64_t>{1, 0})
    return false;
  Node* f = opt::replace_chain(g, &n, "FusedMatMul", kDeepepDomain, {n.inputs[0], t->inputs[0]}, {&n, t});
  Attribute at;
  at.kind = Attribute::Kind::kInt;
  at.i = 1;
  f->attrs["trans_b"] = at;
  ctx.count("fused.transposed_weight");
  return true;
}

bool fuse(Graph& g, Node& n, const UseIndex& uses, PassContext& ctx) {
  if (fuse_transposed_weight(g, n, uses, ctx)) return true;
  auto st = state_of(n);
  if (!st) return false;
  State s = *st;
  Value* y = n.outputs[0];
  const int64_t N = weight_of(s.w)->dim(s.trans_b ? 0 : 1);
  std::vector<Node*> nodes{&n};
  Node* last = nullptr;
  std::string what;
  Node* c = uses.sole_consumer(y);
  if (c && is_op(*c, "Add") && c->inputs.size() == 2 && c->outputs.size() == 1) {
    Value* o = opt::other_operand(*c, y);
    if (!s.bias && s.act.empty() && !s.res && !s.gemm && o != y && is_row_bias(o, N, s.a)) {
      s.bias = o;
      what = "bias";
    } else if (!s.res && o != y && opt::is_f32(o) && opt::same_shape_of(c->outputs[0], y)) {
      s.res = o;
      what = "residual";
    } else {
      return false;
    }
    nodes.push_back(c);
    last = c;
  } else if (auto act = opt::match_activation(uses, y); act && s.act.empty()) {
    s.act = act->name;
    s.params = act->params;
    s.res_first = s.res != nullptr;
    nodes.insert(nodes.end(), act->nodes.begin(), act->nodes.end());
    last = act->nodes.back();
    what = "activation." + act->name;
  } else {
    return false;
  }
  // A Gemm's C times beta becomes the bias vector.
  if (s.gemm && s.bias) {
    const Tensor* cb = opt::constant_of(s.bias);
    if (cb->numel() != N || s.beta != 1.0 || cb->rank() != 1) {
      std::vector<double> v(static_cast<size_t>(N));
      for (int64_t j = 0; j < N; ++j) v[size_t(j)] = s.beta * cb->get_double(cb->numel() == 1 ? 0 : j);
      s.bias = new_constant(g, opt::derived_name(s.bias->name, "_bias"), opt::from_doubles(DType::kFloat32, {N}, v));
    }
  }
  std::vector<Value*> ins{s.a, s.w};
  if (s.bias || s.res) ins.push_back(s.bias);
  if (s.res) ins.push_back(s.res);
  std::unordered_set<const Node*> dead(nodes.begin(), nodes.end());
  Node* f = opt::replace_chain(g, last, "FusedMatMul", kDeepepDomain, ins, dead);
  auto set_int = [&](const char* k, int64_t v) {
    Attribute at;
    at.kind = Attribute::Kind::kInt;
    at.i = v;
    f->attrs[k] = at;
  };
  if (s.trans_b) set_int("trans_b", 1);
  if (s.alpha != 1.f) {
    Attribute at;
    at.kind = Attribute::Kind::kFloat;
    at.f = s.alpha;
    f->attrs["alpha"] = at;
  }
  if (!s.act.empty()) {
    Attribute at;
    at.kind = Attribute::Kind::kString;
    at.s = s.act;
    f->attrs["activation"] = at;
    if (!s.params.empty()) {
      Attribute p;
      p.kind = Attribute::Kind::kFloats;
      p.floats = s.params;
      f->attrs["activation_params"] = p;
    }
  }
  if (s.res && s.res_first && !s.act.empty()) set_int("residual_before_activation", 1);
  ctx.count("fused." + what);
  return true;
}

bool run(Graph& g, PassContext& ctx) {
  return opt::rewrite_to_fixed_point(g, [&](Node& n, const UseIndex& uses) { return fuse(g, n, uses, ctx); });
}

}  // namespace

std::unique_ptr<Pass> make_matmul_bias_activation_fusion() {
  return std::make_unique<FunctionPass>("matmul_bias_activation_fusion", 2, run);
}

}  // namespace deepep
