// Shared helpers of the nn ops: a threaded, cache-blocked float GEMM (the
// engine of Conv, ConvTranspose, MatMul and Gemm), a plain GEMM for the other
// element types, and the spatial geometry (kernel, strides, pads, dilations,
// auto_pad) of the conv and pool ops.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ops/op_util.h"

namespace deepep::ops {

// Threads worth using for `work` multiply-adds (1 up to hardware_concurrency).
int threads_for_work(double work);
// Runs f(begin, end) over [0, n) in up to `threads` contiguous chunks, on the
// calling thread and std::threads. Exceptions of a chunk are rethrown.
void parallel_for(int64_t n, int threads, const std::function<void(int64_t, int64_t)>& f);

// C[M,N] = alpha * op(A) * op(B) + beta * C, all row-major with leading
// dimensions lda/ldb/ldc. op(A) is M x K (A is K x M when trans_a). beta == 0
// overwrites C (NaNs in C do not propagate). threads <= 0 picks by size.
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
           int threads = 0);

// The accumulator of the plain GEMM: double for double, float for the 16-bit
// floats and float, and wrapping 64-bit integers for the integer types (the
// result is cast back, which is the wraparound numpy gives).
template <class T>
using acc_t = std::conditional_t<
    std::is_same_v<T, double>, double,
    std::conditional_t<is_floating_v<T>, float,
                       std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>>>;

// Plain GEMM for any element type: calls store(i, j, acc) with the dot
// product of row i of op(A) and column j of op(B), accumulated in Acc.
// Integer accumulation wraps (computed in uint64_t).
template <class Acc, class TA, class TB, class Store>
void gemm_generic(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const TA* A,
                  int64_t lda, const TB* B, int64_t ldb, Store&& store) {
  using W = std::conditional_t<std::is_integral_v<Acc>, uint64_t, Acc>;
  auto cv = [](auto v) -> W {
    if constexpr (std::is_integral_v<Acc>) return W(int64_t(v));  // sign-extends, then wraps
    else return W(v);
  };
  std::vector<W> b(static_cast<size_t>(K * N));
  for (int64_t k = 0; k < K; ++k)
    for (int64_t j = 0; j < N; ++j) b[k * N + j] = cv(trans_b ? B[j * ldb + k] : B[k * ldb + j]);
  std::vector<W> row(static_cast<size_t>(N));
  for (int64_t i = 0; i < M; ++i) {
    std::fill(row.begin(), row.end(), W(0));
    for (int64_t k = 0; k < K; ++k) {
      const W a = cv(trans_a ? A[k * lda + i] : A[i * lda + k]);
      const W* bk = b.data() + k * N;
      for (int64_t j = 0; j < N; ++j) row[j] += a * bk[j];
    }
    for (int64_t j = 0; j < N; ++j) store(i, j, Acc(row[j]));
  }
}

// float copies of float16/bfloat16 data (and the way back).
template <class T>
std::vector<float> to_float_vec(const T* p, int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = float(p[i]);
  return v;
}

// Spatial geometry of a conv or pool node on a concrete input.
struct SpatialGeom {
  int nd = 0;                          // spatial dims
  std::vector<int64_t> in, k, s, d;    // input size, kernel, strides, dilations
  std::vector<int64_t> pb, pe, out;    // pads at begin/end, output size
  int64_t in_size() const;             // prod(in)
  int64_t out_size() const;            // prod(out)
  int64_t k_size() const;              // prod(k)
};

// Reads strides/dilations/pads/auto_pad of a Conv-like node (output sizes by
// the conv formula, SAME_* splitting the total pad). kernel: the kernel's
// spatial dims (from W, checked against kernel_shape). ceil_mode: pools.
SpatialGeom conv_geometry(const Node& node, const Shape& in_spatial, const std::vector<int64_t>& kernel,
                          bool ceil_mode = false);

// im2col over up to 3 spatial dims: col[(c, k...), (o...)] for `channels`
// planes of x; zeros where the window leaves the input.
template <class T>
void im2col(const T* x, int64_t channels, const SpatialGeom& g, T* col);
// col2im: the transpose, accumulating into y (which the caller zeroes).
template <class T>
void col2im(const T* col, int64_t channels, const SpatialGeom& g, T* y);

// Bytes a node moves, counting 4-byte elements (cost functions see shapes only).
inline double bytes_moved(const std::vector<Shape>& in, const std::vector<Shape>& out) {
  double n = 0;
  for (const Shape& s : in) n += double(shape_numel(s));
  for (const Shape& s : out) n += double(shape_numel(s));
  return 4.0 * n;
}

// Symbolic output shape [N, C, out...] when the input spatial dims are known.
std::optional<SymShape> conv_like_shape(const InferContext& ctx, const Dim& channels,
                                        const std::vector<int64_t>& kernel, bool ceil_mode = false);

}  // namespace deepep::ops
