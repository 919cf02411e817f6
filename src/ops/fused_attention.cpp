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

#include "ops/gemm_util.h"

namespace deepep::ops {
namespace {

enum class MaskMode { kAdd, kKeep, kDrop };

struct View {
  const float* p = nullptr;
  int64_t sb = 0, sh = 0, ld = 0;  // batch and head offsets, row stride
  const float* at(int64_t b, int64_t h) const { return p + b * sb + h * sh; }
};

struct Geometry {
  int64_t B = 0, H = 0, Sq = 0, Sk = 0, D = 0, Dv = 0;
  bool kt = false;  // K viewed as [D, Sk]
  View q, k, v;
  Shape y;
  int64_t ysb = 0, ysh = 0, yld = 0;
};

Geometry geometry(const KernelContext& ctx) {
  const Node& n = ctx.node;
  const Tensor& Q = ctx.input(0);
  Geometry g;
  const bool packed = !ctx.has_input(1) && !ctx.has_input(2);
  DEEPEP_CHECK(packed || (ctx.has_input(1) && ctx.has_input(2)), n.describe(),
               ": K and V must be given together (or both omitted for packed QKV)");
  auto f32 = [&](const Tensor& t, const char* what) {
    DEEPEP_CHECK(t.dtype() == DType::kFloat32, n.describe(), ": ", what, " must be float32, got ", dtype_name(t.dtype()));
  };
  f32(Q, "Q");
  if (Q.rank() == 3) {
    g.H = n.attr_int("num_heads", 0);
    DEEPEP_CHECK(g.H > 0, n.describe(), ": 3-D inputs need a positive num_heads attribute");
    g.B = Q.dim(0);
    g.Sq = Q.dim(1);
    int64_t nq, nk, nv, ldq, ldk, ldv, sbq, sbk, sbv;
    const float *pq = Q.data<float>(), *pk, *pv;
    if (packed) {
      const std::vector<int64_t> sizes = n.attr_ints("qkv_hidden_sizes", {});
      DEEPEP_CHECK(sizes.size() == 3, n.describe(), ": packed QKV needs qkv_hidden_sizes = [Nq, Nk, Nv]");
      nq = sizes[0], nk = sizes[1], nv = sizes[2];
      DEEPEP_CHECK(nq + nk + nv == Q.dim(2), n.describe(), ": qkv_hidden_sizes sum to ", nq + nk + nv,
                   ", packed QKV has ", Q.dim(2));
      g.Sk = g.Sq;
      ldq = ldk = ldv = Q.dim(2);
      sbq = sbk = sbv = g.Sq * Q.dim(2);
      pk = pq + nq;
      pv = pq + nq + nk;
    } else {
      const Tensor& K = ctx.input(1);
      const Tensor& V = ctx.input(2);
      f32(K, "K");
      f32(V, "V");
      DEEPEP_CHECK(K.rank() == 3 && V.rank() == 3, n.describe(), ": Q is 3-D, so K and V must be too (got ",
                   shape_str(K.shape()), ", ", shape_str(V.shape()), ")");
      DEEPEP_CHECK(K.dim(0) == g.B && V.dim(0) == g.B && K.dim(1) == V.dim(1), n.describe(), ": Q ",
                   shape_str(Q.shape()), ", K ", shape_str(K.shape()), " and V ", shape_str(V.shape()),
                   " disagree on batch or sequence length");
      nq = Q.dim(2), nk = K.dim(2), nv = V.dim(2);
      g.Sk = K.dim(1);
      ldq = nq, ldk = nk, ldv = nv;
      sbq = g.Sq * nq, sbk = g.Sk * nk, sbv = g.Sk * nv;
      pk = K.data<float>();
      pv = V.data<float>();
    }
    DEEPEP_CHECK(nq % g.H == 0 && nk % g.H == 0 && nv % g.H == 0 && nq == nk, n.describe(),
                 ": hidden sizes Q ", nq, ", K ", nk, ", V ", nv, " do not split into ", g.H, " equal heads");
    g.D = nq / g.H;
    g.Dv = nv / g.H;
    g.q = {pq, sbq, g.D, ldq};
    g.k = {pk, sbk, g.D, ldk};
    g.v = {pv, sbv, g.Dv, ldv};
    g.y = {g.B, g.Sq, nv};
    g.ysb = g.Sq * nv, g.ysh = g.Dv, g.yld = nv;
    return g;
  }
  DEEPEP_CHECK(Q.rank() == 4 && !packed, n.describe(), ": Q must be 3-D [B, S, H*D] or 4-D [B, H, S, D] (packed QKV: 3-D), got ",
               shape_str(Q.shape()));
  const Tensor& K = ctx.input(1);
  const Tensor& V = ctx.input(2);
  f32(K, "K");
  f32(V, "V");
  g.kt = n.attr_int("k_transposed", 0) != 0;
  DEEPEP_CHECK(K.rank() == 4 && V.rank() == 4, n.describe(), ": Q is 4-D, so K and V must be too");
  g.B = Q.dim(0), g.H = Q.dim(1), g.Sq = Q.dim(2), g.D = Q.dim(3);
  g.Sk = V.dim(2), g.Dv = V.dim(3);
  const Shape kwant = g.kt ? Shape{g.B, g.H, g.D, g.Sk} : Shape{g.B, g.H, g.Sk, g.D};
  DEEPEP_CHECK(K.shape() == kwant && V.dim(0) == g.B && V.dim(1) == g.H, n.describe(), ": Q ", shape_str(Q.shape()),
               ", K ", shape_str(K.shape()), (g.kt ? " (transposed)" : ""), " and V ", shape_str(V.shape()),
               " do not match");
  g.q = {Q.data<float>(), g.H * g.Sq * g.D, g.Sq * g.D, g.D};
  g.k = {K.data<float>(), g.H * g.Sk * g.D, g.Sk * g.D, g.kt ? g.Sk : g.D};
  g.v = {V.data<float>(), g.H * g.Sk * g.Dv, g.Sk * g.Dv, g.Dv};
  g.y = {g.B, g.H, g.Sq, g.Dv};
  g.ysb = g.H * g.Sq * g.Dv, g.ysh = g.Sq * g.Dv, g.yld = g.Dv;
  return g;
}

MaskMode mask_mode(const Node& n) {
  const std::string m = n.attr_string("mask_mode", "add");
  if (m == "add") return MaskMode::kAdd;
  if (m == "keep") return MaskMode::kKeep;
  DEEPEP_CHECK(m == "drop", n.describe(), ": mask_mode must be 'add', 'keep' or 'drop', got '", m, "'");
  return MaskMode::kDrop;
}

void attention_kernel(KernelContext& ctx) {
  const Node& n = ctx.node;
  const Geometry g = geometry(ctx);
  DEEPEP_CHECK(n.has_attr("scale"), n.describe(), ": the scale attribute is required");
  const float scale = n.attr_float("scale", 1.f);
  const MaskMode mode = mask_mode(n);
  const float fill = n.attr_float("mask_fill", -std::numeric_limits<float>::infinity());
  const Tensor* mask = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  std::array<int64_t, 4> ms{0, 0, 0, 0};
  if (mask) {
    DEEPEP_CHECK(mode == MaskMode::kAdd ? mask->dtype() == DType::kFloat32 : mask->dtype() == DType::kBool,
                 n.describe(), ": a mask for mask_mode '", n.attr_string("mask_mode", "add"), "' must be ",
                 mode == MaskMode::kAdd ? "float32" : "bool", ", got ", dtype_name(mask->dtype()));
    DEEPEP_CHECK(mask->rank() <= 4, n.describe(), ": mask must have rank <= 4, got ", shape_str(mask->shape()));
    const Shape target{g.B, g.H, g.Sq, g.Sk};
    Shape m4(4, 1);
    for (int i = 0; i < mask->rank(); ++i) m4[size_t(4 - mask->rank() + i)] = mask->dim(i);
    for (int i = 0; i < 4; ++i)
      DEEPEP_CHECK(m4[size_t(i)] == 1 || m4[size_t(i)] == target[size_t(i)], n.describe(), ": mask ",
                   shape_str(mask->shape()), " does not broadcast to [batch, heads, q, k] = ", shape_str(target));
    const std::vector<int64_t> st = broadcast_strides(m4, target);
    for (int i = 0; i < 4; ++i) ms[size_t(i)] = st[size_t(i)];
  }
  Tensor& y = ctx.output(0, DType::kFloat32, g.y);
  if (y.numel() == 0) return;
  float* py = y.data<float>();
  if (g.Sk == 0) {  // softmax over nothing: the chain's MatMul gives zeros
    std::fill(py, py + y.numel(), 0.f);
    return;
  }
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
          if (mode == MaskMode::kAdd) {
            const float* m = mask->data<float>() + mo;
            for (int64_t j = 0; j < g.Sk; ++j) row[j] += m[j * ms[3]];
          } else {
            const bool* m = mask->data<bool>() + mo;
            const bool keep = mode == MaskMode::kKeep;
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
