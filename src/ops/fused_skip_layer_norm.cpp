// deepep.SkipLayerNorm: S = X + Skip; Y = LayerNormalization(S, gamma, beta)
// in one pass over each row, made by the skip_layer_norm_fusion pass.
//   inputs:  X, Skip (X's shape, or X's trailing dims with leading 1s: a
//            tensor repeated over X's leading rows, e.g. position embeddings
//            [1, seq, d] added to [batch, seq, d]), gamma, beta (optional);
//            gamma and beta broadcast into the normalized dims X.shape[axis:]
//   attrs:   axis (-1), epsilon (1e-5), as LayerNormalization
//   outputs: Y, and S (optional: when the sum is read elsewhere, e.g. as the
//            next residual)
// float32 only. Statistics accumulate in double, as the LayerNormalization
// kernel does. Rows run in parallel.
#include <cmath>

#include "ops/gemm_util.h"

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
  const Tensor& x = ctx.input(0);
  const Tensor& skip = ctx.input(1);
  DEEPEP_CHECK(x.dtype() == DType::kFloat32 && skip.dtype() == DType::kFloat32, node.describe(),
               ": X and Skip must be float32, got ", dtype_name(x.dtype()), " and ", dtype_name(skip.dtype()));
  // Skip: X's trailing dims after leading 1s, so element i reads skip[i % numel].
  {
    const Shape& ss = skip.shape();
    size_t lead = 0;
    while (lead < ss.size() && ss[lead] == 1 && ss.size() - lead > 0) ++lead;
    bool ok = ss.size() <= x.shape().size();
    for (size_t i = lead; ok && i < ss.size(); ++i) ok = ss[i] == x.shape()[x.shape().size() - ss.size() + i];
    DEEPEP_CHECK(ok, node.describe(), ": Skip of shape ", shape_str(ss), " is not X ", shape_str(x.shape()),
                 "'s shape or its trailing dims");
  }
  const int64_t rank = x.rank();
  DEEPEP_CHECK(rank >= 1, node.describe(), ": X must have rank >= 1");
  const int64_t axis = normalize_axis(node.attr_int("axis", -1), rank, node);
  const Shape norm(x.shape().begin() + axis, x.shape().end());
  const int64_t cols = shape_numel(norm);
  const int64_t rows = cols ? x.numel() / cols : 0;
  const double eps = node.attr_float("epsilon", 1e-5f);
  const std::vector<float> gamma = expand_param(ctx.input(2), norm, node, "gamma");
  const std::vector<float> beta =
      ctx.has_input(3) ? expand_param(ctx.input(3), norm, node, "beta") : std::vector<float>(size_t(cols), 0.f);
  Tensor& y = ctx.output(0, DType::kFloat32, x.shape());
  float* sum = ctx.output_requested(1) ? ctx.output(1, DType::kFloat32, x.shape()).data<float>() : nullptr;
  if (x.numel() == 0) return;
  const float* px = x.data<float>();
  const float* pk = skip.data<float>();
  const int64_t period = skip.numel();
  float* py = y.data<float>();
  const int threads = threads_for_work(double(x.numel()) * 16);
  parallel_for(rows, threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = px + r * cols;
      const int64_t ko = (r * cols) % period;  // rows of Skip repeat with its period
      float* s = sum ? sum + r * cols : py + r * cols;  // the sum, staged in Y when not requested
      double m = 0;
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
    for (size_t i = 0; i < ctx.outputs.size() && i < 2; ++i) ctx.set(int(i), x.dtype, x.shape);
  };
  def.reference = skip_layer_norm_kernel;
}
