// Trilu: keeps the upper (j - i >= k) or lower (j - i <= k) triangle of the
// last two dims and zeroes the rest.
#include "ops/tensor_util.h"

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(Trilu) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    DEEPEP_CHECK(x.rank() >= 2, ctx.node.describe(), ": input must have rank >= 2, got shape ",
                 shape_str(x.shape()));
    int64_t k = 0;
    if (ctx.has_input(1)) {
      const Tensor& kt = ctx.input(1);
      DEEPEP_CHECK(kt.numel() == 1, ctx.node.describe(), ": k must be a scalar");
      k = kt.get_int(0);
    }
    const bool upper = ctx.node.attr_int("upper", 1) != 0;
    const int64_t rows = x.dim(-2), cols = x.dim(-1);
    const int64_t mats = rows * cols == 0 ? 0 : x.numel() / (rows * cols);
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    dispatch_by_size(x.dtype(), ctx.op(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* src = x.data<T>();
      T* dst = y.data<T>();
      for (int64_t m = 0; m < mats; ++m)
        for (int64_t i = 0; i < rows; ++i)
          for (int64_t j = 0; j < cols; ++j) {
            const int64_t o = (m * rows + i) * cols + j;
            const bool keep = upper ? j - i >= k : j - i <= k;
            dst[o] = keep ? src[o] : T(0);
          }
    });
  };
}
