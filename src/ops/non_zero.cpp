// NonZero: the indices of the non-zero elements, int64 [rank, count], in
// row-major order.
#include "ops/tensor_util.h"

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(NonZero) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0) || !ctx.input(0).shape) {
      ctx.set(0, DType::kInt64, SymShape(2));
      return;
    }
    ctx.set(0, DType::kInt64, SymShape{Dim::known(int64_t(ctx.input(0).shape->size())), Dim{}});
  };
  def.reference = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    std::vector<int64_t> hits;
    dispatch_all(x.dtype(), ctx.op(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* p = x.data<T>();
      for (int64_t i = 0, n = x.numel(); i < n; ++i)
        if (p[i] != T(0)) hits.push_back(i);
    });
    const int64_t r = x.rank(), n = int64_t(hits.size());
    Tensor& y = ctx.output(0, DType::kInt64, {r, n});
    const auto st = strides_of(x.shape());
    int64_t* out = y.data<int64_t>();
    for (int64_t j = 0; j < n; ++j)
      for (int64_t d = 0; d < r; ++d) out[d * n + j] = hits[size_t(j)] / st[size_t(d)] % x.dim(int(d));
  };
}
