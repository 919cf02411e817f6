// Batched 2-D transpose (nhwc.h). Shapes decide the kernel:
//  * rows <= 16 (an NCHW image with 3 channels -> NHWC): one thread per
//    output row of `rows` elements; reads coalesced across threads, each
//    thread's writes contiguous (a warp writes 32 * rows consecutive elements);
//  * cols <= 16: the mirror image;
//  * 2-byte elements, even rows and cols: 64x64 tiles through shared memory
//    with 32-bit loads and stores of element pairs;
//  * otherwise 32x32 tiles through shared memory (padded against bank
//    conflicts). Tiles loop over rows past the grid's y limit.
#include <algorithm>

#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/nhwc.h"

namespace deepep::cuda {
namespace {

constexpr int kTile = 32, kRowsPerPass = 8, kNarrow = 16;

template <class T>
__global__ void transpose_tiles(const T* __restrict__ x, T* __restrict__ out, int64_t batch, int64_t rows, int64_t cols) {
  __shared__ T tile[kTile][kTile + 1];
  const int64_t c0 = int64_t(blockIdx.x) * kTile;
  const int64_t ytiles = (rows + kTile - 1) / kTile;
  for (int64_t b = blockIdx.z; b < batch; b += gridDim.z) {
    const T* xb = x + b * rows * cols;
    T* ob = out + b * rows * cols;
    for (int64_t yt = blockIdx.y; yt < ytiles; yt += gridDim.y) {
      const int64_t r0 = yt * kTile;
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
}

// 2-byte elements, rows and cols even: 64x64 tiles, element pairs as 32-bit
// words in global memory. Shared rows of 65 halves: conflict-free both ways.
__global__ void transpose_pairs16(const uint16_t* __restrict__ x, uint16_t* __restrict__ out, int64_t batch,
                                  int64_t rows, int64_t cols) {
  constexpr int T2 = 2 * kTile;
  __shared__ uint16_t tile[T2][T2 + 1];
  const int64_t c0 = int64_t(blockIdx.x) * T2;
  const int64_t ytiles = (rows + T2 - 1) / T2;
  for (int64_t b = blockIdx.z; b < batch; b += gridDim.z) {
    const uint16_t* xb = x + b * rows * cols;
    uint16_t* ob = out + b * rows * cols;
    for (int64_t yt = blockIdx.y; yt < ytiles; yt += gridDim.y) {
      const int64_t r0 = yt * T2;
      for (int i = threadIdx.y; i < T2; i += kRowsPerPass) {
        const int64_t r = r0 + i, c = c0 + 2 * threadIdx.x;
        if (r < rows && c < cols) {
          const uint32_t v = *reinterpret_cast<const uint32_t*>(xb + r * cols + c);
          tile[i][2 * threadIdx.x] = uint16_t(v & 0xFFFFu);
          tile[i][2 * threadIdx.x + 1] = uint16_t(v >> 16);
        }
      }
      __syncthreads();
      for (int j = threadIdx.y; j < T2; j += kRowsPerPass) {
        const int64_t c = c0 + j, r = r0 + 2 * threadIdx.x;  // out[c][r], out[c][r + 1]
        if (c < cols && r < rows) {
          const uint32_t v = uint32_t(tile[2 * threadIdx.x][j]) | (uint32_t(tile[2 * threadIdx.x + 1][j]) << 16);
          *reinterpret_cast<uint32_t*>(ob + c * rows + r) = v;
        }
      }
      __syncthreads();
    }
  }
}

// rows <= kNarrow: thread (b, c) writes out[b][c][0..rows).
template <class T>
__global__ void transpose_narrow_rows(const T* __restrict__ x, T* __restrict__ out, int64_t batch, int64_t rows,
                                      int64_t cols) {
  const int64_t n = batch * cols;
  DEEPEP_GRID_STRIDE(i, n) {
    const int64_t b = i / cols, c = i - b * cols;
    const T* xb = x + b * rows * cols + c;
    T* o = out + i * rows;
    for (int64_t r = 0; r < rows; ++r) o[r] = xb[r * cols];
  }
}

// cols <= kNarrow: thread (b, r) reads x[b][r][0..cols).
template <class T>
__global__ void transpose_narrow_cols(const T* __restrict__ x, T* __restrict__ out, int64_t batch, int64_t rows,
                                      int64_t cols) {
  const int64_t n = batch * rows;
  DEEPEP_GRID_STRIDE(i, n) {
    const int64_t b = i / rows, r = i - b * rows;
    const T* xr = x + i * cols;
    T* ob = out + b * rows * cols + r;
    for (int64_t c = 0; c < cols; ++c) ob[c * rows] = xr[c];
  }
}

template <class T>
void launch(const void* x, void* out, int64_t batch, int64_t rows, int64_t cols, cudaStream_t s) {
  const T* xs = static_cast<const T*>(x);
  T* os = static_cast<T*>(out);
  if (rows <= kNarrow) {
    transpose_narrow_rows<T><<<blocks_for(batch * cols, 256), 256, 0, s>>>(xs, os, batch, rows, cols);
    return;
  }
  if (cols <= kNarrow) {
    transpose_narrow_cols<T><<<blocks_for(batch * rows, 256), 256, 0, s>>>(xs, os, batch, rows, cols);
    return;
  }
  const dim3 block(kTile, kRowsPerPass);
  const auto aligned4 = [](const void* p) { return (reinterpret_cast<uintptr_t>(p) & 3) == 0; };
  if (sizeof(T) == 2 && rows % 2 == 0 && cols % 2 == 0 && aligned4(x) && aligned4(out)) {
    const dim3 grid(unsigned((cols + 2 * kTile - 1) / (2 * kTile)),
                    unsigned(std::min<int64_t>((rows + 2 * kTile - 1) / (2 * kTile), 65535)),
                    unsigned(std::min<int64_t>(batch, 65535)));
    transpose_pairs16<<<grid, block, 0, s>>>(static_cast<const uint16_t*>(x), static_cast<uint16_t*>(out), batch, rows,
                                             cols);
    return;
  }
  const dim3 grid(unsigned((cols + kTile - 1) / kTile), unsigned(std::min<int64_t>((rows + kTile - 1) / kTile, 65535)),
                  unsigned(std::min<int64_t>(batch, 65535)));
  transpose_tiles<T><<<grid, block, 0, s>>>(xs, os, batch, rows, cols);
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
  // Output dims in order, as input dim indices, without size-1 dims; not a
  // permutation (an index twice or out of range): not this kernel's case.
  std::vector<int64_t> order;
  std::vector<char> seen(r, 0);
  for (int64_t p : perm) {
    if (p < 0) p += int64_t(r);
    if (p < 0 || p >= int64_t(r) || seen[size_t(p)]) return false;
    seen[size_t(p)] = 1;
    if (shape[size_t(p)] != 1) order.push_back(p);
  }
  // Groups of consecutive input dims that stay consecutive in the output.
  std::vector<std::pair<int64_t, int64_t>> groups;  // [first input dim, last]
  for (int64_t p : order) {
    if (!groups.empty()) {
      int64_t nx = groups.back().second + 1;  // the next input dim of size > 1
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
  if (groups.size() == 3 && groups[0].first < groups[2].first && groups[2].first < groups[1].first) {
    // [P, B, A] from input [P, A, B]
    *batch = size_of(groups[0]), *rows = size_of(groups[2]), *cols = size_of(groups[1]);
    return true;
  }
  return false;
}

}  // namespace deepep::cuda
