// Gather (take along an axis), GatherElements (per-element index along an
// axis) and GatherND (index tuples, with batch_dims). Negative indices count
// from the end; out-of-range indices are errors.
#include "ops/tensor_util.h"

namespace deepep::ops {
namespace {
using namespace tensor_detail;

void check_indices_dtype(const KernelContext& ctx, const Tensor& idx) {
  DEEPEP_CHECK(idx.dtype() == DType::kInt64 || idx.dtype() == DType::kInt32, ctx.node.describe(),
               ": indices must be int32 or int64, got ", dtype_name(idx.dtype()));
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;
using namespace deepep::ops::tensor_detail;

DEEPEP_DEFINE_OP(Gather) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0)) return;
    const Value& x = ctx.input(0);
    if (!x.shape || !ctx.has_input(1) || !ctx.input(1).shape) {
      ctx.set(0, x.dtype, std::nullopt);
      return;
    }
    const SymShape& s = *x.shape;
    const int64_t axis = axis_in(ctx.node.attr_int("axis", 0), int64_t(s.size()), ctx.node);
    SymShape out(s.begin(), s.begin() + axis);
    for (const Dim& d : *ctx.input(1).shape) out.push_back(d);
    out.insert(out.end(), s.begin() + axis + 1, s.end());
    ctx.set(0, x.dtype, out);
  };
  def.reference = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    const Tensor& idx = ctx.input(1);
    check_indices_dtype(ctx, idx);
    DEEPEP_CHECK(x.rank() > 0, ctx.node.describe(), ": data must have rank >= 1");
    const int64_t axis = axis_in(ctx.node.attr_int("axis", 0), x.rank(), ctx.node);
    Shape out(x.shape().begin(), x.shape().begin() + axis);
    out.insert(out.end(), idx.shape().begin(), idx.shape().end());
    out.insert(out.end(), x.shape().begin() + axis + 1, x.shape().end());
    Tensor& y = ctx.output(0, x.dtype(), out);
    const int64_t n = x.dim(int(axis));
    int64_t outer = 1, inner = int64_t(dtype_size(x.dtype()));
    for (int64_t d = 0; d < axis; ++d) outer *= x.dim(int(d));
    for (int64_t d = axis + 1; d < x.rank(); ++d) inner *= x.dim(int(d));
    std::vector<int64_t> iv = index_values(idx, ctx.node, "indices");
    for (auto& i : iv) i = norm_index(i, n, ctx.node, "Gather");
    const auto* src = static_cast<const uint8_t*>(x.raw());
    auto* dst = static_cast<uint8_t*>(y.raw());
    if (inner == 0) return;
    for (int64_t o = 0; o < outer; ++o)
      for (size_t k = 0; k < iv.size(); ++k, dst += inner)
        std::memcpy(dst, src + (o * n + iv[k]) * inner, size_t(inner));
  };
}

DEEPEP_DEFINE_OP(GatherElements) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0)) return;
    ctx.set(0, ctx.input(0).dtype, ctx.has_input(1) ? ctx.input(1).shape : std::nullopt);
  };
  def.reference = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    const Tensor& idx = ctx.input(1);
    check_indices_dtype(ctx, idx);
    DEEPEP_CHECK(x.rank() == idx.rank() && x.rank() > 0, ctx.node.describe(),
                 ": data ", shape_str(x.shape()), " and indices ", shape_str(idx.shape()),
                 " must have the same rank >= 1");
    const int64_t axis = axis_in(ctx.node.attr_int("axis", 0), x.rank(), ctx.node);
    for (int d = 0; d < x.rank(); ++d)
      DEEPEP_CHECK(d == axis || idx.dim(d) <= x.dim(d), ctx.node.describe(), ": indices shape ",
                   shape_str(idx.shape()), " exceeds data shape ", shape_str(x.shape()),
                   " on axis ", d);
    Tensor& y = ctx.output(0, x.dtype(), idx.shape());
    const std::vector<int64_t> iv = index_values(idx, ctx.node, "indices");
    const auto xst = strides_of(x.shape());
    std::vector<int64_t> st = xst;
    st[size_t(axis)] = 0;  // the axis coordinate comes from the index
    const int64_t n = x.dim(int(axis)), ast = xst[size_t(axis)];
    dispatch_by_size(x.dtype(), ctx.op(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* src = x.data<T>();
      T* dst = y.data<T>();
      for_each_strided(idx.shape(), st, 0, [&](int64_t i, int64_t off) {
        dst[i] = src[off + norm_index(iv[size_t(i)], n, ctx.node, "GatherElements") * ast];
      });
    });
  };
}

DEEPEP_DEFINE_OP(GatherND) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0)) return;
    const Value& x = ctx.input(0);
    const int64_t b = ctx.node.attr_int("batch_dims", 0);
    if (!x.shape || !ctx.has_input(1) || !ctx.input(1).shape || ctx.input(1).shape->empty() ||
        !ctx.input(1).shape->back().is_known()) {
      ctx.set(0, x.dtype, std::nullopt);
      return;
    }
    const SymShape& is = *ctx.input(1).shape;
    const int64_t k = is.back().value;
    SymShape out(is.begin(), is.end() - 1);
    if (b + k <= int64_t(x.shape->size()))
      out.insert(out.end(), x.shape->begin() + b + k, x.shape->end());
    ctx.set(0, x.dtype, out);
  };
  def.reference = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    const Tensor& idx = ctx.input(1);
    check_indices_dtype(ctx, idx);
    const int64_t b = ctx.node.attr_int("batch_dims", 0);
    const int64_t r = x.rank(), q = idx.rank();
    DEEPEP_CHECK(r >= 1 && q >= 1, ctx.node.describe(), ": data and indices must have rank >= 1");
    DEEPEP_CHECK(b >= 0 && b < std::min(r, q), ctx.node.describe(), ": batch_dims ", b,
                 " must be smaller than both ranks");
    const int64_t k = idx.dim(-1);
    DEEPEP_CHECK(k >= 1 && k <= r - b, ctx.node.describe(), ": the last indices dim (", k,
                 ") must be in [1, ", r - b, "]");
    int64_t batch = 1;
    for (int d = 0; d < b; ++d) {
      DEEPEP_CHECK(x.dim(d) == idx.dim(d), ctx.node.describe(), ": batch dim ", d,
                   " differs between data ", shape_str(x.shape()), " and indices ",
                   shape_str(idx.shape()));
      batch *= x.dim(d);
    }
    Shape out(idx.shape().begin(), idx.shape().end() - 1);
    out.insert(out.end(), x.shape().begin() + b + k, x.shape().end());
    Tensor& y = ctx.output(0, x.dtype(), out);
    const auto st = strides_of(x.shape());
    const int64_t es = int64_t(dtype_size(x.dtype()));
    const int64_t slice = (b + k < r ? st[size_t(b + k - 1)] : 1) * es;  // bytes per gathered slice
    const int64_t batch_stride = b > 0 ? st[size_t(b - 1)] * es : 0;
    int64_t per_batch = 1;  // index tuples per batch
    for (int64_t d = b; d < q - 1; ++d) per_batch *= idx.dim(int(d));
    const std::vector<int64_t> iv = index_values(idx, ctx.node, "indices");
    const auto* src = static_cast<const uint8_t*>(x.raw());
    auto* dst = static_cast<uint8_t*>(y.raw());
    for (int64_t bi = 0; bi < batch; ++bi)
      for (int64_t t = 0; t < per_batch; ++t) {
        const int64_t* tuple = iv.data() + (bi * per_batch + t) * k;
        int64_t off = bi * batch_stride;
        for (int64_t j = 0; j < k; ++j)
          off += norm_index(tuple[j], x.dim(int(b + j)), ctx.node, "GatherND") * st[size_t(b + j)] * es;
        if (slice > 0) std::memcpy(dst, src + off, size_t(slice));
        dst += slice;
      }
  };
}
