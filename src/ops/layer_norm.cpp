// LayerNormalization and RMSNormalization: normalize over the trailing dims
// X.shape[axis:] (axis default -1), then scale (and shift) with inputs that
// broadcast to those dims. Statistics are computed in double; LayerNorm's
// optional Mean / InvStdDev outputs (shape X.shape[:axis] + 1s) have the
// stash_type dtype (float32 by default).
#include <cmath>

#include "ops/float_io.h"
#include "ops/op_util.h"

namespace deepep::ops {
namespace {


void check_broadcasts_into(const Tensor& p, const Shape& x, const KernelContext& ctx, const char* name) {
  bool ok = p.rank() <= int(x.size());
  for (int i = 0; ok && i < p.rank(); ++i) {
    int64_t d = p.dim(p.rank() - 1 - i), xd = x[x.size() - 1 - size_t(i)];
    ok = d == xd || d == 1;
  }
  DEEPEP_CHECK(ok, ctx.node.describe(), ": ", name, " of shape ", shape_str(p.shape()),
               " does not broadcast to the input shape ", shape_str(x));
}

// rows x cols view of X split at `axis`.
struct Split {
  int64_t axis = 0, rows = 1, cols = 1;
};

Split split_at_axis(const KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  Split s;
  const int64_t rank = x.rank();
  s.axis = normalize_axis(ctx.node.attr_int("axis", -1), rank, ctx.node);
  for (int64_t d = 0; d < rank; ++d) (d < s.axis ? s.rows : s.cols) *= x.dim(int(d));
  return s;
}

void run_norm(KernelContext& ctx, bool rms) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  const bool has_b = !rms && ctx.has_input(2);
  const double eps = ctx.node.attr_float("epsilon", 1e-5f);
  const Split sp = split_at_axis(ctx);
  check_broadcasts_into(w, x.shape(), ctx, "Scale");
  if (has_b) check_broadcasts_into(ctx.input(2), x.shape(), ctx, "B");
  const std::vector<double> wv = as_doubles(w, ctx.op());
  const std::vector<double> bv = has_b ? as_doubles(ctx.input(2), ctx.op()) : std::vector<double>{0.0};
  const Shape b_shape = has_b ? ctx.input(2).shape() : Shape{};

  Tensor& y = ctx.output(0, x.dtype(), x.shape());
  std::vector<double> mean(size_t(sp.rows), 0.0), inv(size_t(sp.rows), 0.0);
  dispatch_float(x.dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = x.data<T>();
    T* out = y.data<T>();
    for (int64_t r = 0; r < sp.rows; ++r) {
      const T* row = in + r * sp.cols;
      double m = 0, v = 0;
      if (!rms) {
        for (int64_t c = 0; c < sp.cols; ++c) m += double(row[c]);
        m /= double(sp.cols);
      }
      for (int64_t c = 0; c < sp.cols; ++c) {
        double d = double(row[c]) - m;
        v += d * d;
      }
      v /= double(sp.cols);
      mean[size_t(r)] = m;
      inv[size_t(r)] = 1.0 / std::sqrt(v + eps);
    }
    for_each_broadcast<2>(x.shape(), {w.shape(), b_shape}, [&](int64_t i, const auto& off) {
      const size_t r = sp.cols ? size_t(i / sp.cols) : 0;
      out[i] = T((double(in[i]) - mean[r]) * inv[r] * wv[size_t(off[0])] + bv[size_t(off[1])]);
    });
  });
  if (rms) return;
  const DType st = DType(ctx.node.attr_int("stash_type", 1));
  DEEPEP_CHECK(st == DType::kFloat32 || st == DType::kFloat64 || st == DType::kFloat16 ||
                   st == DType::kBFloat16,
               ctx.node.describe(), ": stash_type ", int(st), " is not a float type");
  Shape stat_shape = x.shape();
  for (int64_t d = sp.axis; d < x.rank(); ++d) stat_shape[size_t(d)] = 1;
  for (int k = 1; k <= 2; ++k) {
    if (!ctx.output_requested(k)) continue;
    Tensor& t = ctx.output(k, st, stat_shape);
    const std::vector<double>& src = k == 1 ? mean : inv;
    dispatch_float(st, ctx.op(), [&](auto tag) {
      using U = typename decltype(tag)::type;
      U* p = t.data<U>();
      for (size_t i = 0; i < src.size(); ++i) p[i] = U(src[i]);
    });
  }
}

void infer_norm(InferContext& ctx) {
  if (!ctx.has_input(0)) return;
  const Value& x = ctx.input(0);
  ctx.set(0, x.dtype, x.shape);
  if (ctx.outputs.size() < 2) return;
  const DType st = DType(ctx.node.attr_int("stash_type", 1));
  std::optional<SymShape> s;
  if (x.shape) {
    const int64_t rank = int64_t(x.shape->size());
    const int64_t axis = normalize_axis(ctx.node.attr_int("axis", -1), rank, ctx.node);
    s = *x.shape;
    for (int64_t d = axis; d < rank; ++d) (*s)[size_t(d)] = Dim::known(1);
  }
  for (size_t k = 1; k < ctx.outputs.size() && k <= 2; ++k) ctx.set(int(k), st, s);
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(LayerNormalization) {
  def.infer = infer_norm;
  def.reference = [](KernelContext& ctx) { run_norm(ctx, false); };
}
DEEPEP_DEFINE_OP(RMSNormalization) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) { run_norm(ctx, true); };
}
