// The one decoder of deepep.Attention's layouts and mask (attention_geometry.h).
#include "ops/attention_geometry.h"

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "ops/op_util.h"

namespace deepep::ops {

AttentionGeometry attention_geometry(const KernelContext& ctx) {
  const Node& n = ctx.node;
  const Tensor& Q = ctx.input(0);
  AttentionGeometry g;
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
      DEEPEP_CHECK(nq >= 0 && nk >= 0 && nv >= 0, n.describe(), ": qkv_hidden_sizes must not be negative, got [", nq,
                   ", ", nk, ", ", nv, "]");
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

AttentionMaskMode attention_mask_mode(const Node& n) {
  const std::string m = n.attr_string("mask_mode", "add");
  if (m == "add") return AttentionMaskMode::kAdd;
  if (m == "keep") return AttentionMaskMode::kKeep;
  DEEPEP_CHECK(m == "drop", n.describe(), ": mask_mode must be 'add', 'keep' or 'drop', got '", m, "'");
  return AttentionMaskMode::kDrop;
}

AttentionMask attention_mask(const KernelContext& ctx, const AttentionGeometry& g) {
  const Node& n = ctx.node;
  AttentionMask am;
  am.mode = attention_mask_mode(n);
  am.fill = n.attr_float("mask_fill", -std::numeric_limits<float>::infinity());
  if (!ctx.has_input(3)) return am;
  const Tensor& mask = ctx.input(3);
  const bool add = am.mode == AttentionMaskMode::kAdd;
  DEEPEP_CHECK(add ? mask.dtype() == DType::kFloat32 : mask.dtype() == DType::kBool, n.describe(),
               ": a mask for mask_mode '", n.attr_string("mask_mode", "add"), "' must be ", add ? "float32" : "bool",
               ", got ", dtype_name(mask.dtype()));
  DEEPEP_CHECK(mask.rank() <= 4, n.describe(), ": mask must have rank <= 4, got ", shape_str(mask.shape()));
  const Shape target{g.B, g.H, g.Sq, g.Sk};
  Shape m4(4, 1);
  for (int i = 0; i < mask.rank(); ++i) m4[size_t(4 - mask.rank() + i)] = mask.dim(i);
  for (int i = 0; i < 4; ++i)
    DEEPEP_CHECK(m4[size_t(i)] == 1 || m4[size_t(i)] == target[size_t(i)], n.describe(), ": mask ",
                 shape_str(mask.shape()), " does not broadcast to [batch, heads, q, k] = ", shape_str(target));
  const std::vector<int64_t> st = broadcast_strides(m4, target);
  for (int i = 0; i < 4; ++i) am.strides[size_t(i)] = st[size_t(i)];
  am.mask = &mask;
  return am;
}

float* attention_output(KernelContext& ctx, const AttentionGeometry& g) {
  Tensor& y = ctx.output(0, DType::kFloat32, g.y);
  if (y.numel() == 0) return nullptr;
  float* py = y.data<float>();
  if (g.Sk == 0) {
    std::fill(py, py + y.numel(), 0.f);
    return nullptr;
  }
  return py;
}

}  // namespace deepep::ops
