// Device helpers shared by the .cu files: loads and stores by dtype code,
// broadcast indexing, launch geometry.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "kernels/cuda/launch.h"

namespace deepep::cuda {

// Programmatic dependent launch (compute capability >= 9.0): a kernel started
// by launch_pdl may begin while the kernel before it on the stream finishes.
// pdl_wait() blocks until that kernel has completed and its writes are
// visible (it returns at once for a kernel launched plainly): nothing the
// previous kernel writes, or reads, may be touched before it. pdl_trigger()
// lets the next PDL-launched kernel start before this one ends.
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" :::);
#endif
}
// Whether launch_pdl uses it: the current device's compute capability >= 9.0
// and DEEPEP_CUDA_PDL is not 0 (A/B).
bool pdl_enabled();
// kernel<<<grid, block, smem, s>>>(args...), with programmatic stream
// serialization where pdl_enabled().
template <class... Params, class... Args>
void launch_pdl(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t s, Args... args) {
  if (!pdl_enabled()) {
    kernel<<<grid, block, smem, s>>>(args...);
    return;
  }
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid, cfg.blockDim = block, cfg.dynamicSmemBytes = smem, cfg.stream = s;
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = &attr, cfg.numAttrs = 1;
  cudaLaunchKernelEx(&cfg, kernel, args...);  // errors surface through cudaGetLastError, as for <<<>>>
}

enum : int { kF32 = 1, kU8 = 2, kI8 = 3, kI32 = 6, kI64 = 7, kBool = 9, kF16 = 10, kF64 = 11, kBF16 = 16 };

__device__ __forceinline__ float ldf(const void* p, int t, int64_t i) {
  switch (t) {
    case kF32: return static_cast<const float*>(p)[i];
    case kF16: return __half2float(static_cast<const __half*>(p)[i]);
    case kBF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    case kI64: return float(static_cast<const int64_t*>(p)[i]);
    case kI32: return float(static_cast<const int32_t*>(p)[i]);
    case kBool:
    case kU8: return float(static_cast<const uint8_t*>(p)[i]);
    case kI8: return float(static_cast<const int8_t*>(p)[i]);
    case kF64: return float(static_cast<const double*>(p)[i]);
  }
  return 0.f;
}
__device__ __forceinline__ double ldd(const void* p, int t, int64_t i) {
  switch (t) {
    case kI64: return double(static_cast<const int64_t*>(p)[i]);
    case kI32: return double(static_cast<const int32_t*>(p)[i]);
    case kF64: return static_cast<const double*>(p)[i];
    default: return double(ldf(p, t, i));
  }
}
__device__ __forceinline__ int64_t ldi(const void* p, int t, int64_t i) {
  switch (t) {
    case kI64: return static_cast<const int64_t*>(p)[i];
    case kI32: return static_cast<const int32_t*>(p)[i];
    case kBool:
    case kU8: return static_cast<const uint8_t*>(p)[i];
    case kI8: return static_cast<const int8_t*>(p)[i];
    default: return int64_t(ldd(p, t, i));
  }
}
__device__ __forceinline__ void stf(void* p, int t, int64_t i, float v) {
  switch (t) {
    case kF32: static_cast<float*>(p)[i] = v; break;
    case kF16: static_cast<__half*>(p)[i] = __float2half_rn(v); break;
    case kBF16: static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v); break;
    case kF64: static_cast<double*>(p)[i] = v; break;
    case kI64: static_cast<int64_t*>(p)[i] = int64_t(v); break;
    case kI32: static_cast<int32_t*>(p)[i] = int32_t(v); break;
    case kBool: static_cast<uint8_t*>(p)[i] = v != 0.f; break;
    case kU8: static_cast<uint8_t*>(p)[i] = uint8_t(v); break;
    case kI8: static_cast<int8_t*>(p)[i] = int8_t(v); break;
  }
}
__device__ __forceinline__ void sti(void* p, int t, int64_t i, int64_t v) {
  switch (t) {
    case kI64: static_cast<int64_t*>(p)[i] = v; break;
    case kI32: static_cast<int32_t*>(p)[i] = int32_t(v); break;
    case kBool: static_cast<uint8_t*>(p)[i] = v != 0; break;
    case kU8: static_cast<uint8_t*>(p)[i] = uint8_t(v); break;
    case kI8: static_cast<int8_t*>(p)[i] = int8_t(v); break;
    case kF64: static_cast<double*>(p)[i] = double(v); break;
    default: stf(p, t, i, float(v));
  }
}
__host__ __device__ __forceinline__ bool is_int_type(int t) { return t == kI64 || t == kI32 || t == kU8 || t == kI8; }

// Offsets of up to `ops` operands for output element `i`.
template <int OPS>
__device__ __forceinline__ void offsets(const Indexer& ix, int64_t i, int64_t (&off)[OPS]) {
#pragma unroll
  for (int o = 0; o < OPS; ++o) off[o] = 0;
  for (int d = ix.rank - 1; d >= 0; --d) {
    const int64_t dim = ix.dims[d];
    const int64_t c = i % dim;
    i /= dim;
#pragma unroll
    for (int o = 0; o < OPS; ++o) off[o] += c * ix.strides[o][d];
  }
}

inline unsigned blocks_for(int64_t n, int threads) {
  int64_t b = (n + threads - 1) / threads;
  if (b > 65535LL * 8) b = 65535LL * 8;  // grid-stride loops cover the rest
  return unsigned(b < 1 ? 1 : b);
}

#define DEEPEP_GRID_STRIDE(i, n) \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

}  // namespace deepep::cuda
