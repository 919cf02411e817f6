// ScatterElements (and the deprecated Scatter), ScatterND: a copy of data with
// updates written at indexed places, optionally combined by a reduction
// (none/add/mul/max/min). Updates apply in index order, so duplicates with
// reduction "none" keep the last one.
#include "ops/tensor_util.h"

namespace deepep::ops {
namespace {
using namespace tensor_detail;

enum class Red { kNone, kAdd, kMul, kMax, kMin };

Red reduction_of(const Node& node) {
  const std::string r = node.attr_string("reduction", "none");
  if (r == "none") return Red::kNone;
  if (r == "add") return Red::kAdd;
  if (r == "mul") return Red::kMul;
  if (r == "max") return Red::kMax;
  if (r == "min") return Red::kMin;
  DEEPEP_FAIL(node.describe(), ": unknown reduction '", r, "' (expected none, add, mul, max, min)");
}

template <class T>
inline void combine(T& d, T u, Red r) {
  if constexpr (std::is_same_v<T, bool>) {
    switch (r) {
      case Red::kNone: d = u; break;
      case Red::kAdd: case Red::kMax: d = d || u; break;
      case Red::kMul: case Red::kMin: d = d && u; break;
    }
  } else {
    switch (r) {
      case Red::kNone: d = u; break;
      case Red::kAdd: d = T(d + u); break;
      case Red::kMul: d = T(d * u); break;
      case Red::kMax: d = u > d ? u : d; break;
      case Red::kMin: d = u < d ? u : d; break;
    }
  }
}

// Runs f with T = the element type: by width for plain assignment, by value
// type when a reduction must do arithmetic.
template <class F>
void dispatch_scatter(DType dt, Red r, const char* what, F&& f) {
  if (r == Red::kNone) dispatch_by_size(dt, what, f);
  else dispatch_all(dt, what, f);
}

void scatter_elements(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& idx = ctx.input(1);
  const Tensor& upd = ctx.input(2);
  const Red red = reduction_of(ctx.node);
  DEEPEP_CHECK(idx.dtype() == DType::kInt64 || idx.dtype() == DType::kInt32, ctx.node.describe(),
               ": indices must be int32 or int64, got ", dtype_name(idx.dtype()));
  DEEPEP_CHECK(upd.dtype() == x.dtype(), ctx.node.describe(), ": updates dtype ",
               dtype_name(upd.dtype()), " differs from data dtype ", dtype_name(x.dtype()));
  DEEPEP_CHECK(idx.shape() == upd.shape(), ctx.node.describe(), ": indices ",
               shape_str(idx.shape()), " and updates ", shape_str(upd.shape()),
               " must have the same shape");
  DEEPEP_CHECK(x.rank() == idx.rank() && x.rank() > 0, ctx.node.describe(), ": data ",
               shape_str(x.shape()), " and indices ", shape_str(idx.shape()),
               " must have the same rank >= 1");
  const int64_t axis = axis_in(ctx.node.attr_int("axis", 0), x.rank(), ctx.node);
  for (int d = 0; d < x.rank(); ++d)
    DEEPEP_CHECK(d == axis || idx.dim(d) <= x.dim(d), ctx.node.describe(), ": indices shape ",
                 shape_str(idx.shape()), " exceeds data shape ", shape_str(x.shape()), " on axis ", d);
  ctx.set_output(0, x.clone());
  Tensor& y = ctx.outputs[0];
  const std::vector<int64_t> iv = index_values(idx, ctx.node, "indices");
  const auto xst = strides_of(x.shape());
  std::vector<int64_t> st = xst;
  st[size_t(axis)] = 0;
  const int64_t n = x.dim(int(axis)), ast = xst[size_t(axis)];
  dispatch_scatter(x.dtype(), red, ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* u = upd.data<T>();
    T* dst = y.data<T>();
    for_each_strided(idx.shape(), st, 0, [&](int64_t i, int64_t off) {
      combine(dst[off + norm_index(iv[size_t(i)], n, ctx.node, "scatter") * ast], u[i], red);
    });
  });
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;
using namespace deepep::ops::tensor_detail;

DEEPEP_DEFINE_OP(ScatterElements) {
  def.infer = infer_same_as_input;
  def.reference = scatter_elements;
}

DEEPEP_DEFINE_OP(Scatter) {
  def.infer = infer_same_as_input;
  def.reference = scatter_elements;
}

DEEPEP_DEFINE_OP(ScatterND) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    const Tensor& idx = ctx.input(1);
    const Tensor& upd = ctx.input(2);
    const Red red = reduction_of(ctx.node);
    DEEPEP_CHECK(idx.dtype() == DType::kInt64 || idx.dtype() == DType::kInt32, ctx.node.describe(),
                 ": indices must be int64, got ", dtype_name(idx.dtype()));
    DEEPEP_CHECK(upd.dtype() == x.dtype(), ctx.node.describe(), ": updates dtype ",
                 dtype_name(upd.dtype()), " differs from data dtype ", dtype_name(x.dtype()));
    const int64_t r = x.rank(), q = idx.rank();
    DEEPEP_CHECK(r >= 1 && q >= 1, ctx.node.describe(), ": data and indices must have rank >= 1");
    const int64_t k = idx.dim(-1);
    DEEPEP_CHECK(k >= 1 && k <= r, ctx.node.describe(), ": the last indices dim (", k,
                 ") must be in [1, ", r, "]");
    Shape want(idx.shape().begin(), idx.shape().end() - 1);
    want.insert(want.end(), x.shape().begin() + k, x.shape().end());
    DEEPEP_CHECK(upd.shape() == want, ctx.node.describe(), ": updates shape ",
                 shape_str(upd.shape()), " should be ", shape_str(want));
    ctx.set_output(0, x.clone());
    Tensor& y = ctx.outputs[0];
    const auto st = strides_of(x.shape());
    const int64_t slice = k < r ? st[size_t(k - 1)] : 1;
    const int64_t tuples = shape_numel(Shape(idx.shape().begin(), idx.shape().end() - 1));
    const std::vector<int64_t> iv = index_values(idx, ctx.node, "indices");
    dispatch_scatter(x.dtype(), red, ctx.op(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* u = upd.data<T>();
      T* dst = y.data<T>();
      for (int64_t t = 0; t < tuples; ++t) {
        int64_t off = 0;
        for (int64_t j = 0; j < k; ++j)
          off += norm_index(iv[size_t(t * k + j)], x.dim(int(j)), ctx.node, "ScatterND") * st[size_t(j)];
        for (int64_t e = 0; e < slice; ++e) combine(dst[off + e], u[t * slice + e], red);
      }
    });
  };
}
