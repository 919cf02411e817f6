// NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss over input [N, C, d1...]
// and int targets [N, d1...]: loss = -weight[t] * logp[n, t, d...], zero (with
// zero weight) where t == ignore_index. reduction: none (per element), sum, or
// mean (sum / sum of the weights used). SoftmaxCrossEntropyLoss takes logits,
// applies log-softmax over C and can also return it (output 1).
#include <cmath>

#include "ops/float_io.h"
#include "ops/op_util.h"

namespace deepep::ops {
namespace {



// logp: [N, C, D] as doubles. Fills output 0 from the targets (input 1) and
// the optional weights (input 2).
void nll(KernelContext& ctx, const std::vector<double>& logp, int64_t n, int64_t c, int64_t d) {
  const Tensor& x = ctx.input(0);
  const Tensor& target = ctx.input(1);
  Shape want(x.shape().begin(), x.shape().end());
  want.erase(want.begin() + 1);
  DEEPEP_CHECK(target.shape() == want, ctx.node.describe(), ": target has shape ", shape_str(target.shape()),
               ", expected ", shape_str(want), " for input shape ", shape_str(x.shape()));
  DEEPEP_CHECK(dtype_is_int(target.dtype()), ctx.node.describe(), ": target must be an integer tensor, got ",
               dtype_name(target.dtype()));
  std::vector<double> weight;
  if (ctx.has_input(2)) {
    DEEPEP_CHECK(ctx.input(2).rank() == 1 && ctx.input(2).dim(0) == c, ctx.node.describe(),
                 ": weight must have shape [", c, "], got ", shape_str(ctx.input(2).shape()));
    weight = as_doubles(ctx.input(2), ctx.op());
  }
  const bool has_ii = ctx.node.has_attr("ignore_index");
  const int64_t ii = ctx.node.attr_int("ignore_index", 0);
  const std::string reduction = ctx.node.attr_string("reduction", "mean");
  DEEPEP_CHECK(reduction == "none" || reduction == "sum" || reduction == "mean", ctx.node.describe(),
               ": reduction must be none, sum or mean, got '", reduction, "'");
  std::vector<double> loss(size_t(n * d), 0.0);
  double wsum = 0, lsum = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) {
      const int64_t t = target.get_int(i * d + j);
      if (has_ii && t == ii) continue;
      DEEPEP_CHECK(t >= 0 && t < c, ctx.node.describe(), ": target value ", t, " is out of range [0, ", c, ")");
      const double w = weight.empty() ? 1.0 : weight[size_t(t)];
      const double l = -logp[size_t((i * c + t) * d + j)] * w;
      loss[size_t(i * d + j)] = l;
      lsum += l;
      wsum += w;
    }
  if (reduction == "none") {
    store_doubles(ctx.output(0, x.dtype(), target.shape()), loss, ctx.op());
  } else {
    store_doubles(ctx.output(0, x.dtype(), {}), {reduction == "sum" ? lsum : lsum / wsum}, ctx.op());
  }
}

struct NCD {
  int64_t n = 1, c = 1, d = 1;
};

NCD ncd_of(const KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  DEEPEP_CHECK(x.rank() >= 2, ctx.node.describe(), ": input must have rank >= 2 ([N, C, ...]), got shape ",
               shape_str(x.shape()));
  NCD v{x.dim(0), x.dim(1), 1};
  for (int k = 2; k < x.rank(); ++k) v.d *= x.dim(k);
  return v;
}

void run_nll(KernelContext& ctx) {
  const NCD s = ncd_of(ctx);
  dispatch_float(ctx.input(0).dtype(), ctx.op(), [](auto) {});  // float inputs only
  nll(ctx, as_doubles(ctx.input(0), ctx.op()), s.n, s.c, s.d);
}

void run_sce(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const NCD s = ncd_of(ctx);
  dispatch_float(x.dtype(), ctx.op(), [](auto) {});  // float inputs only
  std::vector<double> lp = as_doubles(x, ctx.op());
  for (int64_t i = 0; i < s.n; ++i)
    for (int64_t j = 0; j < s.d; ++j) {
      double* p = lp.data() + i * s.c * s.d + j;
      double mx = -INFINITY;
      for (int64_t k = 0; k < s.c; ++k) mx = std::max(mx, p[k * s.d]);
      if (!std::isfinite(mx)) mx = 0;
      double sum = 0;
      for (int64_t k = 0; k < s.c; ++k) sum += std::exp(p[k * s.d] - mx);
      const double ls = std::log(sum) + mx;
      for (int64_t k = 0; k < s.c; ++k) p[k * s.d] -= ls;
    }
  nll(ctx, lp, s.n, s.c, s.d);
  if (ctx.output_requested(1)) store_doubles(ctx.output(1, x.dtype(), x.shape()), lp, ctx.op());
}

void infer_loss(InferContext& ctx) {
  if (!ctx.has_input(0)) return;
  const Value& x = ctx.input(0);
  const std::string reduction = ctx.node.attr_string("reduction", "mean");
  std::optional<SymShape> s;
  if (reduction != "none") s = SymShape{};
  else if (ctx.has_input(1)) s = ctx.input(1).shape;
  ctx.set(0, x.dtype, s);
  if (ctx.outputs.size() > 1) ctx.set(1, x.dtype, x.shape);
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(NegativeLogLikelihoodLoss) {
  def.infer = infer_loss;
  def.reference = run_nll;
}
DEEPEP_DEFINE_OP(SoftmaxCrossEntropyLoss) {
  def.infer = infer_loss;
  def.reference = run_sce;
}
