// TopK: the k largest (or smallest) elements along `axis` (default -1) and their
// int64 indices. k is an attribute in opset 1 and input 1 from opset 10. The
// output is always sorted (allowed for sorted=0 too); equal values keep the
// lower index first; NaN orders above every number (numpy's sort order).
#include <cmath>
#include <numeric>

#include "ops/op_util.h"

namespace deepep::ops {
namespace {

template <class T>
bool is_nan(T v) {
  if constexpr (is_floating_v<T>) return v != v;
  else return false;
}

int64_t topk_k(const KernelContext& ctx) {
  if (ctx.has_input(1)) {
    const Tensor& k = ctx.input(1);
    DEEPEP_CHECK(k.numel() == 1, ctx.node.describe(), ": K must hold one value, got shape ",
                 shape_str(k.shape()));
    return k.get_int(0);
  }
  DEEPEP_CHECK(ctx.node.has_attr("k"), ctx.node.describe(), ": K is missing (input 1 or attribute k)");
  return ctx.node.attr_int("k", 0);
}

void run_topk(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  DEEPEP_CHECK(x.rank() > 0, ctx.node.describe(), ": input must have rank >= 1");
  const int64_t axis = normalize_axis(ctx.node.attr_int("axis", -1), x.rank(), ctx.node);
  const bool largest = ctx.node.attr_int("largest", 1) != 0;
  const int64_t k = topk_k(ctx);
  const int64_t n = x.dim(int(axis));
  DEEPEP_CHECK(k >= 0 && k <= n, ctx.node.describe(), ": k = ", k, " is out of range for axis ", axis,
               " of size ", n);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < x.rank(); ++d)
    if (d != axis) (d < axis ? outer : inner) *= x.dim(int(d));
  Shape os = x.shape();
  os[size_t(axis)] = k;
  Tensor& vals = ctx.output(0, x.dtype(), os);
  Tensor idx_local;
  Tensor& idxs = ctx.outputs.size() > 1 ? ctx.output(1, DType::kInt64, os)
                                        : (idx_local = Tensor(DType::kInt64, os));
  if (shape_numel(os) == 0) return;
  dispatch_numeric(x.dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = x.data<T>();
    T* vo = vals.data<T>();
    int64_t* io = idxs.data<int64_t>();
    std::vector<int64_t> order(static_cast<size_t>(n));
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const T* line = in + o * n * inner + i;
        auto less = [&](T a, T b) { return (!is_nan(a) && is_nan(b)) || a < b; };
        std::iota(order.begin(), order.end(), int64_t(0));
        std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int64_t a, int64_t b) {
          const T va = line[a * inner], vb = line[b * inner];
          const bool before = largest ? less(vb, va) : less(va, vb);
          const bool after = largest ? less(va, vb) : less(vb, va);
          return before || (!after && a < b);
        });
        const int64_t ob = o * k * inner + i;
        for (int64_t j = 0; j < k; ++j) {
          vo[ob + j * inner] = line[order[size_t(j)] * inner];
          io[ob + j * inner] = order[size_t(j)];
        }
      }
  });
}

void infer_topk(InferContext& ctx) {
  if (!ctx.has_input(0)) return;
  const Value& x = ctx.input(0);
  std::optional<SymShape> s;
  if (x.shape && !x.shape->empty()) {
    const int64_t axis = normalize_axis(ctx.node.attr_int("axis", -1), int64_t(x.shape->size()), ctx.node);
    s = *x.shape;
    (*s)[size_t(axis)] = Dim{};
    if (ctx.has_input(1)) {
      if (const Tensor* k = ctx.constant(1); k && k->numel() == 1) (*s)[size_t(axis)] = Dim::known(k->get_int(0));
    } else if (ctx.node.has_attr("k")) {
      (*s)[size_t(axis)] = Dim::known(ctx.node.attr_int("k", 0));
    }
  }
  ctx.set(0, x.dtype, s);
  if (ctx.outputs.size() > 1) ctx.set(1, DType::kInt64, s);
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(TopK) {
  def.infer = infer_topk;
  def.reference = run_topk;
}
