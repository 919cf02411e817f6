// Variadic elementwise ops (Max, Min, Sum, Mean): any number of inputs, all
// broadcast together numpy-style.
#include <cmath>
#include <vector>

#include "ops/op_util.h"

namespace deepep::ops {
namespace {

// Folds every input into an accumulator of type Acc (per output element) with
// `combine(acc, T)`, then writes out[i] = finish(acc[i]).
template <class T, class Acc, class Combine, class Finish>
void fold_inputs(KernelContext& ctx, Combine combine, Finish finish) {
  Shape shape = ctx.input(0).shape();
  for (int i = 1; i < ctx.num_inputs(); ++i)
    shape = broadcast_shapes(shape, ctx.input(i).shape(), ctx.node);
  Tensor& y = ctx.output(0, ctx.input(0).dtype(), shape);
  const int64_t n = y.numel();
  std::vector<Acc> acc(static_cast<size_t>(n));
  for (int k = 0; k < ctx.num_inputs(); ++k) {
    const Tensor& x = ctx.input(k);
    const T* px = x.data<T>();
    if (k == 0) {
      for_each_broadcast<1>(shape, {x.shape()}, [&](int64_t i, const auto& off) { acc[i] = Acc(px[off[0]]); });
    } else if (x.shape() == shape) {
      for (int64_t i = 0; i < n; ++i) acc[i] = combine(acc[i], px[i]);
    } else {
      for_each_broadcast<1>(shape, {x.shape()},
                            [&](int64_t i, const auto& off) { acc[i] = combine(acc[i], px[off[0]]); });
    }
  }
  T* out = y.data<T>();
  for (int64_t i = 0; i < n; ++i) out[i] = finish(acc[i]);
}

void check_inputs(const KernelContext& ctx) {
  DEEPEP_CHECK(ctx.num_inputs() >= 1 && ctx.has_input(0), ctx.node.describe(), ": needs at least one input");
  for (int i = 1; i < ctx.num_inputs(); ++i)
    DEEPEP_CHECK(ctx.input(i).dtype() == ctx.input(0).dtype(), ctx.node.describe(), ": input ", i,
                 " has dtype ", dtype_name(ctx.input(i).dtype()), ", expected ",
                 dtype_name(ctx.input(0).dtype()));
}

// Max/Min; NaN propagates (numpy.maximum/minimum).
template <bool kMax>
void extremum(KernelContext& ctx) {
  check_inputs(ctx);
  dispatch_numeric(ctx.input(0).dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (is_floating_v<T>) {
      using C = std::conditional_t<std::is_same_v<T, double>, double, float>;
      fold_inputs<T, C>(
          ctx,
          [](C a, T x) {
            const C v = C(x);
            if (std::isnan(a) || std::isnan(v)) return std::isnan(a) ? a : v;
            return kMax ? (v > a ? v : a) : (v < a ? v : a);
          },
          [](C a) { return T(a); });
    } else {
      fold_inputs<T, T>(
          ctx, [](T a, T x) { return kMax ? (x > a ? x : a) : (x < a ? x : a); }, [](T a) { return a; });
    }
  });
}

// Sum/Mean accumulate in double.
void sum_mean(KernelContext& ctx, bool mean) {
  check_inputs(ctx);
  const double count = double(ctx.num_inputs());
  dispatch_float(ctx.input(0).dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (mean) {
      fold_inputs<T, double>(
          ctx, [](double a, T x) { return a + double(x); }, [=](double a) { return T(a / count); });
    } else {
      fold_inputs<T, double>(ctx, [](double a, T x) { return a + double(x); }, [](double a) { return T(a); });
    }
  });
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(Max) {
  def.infer = infer_broadcast;
  def.reference = [](KernelContext& ctx) { extremum<true>(ctx); };
}

DEEPEP_DEFINE_OP(Min) {
  def.infer = infer_broadcast;
  def.reference = [](KernelContext& ctx) { extremum<false>(ctx); };
}

DEEPEP_DEFINE_OP(Sum) {
  def.infer = infer_broadcast;
  def.reference = [](KernelContext& ctx) { sum_mean(ctx, false); };
}

DEEPEP_DEFINE_OP(Mean) {
  def.infer = infer_broadcast;
  def.reference = [](KernelContext& ctx) { sum_mean(ctx, true); };
}
