// Tiled fused attention (flash-style online softmax) for head sizes <= 128.
// One block of 256 threads per (batch, head, 64 query rows): Q tile in
// shared memory, then for each 64-key tile K and V in shared memory, scores
// for the block's rows, mask, running max / sum per row, and the weighted
// sum of V accumulated in registers (4 threads per row, each owning every
// 4th output column). Float32 math; Q/K/V/Y of any float dtype.
#include <cfloat>
#include <cstdlib>
#include <cstring>

#include "kernels/cuda/device_util.cuh"

namespace deepep::cuda {
namespace {

constexpr int kTQ = 64, kTK = 64, kThreads = 256, kMaxHead = 128;
constexpr int kKeysPerThread = kTK / 4;  // 16

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }

__host__ __device__ inline size_t tiled_smem_floats(int64_t D, int64_t Dv) {
  return size_t(kTQ * (D + 1) + kTK * (D + 1) + kTK * Dv + kTQ * (kTK + 1));
}

// T: the dtype of Q, K and V; kCols: output columns per thread (Dv <= 4 * kCols).
template <class T, int kColsPerThread>
__global__ void __launch_bounds__(kThreads) attention_tiled_kernel(AttnArgs a) {
  const T* q = static_cast<const T*>(a.q);
  const T* kp = static_cast<const T*>(a.k);
  const T* vp = static_cast<const T*>(a.v);
  extern __shared__ float sm[];
  const int D = int(a.D), Dv = int(a.Dv);
  float* Qs = sm;                  // kTQ x (D+1)
  float* Ks = Qs + kTQ * (D + 1);  // kTK x (D+1)
  float* Vs = Ks + kTK * (D + 1);  // kTK x Dv
  float* Ps = Vs + kTK * Dv;       // kTQ x (kTK+1)
  const int64_t qtiles = (a.Sq + kTQ - 1) / kTQ;
  const int64_t bh = blockIdx.x / qtiles, qt = blockIdx.x % qtiles;
  const int64_t b = bh / a.H, h = bh % a.H;
  const int64_t r0 = qt * kTQ;
  const int64_t qo = b * a.q_sb + h * a.q_sh;
  const int64_t ko = b * a.k_sb + h * a.k_sh;
  const int64_t vo = b * a.v_sb + h * a.v_sh;
  for (int i = threadIdx.x; i < kTQ * D; i += kThreads) {
    const int r = i / D, d = i % D;
    Qs[r * (D + 1) + d] = r0 + r < a.Sq ? to_f(q[qo + (r0 + r) * a.q_ld + d]) * a.scale : 0.f;
  }
  const int r = threadIdx.x >> 2;  // row of the tile
  const int g = threadIdx.x & 3;   // this thread's keys g, g+4, ...; columns g, g+4, ...
  const int64_t row = r0 + r;
  const int64_t mo = b * a.m_sb + h * a.m_sh + (row < a.Sq ? row : 0) * a.m_sq;
  float m = -INFINITY, l = 0.f;
  float acc[kColsPerThread];
#pragma unroll
  for (int j = 0; j < kColsPerThread; ++j) acc[j] = 0.f;
  for (int64_t k0 = 0; k0 < a.Sk; k0 += kTK) {
    __syncthreads();  // the previous tile's K, V (and Q on the first pass) are settled
    for (int i = threadIdx.x; i < kTK * D; i += kThreads) {
      const int k = i / D, d = i % D;
      const int64_t kk = k0 + k;
      float v = 0.f;
      if (kk < a.Sk) v = to_f(kp[a.k_t ? ko + int64_t(d) * a.k_ld + kk : ko + kk * a.k_ld + d]);
      Ks[k * (D + 1) + d] = v;
    }
    for (int i = threadIdx.x; i < kTK * Dv; i += kThreads) {
      const int k = i / Dv, d = i % Dv;
      const int64_t kk = k0 + k;
      Vs[i] = kk < a.Sk ? to_f(vp[vo + kk * a.v_ld + d]) : 0.f;
    }
    __syncthreads();
    float s[kKeysPerThread];
#pragma unroll
    for (int i = 0; i < kKeysPerThread; ++i) s[i] = 0.f;
    for (int d = 0; d < D; ++d) {
      const float q = Qs[r * (D + 1) + d];
#pragma unroll
      for (int i = 0; i < kKeysPerThread; ++i) s[i] += q * Ks[(g + 4 * i) * (D + 1) + d];
    }
    float tmax = -INFINITY;
#pragma unroll
    for (int i = 0; i < kKeysPerThread; ++i) {
      const int64_t kk = k0 + g + 4 * i;
      if (kk >= a.Sk) {
        s[i] = -INFINITY;
        continue;
      }
      if (a.mask) {
        if (a.mask_mode == 0) s[i] += ldf(a.mask, a.tmask, mo + kk * a.m_sk);
        else {
          const bool keep = static_cast<const uint8_t*>(a.mask)[mo + kk * a.m_sk] != 0;
          if (keep != (a.mask_mode == 1)) s[i] = a.mask_fill;
        }
      }
      tmax = fmaxf(tmax, s[i]);
    }
    tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
    tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 2));
    const float mnew = fmaxf(m, tmax);
    // All scores so far -inf: nothing to add yet (p = 0), no rescale.
    const bool none = mnew == -INFINITY;
    const float corr = none ? 1.f : __expf(m - mnew);
    float psum = 0.f;
#pragma unroll
    for (int i = 0; i < kKeysPerThread; ++i) {
      const float p = none ? 0.f : __expf(s[i] - mnew);
      Ps[r * (kTK + 1) + g + 4 * i] = p;
      psum += p;
    }
    psum += __shfl_xor_sync(0xffffffffu, psum, 1);
    psum += __shfl_xor_sync(0xffffffffu, psum, 2);
    l = l * corr + psum;
    m = mnew;
#pragma unroll
    for (int j = 0; j < kColsPerThread; ++j) acc[j] *= corr;
    __syncwarp();  // the row's P values come from the 4 threads of this warp
    const int kmax = int(a.Sk - k0 < kTK ? a.Sk - k0 : kTK);
    for (int k = 0; k < kmax; ++k) {
      const float p = Ps[r * (kTK + 1) + k];
      const float* vrow = Vs + k * Dv;
#pragma unroll
      for (int j = 0; j < kColsPerThread; ++j) {
        const int d = g + 4 * j;
        if (d < Dv) acc[j] += p * vrow[d];
      }
    }
  }
  if (row >= a.Sq) return;
  // A row with every score -inf has l = 0: 0/0 = NaN, as the reference gives.
  const float inv = 1.f / l;
  const int64_t yo = b * a.y_sb + h * a.y_sh + row * a.y_ld;
#pragma unroll
  for (int j = 0; j < kColsPerThread; ++j) {
    const int d = g + 4 * j;
    if (d < Dv) stf(a.y, a.ty, yo + d, l > 0.f ? acc[j] * inv : NAN);
  }
}

// Float16 with head sizes multiples of 16 (<= 128) runs on tensor cores
// (attention_mma.cu) unless DEEPEP_CUDA_ATTENTION=tiled.
bool mma_chosen(const AttnArgs& a) {
  const char* v = std::getenv("DEEPEP_CUDA_ATTENTION");
  return !(v && std::strcmp(v, "tiled") == 0) && attention_mma_fits(a);
}

bool tiled(const AttnArgs& a) {
  return a.D <= kMaxHead && a.Dv <= kMaxHead && a.D > 0 && (a.t == kF32 || a.t == kF16);
}

template <class T, int kCols>
void launch_tiled(const AttnArgs& a, int64_t blocks, size_t smem, cudaStream_t s) {
  // First use of a size happens on an eager (uncaptured) run.
  static size_t raised = 48 * 1024;
  if (smem > raised) {
    cudaFuncSetAttribute(attention_tiled_kernel<T, kCols>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    raised = smem;
  }
  attention_tiled_kernel<T, kCols><<<unsigned(blocks), kThreads, smem, s>>>(a);
}

}  // namespace

size_t attention_smem_bytes(const AttnArgs& a) {
  if (mma_chosen(a)) return attention_mma_smem_bytes(a);
  return tiled(a) ? tiled_smem_floats(a.D, a.Dv) * sizeof(float) : attention_rowwise_smem_bytes(a);
}

size_t attention_workspace_bytes(const AttnArgs& a) { return mma_chosen(a) ? attention_mma_workspace_bytes(a) : 0; }

void attention(const AttnArgs& a, cudaStream_t s) {
  if (mma_chosen(a)) return attention_mma(a, s);
  if (!tiled(a)) return attention_rowwise(a, s);
  const int64_t blocks = a.B * a.H * ((a.Sq + kTQ - 1) / kTQ);
  if (blocks == 0 || a.Dv == 0) return;
  const size_t smem = attention_smem_bytes(a);
  const bool narrow = a.Dv <= 64;  // half the accumulators: fewer registers, more blocks per SM
  if (a.t == kF16) {
    if (narrow) launch_tiled<__half, 16>(a, blocks, smem, s);
    else launch_tiled<__half, 32>(a, blocks, smem, s);
  } else {
    if (narrow) launch_tiled<float, 16>(a, blocks, smem, s);
    else launch_tiled<float, 32>(a, blocks, smem, s);
  }
}

}  // namespace deepep::cuda
