// Tiled batched 2-D transpose (nhwc.h): 32x32 tiles through shared memory
// (padded against bank conflicts), reads and writes coalesced along the
// contiguous dimension of each side.
#include <algorithm>

#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/nhwc.h"

namespace deepep::cuda {
namespace {

constexpr int kTile = 32, kRowsPerPass = 8;

template <class T>
__global__ void transpose_tiles(const T* __restrict__ x, T* __restrict__ out, int64_t batch, int64_t rows, int64_t cols) {
  __shared__ T tile[kTile][kTile + 1];
  const int64_t c0 = int64_t(blockIdx.x) * kTile, r0 = int64_t(blockIdx.y) * kTile;
  for (int64_t b = blockIdx.z; b < batch; b += gridDim.z) {
    const T* xb = x + b * rows * cols;
    T* ob = out + b * rows * cols;
    for (int i = threadIdx.y; i < kTile; i += kRowsPerPass) {
      const int64_t r = r0 + i, c = c0 + threadIdx.x;
      if (r < rows && c < cols) tile[i][threadIdx.x] = xb[r * cols + c];
    }
    __syncthreads();
    for (int i = threadIdx.y; i < kTile; i += kRowsPerPass) {
      const int64_t c = c0 + i, r = r0 + threadIdx.x;  // out[c][r]
      if (c < cols && r < rows) ob[c * rows + r] = tile[threadIdx.x][i];
    }
    __syncthreads();
  }
}

template <class T>
void launch(const void* x, void* out, int64_t batch, int64_t rows, int64_t cols, cudaStream_t s) {
  const dim3 block(kTile, kRowsPerPass);
  const dim3 grid(unsigned((cols + kTile - 1) / kTile), unsigned((rows + kTile - 1) / kTile),
                  unsigned(std::min<int64_t>(batch, 65535)));
  transpose_tiles<T><<<grid, block, 0, s>>>(static_cast<const T*>(x), static_cast<T*>(out), batch, rows, cols);
}

}  // namespace

void transpose_batched(const void* x, void* out, int elem_bytes, int64_t batch, int64_t rows, int64_t cols,
                       cudaStream_t s) {
  if (batch == 0 || rows == 0 || cols == 0) return;
  switch (elem_bytes) {
    case 1: launch<uint8_t>(x, out, batch, rows, cols, s); break;
    case 2: launch<uint16_t>(x, out, batch, rows, cols, s); break;
    case 4: launch<uint32_t>(x, out, batch, rows, cols, s); break;
    default: launch<uint64_t>(x, out, batch, rows, cols, s); break;
  }
}

bool as_batched_transpose(const std::vector<int64_t>& shape, const std::vector<int64_t>& perm, int64_t* batch,
                          int64_t* rows, int64_t* cols) {
  const size_t r = shape.size();
  if (perm.size() != r) return false;
  // Output dims in order, as input dim indices, without size-1 dims.
  std::vector<int64_t> order;
  for (int64_t p : perm) {
    if (p < 0) p += int64_t(r);
    if (p < 0 || p >= int64_t(r)) return false;
    if (shape[size_t(p)] != 1) order.push_back(p);
  }
  // Groups of consecutive input dims that stay consecutive in the output.
  std::vector<std::pair<int64_t, int64_t>> groups;  // [first input dim, last]
  for (int64_t p : order) {
    if (!groups.empty()) {
      // next non-size-1 input dim after groups.back().second
      int64_t nx = groups.back().second + 1;
      while (nx < int64_t(r) && shape[size_t(nx)] == 1) ++nx;
      if (nx == p) {
        groups.back().second = p;
        continue;
      }
    }
    groups.push_back({p, p});
  }
  auto size_of = [&](const std::pair<int64_t, int64_t>& g) {
    int64_t n = 1;
    for (int64_t d = g.first; d <= g.second; ++d) n *= shape[size_t(d)];
    return n;
  };
  if (groups.size() == 2 && groups[0].first > groups[1].first) {  // [B, A] from input [A, B]
    *batch = 1, *rows = size_of(groups[1]), *cols = size_of(groups[0]);
    return true;
  }
  if (groups.size() == 3 && groups[0].first < groups[1].first && groups[1].first > groups[2].first &&
      groups[0].first < groups[2].first) {  // [P, B, A] from input [P, A, B]
    *batch = size_of(groups[0]), *rows = size_of(groups[2]), *cols = size_of(groups[1]);
    return true;
  }
  return false;
}

}  // namespace deepep::cuda
