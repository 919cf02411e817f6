// Attention fusion (level 2).
// Rewrites scaled dot-product attention as exporters write it,
//   s = MatMul(Qh, Kt) [Div(s, c) | Mul(s, c)] [Add(s, mask) | Where(m, s, fill)]
//   y = MatMul(Softmax<axis=-1>(s), Vh)
// into one deepep.Attention node (src/ops/fused_attention.cpp). Around it:
//   - when Qh, Kt, Vh are head splits Transpose<0,2,1,3>(Reshape(x [B,S,H*D]
//     -> [B,S,H,D])) (K^T: Transpose<0,2,3,1>, or <0,1,3,2> of a split) and y is
//     merged back by Transpose<0,2,1,3> + Reshape to [B,S,H*Dv], the splits and
//     the merge go inside too (3-D layout, num_heads = H);
//   - else the node takes the 4-D Qh, Vh and K ([B,H,Sk,D] when Kt is
//     Transpose<0,1,3,2>(K), else Kt itself with k_transposed = 1).
// Then, for 3-D attention, the Q/K/V projections pack into one input:
//   - Q, K, V the three outputs of one Split along the last axis -> the
//     Split's input (qkv_hidden_sizes = the split sizes; GPT-2's c_attn);
//   - Q, K, V three deepep.FusedMatMul of one input with constant weights and
//     no activation or residual -> one FusedMatMul with the weights (and
//     biases) concatenated (BERT's query/key/value: three GEMMs become one).
// Must not: rewrite when an intermediate value has another reader or is a
// graph output; when Softmax is not over the last axis; when the scale is not
// a constant scalar; when the mask is not float32 (Add) / bool (Where) or
// does not broadcast to [batch, heads, q, k] (a dim known to differ, or a
// symbol other than the target's; where the mask's or the scores' dim is an
// unknown '?' -- exported sequence lengths often are -- the kernel checks at
// run time and raises an error where the chain would have broadcast the
// scores to a larger shape); when a Where's fill is not a constant scalar;
// when Q, K, V may differ in batch (MatMul broadcasts a batch of 1); for
// types other than float32.
// Why: the chain is ~10 kernels and 3 copies (the transposes) per layer over
// [B, H, S, S] scores; fused, the scores of a block of query rows stay in cache.
#include <array>
#include <cmath>
#include <cstring>

#include "optimizer/fusion_match.h"
#include "optimizer/pass.h"

namespace deepep {
namespace {

using opt::is_op;
using opt::other_operand;

std::optional<std::vector<int64_t>> perm_of(const Node& t) {
  if (!is_op(t, "Transpose") || t.inputs.size() != 1 || t.outputs.size() != 1 || !t.has_attr("perm")) return std::nullopt;
  return t.attr_ints("perm");
}

bool dim_eq(const Dim& a, const Dim& b) { return (a.is_known() || a.is_symbol()) && a == b; }

// A Reshape target keeps dims 0 and 1 of `in`: each entry is 0 ("copy",
// without allowzero), the dim itself, or -1 (at most one; the trailing
// entries are known positive, so -1 is the dim again).
bool keeps_leading_two(const Node& r, const SymShape& in, size_t trailing) {
  const Tensor* t = opt::constant_of(r.inputs.size() > 1 ? r.inputs[1] : nullptr);
  if (!t || t->rank() != 1 || t->numel() != int64_t(2 + trailing)) return false;
  const std::vector<int64_t> v = t->to_int_vector();
  const bool allowzero = r.attr_int("allowzero", 0) != 0;
  int minus = 0;
  for (size_t i = 0; i < 2; ++i) {
    if (v[i] == -1) ++minus;
    else if (!((v[i] == 0 && !allowzero) || (in[i].is_known() && in[i].value == v[i]))) return false;
  }
  for (size_t i = 2; i < v.size(); ++i)
    if (v[i] <= 0) return false;
  return minus <= 1;
}

struct HeadSplit {
  Value* x = nullptr;  // [B, S, H*D]
  int64_t heads = 0, dim = 0;
  std::vector<Node*> nodes;
};

// v4 = Transpose<perm>(Reshape(x)) with the Reshape splitting x's last dim
// into [H, D]; the Transpose is v4's producer, the Reshape read by it alone.
std::optional<HeadSplit> head_split(const UseIndex& uses, const Value* v4, const std::vector<int64_t>& perm) {
  Node* t = v4 ? v4->producer : nullptr;
  if (!t || perm_of(*t) != perm) return std::nullopt;
  Value* r4 = t->inputs[0];
  Node* r = r4->producer;
  if (!r || !is_op(*r, "Reshape") || r->outputs.size() != 1 || uses.sole_consumer(r4) != t) return std::nullopt;
  Value* x = r->inputs[0];
  if (!x->shape || !r4->shape || x->shape->size() != 3 || r4->shape->size() != 4) return std::nullopt;
  const SymShape &in = *x->shape, &out = *r4->shape;
  if (!in[2].is_known() || !out[2].is_known() || !out[3].is_known() || in[2].value != out[2].value * out[3].value)
    return std::nullopt;
  // Dims 0 and 1 kept: by their inferred symbols, or by the constant target.
  if (!(dim_eq(in[0], out[0]) && dim_eq(in[1], out[1])) && !keeps_leading_two(*r, in, 2)) return std::nullopt;
  return HeadSplit{x, out[2].value, out[3].value, {r, t}};
}

// y4 [B,H,S,Dv] -> Transpose<0,2,1,3> -> Reshape to [B,S,H*Dv]: the Reshape.
Node* head_merge(const UseIndex& uses, const Value* y4, std::vector<Node*>& nodes) {
  Node* t = uses.sole_consumer(y4);
  if (!t || perm_of(*t) != std::vector<int64_t>{0, 2, 1, 3}) return nullptr;
  Node* r = uses.sole_consumer(t->outputs[0]);
  if (!r || !is_op(*r, "Reshape") || r->outputs.size() != 1 || r->inputs[0] != t->outputs[0]) return nullptr;
  const Value* tv = t->outputs[0];
  const Value* out = r->outputs[0];
  if (!tv->shape || !out->shape || tv->shape->size() != 4 || out->shape->size() != 3) return nullptr;
  const SymShape &in = *tv->shape, &o = *out->shape;
  if (!in[2].is_known() || !in[3].is_known() || !o[2].is_known() || o[2].value != in[2].value * in[3].value)
    return nullptr;
  if (!(dim_eq(in[0], o[0]) && dim_eq(in[1], o[1])) && !keeps_leading_two(*r, in, 1)) return nullptr;
  nodes.push_back(t);
  nodes.push_back(r);
  return r;
}

// Readers of a head-split value v4 besides `main` that only take its dims:
// Shape(v4) read only by Gather<axis=0>(., constant index). Exporters compute
// GPT-2's causal-mask window from them. Each such Gather can read the dim
// from the 3-D input x instead, when the dim is one of x's first two
// (`from_x[i]`: v4's dim i as x's dim, or -1). Returns the rewrites
// (Shape node, Gather node, x's dim), or nullopt when a reader is another op.
struct ShapeRead {
  Node* shape;
  Node* gather;
  int64_t dim;
};
std::optional<std::vector<ShapeRead>> shape_reads(const UseIndex& uses, const Value* v4, const Node* main,
                                                  const std::vector<int64_t>& from_x) {
  const int64_t rank = int64_t(from_x.size());
  std::vector<ShapeRead> out;
  if (uses.is_output(v4)) return std::nullopt;
  for (const Use& u : uses.uses(v4)) {
    if (u.node == main) continue;
    Node* sh = u.node;
    if (u.input != 0 || !is_op(*sh, "Shape") || sh->has_attr("start") || sh->has_attr("end") ||
        sh->outputs.size() != 1 || uses.is_output(sh->outputs[0]))
      return std::nullopt;
    for (const Use& gu : uses.uses(sh->outputs[0])) {
      Node* ga = gu.node;
      if (gu.input != 0 || !is_op(*ga, "Gather") || ga->attr_int("axis", 0) != 0 || ga->inputs.size() != 2)
        return std::nullopt;
      const Tensor* idx = opt::constant_of(ga->inputs[1]);
      if (!idx || idx->numel() != 1 || idx->rank() != 0) return std::nullopt;
      int64_t i = idx->get_int(0);
      if (i < 0) i += rank;
      if (i < 0 || i >= rank || from_x[size_t(i)] < 0) return std::nullopt;
      out.push_back({sh, ga, from_x[size_t(i)]});
    }
  }
  return out;
}

// Points the Shape reads at x: Shape(x), Gather index = x's dim.
void repoint_shape_reads(Graph& g, const std::vector<ShapeRead>& reads, Value* x) {
  for (const ShapeRead& r : reads) {
    r.shape->inputs[0] = x;
    r.shape->outputs[0]->shape = SymShape{Dim::known(int64_t(x->shape->size()))};
    Tensor t(DType::kInt64, {});
    t.data<int64_t>()[0] = r.dim;
    r.gather->inputs[1] = new_constant(g, r.gather->inputs[1]->name + "_x", std::move(t));
  }
}

struct Scores {
  Node* mm = nullptr;
  double scale = 1.0;
  std::vector<Node*> nodes;
};

// v = [Div(mm, c) | Mul(mm, c) | Mul(c, mm)] or mm itself, mm = MatMul of rank 4.
std::optional<Scores> scaled_scores(const UseIndex& uses, const Value* v) {
  Node* p = v ? v->producer : nullptr;
  if (!p || p->outputs.size() != 1) return std::nullopt;
  Scores s;
  if ((is_op(*p, "Div") || is_op(*p, "Mul")) && p->inputs.size() == 2) {
    for (int k = 0; k < 2; ++k) {
      if (is_op(*p, "Div") && k == 1) break;
      Value* m = p->inputs[size_t(k)];
      auto c = opt::scalar_of(p->inputs[size_t(1 - k)]);
      Node* mm = m->producer;
      if (!c || !mm || !is_op(*mm, "MatMul") || uses.sole_consumer(m) != p) continue;
      if (is_op(*p, "Div") && *c == 0) return std::nullopt;
      s.mm = mm;
      s.scale = is_op(*p, "Div") ? 1.0 / *c : *c;
      s.nodes = {mm, p};
      break;
    }
    if (!s.mm) return std::nullopt;
  } else if (is_op(*p, "MatMul")) {
    s.mm = p;
    s.nodes = {p};
  } else {
    return std::nullopt;
  }
  if (s.mm->inputs.size() != 2 || opt::rank_of(s.mm->inputs[0]) != 4 || opt::rank_of(s.mm->inputs[1]) != 4 ||
      opt::rank_of(s.mm->outputs[0]) != 4)
    return std::nullopt;
  return s;
}

// The mask broadcasts to the scores' shape [B, H, Sq, Sk] (unknown dims are
// checked by the kernel at run time).
bool mask_broadcasts(const Value* mask, const Value* scores) {
  if (!mask->shape || !scores->shape || mask->shape->size() > 4) return false;
  const SymShape &m = *mask->shape, &s = *scores->shape;
  for (size_t i = 0; i < m.size(); ++i) {
    const Dim& d = m[m.size() - 1 - i];
    const Dim& t = s[s.size() - 1 - i];
    if (d.is_known() && d.value == 1) continue;
    if (!d.is_known() && !d.is_symbol()) continue;  // '?': run-time check
    if (!t.is_known() && !t.is_symbol()) continue;  // a '?' length of the scores: likewise
    if (!(d == t)) return false;
  }
  return true;
}

void set_attr(Node* n, const char* k, int64_t v) {
  Attribute a;
  a.kind = Attribute::Kind::kInt;
  a.i = v;
  n->attrs[k] = a;
}
void set_attr(Node* n, const char* k, float v) {
  Attribute a;
  a.kind = Attribute::Kind::kFloat;
  a.f = v;
  n->attrs[k] = a;
}
void set_attr(Node* n, const char* k, const std::string& v) {
  Attribute a;
  a.kind = Attribute::Kind::kString;
  a.s = v;
  n->attrs[k] = a;
}
void set_attr(Node* n, const char* k, const std::vector<int64_t>& v) {
  Attribute a;
  a.kind = Attribute::Kind::kInts;
  a.ints = v;
  n->attrs[k] = a;
}

bool fuse_attention(Graph& g, Node& sm, const UseIndex& uses, PassContext& ctx) {
  if (!is_op(sm, "Softmax") || sm.inputs.size() != 1 || sm.outputs.size() != 1) return false;
  Value* p = sm.inputs[0];
  if (opt::rank_of(p) != 4 || !opt::is_f32(p) || uses.sole_consumer(p) != &sm) return false;
  const bool legacy = sm.opset > 0 && sm.opset < 13;
  const int64_t axis = sm.attr_int("axis", legacy ? 1 : -1);
  if (axis != -1 && axis != 3) return false;

  std::vector<Node*> nodes{&sm};
  std::optional<Scores> sc;
  Value* mask = nullptr;
  std::string mode = "add";
  float fill = 0;
  Node* pp = p->producer;
  if (pp && is_op(*pp, "Add") && pp->inputs.size() == 2 && pp->outputs.size() == 1) {
    for (int k = 0; k < 2 && !sc; ++k) {
      Value* s = pp->inputs[size_t(k)];
      if (uses.sole_consumer(s) != pp) continue;
      sc = scaled_scores(uses, s);
      if (sc) mask = pp->inputs[size_t(1 - k)];
    }
    if (!sc || !opt::is_f32(mask)) return false;
    nodes.push_back(pp);
  } else if (pp && is_op(*pp, "Where") && pp->inputs.size() == 3 && pp->outputs.size() == 1) {
    mask = pp->inputs[0];
    for (int k = 1; k <= 2 && !sc; ++k) {
      Value* s = pp->inputs[size_t(k)];
      auto f = opt::scalar_of(pp->inputs[size_t(3 - k)]);
      if (!f || uses.sole_consumer(s) != pp) continue;
      sc = scaled_scores(uses, s);
      mode = k == 1 ? "keep" : "drop";
      fill = float(*f);
    }
    if (!sc || !mask || mask->dtype != DType::kBool) return false;
    nodes.push_back(pp);
  } else {
    sc = scaled_scores(uses, p);
    if (!sc) return false;
  }
  Node* mm = sc->mm;
  nodes.insert(nodes.end(), sc->nodes.begin(), sc->nodes.end());
  if (mask && !mask_broadcasts(mask, mm->outputs[0])) return false;
  Node* pv = uses.sole_consumer(sm.outputs[0]);
  if (!pv || !is_op(*pv, "MatMul") || pv->inputs.size() != 2 || pv->inputs[0] != sm.outputs[0] ||
      pv->outputs.size() != 1 || opt::rank_of(pv->inputs[1]) != 4)
    return false;
  nodes.push_back(pv);
  Value *qh = mm->inputs[0], *kt = mm->inputs[1], *vh = pv->inputs[1];
  for (const Value* v : {qh, kt, vh, pv->outputs[0]})
    if (!opt::is_f32(v)) return false;

  // K^T as Transpose<0,1,3,2>(Kh), Kh read by it alone.
  Node* kt_t = kt->producer && perm_of(*kt->producer) == std::vector<int64_t>{0, 1, 3, 2} &&
                       uses.sole_consumer(kt) == mm
                   ? kt->producer
                   : nullptr;
  // 3-D layout: splits and merge around it.
  std::optional<HeadSplit> qs, ks, vs;
  std::vector<Node*> merge_nodes;
  Node* merge = nullptr;
  // Q's and K's heads may also be read by Shape -> Gather (their lengths):
  // those reads move to the 3-D inputs. Dims of Qh [B,H,S,D] and Kt [B,H,D,S]
  // as dims of x [B,S,H*D].
  auto q_reads = shape_reads(uses, qh, mm, std::vector<int64_t>{0, -1, 1, -1});
  auto k_reads = shape_reads(uses, kt, mm, std::vector<int64_t>{0, -1, -1, 1});
  auto v_reads = shape_reads(uses, vh, pv, std::vector<int64_t>{0, -1, 1, -1});
  if (q_reads && k_reads && v_reads) {
    qs = head_split(uses, qh, {0, 2, 1, 3});
    vs = head_split(uses, vh, {0, 2, 1, 3});
    ks = head_split(uses, kt, {0, 2, 3, 1});
    if (!ks && kt_t && k_reads->empty() && uses.sole_consumer(kt_t->inputs[0]) == kt_t)
      ks = head_split(uses, kt_t->inputs[0], {0, 2, 1, 3});
    merge = head_merge(uses, pv->outputs[0], merge_nodes);
  }
  // Q, K, V of one batch (MatMul would broadcast a batch of 1). K's and V's
  // lengths are checked by the kernel (the chain's MatMul fails there too).
  const bool three_d = qs && ks && vs && merge && qs->heads == ks->heads && ks->heads == vs->heads &&
                       qs->dim == ks->dim && opt::is_f32(qs->x) && opt::is_f32(ks->x) && opt::is_f32(vs->x) &&
                       dim_eq((*qs->x->shape)[0], (*ks->x->shape)[0]) &&
                       dim_eq((*ks->x->shape)[0], (*vs->x->shape)[0]);
  if (!three_d) {
    // 4-D: batch and heads of Q, K^T and V provably equal.
    const Value* kv = kt_t ? kt_t->inputs[0] : kt;
    if (!qh->shape || !kv->shape || !vh->shape || kv->shape->size() != 4) return false;
    for (int d = 0; d < 2; ++d)
      if (!dim_eq((*qh->shape)[size_t(d)], (*kv->shape)[size_t(d)]) ||
          !dim_eq((*qh->shape)[size_t(d)], (*vh->shape)[size_t(d)]))
        return false;
  }
  std::vector<Value*> ins;
  Node* last = pv;
  if (three_d) {
    repoint_shape_reads(g, *q_reads, qs->x);
    repoint_shape_reads(g, *k_reads, ks->x);
    repoint_shape_reads(g, *v_reads, vs->x);
    ins = {qs->x, ks->x, vs->x};
    for (const auto* h : {&*qs, &*ks, &*vs}) nodes.insert(nodes.end(), h->nodes.begin(), h->nodes.end());
    if (ks->nodes.back()->outputs[0] != kt) nodes.push_back(kt_t);
    nodes.insert(nodes.end(), merge_nodes.begin(), merge_nodes.end());
    last = merge;
  } else {
    ins = {qh, kt_t ? kt_t->inputs[0] : kt, vh};
    if (kt_t) nodes.push_back(kt_t);
  }
  if (mask) ins.push_back(mask);
  std::unordered_set<const Node*> dead(nodes.begin(), nodes.end());
  Node* att = opt::replace_chain(g, last, "Attention", kDeepepDomain, ins, dead);
  set_attr(att, "scale", float(sc->scale));
  if (three_d) set_attr(att, "num_heads", qs->heads);
  else if (!kt_t) set_attr(att, "k_transposed", int64_t(1));
  if (mask && mode != "add") {
    set_attr(att, "mask_mode", mode);
    set_attr(att, "mask_fill", fill);
  }
  ctx.count(three_d ? "fused.heads_split" : "fused.4d");
  return true;
}

// Split sizes of a Split along the last axis of a rank-3 input with 3 outputs.
std::optional<std::vector<int64_t>> split3(const Node& sp) {
  if (!is_op(sp, "Split") || sp.outputs.size() != 3 || opt::rank_of(sp.inputs[0]) != 3) return std::nullopt;
  const int64_t axis = sp.attr_int("axis", 0);
  if (axis != 2 && axis != -1) return std::nullopt;
  std::optional<std::vector<int64_t>> sizes;
  if (sp.inputs.size() > 1 && sp.inputs[1]) sizes = opt::ints_arg(sp, 1, nullptr);
  else if (sp.has_attr("split")) sizes = sp.attr_ints("split");
  else if ((*sp.inputs[0]->shape)[2].is_known() && (*sp.inputs[0]->shape)[2].value % 3 == 0 && !sp.has_attr("num_outputs"))
    sizes = std::vector<int64_t>(3, (*sp.inputs[0]->shape)[2].value / 3);
  if (!sizes || sizes->size() != 3) return std::nullopt;
  return sizes;
}

// A projection packable with others: deepep.FusedMatMul with a constant 2-D
// weight, a constant bias or none and no epilogue beyond it, or a plain
// MatMul by a constant 2-D weight.
bool is_plain_projection(const Node* n) {
  if (!n || n->outputs.size() != 1 || n->inputs.size() < 2) return false;
  const Tensor* w = opt::constant_of(n->inputs[1]);
  if (!w || w->rank() != 2 || w->dtype() != DType::kFloat32 || !opt::is_f32(n->inputs[0])) return false;
  if (is_op(*n, "MatMul")) return n->inputs.size() == 2;
  return n->domain == kDeepepDomain && n->op_type == "FusedMatMul" && n->inputs.size() <= 3 &&
         n->attr_string("activation", "").empty() && (n->inputs.size() < 3 || !n->inputs[2] || opt::constant_of(n->inputs[2]));
}

Value* bias_of(const Node* n) { return n->inputs.size() > 2 ? n->inputs[2] : nullptr; }

// Packs the Q, K, V inputs of a 3-D deepep.Attention into one.
bool pack_qkv(Graph& g, Node& att, const UseIndex& uses, PassContext& ctx) {
  if (att.domain != kDeepepDomain || att.op_type != "Attention" || att.inputs.size() < 3 || !att.inputs[1] ||
      !att.inputs[2] || !att.has_attr("num_heads"))
    return false;
  Value *q = att.inputs[0], *k = att.inputs[1], *v = att.inputs[2];
  for (const Value* x : {q, k, v})
    if (!x->producer) return false;
  Node* sp = q->producer;
  // Split outputs may also be read for their lengths (Shape -> Gather of dim 0 or 1).
  auto qr = shape_reads(uses, q, &att, {0, 1, -1}), kr = shape_reads(uses, k, &att, {0, 1, -1}),
       vr = shape_reads(uses, v, &att, {0, 1, -1});
  if (auto sizes = split3(*sp); sizes && qr && kr && vr && k->producer == sp && v->producer == sp &&
                                sp->outputs[0] == q && sp->outputs[1] == k && sp->outputs[2] == v &&
                                sp->inputs[0]->shape) {
    for (const auto* r : {&*qr, &*kr, &*vr}) repoint_shape_reads(g, *r, sp->inputs[0]);
    att.inputs[0] = sp->inputs[0];
    att.inputs[1] = att.inputs[2] = nullptr;
    set_attr(&att, "qkv_hidden_sizes", *sizes);
    remove_nodes(g, {sp});
    ctx.count("packed.split");
    return true;
  }
  for (const Value* x : {q, k, v})
    if (uses.sole_consumer(x) != &att) return false;
  Node *fq = q->producer, *fk = k->producer, *fv = v->producer;
  if (!is_plain_projection(fq) || !is_plain_projection(fk) || !is_plain_projection(fv) || fq == fk ||
      fk == fv || fq == fv)
    return false;
  Value* a = fq->inputs[0];
  const int64_t tb = fq->attr_int("trans_b", 0);
  const float alpha = fq->attr_float("alpha", 1.f);
  for (const Node* f : {fk, fv})
    if (f->inputs[0] != a || f->attr_int("trans_b", 0) != tb || f->attr_float("alpha", 1.f) != alpha) return false;
  const Tensor* w[3] = {opt::constant_of(fq->inputs[1]), opt::constant_of(fk->inputs[1]), opt::constant_of(fv->inputs[1])};
  const int64_t K = tb ? w[0]->dim(1) : w[0]->dim(0);
  int64_t n[3], total = 0;
  for (int i = 0; i < 3; ++i) {
    if (w[i]->dtype() != DType::kFloat32 || (tb ? w[i]->dim(1) : w[i]->dim(0)) != K) return false;
    n[i] = tb ? w[i]->dim(0) : w[i]->dim(1);
    total += n[i];
  }
  Tensor wc(DType::kFloat32, tb ? Shape{total, K} : Shape{K, total});
  float* pw = wc.data<float>();
  bool any_bias = false;
  int64_t off = 0;
  Node* f[3] = {fq, fk, fv};
  for (int i = 0; i < 3; ++i) {
    const float* src = w[i]->data<float>();
    if (tb) {
      std::memcpy(pw + off * K, src, size_t(n[i] * K) * sizeof(float));
    } else {
      for (int64_t r = 0; r < K; ++r) std::memcpy(pw + r * total + off, src + r * n[i], size_t(n[i]) * sizeof(float));
    }
    off += n[i];
    any_bias = any_bias || bias_of(f[i]);
  }
  std::vector<Value*> ins{a, new_constant(g, opt::derived_name(fq->inputs[1]->name, "_qkv"), std::move(wc))};
  if (any_bias) {
    Tensor bc(DType::kFloat32, {total});
    float* pb = bc.data<float>();
    off = 0;
    for (int i = 0; i < 3; ++i) {
      const Tensor* b = opt::constant_of(bias_of(f[i]));
      if (b && (b->dtype() != DType::kFloat32 || b->numel() != n[i])) return false;
      for (int64_t j = 0; j < n[i]; ++j) pb[off + j] = b ? b->data<float>()[j] : 0.f;
      off += n[i];
    }
    const Value* named = bias_of(fq) ? bias_of(fq) : bias_of(fk) ? bias_of(fk) : bias_of(fv);
    ins.push_back(new_constant(g, opt::derived_name(named->name, "_qkv_bias"), std::move(bc)));
  }
  std::optional<SymShape> shape;
  if (q->shape) {
    shape = *q->shape;
    shape->back() = Dim::known(total);
  }
  Value* packed = new_value(g, q->name + "_qkv", DType::kFloat32, shape);
  Node* mm = insert_node_before(g, &att, "FusedMatMul", ins, {packed}, kDeepepDomain);
  mm->name = fq->name;
  for (const auto& [key, at] : fq->attrs)
    if (key == "trans_b" || key == "alpha") mm->attrs[key] = at;
  att.inputs[0] = packed;
  att.inputs[1] = att.inputs[2] = nullptr;
  set_attr(&att, "qkv_hidden_sizes", std::vector<int64_t>{n[0], n[1], n[2]});
  for (const Node* f : {fq, fk, fv}) absorb(*mm, *f);
  remove_nodes(g, {fq, fk, fv});
  ctx.count("packed.matmul");
  return true;
}

bool run(Graph& g, PassContext& ctx) {
  bool changed = opt::rewrite_to_fixed_point(g, [&](Node& n, const UseIndex& uses) {
    return is_op(n, "Softmax") && fuse_attention(g, n, uses, ctx);
  });
  changed = opt::rewrite_to_fixed_point(g, [&](Node& n, const UseIndex& uses) { return pack_qkv(g, n, uses, ctx); }) ||
            changed;
  return changed;
}

}  // namespace

std::unique_ptr<Pass> make_attention_fusion() {
  return std::make_unique<FunctionPass>("attention_fusion", 2, run);
}

}  // namespace deepep
