// deepep.SkipLayerNorm: S = X + Skip; Y = LayerNormalization(S, gamma, beta)
// in one pass over each row, made by the skip_layer_norm_fusion pass.
//   inputs:  X, Skip (any two shapes that broadcast, as for Add; fast when one
//            is the sum's shape and the other its trailing dims behind
//            leading 1s -- the same shape, a bias [d], position embeddings
//            [1, seq, d] for [batch, seq, d] -- else the sum is broadcast
//            first), gamma, beta (optional);
//            gamma and beta broadcast into the normalized dims X.shape[axis:]
//   attrs:   axis (-1), epsilon (1e-5), as LayerNormalization
//   outputs: Y, and S (optional: when the sum is read elsewhere, e.g. as the
//            next residual)
// float32 only. Statistics accumulate in double, as the LayerNormalization
// kernel does. Rows run in parallel.
#include <cmath>

#include "ops/gemm_util.h"
#include "ops/op_util.h"

namespace deepep::ops {
namespace {

// gamma/beta expanded to the `cols` values of the normalized dims.
std::vector<float> expand_param(const Tensor& t, const Shape& norm, const Node& node, const char* what) {
  DEEPEP_CHECK(t.dtype() == DType::kFloat32, node.describe(), ": ", what, " must be float32, got ",
               dtype_name(t.dtype()));
  // Leading 1s beyond the normalized dims are fine ([1, d] for [d]).
  Shape ts = t.shape();
  while (ts.size() > norm.size() && ts.front() == 1) ts.erase(ts.begin());
  bool ok = ts.size() <= norm.size();
  for (size_t i = 0; ok && i < ts.size(); ++i) {
    const int64_t d = ts[ts.size() - 1 - i], n = norm[norm.size() - 1 - i];
    ok = d == n || d == 1;
  }
  DEEPEP_CHECK(ok, node.describe(), ": ", what, " of shape ", shape_str(t.shape()),
               " does not broadcast into the normalized dims ", shape_str(norm));
  std::vector<float> v(size_t(shape_numel(norm)));
  const float* p = t.data<float>();
  for_each_broadcast<1>(norm, {ts}, [&](int64_t i, const auto& off) { v[size_t(i)] = p[off[0]]; });
  return v;
}


void skip_layer_norm_kernel(KernelContext& ctx) {
  const Node& node = ctx.node;
  const Tensor* x = &ctx.input(0);
  const Tensor* skip = &ctx.input(1);
  DEEPEP_CHECK(x->dtype() == DType::kFloat32 && skip->dtype() == DType::kFloat32, node.describe(),
               ": X and Skip must be float32, got ", dtype_name(x->dtype()), " and ", dtype_name(skip->dtype()));
  const Shape out = broadcast_shapes(x->shape(), skip->shape(), node);
  // The fast path reads the smaller operand with a period; Add is commutative.
  if (x->shape() != out && skip->shape() == out) std::swap(x, skip);
  const bool fast = x->shape() == out && periodic(skip->shape(), out);
  const int64_t rank = int64_t(out.size());
  DEEPEP_CHECK(rank >= 1, node.describe(), ": X + Skip must have rank >= 1");
  const int64_t axis = normalize_axis(node.attr_int("axis", -1), rank, node);
  const Shape norm(out.begin() + axis, out.end());
  const int64_t cols = shape_numel(norm);
  const int64_t total = shape_numel(out);
  const int64_t rows = cols ? total / cols : 0;
  const double eps = node.attr_float("epsilon", 1e-5f);
  const std::vector<float> gamma = expand_param(ctx.input(2), norm, node, "gamma");
  const std::vector<float> beta =
      ctx.has_input(3) ? expand_param(ctx.input(3), norm, node, "beta") : std::vector<float>(size_t(cols), 0.f);
  Tensor& y = ctx.output(0, DType::kFloat32, out);
  float* sum = ctx.output_requested(1) ? ctx.output(1, DType::kFloat32, out).data<float>() : nullptr;
  if (total == 0) return;
  const float* px = x->data<float>();
  const float* pk = skip->data<float>();
  float* py = y.data<float>();
  // Not a plain repetition: the sum, broadcast in full, first (into Sum or Y).
  float* staged = sum ? sum : py;
  if (!fast) {
    for_each_broadcast<2>(out, {x->shape(), skip->shape()},
                          [&](int64_t i, const auto& off) { staged[i] = px[off[0]] + pk[off[1]]; });
  }
  const int64_t period = skip->numel();
  const int threads = threads_for_work(double(total) * 16);
  parallel_for(rows, threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* s = staged + r * cols;  // the sum, staged in Y when not requested
      double m = 0;
      if (!fast) {
        for (int64_t c = 0; c < cols; ++c) m += s[c];
      } else {
        const float* xr = px + r * cols;
        const int64_t ko = (r * cols) % period;  // rows of Skip repeat with its period
        if (ko + cols <= period) {
          const float* kr = pk + ko;
          for (int64_t c = 0; c < cols; ++c) {
            s[c] = xr[c] + kr[c];
            m += s[c];
          }
        } else {
          for (int64_t c = 0; c < cols; ++c) {
            s[c] = xr[c] + pk[(ko + c) % period];
            m += s[c];
          }
        }
      }
      m /= double(cols);
      double v = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const double d = double(s[c]) - m;
        v += d * d;
      }
      v /= double(cols);
      const float mean = float(m), inv = float(1.0 / std::sqrt(v + eps));
      float* yr = py + r * cols;
      for (int64_t c = 0; c < cols; ++c) yr[c] = (s[c] - mean) * inv * gamma[size_t(c)] + beta[size_t(c)];
    }
  });
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_FUSED_OP(SkipLayerNorm) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0)) return;
    const Value& x = ctx.input(0);
    std::optional<SymShape> shape;
    if (x.shape && ctx.has_input(1) && ctx.input(1).shape) shape = broadcast_sym(*x.shape, *ctx.input(1).shape);
    for (size_t i = 0; i < ctx.outputs.size() && i < 2; ++i) ctx.set(int(i), x.dtype, shape);
  };
  def.reference = skip_layer_norm_kernel;
}
