// Conv + BatchNormalization / per-channel Mul, Add, Sub folding (level 2).
// Rewrites: y = Conv(x, W, B) read only by a per-output-channel affine map
// z = s[m] * y + t[m] becomes z = Conv(x, W', B') with
//   W'[m, ...] = W[m, ...] * s[m],   B'[m] = B[m] * s[m] + t[m]   (B = 0 if absent)
// where the map is
//   BatchNormalization (inference): s = scale / sqrt(var + epsilon), t = bias - mean * s
//   Mul(y, c) / Mul(c, y): s = c, t = 0;  Add(y, c) / Add(c, y): s = 1, t = c;  Sub(y, c): t = -c
// and c is a constant that varies along the channel axis only (shape [M,1,1],
// [1,M,1,1], [1], a scalar...). The Conv takes over the consumer's output
// value (and name); chains (Conv+BN+Mul) fold one step per round. W' and B'
// are new constants, so a W shared with another Conv is left intact.
// Must not: fold when y has another reader or is a graph output; when BN may
// train (training_mode=1) or its running-statistics outputs are read; when a
// parameter is not constant, not per-channel, or not W's float dtype; when c
// would broadcast y to a larger shape; or for Sub(c, y) (it negates W).
// Why: inference BN is an affine map per channel; inside the weights it costs
// nothing, and Conv+bias is what the fast kernels and later fusions expect.
#include <cmath>
#include <unordered_set>

#include "ir/graph_edit.h"
#include "optimizer/pass.h"
#include "optimizer/pattern.h"

namespace deepep {
namespace {

using opt::is_op;

struct Affine {
  std::vector<double> scale, shift;  // per output channel
};

// c's values per channel when c broadcasts along axis 1 of a rank-`rank` y only.
std::optional<std::vector<double>> per_channel(const Value* cv, DType dtype, int64_t rank, int64_t m) {
  const Tensor* c = opt::constant_of(cv);
  if (!c || c->dtype() != dtype || c->rank() > rank) return std::nullopt;
  int64_t channels = 1;
  for (int i = 0; i < c->rank(); ++i) {
    const int64_t axis = rank - c->rank() + i;  // right-aligned broadcasting
    const int64_t d = c->dim(i);
    if (axis == 1 && (d == m || d == 1)) channels = d;
    else if (d != 1) return std::nullopt;
  }
  std::vector<double> v = opt::to_doubles(*c);
  if (channels == 1) v.assign(size_t(m), v.at(0));
  return v;
}

std::optional<Affine> channel_affine(const Node& n, const Value* y, DType dtype, int64_t rank, int64_t m,
                                     const UseIndex& uses) {
  const size_t M = size_t(m);
  if (is_op(n, "BatchNormalization")) {
    if (n.inputs.size() < 5 || n.inputs[0] != y || n.attr_int("training_mode", 0) != 0) return std::nullopt;
    for (size_t i = 1; i < n.outputs.size(); ++i)
      if (n.outputs[i] && (!uses.uses(n.outputs[i]).empty() || uses.is_output(n.outputs[i]))) return std::nullopt;
    std::vector<std::vector<double>> p;  // scale, bias, mean, var
    for (int i = 1; i <= 4; ++i) {
      const Tensor* t = opt::constant_of(n.inputs[size_t(i)]);
      if (!t || t->dtype() != dtype || t->rank() != 1 || t->numel() != m) return std::nullopt;
      p.push_back(opt::to_doubles(*t));
    }
    const double eps = n.attr_float("epsilon", 1e-5f);
    Affine a{std::vector<double>(M), std::vector<double>(M)};
    for (size_t i = 0; i < M; ++i) {
      a.scale[i] = p[0][i] / std::sqrt(p[3][i] + eps);
      a.shift[i] = p[1][i] - p[2][i] * a.scale[i];
    }
    return a;
  }
  const bool mul = is_op(n, "Mul"), add = is_op(n, "Add"), sub = is_op(n, "Sub");
  if (!(mul || add || sub) || n.inputs.size() != 2) return std::nullopt;
  if (sub && n.inputs[0] != y) return std::nullopt;
  auto c = per_channel(n.inputs[0] == y ? n.inputs[1] : n.inputs[0], dtype, rank, m);
  if (!c) return std::nullopt;
  Affine a{std::vector<double>(M, 1.0), std::vector<double>(M, 0.0)};
  for (size_t i = 0; i < M; ++i) {
    if (mul) a.scale[i] = (*c)[i];
    else a.shift[i] = sub ? -(*c)[i] : (*c)[i];
  }
  return a;
}

bool run(Graph& g, PassContext& ctx) {
  UseIndex uses(g);
  std::unordered_set<const Node*> dead;
  for (const auto& up : g.nodes()) {
    Node& conv = *up;
    if (!is_op(conv, "Conv") || conv.inputs.size() < 2 || conv.outputs.size() != 1) continue;
    Value* y = conv.outputs[0];
    const Tensor* w = opt::constant_of(conv.inputs[1]);
    const Value* bv = conv.inputs.size() > 2 ? conv.inputs[2] : nullptr;
    const Tensor* b = opt::constant_of(bv);
    Node* next = uses.sole_consumer(y);
    if (!w || !opt::is_float(w->dtype()) || w->rank() < 3 || (bv && !b) || !next) continue;
    const int64_t m = w->dim(0);
    auto affine = channel_affine(*next, y, w->dtype(), w->rank(), m, uses);
    if (!affine) continue;

    std::vector<double> wv = opt::to_doubles(*w);
    std::vector<double> bias = b ? opt::to_doubles(*b) : std::vector<double>(size_t(m), 0.0);
    const size_t per = wv.size() / size_t(m);
    for (size_t i = 0; i < wv.size(); ++i) wv[i] *= affine->scale[i / per];
    for (size_t k = 0; k < size_t(m); ++k) bias[k] = bias[k] * affine->scale[k] + affine->shift[k];
    bool unit = true;
    for (double s : affine->scale) unit = unit && s == 1.0;
    const std::string bias_name = bv ? opt::derived_name(bv->name, "_folded") : conv.inputs[1]->name + "_bias";
    if (!unit)
      conv.inputs[1] = new_constant(g, opt::derived_name(conv.inputs[1]->name, "_folded"),
                                    opt::from_doubles(w->dtype(), w->shape(), wv));
    conv.inputs.resize(3);
    conv.inputs[2] = new_constant(g, bias_name, opt::from_doubles(w->dtype(), {m}, bias));
    // The Conv now produces the consumer's output; y is left to be pruned.
    Value* z = next->outputs[0];
    y->producer = nullptr;
    conv.outputs[0] = z;
    z->producer = &conv;
    next->outputs[0] = nullptr;
    if (conv.absorbed.empty()) conv.absorbed[conv.op_type] = 1;  // the Conv is a source op too
    absorb(conv, *next);
    dead.insert(next);
    ctx.count("folded." + next->op_type);
  }
  remove_nodes(g, dead);
  return !dead.empty();
}

}  // namespace

std::unique_ptr<Pass> make_conv_batchnorm_fold() {
  return std::make_unique<FunctionPass>("conv_batchnorm_fold", 2, run);
}

}  // namespace deepep
