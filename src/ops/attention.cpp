// Attention (ONNX opset 23/24): scaled dot-product attention over 3-D
// (batch, seq, heads*head_size) or 4-D (batch, heads, seq, head_size) inputs,
// with grouped-query heads, boolean or additive masks, causal masking, softcap,
// a KV cache (past_* inputs, present_* outputs), per-sample KV padding
// (nonpad_kv_seqlen) and the optional qk_matmul_output.
//
// Computation runs in double: Q*K^T*scale, softcap, + bias, softmax, *V.
#include <cmath>
#include <limits>

#include "ops/float_io.h"
#include "ops/op_util.h"

namespace deepep::ops {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();



struct Dims {
  bool is3d = false;
  int64_t B = 0, Hq = 0, Hkv = 0, Sq = 0, Skv = 0, Dq = 0, Dk = 0, Dv = 0, P = 0;
};

Dims attention_dims(const KernelContext& ctx) {
  const Node& n = ctx.node;
  const Tensor& Q = ctx.input(0);
  const Tensor& K = ctx.input(1);
  const Tensor& V = ctx.input(2);
  DEEPEP_CHECK(Q.rank() == K.rank() && K.rank() == V.rank() && (Q.rank() == 3 || Q.rank() == 4),
               n.describe(), ": Q, K and V must all be 3-D or all 4-D (got ", shape_str(Q.shape()),
               ", ", shape_str(K.shape()), ", ", shape_str(V.shape()), ")");
  Dims d;
  d.is3d = Q.rank() == 3;
  d.B = Q.dim(0);
  if (d.is3d) {
    d.Hq = n.attr_int("q_num_heads", 0);
    d.Hkv = n.attr_int("kv_num_heads", 0);
    DEEPEP_CHECK(d.Hq > 0 && d.Hkv > 0, n.describe(),
                 ": 3-D inputs need positive q_num_heads and kv_num_heads attributes");
    d.Sq = Q.dim(1);
    d.Skv = K.dim(1);
    DEEPEP_CHECK(Q.dim(2) % d.Hq == 0 && K.dim(2) % d.Hkv == 0 && V.dim(2) % d.Hkv == 0,
                 n.describe(), ": hidden sizes (", Q.dim(2), ", ", K.dim(2), ", ", V.dim(2),
                 ") are not divisible by the head counts (", d.Hq, ", ", d.Hkv, ")");
    d.Dq = Q.dim(2) / d.Hq;
    d.Dk = K.dim(2) / d.Hkv;
    d.Dv = V.dim(2) / d.Hkv;
    DEEPEP_CHECK(V.dim(1) == d.Skv, n.describe(), ": K and V sequence lengths differ (", d.Skv,
                 " vs ", V.dim(1), ")");
  } else {
    d.Hq = Q.dim(1);
    d.Sq = Q.dim(2);
    d.Dq = Q.dim(3);
    d.Hkv = K.dim(1);
    d.Skv = K.dim(2);
    d.Dk = K.dim(3);
    d.Dv = V.dim(3);
    DEEPEP_CHECK(V.dim(1) == d.Hkv && V.dim(2) == d.Skv, n.describe(), ": K ", shape_str(K.shape()),
                 " and V ", shape_str(V.shape()), " disagree on heads or sequence length");
  }
  DEEPEP_CHECK(K.dim(0) == d.B && V.dim(0) == d.B, n.describe(), ": Q, K and V batch sizes differ");
  DEEPEP_CHECK(d.Dq == d.Dk, n.describe(), ": Q head size ", d.Dq, " differs from K head size ", d.Dk);
  DEEPEP_CHECK(d.Hkv > 0 && d.Hq % d.Hkv == 0, n.describe(), ": q_num_heads ", d.Hq,
               " is not a multiple of kv_num_heads ", d.Hkv);
  DEEPEP_CHECK(ctx.has_input(4) == ctx.has_input(5), n.describe(),
               ": past_key and past_value must be given together");
  if (ctx.has_input(4)) {
    const Tensor& pk = ctx.input(4);
    const Tensor& pv = ctx.input(5);
    DEEPEP_CHECK(pk.rank() == 4 && pv.rank() == 4 && pk.dim(0) == d.B && pk.dim(1) == d.Hkv &&
                     pk.dim(3) == d.Dk && pv.dim(0) == d.B && pv.dim(1) == d.Hkv &&
                     pv.dim(2) == pk.dim(2) && pv.dim(3) == d.Dv,
                 n.describe(), ": past_key ", shape_str(pk.shape()), " / past_value ",
                 shape_str(pv.shape()), " do not match (batch, kv_heads, past, head_size) = (", d.B,
                 ", ", d.Hkv, ", *, ", d.Dk, "/", d.Dv, ")");
    d.P = pk.dim(2);
  }
  return d;
}

// Copies past (B,H,P,D) then new (3-D (B,S,H*D) or 4-D (B,H,S,D)) into (B,H,P+S,D).
std::vector<double> concat_cache(const std::vector<double>* past, const std::vector<double>& cur,
                                 const Dims& d, int64_t D) {
  const int64_t T = d.P + d.Skv;
  std::vector<double> out(size_t(d.B * d.Hkv * T * D));
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.Hkv; ++h) {
      double* dst = &out[size_t(((b * d.Hkv + h) * T) * D)];
      if (past)
        for (int64_t s = 0; s < d.P * D; ++s) dst[s] = (*past)[size_t((b * d.Hkv + h) * d.P * D + s)];
      for (int64_t s = 0; s < d.Skv; ++s)
        for (int64_t k = 0; k < D; ++k) {
          size_t src = d.is3d ? size_t((b * d.Skv + s) * d.Hkv * D + h * D + k)
                              : size_t(((b * d.Hkv + h) * d.Skv + s) * D + k);
          dst[(d.P + s) * D + k] = cur[src];
        }
    }
  return out;
}

void run_attention(KernelContext& ctx) {
  const Node& n = ctx.node;
  const Tensor& Q = ctx.input(0);
  const Tensor& K = ctx.input(1);
  const Tensor& V = ctx.input(2);
  // Q (and Y, qk_matmul_output) are T1; K, V and the caches are T2.
  DEEPEP_CHECK(K.dtype() == V.dtype(), n.describe(), ": K and V dtypes differ");
  const Dims d = attention_dims(ctx);
  const int64_t T = d.P + d.Skv;
  const DType dt = Q.dtype();
  const DType kvt = K.dtype();

  std::vector<double> q = as_doubles(Q, ctx.op());
  std::vector<double> k_cur = as_doubles(K, ctx.op());
  std::vector<double> v_cur = as_doubles(V, ctx.op());
  std::vector<double> pk, pv;
  if (ctx.has_input(4)) {
    DEEPEP_CHECK(ctx.input(4).dtype() == kvt && ctx.input(5).dtype() == kvt, n.describe(),
                 ": past_key/past_value dtype differs from K");
    pk = as_doubles(ctx.input(4), ctx.op());
    pv = as_doubles(ctx.input(5), ctx.op());
  }
  std::vector<double> kk = concat_cache(ctx.has_input(4) ? &pk : nullptr, k_cur, d, d.Dk);
  std::vector<double> vv = concat_cache(ctx.has_input(5) ? &pv : nullptr, v_cur, d, d.Dv);

  // Mask, broadcast (numpy-style, right-aligned) to (B, Hq, Sq, T); its last
  // dim may be shorter than T, the rest counts as masked out.
  const Tensor* mask = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  std::array<int64_t, 4> mstride{0, 0, 0, 0};
  int64_t mlen = 0;
  std::vector<double> mvals;
  if (mask) {
    DEEPEP_CHECK(mask->rank() >= 1 && mask->rank() <= 4, n.describe(), ": attn_mask must have rank 1 to 4, got ",
                 shape_str(mask->shape()));
    DEEPEP_CHECK(mask->dtype() == DType::kBool || dtype_size(mask->dtype()) > 0, n.describe(),
                 ": unsupported attn_mask dtype ", dtype_name(mask->dtype()));
    Shape ms(4, 1);
    for (int i = 0; i < mask->rank(); ++i) ms[4 - mask->rank() + i] = mask->dim(i);
    const std::array<int64_t, 3> target{d.B, d.Hq, d.Sq};
    for (int i = 0; i < 3; ++i)
      DEEPEP_CHECK(ms[i] == 1 || ms[i] == target[i], n.describe(), ": attn_mask ",
                   shape_str(mask->shape()), " does not broadcast to (", d.B, ", ", d.Hq, ", ", d.Sq,
                   ", ", T, ")");
    mlen = ms[3];
    DEEPEP_CHECK(mlen <= T, n.describe(), ": attn_mask's last dim ", mlen,
                 " exceeds the total sequence length ", T);
    auto st = strides_of(ms);
    for (int i = 0; i < 3; ++i) mstride[i] = ms[i] == 1 ? 0 : st[i];
    mstride[3] = 1;
    mvals.resize(size_t(mask->numel()));
    if (mask->dtype() == DType::kBool) {
      const bool* p = mask->data<bool>();
      for (size_t i = 0; i < mvals.size(); ++i) mvals[i] = p[i] ? 0.0 : kNegInf;
    } else {
      // An additive mask (the spec's float mask; other numeric types add as numbers).
      for (size_t i = 0; i < mvals.size(); ++i) mvals[i] = mask->get_double(int64_t(i));
    }
  }
  const bool causal = n.attr_int("is_causal", 0) != 0;
  std::vector<int64_t> nonpad;
  if (ctx.has_input(6)) {
    nonpad = ctx.input(6).to_int_vector();
    DEEPEP_CHECK(int64_t(nonpad.size()) == d.B, n.describe(), ": nonpad_kv_seqlen has ", nonpad.size(),
                 " entries, expected batch size ", d.B);
  }

  const double scale = n.has_attr("scale") ? double(n.attr_float("scale", 1.0f))
                                           : 1.0 / std::sqrt(double(d.Dq));
  const double softcap = n.attr_float("softcap", 0.0f);
  const int64_t mode = n.attr_int("qk_matmul_output_mode", 0);
  DEEPEP_CHECK(mode >= 0 && mode <= 3, n.describe(), ": qk_matmul_output_mode must be 0..3, got ", mode);
  const int64_t group = d.Hq / d.Hkv;

  Shape yshape = d.is3d ? Shape{d.B, d.Sq, d.Hq * d.Dv} : Shape{d.B, d.Hq, d.Sq, d.Dv};
  std::vector<double> y(size_t(shape_numel(yshape)));
  const bool want_qk = ctx.output_requested(3);
  std::vector<double> qk_out(want_qk ? size_t(d.B * d.Hq * d.Sq * T) : 0);
  std::vector<double> s(static_cast<size_t>(T)), raw(s), capped(s);

  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.Hq; ++h) {
      const int64_t hk = h / group;
      const double* kb = &kk[size_t((b * d.Hkv + hk) * T * d.Dk)];
      const double* vb = &vv[size_t((b * d.Hkv + hk) * T * d.Dv)];
      for (int64_t i = 0; i < d.Sq; ++i) {
        const size_t qoff = d.is3d ? size_t((b * d.Sq + i) * d.Hq * d.Dq + h * d.Dq)
                                   : size_t(((b * d.Hq + h) * d.Sq + i) * d.Dq);
        const double* qi = &q[qoff];
        double mx = kNegInf;
        for (int64_t j = 0; j < T; ++j) {
          double acc = 0;
          const double* kj = kb + j * d.Dk;
          for (int64_t c = 0; c < d.Dq; ++c) acc += qi[c] * kj[c];
          raw[j] = acc * scale;
          double v = raw[j];
          if (softcap > 0) v = softcap * std::tanh(v / softcap);
          capped[j] = v;
          double bias = 0;
          if (mask) {
            if (j < mlen)
              bias += mvals[size_t(b * mstride[0] + h * mstride[1] + i * mstride[2] + j)];
            else
              bias = kNegInf;
          }
          if (causal && j > i + d.P) bias = kNegInf;
          if (!nonpad.empty() && j >= nonpad[size_t(b)]) bias = kNegInf;
          s[j] = v + bias;
          mx = std::max(mx, s[j]);
        }
        double* qo = want_qk ? &qk_out[size_t(((b * d.Hq + h) * d.Sq + i) * T)] : nullptr;
        if (qo && mode == 0) std::copy(raw.begin(), raw.end(), qo);
        if (qo && mode == 1) std::copy(capped.begin(), capped.end(), qo);
        if (qo && mode == 2) std::copy(s.begin(), s.end(), qo);
        double sum = 0;
        for (int64_t j = 0; j < T; ++j) {
          s[j] = std::exp(s[j] - mx);
          sum += s[j];
        }
        for (int64_t j = 0; j < T; ++j) s[j] /= sum;
        if (qo && mode == 3) std::copy(s.begin(), s.end(), qo);
        const size_t yoff = d.is3d ? size_t((b * d.Sq + i) * d.Hq * d.Dv + h * d.Dv)
                                   : size_t(((b * d.Hq + h) * d.Sq + i) * d.Dv);
        for (int64_t c = 0; c < d.Dv; ++c) {
          double acc = 0;
          for (int64_t j = 0; j < T; ++j) acc += s[j] * vb[j * d.Dv + c];
          y[yoff + c] = acc;
        }
      }
    }

  store_doubles(ctx.output(0, dt, yshape), y, ctx.op());
  if (ctx.output_requested(1)) store_doubles(ctx.output(1, kvt, {d.B, d.Hkv, T, d.Dk}), kk, ctx.op());
  if (ctx.output_requested(2)) store_doubles(ctx.output(2, kvt, {d.B, d.Hkv, T, d.Dv}), vv, ctx.op());
  if (want_qk) store_doubles(ctx.output(3, dt, {d.B, d.Hq, d.Sq, T}), qk_out, ctx.op());
}

Dim div_dim(const Dim& a, int64_t k) {
  if (a.is_known() && k > 0 && a.value % k == 0) return Dim::known(a.value / k);
  return Dim{};
}
Dim mul_dim(const Dim& a, int64_t k) { return a.is_known() ? Dim::known(a.value * k) : Dim{}; }
Dim add_dims(const Dim& a, const Dim& b) {
  if (a.is_known() && b.is_known()) return Dim::known(a.value + b.value);
  if (a.is_known() && a.value == 0) return b;
  if (b.is_known() && b.value == 0) return a;
  return Dim{};
}

void infer_attention(InferContext& ctx) {
  if (!ctx.has_input(0)) return;
  const Node& n = ctx.node;
  const DType dt = ctx.input(0).dtype;
  const DType kvt = ctx.has_input(1) ? ctx.input(1).dtype : dt;
  for (size_t i = 0; i < ctx.outputs.size() && i < 4; ++i) ctx.set(int(i), i == 1 || i == 2 ? kvt : dt, std::nullopt);
  if (!ctx.has_input(1) || !ctx.has_input(2)) return;
  const auto& qs = ctx.input(0).shape;
  const auto& ks = ctx.input(1).shape;
  const auto& vs = ctx.input(2).shape;
  if (!qs || !ks || !vs || qs->size() != ks->size() || qs->size() != vs->size()) return;
  const bool is3d = qs->size() == 3;
  if (!is3d && qs->size() != 4) return;
  Dim B = (*qs)[0], Hq, Hkv, Sq, Skv, Dk, Dv;
  int64_t hq = 0, hkv = 0;
  if (is3d) {
    hq = n.attr_int("q_num_heads", 0);
    hkv = n.attr_int("kv_num_heads", 0);
    if (hq <= 0 || hkv <= 0) return;
    Hq = Dim::known(hq);
    Hkv = Dim::known(hkv);
    Sq = (*qs)[1];
    Skv = (*ks)[1];
    Dk = div_dim((*ks)[2], hkv);
    Dv = div_dim((*vs)[2], hkv);
  } else {
    Hq = (*qs)[1];
    Sq = (*qs)[2];
    Hkv = (*ks)[1];
    Skv = (*ks)[2];
    Dk = (*ks)[3];
    Dv = (*vs)[3];
  }
  Dim P = Dim::known(0);
  if (ctx.has_input(4)) {
    const auto& ps = ctx.input(4).shape;
    P = ps && ps->size() == 4 ? (*ps)[2] : Dim{};
  }
  const Dim Tot = add_dims(P, Skv);
  if (is3d)
    ctx.set(0, dt, SymShape{B, Sq, Dv.is_known() ? mul_dim(Dv, hq) : Dim{}});
  else
    ctx.set(0, dt, SymShape{B, Hq, Sq, Dv});
  if (ctx.outputs.size() > 1) ctx.set(1, kvt, SymShape{B, Hkv, Tot, Dk});
  if (ctx.outputs.size() > 2) ctx.set(2, kvt, SymShape{B, Hkv, Tot, Dv});
  if (ctx.outputs.size() > 3) ctx.set(3, dt, SymShape{B, Hq, Sq, Tot});
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(Attention) {
  def.infer = infer_attention;
  def.reference = run_attention;
}
