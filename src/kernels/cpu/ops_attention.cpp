// Fast CPU kernel of deepep.Attention (reference: src/ops/fused_attention.cpp,
// the oracle). Per (batch, head, block of query rows): the scores Q K^T by the
// packed GEMM (sgemm.h) into a per-thread buffer, then one vectorized pass per
// row (scale, mask, max; exp and sum; normalize: row_kernels.h), then P V by
// the GEMM straight into Y. Jobs (batch x head x row block) run on the pool,
// each GEMM on its own thread. `supports` admits the float32 layouts the
// reference defines with valid shapes and attributes; anything else runs the
// reference, which reports the errors.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "deepep/error.h"
#include "kernels/cpu/register.h"
#include "kernels/cpu/row_kernels.h"
#include "kernels/cpu/sgemm.h"
#include "kernels/cpu/thread_pool.h"

namespace deepep::cpu {
namespace {

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
  RowMask mode = RowMask::kNone;
  float scale = 1.f, fill = 0.f;
  const Tensor* mask = nullptr;
  int64_t ms[4] = {0, 0, 0, 0};  // mask strides over [B, H, Sq, Sk]
};

bool is_f32(const Tensor* t) { return t && t->dtype() == DType::kFloat32; }

// The geometry, or false when the reference should run (unsupported or
// invalid: the reference reports those).
bool geometry(const KernelContext& ctx, Geometry& g) {
  const Node& n = ctx.node;
  if (!ctx.has_input(0) || !is_f32(ctx.inputs[0]) || !n.has_attr("scale")) return false;
  const Tensor& Q = *ctx.inputs[0];
  const bool packed = !ctx.has_input(1) && !ctx.has_input(2);
  if (!packed && !(ctx.has_input(1) && ctx.has_input(2))) return false;
  if (!packed && (!is_f32(ctx.inputs[1]) || !is_f32(ctx.inputs[2]))) return false;
  if (Q.rank() == 3) {
    g.H = n.attr_int("num_heads", 0);
    if (g.H <= 0) return false;
    g.B = Q.dim(0);
    g.Sq = Q.dim(1);
    int64_t nq, nk, nv, ldq, ldk, ldv, sbq, sbk, sbv;
    const float *pq = Q.data<float>(), *pk, *pv;
    if (packed) {
      const std::vector<int64_t> sizes = n.attr_ints("qkv_hidden_sizes", {});
      if (sizes.size() != 3 || sizes[0] < 0 || sizes[1] < 0 || sizes[2] < 0) return false;
      nq = sizes[0], nk = sizes[1], nv = sizes[2];
      if (nq + nk + nv != Q.dim(2)) return false;
      g.Sk = g.Sq;
      ldq = ldk = ldv = Q.dim(2);
      sbq = sbk = sbv = g.Sq * Q.dim(2);
      pk = pq + nq;
      pv = pq + nq + nk;
    } else {
      const Tensor& K = *ctx.inputs[1];
      const Tensor& V = *ctx.inputs[2];
      if (K.rank() != 3 || V.rank() != 3) return false;
      if (K.dim(0) != g.B || V.dim(0) != g.B || K.dim(1) != V.dim(1)) return false;
      nq = Q.dim(2), nk = K.dim(2), nv = V.dim(2);
      g.Sk = K.dim(1);
      ldq = nq, ldk = nk, ldv = nv;
      sbq = g.Sq * nq, sbk = g.Sk * nk, sbv = g.Sk * nv;
      pk = K.data<float>();
      pv = V.data<float>();
    }
    if (nq % g.H != 0 || nk % g.H != 0 || nv % g.H != 0 || nq != nk) return false;
    g.D = nq / g.H;
    g.Dv = nv / g.H;
    g.q = {pq, sbq, g.D, ldq};
    g.k = {pk, sbk, g.D, ldk};
    g.v = {pv, sbv, g.Dv, ldv};
    g.y = {g.B, g.Sq, nv};
    g.ysb = g.Sq * nv, g.ysh = g.Dv, g.yld = nv;
  } else {
    if (Q.rank() != 4 || packed) return false;
    const Tensor& K = *ctx.inputs[1];
    const Tensor& V = *ctx.inputs[2];
    g.kt = n.attr_int("k_transposed", 0) != 0;
    if (K.rank() != 4 || V.rank() != 4) return false;
    g.B = Q.dim(0), g.H = Q.dim(1), g.Sq = Q.dim(2), g.D = Q.dim(3);
    g.Sk = V.dim(2), g.Dv = V.dim(3);
    const Shape kwant = g.kt ? Shape{g.B, g.H, g.D, g.Sk} : Shape{g.B, g.H, g.Sk, g.D};
    if (K.shape() != kwant || V.dim(0) != g.B || V.dim(1) != g.H) return false;
    g.q = {Q.data<float>(), g.H * g.Sq * g.D, g.Sq * g.D, g.D};
    g.k = {K.data<float>(), g.H * g.Sk * g.D, g.Sk * g.D, g.kt ? g.Sk : g.D};
    g.v = {V.data<float>(), g.H * g.Sk * g.Dv, g.Sk * g.Dv, g.Dv};
    g.y = {g.B, g.H, g.Sq, g.Dv};
    g.ysb = g.H * g.Sq * g.Dv, g.ysh = g.Sq * g.Dv, g.yld = g.Dv;
  }
  g.scale = n.attr_float("scale", 1.f);
  g.fill = n.attr_float("mask_fill", -std::numeric_limits<float>::infinity());
  const std::string mode = n.attr_string("mask_mode", "add");
  RowMask mm;
  if (mode == "add") mm = RowMask::kAdd;
  else if (mode == "keep") mm = RowMask::kKeep;
  else if (mode == "drop") mm = RowMask::kDrop;
  else return false;
  if (ctx.has_input(3)) {
    const Tensor& m = *ctx.inputs[3];
    if (m.dtype() != (mm == RowMask::kAdd ? DType::kFloat32 : DType::kBool) || m.rank() > 4) return false;
    const int64_t target[4] = {g.B, g.H, g.Sq, g.Sk};
    int64_t m4[4] = {1, 1, 1, 1};
    for (int i = 0; i < m.rank(); ++i) m4[4 - m.rank() + i] = m.dim(i);
    int64_t stride = 1;
    for (int i = 3; i >= 0; --i) {
      if (m4[i] != 1 && m4[i] != target[i]) return false;
      g.ms[i] = m4[i] == 1 ? 0 : stride;
      stride *= m4[i];
    }
    g.mask = &m;
    g.mode = mm;
  }
  return true;
}

bool attention_supports(const KernelContext& ctx) {
  try {
    Geometry g;
    return geometry(ctx, g);
  } catch (const Error&) {
    return false;  // malformed attributes: the reference reports them
  }
}

void attention_run(KernelContext& ctx) {
  const Isa isa = active_isa();
  const RowKernels* rk = row_kernels_of(isa);
  Geometry g;
  DEEPEP_CHECK(rk && geometry(ctx, g), ctx.node.describe(), ": fast attention kernel called on unsupported input");
  Tensor& y = ctx.output(0, DType::kFloat32, g.y);
  if (y.numel() == 0) return;
  float* py = y.data<float>();
  if (g.Sk == 0) {  // softmax over nothing: the chain's MatMul gives zeros
    std::fill(py, py + y.numel(), 0.f);
    return;
  }
  // Query rows per job: the score block (rows x Sk) stays in L2.
  const int64_t rows_max = std::clamp<int64_t>(32768 / g.Sk, 8, 256);
  const int64_t chunks = (g.Sq + rows_max - 1) / rows_max;
  const int64_t kRows = (g.Sq + chunks - 1) / chunks;
  const int64_t jobs = g.B * g.H * chunks;
  const double work = double(g.B * g.H) * double(g.Sq) * double(g.Sk) * double(g.D + g.Dv + 8);
  const float* mask_f = g.mask && g.mode == RowMask::kAdd ? g.mask->data<float>() : nullptr;
  const bool* mask_b = g.mask && g.mode != RowMask::kAdd ? g.mask->data<bool>() : nullptr;
  ThreadPool::global().parallel_for(jobs, 1, threads_for(work), [&](int64_t j0, int64_t j1) {
    thread_local std::vector<float> sbuf;
    if (int64_t(sbuf.size()) < kRows * g.Sk) sbuf.resize(size_t(kRows * g.Sk));
    float* s = sbuf.data();
    for (int64_t job = j0; job < j1; ++job) {
      const int64_t c = job % chunks, bh = job / chunks, b = bh / g.H, h = bh % g.H;
      const int64_t r0 = c * kRows, rows = std::min(kRows, g.Sq - r0);
      if (rows <= 0) continue;
      const float* q = g.q.at(b, h) + r0 * g.q.ld;
      // S = Q K^T: K is [Sk, D] (op(B) = K^T: B given as N x K, transposed) or [D, Sk].
      gemm(isa, rows, g.Sk, g.D, Operand{q, g.q.ld, false, nullptr}, Operand{g.k.at(b, h), g.k.ld, !g.kt, nullptr}, s,
           g.Sk, GemmEpi{}, 1);
      SoftmaxRowArgs a;
      a.scale = g.scale;
      a.mode = g.mode;
      a.fill = g.fill;
      a.mstep = g.ms[3];
      for (int64_t i = 0; i < rows; ++i) {
        if (g.mask) {
          const int64_t mo = b * g.ms[0] + h * g.ms[1] + (r0 + i) * g.ms[2];
          a.mask = mask_f ? static_cast<const void*>(mask_f + mo) : static_cast<const void*>(mask_b + mo);
        }
        rk->softmax_row(s + i * g.Sk, g.Sk, a);
      }
      float* yo = py + b * g.ysb + h * g.ysh + r0 * g.yld;
      gemm(isa, rows, g.Dv, g.Sk, Operand{s, g.Sk, false, nullptr}, Operand{g.v.at(b, h), g.v.ld, false, nullptr}, yo,
           g.yld, GemmEpi{}, 1);
    }
  });
}

}  // namespace

void register_attention_kernels(OpTable& table) {
  add_fast_kernel(table, "deepep.Attention", "cpu.attention", attention_supports, attention_run);
}

}  // namespace deepep::cpu
