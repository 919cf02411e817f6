// Transpose cancellation and folding (level 2).
// Rewrites:
//   - Transpose(Transpose(x, p), q) reads x through the composed permutation
//     r[i] = p[q[i]]: when r is the identity the outer output is replaced by x,
//     else the outer node becomes Transpose(x, r). The inner one is left to
//     dead-code elimination (it may have other readers).
//   - Transpose of a constant becomes a constant (the permuted copy), with no
//     kernel needed, so weights stored transposed reach the fusions as plain
//     constants whatever kernels this build has.
// Must not: compose when a perm is missing and the rank is unknown (the
// default perm reverses the dims, so it depends on the rank), or is not a
// permutation; replace when that would rename a graph input into an output.
// Why: layout conversions (NCHW<->NHWC around exporters' ops, weight
// transposes before MatMul) come in cancelling pairs and on constants.
#include <algorithm>
#include <cstring>
#include <numeric>
#include <unordered_set>

#include "ir/graph_edit.h"
#include "optimizer/pass.h"
#include "optimizer/pattern.h"

namespace deepep {
namespace {

// The node's perm, with the default (reversed dims) spelled out.
std::optional<std::vector<int64_t>> perm_of(const Node& t) {
  auto rank = opt::rank_of(t.inputs[0]);
  if (const Tensor* c = opt::constant_of(t.inputs[0])) rank = c->rank();
  std::vector<int64_t> p;
  if (t.has_attr("perm")) {
    p = t.attr_ints("perm");
  } else {
    if (!rank) return std::nullopt;
    for (int64_t i = *rank; i-- > 0;) p.push_back(i);
  }
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i)
    if (sorted[i] != int64_t(i)) return std::nullopt;
  if (rank && *rank != int64_t(p.size())) return std::nullopt;
  return p;
}

Tensor permuted(const Tensor& t, const std::vector<int64_t>& perm) {
  const int r = t.rank();
  Shape out_shape(size_t(r), 0);
  std::vector<int64_t> in_strides(size_t(r), 1);
  std::vector<int64_t> stride_of_out(size_t(r), 0);
  for (int i = r - 2; i >= 0; --i) in_strides[size_t(i)] = in_strides[size_t(i + 1)] * t.dim(i + 1);
  for (int i = 0; i < r; ++i) {
    out_shape[size_t(i)] = t.dim(int(perm[size_t(i)]));
    stride_of_out[size_t(i)] = in_strides[size_t(perm[size_t(i)])];
  }
  Tensor out(t.dtype(), out_shape);
  const size_t es = dtype_size(t.dtype());
  const auto* src = static_cast<const char*>(t.raw());
  auto* dst = static_cast<char*>(out.raw());
  std::vector<int64_t> idx(size_t(r), 0);
  int64_t off = 0;
  for (int64_t n = 0; n < out.numel(); ++n) {
    std::memcpy(dst + size_t(n) * es, src + size_t(off) * es, es);
    for (int d = r - 1; d >= 0; --d) {  // odometer over the output index
      off += stride_of_out[size_t(d)];
      if (++idx[size_t(d)] < out_shape[size_t(d)]) break;
      off -= stride_of_out[size_t(d)] * out_shape[size_t(d)];
      idx[size_t(d)] = 0;
    }
  }
  return out;
}

bool run(Graph& g, PassContext& ctx) {
  std::unordered_set<const Node*> dead;
  bool changed = false;
  for (const auto& up : g.nodes()) {
    Node& t = *up;
    if (!opt::is_op(t, "Transpose") || t.inputs.empty() || !t.inputs[0] || t.outputs.size() != 1) continue;
    auto q = perm_of(t);
    if (!q) continue;
    if (const Tensor* c = opt::constant_of(t.inputs[0]); c && c->nbytes() <= opt::kMaxFoldBytes) {
      make_constant(t.outputs[0], permuted(*c, *q));
      dead.insert(&t);
      ctx.count("constants_folded");
      continue;
    }
    Node* inner = opt::producer_of(t.inputs[0], "Transpose");
    auto p = inner ? perm_of(*inner) : std::nullopt;
    if (!p || p->size() != q->size()) continue;
    std::vector<int64_t> r(q->size());
    for (size_t i = 0; i < r.size(); ++i) r[i] = (*p)[size_t((*q)[i])];
    Value* x = inner->inputs[0];
    std::vector<int64_t> identity(r.size());
    std::iota(identity.begin(), identity.end(), 0);
    if (r == identity) {
      if (!replace_all_uses(g, t.outputs[0], x)) continue;
      dead.insert(&t);
      ctx.count("pairs_cancelled");
    } else {
      t.inputs[0] = x;
      t.attrs["perm"].kind = Attribute::Kind::kInts;
      t.attrs["perm"].ints = r;
      ctx.count("pairs_merged");
    }
    changed = true;
  }
  remove_nodes(g, dead);
  return changed || !dead.empty();
}

}  // namespace

std::unique_ptr<Pass> make_transpose_cancellation() {
  return std::make_unique<FunctionPass>("transpose_cancellation", 2, run);
}

}  // namespace deepep
