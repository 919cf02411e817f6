// Channel normalizations over X of shape [N, C, D1, ...]:
//   BatchNormalization   (inference; training_mode / extra outputs use batch statistics)
//   InstanceNormalization (per (n, c) over the spatial dims)
//   GroupNormalization    (per (n, group); scale/bias per group in opset 18, per channel in 21)
//   MeanVarianceNormalization (over `axes`, default [0, 2, 3])
// Statistics are computed in double and rounded once.
#include <cmath>

#include "ops/float_io.h"
#include "ops/op_util.h"

namespace deepep::ops {
namespace {



// [N, C, S] view of X.
struct NCS {
  int64_t n = 1, c = 1, s = 1;
};

NCS ncs_of(const KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  DEEPEP_CHECK(x.rank() >= 2, ctx.node.describe(), ": input must have rank >= 2 ([N, C, ...]), got shape ",
               shape_str(x.shape()));
  NCS v;
  v.n = x.dim(0);
  v.c = x.dim(1);
  for (int d = 2; d < x.rank(); ++d) v.s *= x.dim(d);
  return v;
}

void check_size(const KernelContext& ctx, int i, int64_t want, const char* name) {
  const Tensor& t = ctx.input(i);
  DEEPEP_CHECK(t.numel() == want, ctx.node.describe(), ": ", name, " has shape ", shape_str(t.shape()),
               ", expected ", want, " elements");
}

// Mean and (population) variance of each contiguous row of `cols` elements.
template <class T>
void row_stats(const T* in, int64_t rows, int64_t cols, std::vector<double>& mean, std::vector<double>& var) {
  mean.assign(size_t(rows), 0.0);
  var.assign(size_t(rows), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    const T* p = in + r * cols;
    double m = 0, v = 0;
    for (int64_t k = 0; k < cols; ++k) m += double(p[k]);
    m = cols ? m / double(cols) : 0.0;
    for (int64_t k = 0; k < cols; ++k) {
      double d = double(p[k]) - m;
      v += d * d;
    }
    mean[size_t(r)] = m;
    var[size_t(r)] = cols ? v / double(cols) : 0.0;
  }
}

// y[n, c, s] = (x - mean[c]) / sqrt(var[c] + eps) * scale[c] + bias[c]
template <class T>
void apply_channel_affine(const T* in, T* out, const NCS& d, const std::vector<double>& mean,
                          const std::vector<double>& var, const std::vector<double>& scale,
                          const std::vector<double>& bias, double eps) {
  for (int64_t c = 0; c < d.c; ++c) {
    const double a = scale[size_t(c)] / std::sqrt(var[size_t(c)] + eps);
    const double b = bias[size_t(c)] - mean[size_t(c)] * a;
    for (int64_t n = 0; n < d.n; ++n) {
      const int64_t base = (n * d.c + c) * d.s;
      for (int64_t s = 0; s < d.s; ++s) out[base + s] = T(double(in[base + s]) * a + b);
    }
  }
}

void run_batch_norm(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const NCS d = ncs_of(ctx);
  for (int i = 1; i <= 4; ++i) check_size(ctx, i, d.c, i == 1 ? "scale" : i == 2 ? "B" : i == 3 ? "input_mean" : "input_var");
  const double eps = ctx.node.attr_float("epsilon", 1e-5f);
  const double momentum = ctx.node.attr_float("momentum", 0.9f);
  int requested = 0;
  for (int k = 1; k < int(ctx.outputs.size()); ++k) requested += ctx.output_requested(k);
  // Opset 14+: the training_mode attribute. Before: training when the batch
  // statistics outputs are requested (and, in opset 6, is_test is not set).
  const bool modern = ctx.node.opset == 0 || ctx.node.opset >= 14 || ctx.node.has_attr("training_mode");
  const bool training = modern ? ctx.node.attr_int("training_mode", 0) != 0
                               : requested > 0 && ctx.node.attr_int("is_test", 0) == 0;
  const std::vector<double> scale = as_doubles(ctx.input(1), ctx.op());
  const std::vector<double> bias = as_doubles(ctx.input(2), ctx.op());
  std::vector<double> mean = as_doubles(ctx.input(3), ctx.op());
  std::vector<double> var = as_doubles(ctx.input(4), ctx.op());
  Tensor& y = ctx.output(0, x.dtype(), x.shape());
  dispatch_float(x.dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = x.data<T>();
    if (training) {
      // Batch statistics per channel over N and the spatial dims.
      std::vector<double> bm(size_t(d.c), 0.0), bv(size_t(d.c), 0.0);
      const double cnt = double(d.n * d.s);
      for (int64_t c = 0; c < d.c; ++c) {
        double m = 0, v = 0;
        for (int64_t n = 0; n < d.n; ++n)
          for (int64_t s = 0; s < d.s; ++s) m += double(in[(n * d.c + c) * d.s + s]);
        m = cnt > 0 ? m / cnt : 0.0;
        for (int64_t n = 0; n < d.n; ++n)
          for (int64_t s = 0; s < d.s; ++s) {
            double t = double(in[(n * d.c + c) * d.s + s]) - m;
            v += t * t;
          }
        bm[size_t(c)] = m;
        bv[size_t(c)] = cnt > 0 ? v / cnt : 0.0;
      }
      apply_channel_affine(in, y.data<T>(), d, bm, bv, scale, bias, eps);
      std::vector<double> run_mean(size_t(d.c)), run_var(size_t(d.c));
      for (size_t c = 0; c < size_t(d.c); ++c) {
        run_mean[c] = mean[c] * momentum + bm[c] * (1 - momentum);
        run_var[c] = var[c] * momentum + bv[c] * (1 - momentum);
      }
      const std::vector<double>* outs[] = {&run_mean, &run_var, &bm, &bv};
      for (int k = 1; k <= 4 && k < int(ctx.outputs.size()); ++k) {
        if (!ctx.output_requested(k)) continue;
        const Tensor& like = ctx.input(k <= 2 ? 2 + k : 3);
        store_doubles(ctx.output(k, like.dtype(), {d.c}), *outs[k - 1], ctx.op());
      }
    } else {
      apply_channel_affine(in, y.data<T>(), d, mean, var, scale, bias, eps);
      // Inference mode with extra outputs requested (old opsets with is_test):
      // pass the running statistics through.
      for (int k = 1; k <= 4 && k < int(ctx.outputs.size()); ++k) {
        if (!ctx.output_requested(k)) continue;
        const Tensor& src = ctx.input(k % 2 == 1 ? 3 : 4);
        ctx.set_output(k, src.clone());
      }
    }
  });
}

void infer_batch_norm(InferContext& ctx) {
  if (!ctx.has_input(0)) return;
  ctx.set(0, ctx.input(0).dtype, ctx.input(0).shape);
  for (size_t k = 1; k < ctx.outputs.size() && k <= 4; ++k) {
    const int src = k % 2 == 1 ? 3 : 4;
    if (ctx.has_input(src)) ctx.set(int(k), ctx.input(src).dtype, ctx.input(src).shape);
  }
}

void run_instance_norm(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const NCS d = ncs_of(ctx);
  check_size(ctx, 1, d.c, "scale");
  check_size(ctx, 2, d.c, "B");
  const double eps = ctx.node.attr_float("epsilon", 1e-5f);
  const std::vector<double> scale = as_doubles(ctx.input(1), ctx.op());
  const std::vector<double> bias = as_doubles(ctx.input(2), ctx.op());
  Tensor& y = ctx.output(0, x.dtype(), x.shape());
  dispatch_float(x.dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = x.data<T>();
    T* out = y.data<T>();
    std::vector<double> mean, var;
    row_stats(in, d.n * d.c, d.s, mean, var);
    for (int64_t r = 0; r < d.n * d.c; ++r) {
      const size_t c = size_t(r % d.c);
      const double a = scale[c] / std::sqrt(var[size_t(r)] + eps);
      const double b = bias[c] - mean[size_t(r)] * a;
      for (int64_t s = 0; s < d.s; ++s) out[r * d.s + s] = T(double(in[r * d.s + s]) * a + b);
    }
  });
}

void run_group_norm(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const NCS d = ncs_of(ctx);
  DEEPEP_CHECK(ctx.node.has_attr("num_groups"), ctx.node.describe(), ": attribute num_groups is required");
  const int64_t g = ctx.node.attr_int("num_groups", 1);
  DEEPEP_CHECK(g > 0 && d.c % g == 0, ctx.node.describe(), ": num_groups ", g,
               " does not divide the channel count ", d.c);
  const double eps = ctx.node.attr_float("epsilon", 1e-5f);
  const Tensor& st = ctx.input(1);
  const Tensor& bt = ctx.input(2);
  // Opset 18 has one scale/bias per group, opset 21 one per channel; the size
  // decides when it is unambiguous.
  bool per_channel = ctx.node.opset == 0 || ctx.node.opset >= 21;
  if (st.numel() != (per_channel ? d.c : g) && st.numel() == (per_channel ? g : d.c)) per_channel = !per_channel;
  const int64_t want = per_channel ? d.c : g;
  check_size(ctx, 1, want, "scale");
  check_size(ctx, 2, want, "bias");
  const std::vector<double> scale = as_doubles(st, ctx.op());
  const std::vector<double> bias = as_doubles(bt, ctx.op());
  Tensor& y = ctx.output(0, x.dtype(), x.shape());
  dispatch_float(x.dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = x.data<T>();
    T* out = y.data<T>();
    const int64_t cpg = d.c / g;
    std::vector<double> mean, var;
    row_stats(in, d.n * g, cpg * d.s, mean, var);
    for (int64_t n = 0; n < d.n; ++n)
      for (int64_t c = 0; c < d.c; ++c) {
        const size_t r = size_t(n * g + c / cpg);
        const size_t p = size_t(per_channel ? c : c / cpg);
        const double a = scale[p] / std::sqrt(var[r] + eps);
        const double b = bias[p] - mean[r] * a;
        const int64_t base = (n * d.c + c) * d.s;
        for (int64_t s = 0; s < d.s; ++s) out[base + s] = T(double(in[base + s]) * a + b);
      }
  });
}

void run_mvn(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t rank = x.rank();
  std::vector<int64_t> axes = ctx.node.attr_ints("axes", {0, 2, 3});
  Shape keep = x.shape();
  int64_t cnt = 1;
  std::vector<bool> red(size_t(rank), false);
  for (int64_t a : axes) {
    const int64_t ax = normalize_axis(a, rank, ctx.node);
    if (red[size_t(ax)]) continue;
    red[size_t(ax)] = true;
    cnt *= keep[size_t(ax)];
    keep[size_t(ax)] = 1;
  }
  Tensor& y = ctx.output(0, x.dtype(), x.shape());
  if (x.numel() == 0) return;
  dispatch_float(x.dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = x.data<T>();
    T* out = y.data<T>();
    const size_t m = size_t(shape_numel(keep));
    std::vector<double> mean(m, 0.0), var(m, 0.0);
    for_each_broadcast<1>(x.shape(), {keep}, [&](int64_t i, const auto& o) { mean[size_t(o[0])] += double(in[i]); });
    for (double& v : mean) v /= double(cnt);
    for_each_broadcast<1>(x.shape(), {keep}, [&](int64_t i, const auto& o) {
      const double t = double(in[i]) - mean[size_t(o[0])];
      var[size_t(o[0])] += t * t;
    });
    for (double& v : var) v = std::sqrt(v / double(cnt)) + 1e-9;
    for_each_broadcast<1>(x.shape(), {keep}, [&](int64_t i, const auto& o) {
      out[i] = T((double(in[i]) - mean[size_t(o[0])]) / var[size_t(o[0])]);
    });
  });
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(BatchNormalization) {
  def.infer = infer_batch_norm;
  def.reference = run_batch_norm;
}
DEEPEP_DEFINE_OP(InstanceNormalization) {
  def.infer = infer_same_as_input;
  def.reference = run_instance_norm;
}
DEEPEP_DEFINE_OP(GroupNormalization) {
  def.infer = infer_same_as_input;
  def.reference = run_group_norm;
}
DEEPEP_DEFINE_OP(MeanVarianceNormalization) {
  def.infer = infer_same_as_input;
  def.reference = run_mvn;
}
