// Reduce* ops: ReduceSum/Mean/Max/Min/Prod/L1/L2/LogSum/LogSumExp/SumSquare.
// `axes` is an attribute before opset 13 (ReduceSum) / 18 (the others) and an
// optional input after; missing or empty axes reduce everything unless
// noop_with_empty_axes is set, in which case the reduction runs over no axes
// (the elementwise part of the op still applies: ReduceSumSquare squares).
// Float sums accumulate in double; integer sums in 64-bit integers.
#include <cmath>
#include <limits>

#include "ops/op_util.h"

namespace deepep::ops {
namespace {

enum class RK { kSum, kMean, kMax, kMin, kProd, kL1, kL2, kLogSum, kLogSumExp, kSumSquare };

template <class T, class V>
T cast_to(V v) {
  if constexpr (std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>) return T(float(v));
  else return static_cast<T>(v);
}

struct ReducePlan {
  Shape keep;  // input shape with reduced dims set to 1
  Shape out;   // keep, or keep without the reduced dims
  int64_t count = 1;  // input elements per output element
};

// Reduced-axis mask from the axes (input or attribute; nullopt when absent) and
// the node's noop_with_empty_axes flag.
std::vector<bool> reduced_mask(const std::optional<std::vector<int64_t>>& axes, int64_t rank,
                               const Node& node) {
  const bool noop = node.attr_int("noop_with_empty_axes", 0) != 0;
  std::vector<bool> red(size_t(rank), false);
  if (!axes || axes->empty()) {
    if (!noop) red.assign(size_t(rank), true);
    return red;
  }
  for (int64_t a : *axes) {
    if (rank == 0 && (a == 0 || a == -1)) continue;  // a scalar has nothing to reduce
    red[size_t(normalize_axis(a, rank, node))] = true;
  }
  return red;
}

ReducePlan plan_reduce(const KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const bool keepdims = ctx.node.attr_int("keepdims", 1) != 0;
  auto red = reduced_mask(ints_from_input_or_attr(ctx, 1, "axes"), x.rank(), ctx.node);
  ReducePlan p;
  for (int d = 0; d < x.rank(); ++d) {
    if (red[d]) {
      p.count *= x.dim(d);
      p.keep.push_back(1);
      if (keepdims) p.out.push_back(1);
    } else {
      p.keep.push_back(x.dim(d));
      p.out.push_back(x.dim(d));
    }
  }
  return p;
}

// acc[o] = f(acc[o], x) over the input elements x that reduce into output o.
template <class A, class T, class F>
std::vector<A> accumulate(const T* in, const Shape& in_shape, const Shape& keep, A init, F f) {
  std::vector<A> acc(size_t(shape_numel(keep)), init);
  for_each_broadcast<1>(in_shape, {keep}, [&](int64_t i, const auto& off) { f(acc[off[0]], in[i]); });
  return acc;
}

template <class T>
void reduce_typed(const Tensor& x, Tensor& y, const ReducePlan& p, RK kind) {
  constexpr bool kFloat = is_floating_v<T>;
  using I = std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>;
  using A = std::conditional_t<kFloat, double, I>;  // sum/product accumulator
  const T* in = x.data<T>();
  T* out = y.data<T>();
  const Shape& s = x.shape();
  const size_t m = size_t(shape_numel(p.keep));
  auto dbl = [](T v) { return double(cast_to<double>(v)); };
  auto write = [&](const auto& acc, auto post) {
    for (size_t i = 0; i < m; ++i) out[i] = cast_to<T>(post(acc[i]));
  };
  auto id = [](auto v) { return v; };
  switch (kind) {
    case RK::kSum:
      write(accumulate<A>(in, s, p.keep, A(0), [](A& a, T v) { a += cast_to<A>(v); }), id);
      break;
    case RK::kMean: {
      auto acc = accumulate<A>(in, s, p.keep, A(0), [](A& a, T v) { a += cast_to<A>(v); });
      const int64_t n = p.count;
      if constexpr (kFloat) write(acc, [n](double a) { return a / double(n); });
      else write(acc, [n](A a) { return n == 0 ? A(0) : A(a / A(n)); });
      break;
    }
    case RK::kProd:
      write(accumulate<A>(in, s, p.keep, A(1), [](A& a, T v) { a *= cast_to<A>(v); }), id);
      break;
    case RK::kL1:
      write(accumulate<A>(in, s, p.keep, A(0),
                          [](A& a, T v) {
                            A w = cast_to<A>(v);
                            if constexpr (std::is_signed_v<A>) a += w < 0 ? A(-w) : w;
                            else a += w;
                          }),
            id);
      break;
    case RK::kSumSquare:
      write(accumulate<A>(in, s, p.keep, A(0),
                          [](A& a, T v) {
                            A w = cast_to<A>(v);
                            a += w * w;
                          }),
            id);
      break;
    case RK::kL2:
      write(accumulate<double>(in, s, p.keep, 0.0,
                               [&](double& a, T v) {
                                 double w = dbl(v);
                                 a += w * w;
                               }),
            [](double a) { return std::sqrt(a); });
      break;
    case RK::kLogSum:
      write(accumulate<double>(in, s, p.keep, 0.0, [&](double& a, T v) { a += dbl(v); }),
            [](double a) { return std::log(a); });
      break;
    case RK::kLogSumExp: {
      auto mx = accumulate<double>(in, s, p.keep, -INFINITY, [&](double& a, T v) {
        double w = dbl(v);
        if (std::isfinite(w) && w > a) a = w;
      });
      for (double& v : mx)
        if (!std::isfinite(v)) v = 0;
      std::vector<double> acc(m, 0.0);
      for_each_broadcast<1>(s, {p.keep}, [&](int64_t i, const auto& off) {
        acc[off[0]] += std::exp(dbl(in[i]) - mx[off[0]]);
      });
      for (size_t i = 0; i < m; ++i) out[i] = cast_to<T>(std::log(acc[i]) + mx[i]);
      break;
    }
    case RK::kMax:
    case RK::kMin: {
      using M = std::conditional_t<kFloat, double, T>;
      const bool is_max = kind == RK::kMax;
      M init;
      if constexpr (kFloat) init = is_max ? -INFINITY : INFINITY;
      else init = is_max ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max();
      write(accumulate<M>(in, s, p.keep, init,
                          [is_max](M& a, T v) {
                            M w = cast_to<M>(v);
                            if constexpr (kFloat) {
                              if (std::isnan(w)) a = w;
                              else if (is_max ? w > a : w < a) a = w;
                            } else if (is_max ? w > a : w < a) {
                              a = w;
                            }
                          }),
            id);
      break;
    }
  }
}

void run_reduce(KernelContext& ctx, RK kind) {
  const Tensor& x = ctx.input(0);
  ReducePlan p = plan_reduce(ctx);
  Tensor& y = ctx.output(0, x.dtype(), p.out);
  if (x.dtype() == DType::kBool) {
    DEEPEP_CHECK(kind == RK::kMax || kind == RK::kMin, ctx.node.describe(),
                 ": unsupported dtype bool (expected a numeric type)");
    // Max is a logical or, min a logical and (False < True).
    const bool is_max = kind == RK::kMax;
    auto acc = accumulate<uint8_t>(x.data<bool>(), x.shape(), p.keep, uint8_t(is_max ? 0 : 1),
                                   [is_max](uint8_t& a, bool v) { a = is_max ? (a | v) : (a & v); });
    bool* out = y.data<bool>();
    for (size_t i = 0; i < acc.size(); ++i) out[i] = acc[i] != 0;
    return;
  }
  dispatch_numeric(x.dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    reduce_typed<T>(x, y, p, kind);
  });
}

void infer_reduce(InferContext& ctx) {
  if (!ctx.has_input(0)) return;
  const Value& x = ctx.input(0);
  if (!x.shape) {
    ctx.set(0, x.dtype, std::nullopt);
    return;
  }
  std::optional<std::vector<int64_t>> axes;
  if (ctx.has_input(1)) {
    const Tensor* c = ctx.constant(1);
    if (!c) {
      ctx.set(0, x.dtype, std::nullopt);
      return;
    }
    axes = c->to_int_vector();
  } else if (ctx.node.has_attr("axes")) {
    axes = ctx.node.attr_ints("axes");
  }
  const int64_t rank = int64_t(x.shape->size());
  auto red = reduced_mask(axes, rank, ctx.node);
  const bool keepdims = ctx.node.attr_int("keepdims", 1) != 0;
  SymShape out;
  for (int64_t d = 0; d < rank; ++d) {
    if (!red[size_t(d)]) out.push_back((*x.shape)[size_t(d)]);
    else if (keepdims) out.push_back(Dim::known(1));
  }
  ctx.set(0, x.dtype, out);
}

void define_reduce(OpDef& def, RK kind) {
  def.infer = infer_reduce;
  def.reference = [kind](KernelContext& ctx) { run_reduce(ctx, kind); };
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(ReduceSum) { define_reduce(def, RK::kSum); }
DEEPEP_DEFINE_OP(ReduceMean) { define_reduce(def, RK::kMean); }
DEEPEP_DEFINE_OP(ReduceMax) { define_reduce(def, RK::kMax); }
DEEPEP_DEFINE_OP(ReduceMin) { define_reduce(def, RK::kMin); }
DEEPEP_DEFINE_OP(ReduceProd) { define_reduce(def, RK::kProd); }
DEEPEP_DEFINE_OP(ReduceL1) { define_reduce(def, RK::kL1); }
DEEPEP_DEFINE_OP(ReduceL2) { define_reduce(def, RK::kL2); }
DEEPEP_DEFINE_OP(ReduceLogSum) { define_reduce(def, RK::kLogSum); }
DEEPEP_DEFINE_OP(ReduceLogSumExp) { define_reduce(def, RK::kLogSumExp); }
DEEPEP_DEFINE_OP(ReduceSumSquare) { define_reduce(def, RK::kSumSquare); }
