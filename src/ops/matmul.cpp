// MatMul (numpy semantics: 1-D operands, broadcast batch dims), MatMulInteger
// and QLinearMatMul. float32 (and float16/bfloat16 through float) runs the
// blocked GEMM: a batched A times an unbatched B is one tall GEMM, many small
// batched products run one per thread. Other types use the plain GEMM.
#include <cmath>

#include "ops/gemm_util.h"

namespace deepep::ops {
namespace {

struct MatMulPlan {
  int64_t M = 0, N = 0, K = 0;
  int64_t batch = 1;
  Shape out;
  std::vector<int64_t> a_off, b_off;  // element offsets of each batch's A and B
  bool fold = false;                  // one GEMM of (batch*M) rows
};

MatMulPlan plan_matmul(const Node& node, const Shape& as, const Shape& bs) {
  DEEPEP_CHECK(!as.empty() && !bs.empty(), node.describe(), ": operands must have rank >= 1, got ",
               shape_str(as), " and ", shape_str(bs));
  Shape a = as, b = bs;
  const bool vec_a = a.size() == 1, vec_b = b.size() == 1;
  if (vec_a) a.insert(a.begin(), 1);
  if (vec_b) b.push_back(1);
  MatMulPlan p;
  p.M = a[a.size() - 2];
  p.K = a.back();
  p.N = b.back();
  DEEPEP_CHECK(b[b.size() - 2] == p.K, node.describe(), ": shapes ", shape_str(as), " and ",
               shape_str(bs), " are not aligned for a matrix product (", p.K, " vs ", b[b.size() - 2], ")");
  const Shape ba(a.begin(), a.end() - 2), bb(b.begin(), b.end() - 2);
  const Shape batch = broadcast_shapes(ba, bb, node);
  p.out = batch;
  if (!vec_a) p.out.push_back(p.M);
  if (!vec_b) p.out.push_back(p.N);
  p.batch = shape_numel(batch);
  p.fold = shape_numel(bb) == 1 && shape_numel(ba) == p.batch;
  if (!p.fold && p.batch > 0) {
    p.a_off.resize(size_t(p.batch));
    p.b_off.resize(size_t(p.batch));
    const int64_t asz = p.M * p.K, bsz = p.K * p.N;
    for_each_broadcast<2>(batch, {ba, bb}, [&](int64_t i, const auto& off) {
      p.a_off[i] = off[0] * asz;
      p.b_off[i] = off[1] * bsz;
    });
  }
  return p;
}

// Y = A x B in float under a plan.
void matmul_f32(const MatMulPlan& p, const float* a, const float* b, float* y) {
  if (p.batch == 0 || p.M == 0 || p.N == 0) return;
  if (p.fold) {
    sgemm(false, false, p.batch * p.M, p.N, p.K, 1.f, a, p.K, b, p.N, 0.f, y, p.N);
    return;
  }
  const double work = double(p.M) * double(p.N) * double(p.K);
  const int total = threads_for_work(work * double(p.batch));
  const bool split = p.batch > 1 && threads_for_work(work) < total;
  parallel_for(p.batch, split ? total : 1, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i)
      sgemm(false, false, p.M, p.N, p.K, 1.f, a + p.a_off[i], p.K, b + p.b_off[i], p.N, 0.f,
            y + i * p.M * p.N, p.N, split ? 1 : 0);
  });
}

// Y = A x B with the plain GEMM (accumulating in Acc), stored as TY.
template <class Acc, class TA, class TB, class TY>
void matmul_generic(const MatMulPlan& p, const TA* a, const TB* b, TY* y) {
  if (p.batch == 0) return;
  for (int64_t i = 0; i < (p.fold ? 1 : p.batch); ++i) {
    const int64_t rows = p.fold ? p.batch * p.M : p.M;
    TY* yi = y + i * p.M * p.N;
    gemm_generic<Acc>(false, false, rows, p.N, p.K, a + (p.fold ? 0 : p.a_off[i]), p.K,
                      b + (p.fold ? 0 : p.b_off[i]), p.N,
                      [&](int64_t r, int64_t c, auto v) { yi[r * p.N + c] = TY(v); });
  }
}

std::optional<SymShape> matmul_sym_shape(const InferContext& ctx, int ia, int ib) {
  if (!ctx.has_input(ia) || !ctx.has_input(ib) || !ctx.input(ia).shape || !ctx.input(ib).shape)
    return std::nullopt;
  SymShape a = *ctx.input(ia).shape, b = *ctx.input(ib).shape;
  if (a.empty() || b.empty()) return std::nullopt;
  const bool vec_a = a.size() == 1, vec_b = b.size() == 1;
  if (vec_a) a.insert(a.begin(), Dim::known(1));
  if (vec_b) b.push_back(Dim::known(1));
  SymShape out = broadcast_sym(SymShape(a.begin(), a.end() - 2), SymShape(b.begin(), b.end() - 2));
  if (!vec_a) out.push_back(a[a.size() - 2]);
  if (!vec_b) out.push_back(b.back());
  return out;
}

void matmul_kernel(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  DEEPEP_CHECK(a.dtype() == b.dtype(), ctx.node.describe(), ": input dtypes differ (",
               dtype_name(a.dtype()), " vs ", dtype_name(b.dtype()), ")");
  const MatMulPlan p = plan_matmul(ctx.node, a.shape(), b.shape());
  Tensor& y = ctx.output(0, a.dtype(), p.out);
  if (y.numel() == 0) return;
  dispatch_numeric(a.dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, float>) {
      matmul_f32(p, a.data<float>(), b.data<float>(), y.data<float>());
    } else if constexpr (std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>) {
      std::vector<float> fa = to_float_vec(a.data<T>(), a.numel());
      std::vector<float> fb = to_float_vec(b.data<T>(), b.numel());
      std::vector<float> fy(static_cast<size_t>(y.numel()));
      matmul_f32(p, fa.data(), fb.data(), fy.data());
      T* py = y.data<T>();
      for (int64_t i = 0; i < y.numel(); ++i) py[i] = T(fy[i]);
    } else {
      matmul_generic<acc_t<T>>(p, a.data<T>(), b.data<T>(), y.data<T>());
    }
  });
}

// A quantized operand as int32 minus its zero point: a scalar, or one value
// per row (A: along M) or per column (B: along N) of the matrix dims.
std::vector<int32_t> centered_operand(const Tensor& t, const Tensor* zp, bool per_col, const Node& node,
                                      const char* what) {
  std::vector<int32_t> out(static_cast<size_t>(t.numel()));
  DEEPEP_CHECK(t.dtype() == DType::kInt8 || t.dtype() == DType::kUInt8, node.describe(), ": ", what,
               " must be int8 or uint8, got ", dtype_name(t.dtype()));
  const Shape& s = t.shape();
  const int64_t cols = s.back();
  const int64_t rows = s.size() >= 2 ? s[s.size() - 2] : 1;
  int64_t zn = 1;
  if (zp) {
    DEEPEP_CHECK(zp->dtype() == t.dtype(), node.describe(), ": ", what, " zero point has dtype ",
                 dtype_name(zp->dtype()), ", expected ", dtype_name(t.dtype()));
    zn = zp->numel();
    DEEPEP_CHECK(zn == 1 || zn == (per_col ? cols : rows), node.describe(), ": ", what,
                 " zero point must be a scalar or have one value per ", per_col ? "column" : "row",
                 ", got ", shape_str(zp->shape()));
  }
  auto get = [&](const Tensor& x, int64_t i) -> int32_t {
    return x.dtype() == DType::kInt8 ? int32_t(x.data<int8_t>()[i]) : int32_t(x.data<uint8_t>()[i]);
  };
  for (int64_t i = 0, n = t.numel(); i < n; ++i) {
    int32_t z = 0;
    if (zp) z = zn == 1 ? get(*zp, 0) : get(*zp, per_col ? i % cols : (i / cols) % rows);
    out[i] = get(t, i) - z;
  }
  return out;
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(MatMul) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0)) return;
    ctx.set(0, ctx.input(0).dtype, matmul_sym_shape(ctx, 0, 1));
  };
  def.reference = matmul_kernel;
  def.cost = [](const Node&, const std::vector<Shape>& in, const std::vector<Shape>& out) {
    Cost c;
    c.bytes = bytes_moved(in, out);
    if (in.size() >= 2 && !in[0].empty() && !out.empty())
      c.flops = 2.0 * double(shape_numel(out[0])) * double(in[0].back());
    return c;
  };
}

DEEPEP_DEFINE_OP(MatMulInteger) {
  def.infer = [](InferContext& ctx) { ctx.set(0, DType::kInt32, matmul_sym_shape(ctx, 0, 1)); };
  def.reference = [](KernelContext& ctx) {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    const MatMulPlan p = plan_matmul(ctx.node, a.shape(), b.shape());
    std::vector<int32_t> ai = centered_operand(a, ctx.has_input(2) ? &ctx.input(2) : nullptr, false,
                                               ctx.node, "A");
    std::vector<int32_t> bi = centered_operand(b, ctx.has_input(3) ? &ctx.input(3) : nullptr, true,
                                               ctx.node, "B");
    Tensor& y = ctx.output(0, DType::kInt32, p.out);
    if (y.numel() > 0) matmul_generic<int64_t>(p, ai.data(), bi.data(), y.data<int32_t>());
  };
}

namespace {
// One scale value as float, rounded like the scale's own dtype.
struct Scale {
  const Tensor* t;
  float at(int64_t i) const { return float(t->get_double(t->numel() == 1 ? 0 : i)); }
};
}  // namespace

DEEPEP_DEFINE_OP(QLinearMatMul) {
  def.infer = [](InferContext& ctx) {
    DType dt = ctx.has_input(7) ? ctx.input(7).dtype : ctx.has_input(0) ? ctx.input(0).dtype : DType::kUndefined;
    ctx.set(0, dt, matmul_sym_shape(ctx, 0, 3));
  };
  def.reference = [](KernelContext& ctx) {
    const Node& node = ctx.node;
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(3);
    const Tensor& as = ctx.input(1);
    const Tensor& bs = ctx.input(4);
    const Tensor& ys = ctx.input(6);
    const Tensor* yzp = ctx.has_input(7) ? &ctx.input(7) : nullptr;
    const MatMulPlan p = plan_matmul(node, a.shape(), b.shape());
    const DType sdt = as.dtype();
    DEEPEP_CHECK(dtype_is_float(sdt) && bs.dtype() == sdt && ys.dtype() == sdt, node.describe(),
                 ": scales must share one float dtype");
    DEEPEP_CHECK(as.numel() == 1 || as.numel() == p.M, node.describe(),
                 ": a_scale must be a scalar or per row of A");
    DEEPEP_CHECK(bs.numel() == 1 || bs.numel() == p.N, node.describe(),
                 ": b_scale must be a scalar or per column of B");
    DEEPEP_CHECK(ys.numel() == 1, node.describe(), ": y_scale must be a scalar");
    std::vector<int32_t> ai = centered_operand(a, &ctx.input(2), false, node, "A");
    std::vector<int32_t> bi = centered_operand(b, &ctx.input(5), true, node, "B");
    std::vector<int32_t> acc(static_cast<size_t>(shape_numel(p.out)));
    if (!acc.empty()) matmul_generic<int64_t>(p, ai.data(), bi.data(), acc.data());
    const DType out_dt = yzp ? yzp->dtype() : a.dtype();
    DEEPEP_CHECK(out_dt == DType::kInt8 || out_dt == DType::kUInt8, node.describe(),
                 ": output must be int8 or uint8");
    const double lo = out_dt == DType::kInt8 ? -128 : 0, hi = out_dt == DType::kInt8 ? 127 : 255;
    const double zp = yzp ? yzp->get_double(0) : 0.0;
    Tensor& y = ctx.output(0, out_dt, p.out);
    const Scale sa{&as}, sb{&bs}, sy{&ys};
    // The combined scale, rounded after each step in the scales' dtype.
    auto round_s = [&](float v) -> float {
      if (sdt == DType::kFloat16) return float(float16(v));
      if (sdt == DType::kBFloat16) return float(bfloat16(v));
      return v;
    };
    const bool f64 = sdt == DType::kFloat64;
    for (int64_t i = 0, n = y.numel(); i < n; ++i) {
      const int64_t col = i % std::max<int64_t>(p.N, 1);
      const int64_t row = (i / std::max<int64_t>(p.N, 1)) % std::max<int64_t>(p.M, 1);
      double scale;
      if (f64) scale = as.get_double(as.numel() == 1 ? 0 : row) * bs.get_double(bs.numel() == 1 ? 0 : col) /
                       ys.get_double(0);
      else scale = round_s(round_s(sa.at(row) * sb.at(col)) / sy.at(0));
      const double r = std::clamp(std::nearbyint(double(acc[i]) * scale + zp), lo, hi);
      if (out_dt == DType::kInt8) y.data<int8_t>()[i] = int8_t(r);
      else y.data<uint8_t>()[i] = uint8_t(r);
    }
  };
}
