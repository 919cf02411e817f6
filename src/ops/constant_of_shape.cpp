// ConstantOfShape: a tensor of the given shape filled with `value` (a
// one-element tensor attribute; float32 0 by default).
#include "ops/tensor_util.h"

using namespace deepep;
using namespace deepep::ops;
using namespace deepep::ops::tensor_detail;

namespace {
DType value_dtype(const Node& node) {
  const Attribute* a = node.attr("value");
  return a && a->kind == Attribute::Kind::kTensor ? a->t.dtype() : DType::kFloat32;
}
}  // namespace

DEEPEP_DEFINE_OP(ConstantOfShape) {
  def.infer = [](InferContext& ctx) {
    const DType dt = value_dtype(ctx.node);
    auto shape = const_ints(ctx, 0);
    if (shape) {
      ctx.set(0, dt, to_sym_shape(*shape));
      return;
    }
    int64_t n = infer_len1d(ctx, 0);
    ctx.set(0, dt, n >= 0 ? std::optional<SymShape>(SymShape(size_t(n))) : std::nullopt);
  };
  def.reference = [](KernelContext& ctx) {
    std::vector<int64_t> shape = shape_input(ctx, 0, "shape");
    for (int64_t d : shape)
      DEEPEP_CHECK(d >= 0, ctx.node.describe(), ": invalid shape ", shape_str(shape));
    const Attribute* a = ctx.node.attr("value");
    if (!a || a->kind != Attribute::Kind::kTensor) {
      ctx.set_output(0, Tensor::zeros(DType::kFloat32, shape));
      return;
    }
    const Tensor& v = a->t;
    DEEPEP_CHECK(v.numel() == 1, ctx.node.describe(), ": value must hold one element, it has ",
                 v.numel());
    Tensor& y = ctx.output(0, v.dtype(), shape);
    dispatch_by_size(v.dtype(), ctx.op(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      std::fill_n(y.data<T>(), y.numel(), *v.data<T>());
    });
  };
}
