// OneHot: indices -> a new axis of size depth holding on_value at the index
// and off_value elsewhere. Indices in [-depth, depth) (negative wrap); other
// indices give an all-off row, as the spec says.
#include <cmath>

#include "ops/tensor_util.h"

using namespace deepep;
using namespace deepep::ops;
using namespace deepep::ops::tensor_detail;

DEEPEP_DEFINE_OP(OneHot) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0) || !ctx.has_input(2)) return;
    const DType dt = ctx.input(2).dtype;
    const Value& idx = ctx.input(0);
    if (!idx.shape) {
      ctx.set(0, dt, std::nullopt);
      return;
    }
    const int64_t r = int64_t(idx.shape->size()) + 1;
    const int64_t axis = normalize_axis(ctx.node.attr_int("axis", -1), r, ctx.node);
    Dim depth;
    if (const Tensor* d = ctx.constant(1); d && d->numel() == 1)
      depth = Dim::known(int64_t(std::floor(d->get_double(0))));
    SymShape out = *idx.shape;
    out.insert(out.begin() + axis, depth);
    ctx.set(0, dt, out);
  };
  def.reference = [](KernelContext& ctx) {
    const Tensor& idx = ctx.input(0);
    const Tensor& dep = ctx.input(1);
    const Tensor& vals = ctx.input(2);
    DEEPEP_CHECK(dep.numel() == 1, ctx.node.describe(), ": depth must hold one value");
    DEEPEP_CHECK(vals.numel() == 2, ctx.node.describe(),
                 ": values must hold [off_value, on_value], it has ", vals.numel(), " elements");
    const double depth_f = dep.get_double(0);
    DEEPEP_CHECK(std::isfinite(depth_f) && depth_f >= 1 && depth_f < 9e18, ctx.node.describe(),
                 ": depth must be >= 1, got ", depth_f);
    const int64_t depth = int64_t(depth_f);
    const int64_t r = idx.rank() + 1;
    const int64_t axis = normalize_axis(ctx.node.attr_int("axis", -1), r, ctx.node);
    Shape out = idx.shape();
    out.insert(out.begin() + axis, depth);
    Tensor& y = ctx.output(0, vals.dtype(), out);
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= idx.dim(int(d));
    for (int64_t d = axis; d < idx.rank(); ++d) inner *= idx.dim(int(d));
    dispatch_by_size(vals.dtype(), ctx.op(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T off = vals.data<T>()[0], on = vals.data<T>()[1];
      T* dst = y.data<T>();
      std::fill_n(dst, y.numel(), off);
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
          const double v = idx.get_double(o * inner + i);
          if (!std::isfinite(v)) continue;
          int64_t k = int64_t(v);
          if (k < 0) k += depth;
          if (k < 0 || k >= depth) continue;
          dst[(o * depth + k) * inner + i] = on;
        }
    });
  };
}
