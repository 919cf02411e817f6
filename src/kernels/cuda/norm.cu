// Row kernels: Softmax, LayerNorm / SkipLayerNorm / RMSNorm, fused attention,
// pooling and row means. Statistics and accumulations in float.
#include <cfloat>

#include "kernels/cuda/device_util.cuh"

namespace deepep::cuda {
namespace {

constexpr int kRowThreads = 256;

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
// Block-wide reduction (blockDim.x a multiple of 32, at most 1024).
template <bool kMax>
__device__ float block_reduce(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = kMax ? warp_max(v) : warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous reduction
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float r = lane < warps ? scratch[lane] : (kMax ? -FLT_MAX : 0.f);
  if (warp == 0) r = kMax ? warp_max(r) : warp_sum(r);
  if (threadIdx.x == 0) scratch[32] = r;
  __syncthreads();
  return scratch[32];
}

__global__ void softmax_kernel(const void* x, int tx, void* out, int64_t cols, bool log) {
  __shared__ float scratch[33];
  const int64_t base = int64_t(blockIdx.x) * cols;
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) mx = fmaxf(mx, ldf(x, tx, base + j));
  mx = block_reduce<true>(mx == -INFINITY ? -FLT_MAX : mx, scratch);
  // A row of -inf: every exp is NaN (as the reference's exp(-inf - -inf)).
  float sum = 0.f;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) sum += __expf(ldf(x, tx, base + j) - mx);
  sum = block_reduce<false>(sum, scratch);
  const float inv = 1.f / sum, lsum = logf(sum);
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    const float v = ldf(x, tx, base + j) - mx;
    stf(out, tx, base + j, log ? v - lsum : __expf(v) * inv);
  }
}

__global__ void layer_norm_kernel(NormArgs a) {
  __shared__ float scratch[33];
  const int64_t row = blockIdx.x;
  const int64_t base = row * a.cols;
  const int64_t sbase = a.skip_rows ? (row % a.skip_rows) * a.cols : 0;
  auto val = [&](int64_t j) {
    float v = ldf(a.x, a.tx, base + j);
    if (a.skip_rows) v += ldf(a.skip, a.tskip, sbase + j);
    return v;
  };
  float mean = 0.f;
  if (!a.rms) {
    float s = 0.f;
    for (int64_t j = threadIdx.x; j < a.cols; j += blockDim.x) s += val(j);
    mean = block_reduce<false>(s, scratch) / float(a.cols);
  }
  float q = 0.f;
  for (int64_t j = threadIdx.x; j < a.cols; j += blockDim.x) {
    const float d = val(j) - mean;
    q += d * d;
  }
  const float var = block_reduce<false>(q, scratch) / float(a.cols);
  const float rstd = rsqrtf(var + a.eps);
  for (int64_t j = threadIdx.x; j < a.cols; j += blockDim.x) {
    const float v = val(j);
    if (a.sum_out) stf(a.sum_out, a.ty, base + j, v);
    float y = (v - mean) * rstd;
    if (a.gamma) y *= ldf(a.gamma, a.tparam, j);
    if (a.beta) y += ldf(a.beta, a.tparam, j);
    stf(a.y, a.ty, base + j, y);
  }
}

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
__device__ __forceinline__ void from_f(float v, float* p) { *p = v; }
__device__ __forceinline__ void from_f(float v, __half* p) { *p = __float2half_rn(v); }

// LayerNorm with the row held in registers (kVpt values per thread, 128
// threads): one read of x (and skip), typed loads, for rows up to 128 * kVpt.
constexpr int kLnThreads = 128;
template <class T, int kVpt>
__global__ void __launch_bounds__(kLnThreads) layer_norm_regs_kernel(NormArgs a) {
  __shared__ float scratch[33];
  const T* x = static_cast<const T*>(a.x);
  const T* skip = static_cast<const T*>(a.skip);
  const T* gamma = static_cast<const T*>(a.gamma);
  const T* beta = static_cast<const T*>(a.beta);
  T* y = static_cast<T*>(a.y);
  T* sum_out = static_cast<T*>(a.sum_out);
  const int64_t row = blockIdx.x;
  const int64_t base = row * a.cols;
  const int64_t sbase = a.skip_rows ? (row % a.skip_rows) * a.cols : 0;
  float v[kVpt];
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < kVpt; ++i) {
    const int64_t j = threadIdx.x + int64_t(i) * kLnThreads;
    v[i] = 0.f;
    if (j < a.cols) {
      v[i] = to_f(x[base + j]);
      if (a.skip_rows) v[i] += to_f(skip[sbase + j]);
      s += v[i];
    }
  }
  const float mean = a.rms ? 0.f : block_reduce<false>(s, scratch) / float(a.cols);
  float q = 0.f;
#pragma unroll
  for (int i = 0; i < kVpt; ++i) {
    const int64_t j = threadIdx.x + int64_t(i) * kLnThreads;
    if (j < a.cols) q += (v[i] - mean) * (v[i] - mean);
  }
  const float rstd = rsqrtf(block_reduce<false>(q, scratch) / float(a.cols) + a.eps);
#pragma unroll
  for (int i = 0; i < kVpt; ++i) {
    const int64_t j = threadIdx.x + int64_t(i) * kLnThreads;
    if (j >= a.cols) continue;
    if (sum_out) from_f(v[i], sum_out + base + j);
    float o = (v[i] - mean) * rstd;
    if (gamma) o *= to_f(gamma[j]);
    if (beta) o += to_f(beta[j]);
    from_f(o, y + base + j);
  }
}

// LayerNorm with one warp per row, 16-byte loads and stores, statistics by
// warp shuffles only (no block barriers): for rows of up to 32 * kChunks
// vectors with 16-byte aligned rows (BERT / GPT-2's 768 float16 values: 3
// vectors a lane). 4 rows a block.
constexpr int kLnWarpRows = 4;
template <class T, int kChunks>
__global__ void __launch_bounds__(kLnWarpRows * 32) layer_norm_warp_kernel(NormArgs a) {
  constexpr int kV = 16 / sizeof(T);
  const int64_t row = int64_t(blockIdx.x) * kLnWarpRows + (threadIdx.x >> 5);
  if (row >= a.rows) return;
  const int lane = threadIdx.x & 31;
  const int64_t base = row * a.cols;
  const int64_t sbase = a.skip_rows ? (row % a.skip_rows) * a.cols : 0;
  const T* x = static_cast<const T*>(a.x) + base;
  const T* skip = a.skip_rows ? static_cast<const T*>(a.skip) + sbase : nullptr;
  const T* gamma = static_cast<const T*>(a.gamma);
  const T* beta = static_cast<const T*>(a.beta);
  // gamma and beta are loaded first: their latency then overlaps the row's loads and reductions (and, when
  // they are weights, the end of the kernel before).
  if (!a.params_fixed) pdl_wait();
  uint4 g[kChunks], b[kChunks];
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    const int64_t col = int64_t(c * 32 + lane) * kV;
    if (col >= a.cols) continue;
    if (gamma) g[c] = *reinterpret_cast<const uint4*>(gamma + col);
    if (beta) b[c] = *reinterpret_cast<const uint4*>(beta + col);
  }
  pdl_wait();  // x and skip come from the kernel before
  float v[kChunks][kV];
  float s = 0.f;
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    const int64_t col = int64_t(c * 32 + lane) * kV;
    if (col >= a.cols) continue;
    uint4 raw = *reinterpret_cast<const uint4*>(x + col);
    const T* xv = reinterpret_cast<const T*>(&raw);
#pragma unroll
    for (int i = 0; i < kV; ++i) v[c][i] = to_f(xv[i]);
    if (skip) {
      raw = *reinterpret_cast<const uint4*>(skip + col);
#pragma unroll
      for (int i = 0; i < kV; ++i) v[c][i] += to_f(xv[i]);
    }
#pragma unroll
    for (int i = 0; i < kV; ++i) s += v[c][i];
  }
  const float mean = a.rms ? 0.f : warp_sum(s) / float(a.cols);
  float q = 0.f;
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    if (int64_t(c * 32 + lane) * kV >= a.cols) continue;
#pragma unroll
    for (int i = 0; i < kV; ++i) q += (v[c][i] - mean) * (v[c][i] - mean);
  }
  const float rstd = rsqrtf(warp_sum(q) / float(a.cols) + a.eps);
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    const int64_t col = int64_t(c * 32 + lane) * kV;
    if (col >= a.cols) continue;
    uint4 out;
    T* ov = reinterpret_cast<T*>(&out);
    if (a.sum_out) {
#pragma unroll
      for (int i = 0; i < kV; ++i) from_f(v[c][i], ov + i);
      *reinterpret_cast<uint4*>(static_cast<T*>(a.sum_out) + base + col) = out;
    }
#pragma unroll
    for (int i = 0; i < kV; ++i) {
      float o = (v[c][i] - mean) * rstd;
      if (gamma) o *= to_f(reinterpret_cast<const T*>(&g[c])[i]);
      if (beta) o += to_f(reinterpret_cast<const T*>(&b[c])[i]);
      from_f(o, ov + i);
    }
    *reinterpret_cast<uint4*>(static_cast<T*>(a.y) + base + col) = out;
  }
}

template <class T>
bool layer_norm_warp(const NormArgs& a, cudaStream_t st) {
  constexpr int kV = 16 / sizeof(T);
  const auto misaligned = [](const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) != 0; };
  if (a.cols % kV || misaligned(a.x) || misaligned(a.y) || (a.skip_rows && misaligned(a.skip)) ||
      (a.gamma && misaligned(a.gamma)) || (a.beta && misaligned(a.beta)) || (a.sum_out && misaligned(a.sum_out)))
    return false;
  const int64_t chunks = (a.cols / kV + 31) / 32;
  const unsigned g = unsigned((a.rows + kLnWarpRows - 1) / kLnWarpRows);
  constexpr unsigned t = kLnWarpRows * 32;
  if (chunks == 1) launch_pdl(layer_norm_warp_kernel<T, 1>, g, t, 0, st, a);
  else if (chunks == 2) launch_pdl(layer_norm_warp_kernel<T, 2>, g, t, 0, st, a);
  else if (chunks == 3) launch_pdl(layer_norm_warp_kernel<T, 3>, g, t, 0, st, a);
  else if (chunks == 4) launch_pdl(layer_norm_warp_kernel<T, 4>, g, t, 0, st, a);
  else return false;
  return true;
}

template <class T>
bool layer_norm_regs(const NormArgs& a, cudaStream_t st) {
  const int64_t per = (a.cols + kLnThreads - 1) / kLnThreads;
  const unsigned g = unsigned(a.rows);
  if (per <= 2) layer_norm_regs_kernel<T, 2><<<g, kLnThreads, 0, st>>>(a);
  else if (per <= 4) layer_norm_regs_kernel<T, 4><<<g, kLnThreads, 0, st>>>(a);
  else if (per <= 8) layer_norm_regs_kernel<T, 8><<<g, kLnThreads, 0, st>>>(a);
  else if (per <= 16) layer_norm_regs_kernel<T, 16><<<g, kLnThreads, 0, st>>>(a);
  else return false;
  return true;
}

// One block of 4 warps per (b, h, query row): scores in shared memory.
constexpr int kAttnThreads = 128;
__global__ void attention_kernel(AttnArgs a) {
  extern __shared__ float smem[];
  float* qs = smem;          // D
  float* sc = smem + a.D;    // Sk
  __shared__ float scratch[33];
  const int64_t row = blockIdx.x % a.Sq;
  const int64_t bh = blockIdx.x / a.Sq;
  const int64_t b = bh / a.H, h = bh % a.H;
  const int64_t qo = b * a.q_sb + h * a.q_sh + row * a.q_ld;
  for (int64_t d = threadIdx.x; d < a.D; d += blockDim.x) qs[d] = ldf(a.q, a.t, qo + d) * a.scale;
  __syncthreads();
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const int64_t ko = b * a.k_sb + h * a.k_sh;
  const int64_t mo = b * a.m_sb + h * a.m_sh + row * a.m_sq;
  for (int64_t j = warp; j < a.Sk; j += warps) {
    float s = 0.f;
    for (int64_t d = lane; d < a.D; d += 32)
      s += qs[d] * ldf(a.k, a.t, a.k_t ? ko + d * a.k_ld + j : ko + j * a.k_ld + d);
    s = warp_sum(s);
    if (lane == 0) {
      if (a.mask) {
        if (a.mask_mode == 0) s += ldf(a.mask, a.tmask, mo + j * a.m_sk);
        else {
          const bool m = static_cast<const uint8_t*>(a.mask)[mo + j * a.m_sk] != 0;
          if (m != (a.mask_mode == 1)) s = a.mask_fill;
        }
      }
      sc[j] = s;
    }
  }
  __syncthreads();
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < a.Sk; j += blockDim.x) mx = fmaxf(mx, sc[j]);
  mx = block_reduce<true>(mx, scratch);
  float sum = 0.f;
  for (int64_t j = threadIdx.x; j < a.Sk; j += blockDim.x) {
    const float e = __expf(sc[j] - mx);
    sc[j] = e;
    sum += e;
  }
  sum = block_reduce<false>(sum, scratch);  // its barriers also publish sc[]
  const float inv = 1.f / sum;
  const int64_t vo = b * a.v_sb + h * a.v_sh;
  const int64_t yo = b * a.y_sb + h * a.y_sh + row * a.y_ld;
  for (int64_t d = threadIdx.x; d < a.Dv; d += blockDim.x) {
    float acc = 0.f;
    for (int64_t j = 0; j < a.Sk; ++j) acc += sc[j] * ldf(a.v, a.t, vo + j * a.v_ld + d);
    stf(a.y, a.ty, yo + d, acc * inv);
  }
}

// I: index type (int when every index fits: 32-bit division is far cheaper).
template <class I>
__global__ void pool2d_kernel(PoolArgs a) {
  const int64_t n = a.N * a.C * a.OH * a.OW;
  DEEPEP_GRID_STRIDE(i, n) {
    const I ii = I(i), OW = I(a.OW), OH = I(a.OH), C = I(a.C);
    // NCHW: i = ((n C + c) OH + oh) OW + ow, element (y, x) of the plane at base + y W + x.
    // NHWC: i = ((n OH + oh) OW + ow) C + c, element (y, x) at base + (y W + x) C.
    const I c = a.nhwc ? ii % C : I(0), p = a.nhwc ? ii / C : ii;
    const I ow = p % OW, t = p / OW, oh = t % OH, nc = t / OH;
    const int64_t base = a.nhwc ? int64_t(nc) * a.H * a.W * a.C + c : int64_t(nc) * a.H * a.W;
    const int64_t step = a.nhwc ? a.C : 1;
    float acc = a.max ? -INFINITY : 0.f;
    int cnt = 0;
    for (int ky = 0; ky < a.kh; ++ky) {
      const int64_t y = oh * a.sh - a.ph + ky * a.dh;
      for (int kx = 0; kx < a.kw; ++kx) {
        const int64_t x = ow * a.sw - a.pw + kx * a.dw;
        const bool inside = y >= 0 && y < a.H && x >= 0 && x < a.W;
        if (!inside) {
          if (!a.max && a.count_include_pad && y < a.H + a.ph && x < a.W + a.pw) ++cnt;
          continue;
        }
        const float v = ldf(a.x, a.t, base + (y * a.W + x) * step);
        if (a.max) acc = (v > acc || v != v) ? v : acc;
        else acc += v;
        ++cnt;
      }
    }
    stf(a.y, a.t, i, a.max ? acc : (cnt ? acc / float(cnt) : 0.f));
  }
}

__global__ void row_mean_kernel(const void* x, void* y, int t, int64_t rows, int64_t inner) {
  const int lane = threadIdx.x & 31;
  const int64_t r = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  if (r >= rows) return;
  float s = 0.f;
  for (int64_t j = lane; j < inner; j += 32) s += ldf(x, t, r * inner + j);
  s = warp_sum(s);
  if (lane == 0) stf(y, t, r, s / float(inner));
}

}  // namespace

void softmax(const void* x, int tx, void* out, int64_t rows, int64_t cols, bool log, cudaStream_t s) {
  if (rows == 0 || cols == 0) return;
  softmax_kernel<<<unsigned(rows), kRowThreads, 0, s>>>(x, tx, out, cols, log);
}

void layer_norm(const NormArgs& a, cudaStream_t s) {
  if (a.rows == 0 || a.cols == 0) return;
  // Typed, one pass: every operand of one float dtype, rows up to 2048 values.
  const bool same = (!a.skip_rows || a.tskip == a.tx) && (!a.gamma || a.tparam == a.tx) && a.ty == a.tx;
  if (same && a.rows <= 0x7fffffff) {
    if (a.tx == kF32 && (layer_norm_warp<float>(a, s) || layer_norm_regs<float>(a, s))) return;
    if (a.tx == kF16 && (layer_norm_warp<__half>(a, s) || layer_norm_regs<__half>(a, s))) return;
  }
  const int threads = a.cols >= 1024 ? 512 : (a.cols >= 256 ? 256 : 128);
  layer_norm_kernel<<<unsigned(a.rows), threads, 0, s>>>(a);
}

size_t attention_rowwise_smem_bytes(const AttnArgs& a) { return size_t(a.D + a.Sk) * sizeof(float); }

void attention_rowwise(const AttnArgs& a, cudaStream_t s) {
  const int64_t blocks = a.B * a.H * a.Sq;
  if (blocks == 0 || a.Dv == 0) return;
  const size_t smem = attention_rowwise_smem_bytes(a);
  if (smem > 48 * 1024) cudaFuncSetAttribute(attention_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
  attention_kernel<<<unsigned(blocks), kAttnThreads, smem, s>>>(a);
}

void pool2d(const PoolArgs& a, cudaStream_t s) {
  const int64_t n = a.N * a.C * a.OH * a.OW;
  if (n == 0) return;
  if (n < (int64_t(1) << 31) && a.N * a.C * a.H * a.W < (int64_t(1) << 31))
    pool2d_kernel<int><<<blocks_for(n, 256), 256, 0, s>>>(a);
  else
    pool2d_kernel<int64_t><<<blocks_for(n, 256), 256, 0, s>>>(a);
}

void row_mean(const void* x, void* y, int t, int64_t rows, int64_t inner, cudaStream_t s) {
  if (rows == 0) return;
  const int64_t threads = rows * 32;
  row_mean_kernel<<<unsigned((threads + 255) / 256), 256, 0, s>>>(x, y, t, rows, inner);
}

}  // namespace deepep::cuda
