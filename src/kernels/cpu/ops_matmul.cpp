// Fast CPU kernels of MatMul, Gemm and deepep.FusedMatMul on the packed GEMM
// (sgemm.h). Each one's `supports` admits only float32 forms it handles
// exactly like the reference (src/ops/matmul.cpp, gemm.cpp, fused_matmul.cpp);
// anything else (other dtypes, unusual broadcasts, bad shapes, whose errors
// the reference reports) runs the reference. A constant B (a weight) is
// packed once and cached by its storage.
#include <algorithm>

#include "deepep/error.h"
#include "kernels/cpu/register.h"
#include "kernels/cpu/sgemm.h"
#include "kernels/cpu/thread_pool.h"
#include "ops/fused_epilogue.h"
#include "ops/op_util.h"

namespace deepep::cpu {
namespace {

bool is_f32(const Tensor* t) { return t && t->dtype() == DType::kFloat32; }

// Input i's value, when it is a graph constant (initializer or folded).
bool is_constant_input(const KernelContext& ctx, int i) {
  return i < int(ctx.node.inputs.size()) && ctx.node.inputs[size_t(i)] && ctx.node.inputs[size_t(i)]->data;
}

// op(B) as an operand: packed once when B is a constant.
struct BOperand {
  Operand op;
  std::shared_ptr<const Packed> keep;
};
BOperand b_operand(Isa isa, const KernelContext& ctx, int idx, const Tensor& b, int64_t K, int64_t N, bool trans,
                   int64_t ldb) {
  BOperand r;
  if (is_constant_input(ctx, idx)) r.keep = cached_pack_b(isa, b, K, N, b.data<float>(), ldb, trans);
  if (r.keep) r.op.packed = r.keep.get();
  else r.op = Operand{b.data<float>(), ldb, trans, nullptr};
  return r;
}


// ---- MatMul ---------------------------------------------------------------

bool matmul_supports(const KernelContext& ctx) {
  if (ctx.num_inputs() != 2 || !is_f32(ctx.inputs[0]) || !is_f32(ctx.inputs[1])) return false;
  const Shape& a = ctx.inputs[0]->shape();
  const Shape& b = ctx.inputs[1]->shape();
  if (a.size() < 2 || b.size() < 2 || a.back() != b[b.size() - 2]) return false;
  if (b.size() == 2) return a[a.size() - 2] * shape_numel(Shape(a.begin(), a.end() - 2)) > 2 || is_constant_input(ctx, 1);
  // Batched B: batch dims must broadcast (numpy rule).
  const size_t nb = std::max(a.size(), b.size()) - 2;
  for (size_t d = 0; d < nb; ++d) {
    const int64_t da = d + a.size() >= nb + 2 ? a[d + a.size() - nb - 2] : 1;
    const int64_t db = d + b.size() >= nb + 2 ? b[d + b.size() - nb - 2] : 1;
    if (da != db && da != 1 && db != 1) return false;
  }
  return true;
}

void matmul_run(KernelContext& ctx) {
  const Isa isa = active_isa();
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  const Shape& as = a.shape();
  const Shape& bs = b.shape();
  const int64_t K = as.back(), N = bs.back(), M = as[as.size() - 2];
  if (bs.size() == 2) {
    Shape out(as.begin(), as.end() - 1);
    out.push_back(N);
    Tensor& y = ctx.output(0, DType::kFloat32, out);
    if (y.numel() == 0) return;
    const int64_t rows = y.numel() / N;
    BOperand bo = b_operand(isa, ctx, 1, b, K, N, false, N);
    gemm(isa, rows, N, K, Operand{a.data<float>(), K, false, nullptr}, bo.op, y.data<float>(), N, GemmEpi{});
    return;
  }
  const Shape ba(as.begin(), as.end() - 2), bb(bs.begin(), bs.end() - 2);
  const Shape batch = ops::broadcast_shapes(ba, bb, ctx.node);
  Shape out = batch;
  out.push_back(M);
  out.push_back(N);
  Tensor& y = ctx.output(0, DType::kFloat32, out);
  if (y.numel() == 0) return;
  const int64_t nbatch = shape_numel(batch);
  std::vector<int64_t> aoff(static_cast<size_t>(nbatch)), boff(static_cast<size_t>(nbatch));
  ops::for_each_broadcast<2>(batch, {ba, bb}, [&](int64_t i, const auto& off) {
    aoff[size_t(i)] = off[0] * M * K;
    boff[size_t(i)] = off[1] * K * N;
  });
  const float* A = a.data<float>();
  const float* B = b.data<float>();
  float* Y = y.data<float>();
  const double work = double(M) * double(N) * double(K);
  const int threads = threads_for(work * double(nbatch));
  // Many small products: one per chunk, each on one thread.
  const bool per_batch = nbatch > 1 && threads_for(work) < threads;
  if (K == 0 || M * N < 64) {
    // Too small for packing to pay: the reference's product.
    ThreadPool::global().parallel_for(nbatch, 1, threads, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i)
        for (int64_t r = 0; r < M; ++r)
          for (int64_t c = 0; c < N; ++c) {
            float acc = 0.f;
            for (int64_t k = 0; k < K; ++k) acc += A[aoff[size_t(i)] + r * K + k] * B[boff[size_t(i)] + k * N + c];
            Y[i * M * N + r * N + c] = acc;
          }
    });
    return;
  }
  ThreadPool::global().parallel_for(nbatch, 1, per_batch ? threads : 1, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i)
      gemm(isa, M, N, K, Operand{A + aoff[size_t(i)], K, false, nullptr}, Operand{B + boff[size_t(i)], N, false, nullptr},
           Y + i * M * N, N, GemmEpi{}, per_batch ? 1 : 0);
  });
}

// ---- Gemm -----------------------------------------------------------------

bool gemm_supports(const KernelContext& ctx) {
  if (ctx.num_inputs() < 2 || !is_f32(ctx.inputs[0]) || !is_f32(ctx.inputs[1])) return false;
  const Tensor& a = *ctx.inputs[0];
  const Tensor& b = *ctx.inputs[1];
  if (a.rank() != 2 || b.rank() != 2) return false;
  const bool ta = ctx.node.attr_int("transA", 0) != 0, tb = ctx.node.attr_int("transB", 0) != 0;
  const int64_t M = ta ? a.dim(1) : a.dim(0), K = ta ? a.dim(0) : a.dim(1);
  const int64_t KB = tb ? b.dim(1) : b.dim(0), N = tb ? b.dim(0) : b.dim(1);
  if (K != KB) return false;
  if (M <= 2 && !is_constant_input(ctx, 1)) return false;
  if (!ctx.has_input(2)) return true;
  const Tensor* c = ctx.inputs[2];
  if (!is_f32(c)) return false;
  const float beta = ctx.node.attr_float("beta", 1.f);
  if (beta == 0.f || c->numel() == 0) return true;
  const Shape& cs = c->shape();
  if (c->rank() == 1) return cs[0] == N;
  if (c->rank() == 2) {
    if (cs[0] == 1 && cs[1] == N) return true;   // bias per column
    if (cs[0] == M && cs[1] == 1) return true;   // bias per row
    if (cs[0] == M && cs[1] == N) return beta == 1.f;  // residual
  }
  return false;
}

// A node's attributes as run() uses them, read once per NodeCache.
struct GemmAttrs {
  bool ta, tb;
  float alpha, beta;
};
GemmAttrs gemm_attrs(const KernelContext& ctx) {
  return cached_plan<GemmAttrs>(ctx, [&] {
    const Node& n = ctx.node;
    return GemmAttrs{n.attr_int("transA", 0) != 0, n.attr_int("transB", 0) != 0, n.attr_float("alpha", 1.f),
                     n.attr_float("beta", 1.f)};
  });
}

void gemm_run(KernelContext& ctx) {
  const Isa isa = active_isa();
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  const auto [ta, tb, alpha, beta] = gemm_attrs(ctx);
  const int64_t M = ta ? a.dim(1) : a.dim(0), K = ta ? a.dim(0) : a.dim(1);
  const int64_t N = tb ? b.dim(0) : b.dim(1);
  Tensor& y = ctx.output(0, DType::kFloat32, Shape{M, N});
  if (y.numel() == 0) return;
  GemmEpi epi;
  epi.alpha = alpha;
  std::vector<float> scaled;
  const Tensor* c = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  if (c && beta != 0.f && c->numel() > 0) {
    const float* pc = c->data<float>();
    if (c->rank() == 2 && c->dim(0) == M && c->dim(1) == N && beta == 1.f) {
      epi.res = pc;  // C of the output's shape: a residual
      epi.res_ld = N;
    } else {
      // [N] / [1, N]: bias per column; [M, 1]: bias per row.
      const bool per_row = c->rank() == 2 && c->dim(1) == 1 && c->dim(0) == M;
      const int64_t n = per_row ? M : N;
      if (beta != 1.f) {
        scaled.assign(pc, pc + n);
        for (float& v : scaled) v *= beta;
        pc = scaled.data();
      }
      epi.bias = pc;
      epi.bias_per_row = per_row;
    }
  }
  BOperand bo = b_operand(isa, ctx, 1, b, K, N, tb, b.dim(1));
  gemm(isa, M, N, K, Operand{a.data<float>(), a.dim(1), ta, nullptr}, bo.op, y.data<float>(), N, epi);
}

// ---- deepep.FusedMatMul ---------------------------------------------------

bool fused_matmul_supports(const KernelContext& ctx) {
  if (ctx.num_inputs() < 2 || !is_f32(ctx.inputs[0]) || !is_f32(ctx.inputs[1])) return false;
  const Shape& as = ctx.inputs[0]->shape();
  const Shape& bs = ctx.inputs[1]->shape();
  if (as.size() < 2 || bs.size() != 2) return false;
  const bool tb = ctx.node.attr_int("trans_b", 0) != 0;
  const int64_t K = as.back(), KB = tb ? bs[1] : bs[0], N = tb ? bs[0] : bs[1];
  if (K != KB) return false;
  if (shape_numel(Shape(as.begin(), as.end() - 1)) <= 2 && !is_constant_input(ctx, 1)) return false;
  ops::Act act;
  if (!ops::act_from_name(ctx.node.attr_string("activation", ""), act)) return false;
  if (int(ctx.node.attr_floats("activation_params", {}).size()) != ops::act_param_count(act)) return false;
  if (ctx.has_input(2)) {
    const Tensor* bias = ctx.inputs[2];
    if (!is_f32(bias) || bias->numel() != N || !(bias->rank() == 1 || (bias->rank() == 2 && bias->dim(0) == 1)))
      return false;
  }
  if (ctx.has_input(3)) {
    const Tensor* res = ctx.inputs[3];
    if (!is_f32(res)) return false;
    Shape out(as.begin(), as.end() - 1);
    out.push_back(N);
    const Shape& rs = res->shape();
    if (rs.size() > out.size()) return false;
    for (size_t i = 0; i < rs.size(); ++i) {
      const int64_t d = rs[rs.size() - 1 - i], o = out[out.size() - 1 - i];
      if (d != o && d != 1) return false;
    }
  }
  return true;
}

struct FusedMatMulAttrs {
  bool tb;
  float alpha;
  ops::Epilogue e;
};

void fused_matmul_run(KernelContext& ctx) {
  const Isa isa = active_isa();
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  const auto [tb, alpha, e] = cached_plan<FusedMatMulAttrs>(ctx, [&] {
    return FusedMatMulAttrs{ctx.node.attr_int("trans_b", 0) != 0, ctx.node.attr_float("alpha", 1.f),
                            ops::read_epilogue(ctx.node)};
  });
  const int64_t K = a.shape().back(), N = tb ? b.dim(0) : b.dim(1);
  Shape out(a.shape().begin(), a.shape().end() - 1);
  out.push_back(N);
  Tensor& y = ctx.output(0, DType::kFloat32, out);
  if (y.numel() == 0) return;
  const int64_t M = y.numel() / N;
  GemmEpi epi;
  epi.alpha = alpha;
  epi.act = e.act;
  epi.p0 = e.p0;
  epi.p1 = e.p1;
  epi.res_first = e.residual_first;
  if (ctx.has_input(2)) epi.bias = ctx.input(2).data<float>();
  std::vector<int64_t> row_off;
  if (ctx.has_input(3)) {
    const Tensor& res = ctx.input(3);
    epi.res = res.data<float>();
    if (res.numel() == y.numel()) {
      epi.res_ld = N;
    } else {
      row_off = ops::residual_row_offsets(res.shape(), out, M, epi.res_col_step);
      epi.res_row_off = row_off.data();
    }
  }
  BOperand bo = b_operand(isa, ctx, 1, b, K, N, tb, tb ? K : N);
  gemm(isa, M, N, K, Operand{a.data<float>(), K, false, nullptr}, bo.op, y.data<float>(), N, epi);
}

}  // namespace

void register_matmul_kernels(OpTable& table) {
  add_fast_kernel(table, "MatMul", "cpu.packed_gemm", matmul_supports, matmul_run);
  add_fast_kernel(table, "Gemm", "cpu.packed_gemm", gemm_supports, gemm_run);
  add_fast_kernel(table, "deepep.FusedMatMul", "cpu.packed_gemm", fused_matmul_supports, fused_matmul_run);
}

}  // namespace deepep::cpu
