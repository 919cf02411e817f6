// Helpers shared by the reference kernels and shape inference of src/ops/.
#pragma once
#include <algorithm>
#include <array>
#include <optional>
#include <cmath>
#include <cstdint>
#include <vector>

#include "ir/dtype_dispatch.h"
#include "ir/op_registry.h"

namespace deepep::ops {

// Normalizes a possibly negative axis into [0, rank); throws naming the op.
int64_t normalize_axis(int64_t axis, int64_t rank, const Node& node);

// Row-major strides of a shape.
std::vector<int64_t> strides_of(const Shape& s);

// Numpy-style broadcast of concrete shapes; throws naming the op on mismatch.
Shape broadcast_shapes(const Shape& a, const Shape& b, const Node& node);
// Symbolic broadcast: equal dims stay, 1 yields the other, else unknown.
SymShape broadcast_sym(const SymShape& a, const SymShape& b);

// Strides of `in` viewed as broadcast into `out` (0 on broadcast dims).
std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out);

// `small` is `full`'s trailing dims behind leading 1s: full's elements in
// order meet small's as full[i] ~ small[i % numel] (SkipLayerNorm's skip).
bool periodic(const Shape& small, const Shape& full);

// Calls f(out_index, in_offset_0, in_offset_1, ...) for every element of
// `out`, with each input's offset under broadcasting. Inputs are shapes.
template <size_t N, class F>
void for_each_broadcast(const Shape& out, const std::array<Shape, N>& ins, F&& f) {
  const int64_t n = shape_numel(out);
  if (n == 0) return;
  const size_t rank = out.size();
  std::array<std::vector<int64_t>, N> st;
  for (size_t k = 0; k < N; ++k) st[k] = broadcast_strides(ins[k], out);
  std::vector<int64_t> idx(rank, 0);
  std::array<int64_t, N> off{};
  for (int64_t i = 0; i < n; ++i) {
    f(i, off);
    // Increment the multi-index, updating input offsets incrementally.
    for (size_t d = rank; d-- > 0;) {
      if (++idx[d] < out[d]) {
        for (size_t k = 0; k < N; ++k) off[k] += st[k][d];
        break;
      }
      for (size_t k = 0; k < N; ++k) off[k] -= st[k][d] * (out[d] - 1);
      idx[d] = 0;
    }
  }
}

// Reads an int list from input `i` if present, else from attribute `attr`.
// (Many ops moved an attribute to an input in a later opset.)
std::optional<std::vector<int64_t>> ints_from_input_or_attr(const KernelContext& ctx, int i,
                                                            const char* attr);

// Shape inference helpers used by many ops.
void infer_same_as_input(InferContext& ctx);        // out0 = in0's dtype and shape
void infer_broadcast(InferContext& ctx);            // out0 = broadcast of all inputs, dtype of in0
void infer_broadcast_bool(InferContext& ctx);       // same shape, dtype bool

}  // namespace deepep::ops
