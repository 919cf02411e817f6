// ArgMax / ArgMin: int64 index of the extreme value along `axis` (default 0),
// first occurrence unless select_last_index; NaN counts as the extreme (numpy).
#include <cmath>

#include "ops/op_util.h"

namespace deepep::ops {
namespace {

template <class T>
bool is_nan(T v) {
  if constexpr (is_floating_v<T>) return std::isnan(float(v)) || v != v;
  else return false;
}

void run_arg(KernelContext& ctx, bool is_max) {
  const Tensor& x = ctx.input(0);
  const int64_t rank = x.rank();
  const int64_t axis = normalize_axis(ctx.node.attr_int("axis", 0), rank, ctx.node);
  const bool keepdims = ctx.node.attr_int("keepdims", 1) != 0;
  const bool last = ctx.node.attr_int("select_last_index", 0) != 0;
  Shape out_shape;
  int64_t outer = 1, inner = 1, n = rank == 0 ? 1 : x.dim(int(axis));
  for (int64_t d = 0; d < rank; ++d) {
    if (d == axis) {
      if (keepdims) out_shape.push_back(1);
      continue;
    }
    out_shape.push_back(x.dim(int(d)));
    (d < axis ? outer : inner) *= x.dim(int(d));
  }
  Tensor& y = ctx.output(0, DType::kInt64, out_shape);
  if (outer * inner == 0) return;
  DEEPEP_CHECK(n > 0, ctx.node.describe(), ": cannot take the arg", is_max ? "max" : "min",
               " of an empty axis ", axis, " of shape ", shape_str(x.shape()));
  int64_t* out = y.data<int64_t>();
  auto run = [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = x.data<T>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const T* p = in + o * n * inner + i;
        int64_t best = 0;
        T bv = p[0];
        bool bnan = is_nan(bv);
        for (int64_t k = 1; k < n; ++k) {
          T v = p[k * inner];
          if (bnan) {
            if (last && is_nan(v)) best = k;
            continue;
          }
          bool take;
          if (is_nan(v)) take = true, bnan = true;
          else if (last) take = is_max ? !(v < bv) : !(bv < v);
          else take = is_max ? (bv < v) : (v < bv);
          if (take) best = k, bv = v;
        }
        out[o * inner + i] = best;
      }
  };
  if (x.dtype() == DType::kBool) run(TypeTag<bool>{});
  else dispatch_numeric(x.dtype(), ctx.op(), run);
}

void infer_arg(InferContext& ctx) {
  if (!ctx.has_input(0)) return;
  const Value& x = ctx.input(0);
  if (!x.shape) {
    ctx.set(0, DType::kInt64, std::nullopt);
    return;
  }
  const int64_t rank = int64_t(x.shape->size());
  const int64_t axis = normalize_axis(ctx.node.attr_int("axis", 0), rank, ctx.node);
  const bool keepdims = ctx.node.attr_int("keepdims", 1) != 0;
  SymShape out;
  for (int64_t d = 0; d < rank; ++d) {
    if (d != axis) out.push_back((*x.shape)[size_t(d)]);
    else if (keepdims) out.push_back(Dim::known(1));
  }
  ctx.set(0, DType::kInt64, out);
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(ArgMax) {
  def.infer = infer_arg;
  def.reference = [](KernelContext& ctx) { run_arg(ctx, true); };
}
DEEPEP_DEFINE_OP(ArgMin) {
  def.infer = infer_arg;
  def.reference = [](KernelContext& ctx) { run_arg(ctx, false); };
}
