// deepep.FusedMatMul: Y = epilogue(alpha * A x op(B) + bias, residual), made
// by the matmul_bias_activation_fusion pass from MatMul/Gemm + bias Add +
// activation + residual Add chains.
//   inputs:  A [..., M, K] (any rank >= 1; the batch dims fold into the rows),
//            B [K, N] (or [N, K] with trans_b = 1; a 2-D weight),
//            bias (optional, N values: [N] or [1, N]),
//            residual (optional, broadcasts into Y without enlarging it)
//   attrs:   trans_b (0), alpha (1.0), and the epilogue's (ops/fused_epilogue.h)
//   output:  Y [..., M, N] (A's batch dims; [N] for a 1-D A)
// float32 only (the pass fuses float32 chains). The GEMM is the blocked
// sgemm of gemm_util.h, split over threads into row (or column) strips; each
// strip runs its epilogue right after its GEMM, so the chain's separate
// passes over the output (bias, activation, residual) cost one pass here.
#include "ops/float_io.h"
#include "ops/fused_epilogue.h"
#include "ops/gemm_util.h"

namespace deepep::ops {
namespace {

struct Plan {
  int64_t M = 0, N = 0, K = 0;
  Shape out;
};

Plan plan(const Node& node, const Shape& as, const Shape& bs, bool tb) {
  DEEPEP_CHECK(!as.empty(), node.describe(), ": A must have rank >= 1");
  DEEPEP_CHECK(bs.size() == 2, node.describe(), ": B must be 2-D, got ", shape_str(bs));
  Plan p;
  p.K = as.back();
  const int64_t kb = tb ? bs[1] : bs[0];
  p.N = tb ? bs[0] : bs[1];
  DEEPEP_CHECK(kb == p.K, node.describe(), ": A ", shape_str(as), " and B ", shape_str(bs),
               (tb ? " (transposed)" : ""), " are not aligned (", p.K, " vs ", kb, ")");
  p.out = Shape(as.begin(), as.end() - 1);
  p.M = shape_numel(p.out);
  p.out.push_back(p.N);
  return p;
}

void fused_matmul_kernel(KernelContext& ctx) {
  const Node& node = ctx.node;
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  const bool tb = node.attr_int("trans_b", 0) != 0;
  const float alpha = node.attr_float("alpha", 1.f);
  const Epilogue epi = read_epilogue(node);
  DEEPEP_CHECK(a.dtype() == DType::kFloat32 && b.dtype() == DType::kFloat32, node.describe(),
               ": A and B must be float32, got ", dtype_name(a.dtype()), " and ", dtype_name(b.dtype()));
  const Plan p = plan(node, a.shape(), b.shape(), tb);
  const Tensor* bias = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  const Tensor* res = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  if (bias)
    DEEPEP_CHECK(bias->dtype() == DType::kFloat32 && bias->numel() == p.N &&
                     (bias->rank() == 1 || (bias->rank() == 2 && bias->dim(0) == 1)),
                 node.describe(), ": bias must be float32 [", p.N, "] or [1, ", p.N, "], got ",
                 dtype_name(bias->dtype()), shape_str(bias->shape()));
  if (res) {
    DEEPEP_CHECK(res->dtype() == DType::kFloat32, node.describe(), ": residual must be float32, got ",
                 dtype_name(res->dtype()));
    check_residual(node, res->shape(), p.out);
  }
  Tensor& y = ctx.output(0, DType::kFloat32, p.out);
  if (y.numel() == 0) return;
  const int64_t M = p.M, N = p.N, K = p.K;
  const float* A = a.data<float>();
  const float* B = b.data<float>();
  float* C = y.data<float>();
  const float* bp = bias ? bias->data<float>() : nullptr;
  const float* rp = res ? res->data<float>() : nullptr;
  const int64_t ldb = tb ? K : N;

  // Residual offsets: element (i, j) reads rp[row_off(i) + j * col_step].
  const bool res_full = res && res->numel() == y.numel();
  int64_t col_step = 1;
  std::vector<int64_t> row_off;
  if (res && !res_full) row_off = residual_row_offsets(res->shape(), p.out, M, col_step);

  // GEMM then epilogue on rows [r0, r1) x cols [c0, c1).
  auto block = [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1, int threads) {
    const float* Bs = tb ? B + c0 * ldb : B + c0;
    sgemm(false, tb, r1 - r0, c1 - c0, K, alpha, A + r0 * K, K, Bs, ldb, 0.f, C + r0 * N + c0, N, threads);
    if (!bp && !rp && epi.act == Act::kNone) return;
    with_activation(epi.act, [&]<Act Ac>() {
      for (int64_t i = r0; i < r1; ++i) {
        const float* r = nullptr;
        if (rp) r = rp + (res_full ? i * N : row_off[size_t(i)]) + c0 * col_step;
        epilogue_row<Ac>(C + i * N + c0, c1 - c0, bp ? bp + c0 : nullptr, 1, r, col_step, epi.residual_first,
                         epi.p0, epi.p1);
      }
    });
  };

  const double work = double(M) * double(N) * (double(K) + epilogue_work(epi.act));
  const int threads = threads_for_work(work);
  if (threads <= 1) {
    block(0, M, 0, N, 1);
    return;
  }
  // Strips of whole register tiles along the longer side, as sgemm splits.
  constexpr int64_t kTileM = 24, kTileN = 16;
  if (M / kTileM >= N / kTileN) {
    const int64_t tiles = (M + kTileM - 1) / kTileM;
    parallel_for(tiles, threads, [&](int64_t s, int64_t e) { block(s * kTileM, std::min(M, e * kTileM), 0, N, 1); });
  } else {
    const int64_t tiles = (N + kTileN - 1) / kTileN;
    parallel_for(tiles, threads, [&](int64_t s, int64_t e) { block(0, M, s * kTileN, std::min(N, e * kTileN), 1); });
  }
}

void fused_matmul_infer(InferContext& ctx) {
  if (!ctx.has_input(0)) return;
  const Value& a = ctx.input(0);
  std::optional<SymShape> shape;
  if (a.shape && !a.shape->empty() && ctx.has_input(1) && ctx.input(1).shape && ctx.input(1).shape->size() == 2) {
    const bool tb = ctx.node.attr_int("trans_b", 0) != 0;
    shape = SymShape(a.shape->begin(), a.shape->end() - 1);
    shape->push_back((*ctx.input(1).shape)[tb ? 0 : 1]);
  }
  ctx.set(0, a.dtype, shape);
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_FUSED_OP(FusedMatMul) {
  def.infer = fused_matmul_infer;
  def.reference = with_float32_compute(fused_matmul_kernel);
  def.cost = [](const Node&, const std::vector<Shape>& in, const std::vector<Shape>& out) {
    Cost c;
    c.bytes = bytes_moved(in, out);
    if (in.size() >= 2 && !in[0].empty() && !out.empty()) c.flops = 2.0 * double(shape_numel(out[0])) * double(in[0].back());
    return c;
  };
}
