// Expand (bidirectional broadcast to a shape) and Tile (repeat along each axis).
#include "ops/tensor_util.h"

using namespace deepep;
using namespace deepep::ops;
using namespace deepep::ops::tensor_detail;

DEEPEP_DEFINE_OP(Expand) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0)) return;
    const Value& x = ctx.input(0);
    auto shape = const_ints(ctx, 1);
    if (!x.shape || !shape) {
      int64_t n = infer_len1d(ctx, 1);
      if (x.shape && n >= 0) ctx.set(0, x.dtype, SymShape(std::max<size_t>(x.shape->size(), size_t(n))));
      else ctx.set(0, x.dtype, std::nullopt);
      return;
    }
    for (int64_t d : *shape)
      DEEPEP_CHECK(d >= 0, ctx.node.describe(), ": invalid shape ", shape_str(*shape));
    ctx.set(0, x.dtype, broadcast_sym(*x.shape, to_sym_shape(*shape)));
  };
  def.reference = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    std::vector<int64_t> shape = shape_input(ctx, 1, "shape");
    for (int64_t d : shape)
      DEEPEP_CHECK(d >= 0, ctx.node.describe(), ": invalid shape ", shape_str(shape));
    Shape out = broadcast_shapes(x.shape(), shape, ctx.node);
    Tensor& y = ctx.output(0, x.dtype(), out);
    copy_strided(x, y, broadcast_strides(x.shape(), out), 0, ctx.op());
  };
}

DEEPEP_DEFINE_OP(Tile) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0)) return;
    const Value& x = ctx.input(0);
    auto reps = const_ints(ctx, 1);
    if (!x.shape) {
      ctx.set(0, x.dtype, std::nullopt);
      return;
    }
    SymShape out = *x.shape;
    if (!reps) {
      for (auto& d : out) d = Dim{};
    } else {
      DEEPEP_CHECK(reps->size() == out.size(), ctx.node.describe(), ": repeats length mismatch");
      for (size_t i = 0; i < out.size(); ++i) {
        const int64_t r = (*reps)[i];
        if (out[i].is_known()) out[i] = Dim::known(out[i].value * r);
        else if (r == 0) out[i] = Dim::known(0);
        else if (r != 1) out[i] = Dim{};
      }
    }
    ctx.set(0, x.dtype, out);
  };
  def.reference = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    std::vector<int64_t> reps = shape_input(ctx, 1, "repeats");
    DEEPEP_CHECK(int64_t(reps.size()) == x.rank(), ctx.node.describe(), ": repeats has ",
                 reps.size(), " entries, expected the input rank ", x.rank());
    Shape out = x.shape();
    for (size_t i = 0; i < out.size(); ++i) {
      DEEPEP_CHECK(reps[i] >= 0, ctx.node.describe(), ": repeats must be >= 0, got ",
                   shape_str(reps));
      out[i] *= reps[i];
    }
    Tensor& y = ctx.output(0, x.dtype(), out);
    if (y.numel() == 0) return;
    // Walk the output; each input coordinate wraps at the input's extent.
    const auto st = strides_of(x.shape());
    const size_t r = out.size();
    dispatch_by_size(x.dtype(), ctx.op(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* src = x.data<T>();
      T* dst = y.data<T>();
      std::vector<int64_t> oi(r, 0), ii(r, 0);
      int64_t off = 0;
      for (int64_t i = 0, n = y.numel(); i < n; ++i) {
        dst[i] = src[off];
        for (size_t d = r; d-- > 0;) {
          ++oi[d];
          if (++ii[d] == x.shape()[d]) {
            ii[d] = 0;
            off -= st[d] * (x.shape()[d] - 1);
          } else {
            off += st[d];
          }
          if (oi[d] < out[d]) break;
          oi[d] = 0;
          off -= st[d] * ii[d];
          ii[d] = 0;
        }
      }
    });
  };
}
