// Helpers private to the tensor family (shape and data movement ops):
// constant-input reading for inference, symbolic dim arithmetic, index
// normalisation, and strided/broadcast copies that work on any dtype by width.
#pragma once
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "ops/op_util.h"

namespace deepep::ops::tensor_detail {

// The int values of input i when it is a constant, else nullopt.
inline std::optional<std::vector<int64_t>> const_ints(const InferContext& ctx, int i) {
  const Tensor* t = ctx.constant(i);
  if (!t) return std::nullopt;
  return t->to_int_vector();
}

// An int list from a constant input i, else from attribute `attr`; nullopt when
// neither is available (the input is present but not constant, or both absent).
// `present` tells whether the value exists at all (input given or attr set).
inline std::optional<std::vector<int64_t>> const_ints_or_attr(const InferContext& ctx, int i,
                                                              const char* attr, bool* present) {
  if (ctx.has_input(i)) {
    *present = true;
    return const_ints(ctx, i);
  }
  if (ctx.node.has_attr(attr)) {
    *present = true;
    return ctx.node.attr_ints(attr);
  }
  *present = false;
  return std::nullopt;
}

// Rank of input i at inference time, or -1 when unknown.
inline int64_t infer_rank(const InferContext& ctx, int i) {
  if (!ctx.has_input(i) || !ctx.input(i).shape) return -1;
  return int64_t(ctx.input(i).shape->size());
}

// Length of a 1-D input at inference time (a static shape), or -1.
inline int64_t infer_len1d(const InferContext& ctx, int i) {
  if (!ctx.has_input(i) || !ctx.input(i).shape) return -1;
  const SymShape& s = *ctx.input(i).shape;
  if (s.size() == 0) return 1;
  if (s.size() != 1 || !s[0].is_known()) return -1;
  return s[0].value;
}

// Product of symbolic dims: known when all are known; a lone symbol times
// known ones equal to 1 stays that symbol; otherwise unknown.
inline Dim dim_product(const SymShape& s, size_t begin, size_t end) {
  int64_t known = 1;
  int unknown = 0;
  Dim other;
  for (size_t i = begin; i < end; ++i) {
    if (s[i].is_known()) known *= s[i].value;
    else {
      ++unknown;
      other = s[i];
    }
  }
  if (unknown == 0) return Dim::known(known);
  if (known == 0) return Dim::known(0);
  if (unknown == 1 && known == 1) return other;
  return Dim{};
}

// Merges two dims that must be equal: prefers a known value, then a symbol.
inline Dim dim_merge(const Dim& a, const Dim& b) {
  if (a.is_known()) return a;
  if (b.is_known()) return b;
  if (a.is_symbol()) return a;
  return b;
}

// normalize_axis for ops that index a dim with the result: also rejects rank 0
// (normalize_axis accepts axis 0 of a scalar).
inline int64_t axis_in(int64_t axis, int64_t rank, const Node& node) {
  DEEPEP_CHECK(rank > 0, node.describe(), ": axis ", axis, " is out of range for a scalar");
  return normalize_axis(axis, rank, node);
}

// Index `idx` into an axis of length n, negative counting from the end.
inline int64_t norm_index(int64_t idx, int64_t n, const Node& node, const char* what) {
  int64_t j = idx < 0 ? idx + n : idx;
  DEEPEP_CHECK(j >= 0 && j < n, node.describe(), ": ", what, " index ", idx,
               " is out of range for an axis of size ", n);
  return j;
}

// All elements of an integer index tensor (int32 or int64) as int64.
inline std::vector<int64_t> index_values(const Tensor& t, const Node& node, const char* what) {
  std::vector<int64_t> v(size_t(t.numel()));
  if (t.dtype() == DType::kInt64) {
    if (!v.empty()) std::memcpy(v.data(), t.data<int64_t>(), v.size() * 8);
  } else if (t.dtype() == DType::kInt32) {
    const int32_t* p = t.data<int32_t>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = p[i];
  } else {
    DEEPEP_CHECK(dtype_is_int(t.dtype()), node.describe(), ": ", what,
                 " must be an integer tensor, got ", dtype_name(t.dtype()));
    for (size_t i = 0; i < v.size(); ++i) v[i] = t.get_int(int64_t(i));
  }
  return v;
}

// Calls f(out_index, in_offset) for every element of `out` in row-major order,
// where in_offset = base + sum(idx[d] * strides[d]) (strides may be 0 or negative).
template <class F>
void for_each_strided(const Shape& out, const std::vector<int64_t>& strides, int64_t base, F&& f) {
  const int64_t n = shape_numel(out);
  if (n == 0) return;
  const size_t rank = out.size();
  if (rank == 0) {
    f(int64_t(0), base);
    return;
  }
  const int64_t last = out[rank - 1], last_st = strides[rank - 1];
  std::vector<int64_t> idx(rank, 0);
  int64_t off = base;
  for (int64_t i = 0; i < n;) {
    int64_t o = off;
    for (int64_t j = 0; j < last; ++j, o += last_st) f(i++, o);
    for (size_t d = rank - 1; d-- > 0;) {
      if (++idx[d] < out[d]) {
        off += strides[d];
        break;
      }
      off -= strides[d] * (out[d] - 1);
      idx[d] = 0;
    }
  }
}

// out (contiguous, shape `shape`) = in viewed through `strides` from `base`.
inline void copy_strided(const Tensor& in, Tensor& out, const std::vector<int64_t>& strides,
                         int64_t base, const char* what) {
  dispatch_by_size(in.dtype(), what, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* src = in.data<T>();
    T* dst = out.data<T>();
    for_each_strided(out.shape(), strides, base, [&](int64_t i, int64_t o) { dst[i] = src[o]; });
  });
}

// Transposes `in` viewed as the contiguous shape `view` by `perm` into a new
// tensor of shape `out_shape` (whose element count must match).
inline Tensor transpose_view(const Tensor& in, const Shape& view, const std::vector<int64_t>& perm,
                             const Shape& out_shape, const char* what) {
  const std::vector<int64_t> st = strides_of(view);
  Shape permuted(perm.size());
  std::vector<int64_t> pst(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) {
    permuted[i] = view[size_t(perm[i])];
    pst[i] = st[size_t(perm[i])];
  }
  Tensor out(in.dtype(), permuted);
  copy_strided(in, out, pst, 0, what);
  return out.reshaped(out_shape);
}

// A tensor with `t`'s bytes and a new shape. Storage is shared unless `t` views
// memory it does not own (a caller's input buffer), which is copied so that an
// output never outlives the buffer it points into.
inline Tensor view_as(const Tensor& t, Shape shape) {
  if (t.owner()) return t.reshaped(std::move(shape));
  return t.clone().reshaped(std::move(shape));
}

// Reads a shape-like int list from input i (int64), checking it is 1-D or a scalar.
inline std::vector<int64_t> shape_input(const KernelContext& ctx, int i, const char* what) {
  const Tensor& t = ctx.input(i);
  DEEPEP_CHECK(t.rank() <= 1, ctx.node.describe(), ": ", what, " must be a 1-D tensor, got shape ",
               shape_str(t.shape()));
  DEEPEP_CHECK(dtype_is_int(t.dtype()), ctx.node.describe(), ": ", what,
               " must be an integer tensor, got ", dtype_name(t.dtype()));
  return t.to_int_vector();
}

}  // namespace deepep::ops::tensor_detail
