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
#include "ops/attention_geometry.h"

namespace deepep::cpu {
namespace {

// The shared decoding (ops/attention_geometry.h) plus what the row pass needs.
struct Geometry : ops::AttentionGeometry {
  RowMask mode = RowMask::kNone;
  float scale = 1.f, fill = 0.f;
  const Tensor* mask = nullptr;
  int64_t ms[4] = {0, 0, 0, 0};  // mask strides over [B, H, Sq, Sk]
};

// The geometry, or false when the reference should run (unsupported or
// invalid: the reference reports those).
bool geometry(const KernelContext& ctx, Geometry& g) {
  const Node& n = ctx.node;
  if (!ctx.has_input(0) || !n.has_attr("scale")) return false;
  ops::AttentionMask am;
  try {
    static_cast<ops::AttentionGeometry&>(g) = ops::attention_geometry(ctx);
    am = ops::attention_mask(ctx, g);
    g.scale = n.attr_float("scale", 1.f);
  } catch (const Error&) {
    return false;  // invalid inputs or attributes: the reference reports them
  }
  g.fill = am.fill;
  if (am.mask) {
    g.mask = am.mask;
    g.mode = am.mode == ops::AttentionMaskMode::kAdd    ? RowMask::kAdd
             : am.mode == ops::AttentionMaskMode::kKeep ? RowMask::kKeep
                                                        : RowMask::kDrop;
    for (int i = 0; i < 4; ++i) g.ms[i] = am.strides[size_t(i)];
  }
  return true;
}

bool attention_supports(const KernelContext& ctx) {
  Geometry g;
  return geometry(ctx, g);
}

void attention_run(KernelContext& ctx) {
  const Isa isa = active_isa();
  const RowKernels* rk = row_kernels_of(isa);
  Geometry g;
  DEEPEP_CHECK(rk && geometry(ctx, g), ctx.node.describe(), ": fast attention kernel called on unsupported input");
  float* py = ops::attention_output(ctx, g);
  if (!py) return;
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
