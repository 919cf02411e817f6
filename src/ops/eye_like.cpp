// EyeLike: a 2-D tensor shaped like the input with ones on diagonal k.
#include "ops/tensor_util.h"

using namespace deepep;
using namespace deepep::ops;

namespace {
DType eye_dtype(const Node& node, DType in) {
  if (!node.has_attr("dtype")) return in;
  const DType d = DType(node.attr_int("dtype", 0));
  DEEPEP_CHECK(dtype_size(d) > 0, node.describe(), ": unsupported dtype code ",
               node.attr_int("dtype", 0));
  return d;
}
}  // namespace

DEEPEP_DEFINE_OP(EyeLike) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0)) return;
    ctx.set(0, eye_dtype(ctx.node, ctx.input(0).dtype), ctx.input(0).shape);
  };
  def.reference = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    DEEPEP_CHECK(x.rank() == 2, ctx.node.describe(), ": input must be 2-D, got shape ",
                 shape_str(x.shape()));
    const DType dt = eye_dtype(ctx.node, x.dtype());
    const int64_t k = ctx.node.attr_int("k", 0);
    Tensor y = Tensor::zeros(dt, x.shape());
    const int64_t rows = x.dim(0), cols = x.dim(1);
    dispatch_all(dt, ctx.op(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      T* p = y.data<T>();
      for (int64_t i = 0; i < rows; ++i) {
        const int64_t j = i + k;
        if (j >= 0 && j < cols) p[i * cols + j] = T(1);
      }
    });
    ctx.set_output(0, std::move(y));
  };
}
