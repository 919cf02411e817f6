// Channels-last helpers of the CUDA backend: a tiled batched 2-D transpose
// (Transpose [0,2,3,1] / [0,3,1,2] and every permutation that collapses to a
// swap of two adjacent dimension groups), used at the boundaries of NHWC
// regions (the input image, around pooling) and by the NHWC convolution's
// fallback path.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

namespace deepep::cuda {

// x viewed as [batch, rows, cols] -> out [batch, cols, rows]; elem_bytes 1, 2, 4 or 8.
void transpose_batched(const void* x, void* out, int elem_bytes, int64_t batch, int64_t rows, int64_t cols,
                       cudaStream_t s);

// Collapses `perm` over `shape` (merging dims that stay adjacent and dropping
// size-1 dims); true when the result is a swap of two adjacent groups, i.e. a
// batched 2-D transpose: then batch, rows, cols are set.
bool as_batched_transpose(const std::vector<int64_t>& shape, const std::vector<int64_t>& perm, int64_t* batch,
                          int64_t* rows, int64_t* cols);

}  // namespace deepep::cuda
