// Where(cond, X, Y): X where cond else Y, all three broadcast numpy-style.
// Any dtype (float8 included) is copied by width.
#include "ops/op_util.h"

namespace deepep::ops {
namespace {

void infer_where(InferContext& ctx) {
  if (!ctx.has_input(1)) return;
  std::optional<SymShape> s = SymShape{};
  for (int i = 0; i < 3; ++i) {
    if (!ctx.has_input(i) || !ctx.input(i).shape) {
      s.reset();
      break;
    }
    s = broadcast_sym(*s, *ctx.input(i).shape);
  }
  ctx.set(0, ctx.input(1).dtype, s);
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(Where) {
  def.infer = infer_where;
  def.reference = [](KernelContext& ctx) {
    const Tensor& c = ctx.input(0);
    const Tensor& x = ctx.input(1);
    const Tensor& y = ctx.input(2);
    DEEPEP_CHECK(c.dtype() == DType::kBool, ctx.node.describe(), ": condition must be bool, got ",
                 dtype_name(c.dtype()));
    DEEPEP_CHECK(x.dtype() == y.dtype(), ctx.node.describe(), ": X and Y dtypes differ (",
                 dtype_name(x.dtype()), " vs ", dtype_name(y.dtype()), ")");
    Shape shape = broadcast_shapes(broadcast_shapes(c.shape(), x.shape(), ctx.node), y.shape(), ctx.node);
    Tensor& out = ctx.output(0, x.dtype(), shape);
    dispatch_by_size(x.dtype(), ctx.op(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      const bool* pc = c.data<bool>();
      const T* px = x.data<T>();
      const T* py = y.data<T>();
      T* po = out.data<T>();
      for_each_broadcast<3>(shape, {c.shape(), x.shape(), y.shape()}, [&](int64_t i, const auto& off) {
        po[i] = pc[off[0]] ? px[off[1]] : py[off[2]];
      });
    });
  };
}
