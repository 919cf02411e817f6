// deepep.Attention: softmax(scale * Q K^T  (+ mask | masked by a boolean)) V
// per (batch, head), made by the attention_fusion pass from the exported
// chain (head-split Reshape/Transpose, MatMul, Div/Mul, Add or Where, Softmax,
// MatMul, head-merge Transpose/Reshape).
//   inputs:  Q, K (optional), V (optional), mask (optional)
//   layouts: 3-D  Q [B, Sq, H*D], K [B, Sk, H*D], V [B, Sk, H*Dv]; Y [B, Sq, H*Dv]
//                 (heads split and merged inside; attribute num_heads)
//            packed 3-D: K and V omitted, Q is [B, S, Nq + Nk + Nv] with
//                 qkv_hidden_sizes = [Nq, Nk, Nv] (one projection GEMM for all three)
//            4-D  Q [B, H, Sq, D], K [B, H, Sk, D] ([B, H, D, Sk] with
//                 k_transposed = 1), V [B, H, Sk, Dv]; Y [B, H, Sq, Dv]
//   attrs:   scale (float, required), num_heads (3-D), qkv_hidden_sizes,
//            k_transposed (0), mask_mode: "add" (float mask added to the
//            scores), "keep" (boolean: true keeps the score, false puts
//            mask_fill), "drop" (boolean: true puts mask_fill); mask_fill (float)
//   mask:    broadcasts (numpy rules) to [B, H, Sq, Sk]
// float32. Per (batch, head, block of query rows): one sgemm for the scores,
// the mask and a row softmax in place, one sgemm into Y. Fully masked rows
// give what the chain gives (-inf everywhere: NaN; a finite fill: uniform).
#include <cmath>
#include <limits>

#include "ops/attention_geometry.h"
#include "ops/gemm_util.h"

namespace deepep::ops {
namespace {

void attention_kernel(KernelContext& ctx) {
  const Node& n = ctx.node;
  const AttentionGeometry g = attention_geometry(ctx);
  DEEPEP_CHECK(n.has_attr("scale"), n.describe(), ": the scale attribute is required");
  const float scale = n.attr_float("scale", 1.f);
  const AttentionMask am = attention_mask(ctx, g);
  const AttentionMaskMode mode = am.mode;
  const float fill = am.fill;
  const Tensor* mask = am.mask;
  const std::array<int64_t, 4>& ms = am.strides;
  float* py = attention_output(ctx, g);
  if (!py) return;
  constexpr int64_t kRows = 64;  // query rows per job: the score block stays in cache
  const int64_t chunks = (g.Sq + kRows - 1) / kRows;
  const int64_t jobs = g.B * g.H * chunks;
  const double work = double(g.B * g.H) * double(g.Sq) * double(g.Sk) * double(g.D + g.Dv + 8);
  parallel_for(jobs, threads_for_work(work), [&](int64_t j0, int64_t j1) {
    std::vector<float> s(size_t(std::min(kRows, g.Sq) * g.Sk));
    for (int64_t job = j0; job < j1; ++job) {
      const int64_t c = job % chunks, bh = job / chunks, b = bh / g.H, h = bh % g.H;
      const int64_t r0 = c * kRows, rows = std::min(kRows, g.Sq - r0);
      const float* q = g.q.at(b, h) + r0 * g.q.ld;
      sgemm(false, !g.kt, rows, g.Sk, g.D, scale, q, g.q.ld, g.k.at(b, h), g.k.ld, 0.f, s.data(), g.Sk, 1);
      for (int64_t i = 0; i < rows; ++i) {
        float* row = s.data() + i * g.Sk;
        if (mask) {
          const int64_t mo = b * ms[0] + h * ms[1] + (r0 + i) * ms[2];
          if (mode == AttentionMaskMode::kAdd) {
            const float* m = mask->data<float>() + mo;
            for (int64_t j = 0; j < g.Sk; ++j) row[j] += m[j * ms[3]];
          } else {
            const bool* m = mask->data<bool>() + mo;
            const bool keep = mode == AttentionMaskMode::kKeep;
            for (int64_t j = 0; j < g.Sk; ++j)
              if (m[j * ms[3]] != keep) row[j] = fill;
          }
        }
        float mx = -std::numeric_limits<float>::infinity();
        for (int64_t j = 0; j < g.Sk; ++j) mx = std::max(mx, row[j]);
        double sum = 0;
        for (int64_t j = 0; j < g.Sk; ++j) {
          row[j] = std::exp(row[j] - mx);
          sum += row[j];
        }
        const float inv = float(1.0 / sum);
        for (int64_t j = 0; j < g.Sk; ++j) row[j] *= inv;
      }
      float* yo = py + b * g.ysb + h * g.ysh + r0 * g.yld;
      sgemm(false, false, rows, g.Dv, g.Sk, 1.f, s.data(), g.Sk, g.v.at(b, h), g.v.ld, 0.f, yo, g.yld, 1);
    }
  });
}

void attention_infer(InferContext& ctx) {
  if (!ctx.has_input(0) || !ctx.input(0).shape) {
    if (ctx.has_input(0)) ctx.set(0, ctx.input(0).dtype, std::nullopt);
    return;
  }
  const SymShape& q = *ctx.input(0).shape;
  const DType dt = ctx.input(0).dtype;
  const bool packed = !ctx.has_input(2);
  std::optional<SymShape> out;
  if (q.size() == 3 && packed) {
    const auto sizes = ctx.node.attr_ints("qkv_hidden_sizes", {});
    if (sizes.size() == 3) out = SymShape{q[0], q[1], Dim::known(sizes[2])};
  } else if (!packed && ctx.input(2).shape && ctx.input(2).shape->size() == q.size() && (q.size() == 3 || q.size() == 4)) {
    out = q;
    out->back() = ctx.input(2).shape->back();
  }
  ctx.set(0, dt, out);
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_FUSED_OP(Attention) {
  def.infer = attention_infer;
  def.reference = attention_kernel;
  def.cost = [](const Node&, const std::vector<Shape>& in, const std::vector<Shape>& out) {
    Cost c;
    c.bytes = bytes_moved(in, out);
    return c;
  };
}
