// Tensor-core attention for float16 Q/K/V (head sizes multiples of 16, up
// to 128), through the WMMA API: one block of 4 warps per (batch, head, 64
// query rows); each warp owns 16 rows. Per 64-key tile: S = Q K^T on tensor
// cores (fp32 accumulation) into shared memory, scale and mask, online
// softmax per row (2 lanes per row), P (float16) V on tensor cores added to
// the float32 output tile in shared memory, which the softmax step rescales.
// Default for float16 (DEEPEP_CUDA_ATTENTION=tiled opts out, attention.cu).
// Tiles load with 16-byte vectors, all of a thread's loads in flight before
// its shared-memory stores, when head sizes, row strides and offsets are
// multiples of 8 halves (packed QKV, separate Q/K/V); else element by element.
#include <mma.h>

#include <cfloat>

#include "kernels/cuda/device_util.cuh"

namespace deepep::cuda {
namespace {

using namespace nvcuda;

constexpr int kRows = 64, kKeys = 64, kWarps = 4, kThreads = kWarps * 32;
constexpr int kPadH = 8, kPadF = 4;  // halves / floats of padding per row (bank spread; wmma ldm rules)

struct Layout {
  int qld, kld, vld, sld, pld, old;
  size_t q, k, v, s, p, o, bytes;  // byte offsets
};
__host__ __device__ inline Layout layout(int D, int Dv) {
  Layout L;
  L.qld = D + kPadH, L.kld = D + kPadH, L.vld = Dv + kPadH, L.sld = kKeys + kPadF, L.pld = kKeys + kPadH,
  L.old = Dv + kPadF;
  L.q = 0;
  L.k = L.q + size_t(kRows) * L.qld * 2;
  L.v = L.k + size_t(kKeys) * L.kld * 2;
  L.s = L.v + size_t(kKeys) * L.vld * 2;
  L.p = L.s + size_t(kRows) * L.sld * 4;
  L.o = L.p + size_t(kRows) * L.pld * 2;
  L.bytes = L.o + size_t(kRows) * L.old * 4;
  return L;
}

__global__ void __launch_bounds__(kThreads) attention_wmma_kernel(AttnArgs a) {
  extern __shared__ __align__(32) unsigned char smem[];
  const int D = int(a.D), Dv = int(a.Dv);
  const Layout L = layout(D, Dv);
  __half* Qs = reinterpret_cast<__half*>(smem + L.q);
  __half* Ks = reinterpret_cast<__half*>(smem + L.k);
  __half* Vs = reinterpret_cast<__half*>(smem + L.v);
  float* Ss = reinterpret_cast<float*>(smem + L.s);
  __half* Ps = reinterpret_cast<__half*>(smem + L.p);
  float* Os = reinterpret_cast<float*>(smem + L.o);
  const __half* q = static_cast<const __half*>(a.q);
  const __half* kp = static_cast<const __half*>(a.k);
  const __half* vp = static_cast<const __half*>(a.v);

  const int64_t qtiles = (a.Sq + kRows - 1) / kRows;
  const int64_t bh = blockIdx.x / qtiles, qt = blockIdx.x % qtiles;
  const int64_t b = bh / a.H, h = bh % a.H;
  const int64_t r0 = qt * kRows;
  const int64_t qo = b * a.q_sb + h * a.q_sh, ko = b * a.k_sb + h * a.k_sh, vo = b * a.v_sb + h * a.v_sh;
  const __half zero = __float2half(0.f);
  const bool vec = !a.k_t && D % 8 == 0 && Dv % 8 == 0 && ((a.q_ld | a.k_ld | a.v_ld | qo | ko | vo) & 7) == 0 &&
                   ((reinterpret_cast<uintptr_t>(q) | reinterpret_cast<uintptr_t>(kp) | reinterpret_cast<uintptr_t>(vp)) & 15) == 0;
  // rows x (width / 8) vectors from src (row stride ld) into dst (row stride dld),
  // rows from `first` on, those at or past `limit` zero; at most kMaxVec vectors per thread, loads first.
  constexpr int kMaxVec = kKeys * 128 / 8 / kThreads;
  auto load_tile = [&](__half* dst, int dld, const __half* src, int64_t ld, int64_t first, int64_t limit, int width) {
    const int per_row = width / 8, n = kKeys * per_row;
    uint4 buf[kMaxVec];
#pragma unroll
    for (int j = 0; j < kMaxVec; ++j) {
      const int i = threadIdx.x + j * kThreads;
      buf[j] = make_uint4(0, 0, 0, 0);
      if (i < n) {
        const int r = i / per_row, d = (i - r * per_row) * 8;
        if (first + r < limit) buf[j] = *reinterpret_cast<const uint4*>(src + (first + r) * ld + d);
      }
    }
#pragma unroll
    for (int j = 0; j < kMaxVec; ++j) {
      const int i = threadIdx.x + j * kThreads;
      if (i < n) {
        const int r = i / per_row, d = (i - r * per_row) * 8;
        *reinterpret_cast<uint4*>(dst + r * dld + d) = buf[j];
      }
    }
  };
  static_assert(kRows == kKeys, "load_tile serves Q, K and V tiles");
  if (vec) {
    load_tile(Qs, L.qld, q + qo, a.q_ld, r0, a.Sq, D);
  } else {
    for (int i = threadIdx.x; i < kRows * D; i += kThreads) {
      const int r = i / D, d = i % D;
      Qs[r * L.qld + d] = r0 + r < a.Sq ? q[qo + (r0 + r) * a.q_ld + d] : zero;
    }
  }
  for (int i = threadIdx.x; i < kRows * Dv; i += kThreads) Os[(i / Dv) * L.old + i % Dv] = 0.f;

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int wr0 = warp * 16;                 // this warp's first row in the tile
  const int myrow = wr0 + (lane >> 1);       // softmax: 2 lanes per row
  const int half_ = lane & 1;                // which half of the columns
  const int64_t row = r0 + myrow;
  const int64_t mo = b * a.m_sb + h * a.m_sh + (row < a.Sq ? row : 0) * a.m_sq;
  float m = -INFINITY, l = 0.f;

  for (int64_t k0 = 0; k0 < a.Sk; k0 += kKeys) {
    __syncthreads();  // previous K/V tile consumed (and Q, O initialised)
    if (vec) {
      load_tile(Ks, L.kld, kp + ko, a.k_ld, k0, a.Sk, D);
      load_tile(Vs, L.vld, vp + vo, a.v_ld, k0, a.Sk, Dv);
    } else {
    for (int i = threadIdx.x; i < kKeys * D; i += kThreads) {
      const int k = i / D, d = i % D;
      const int64_t kk = k0 + k;
      Ks[k * L.kld + d] = kk < a.Sk ? kp[a.k_t ? ko + int64_t(d) * a.k_ld + kk : ko + kk * a.k_ld + d] : zero;
    }
    for (int i = threadIdx.x; i < kKeys * Dv; i += kThreads) {
      const int k = i / Dv, d = i % Dv;
      const int64_t kk = k0 + k;
      Vs[k * L.vld + d] = kk < a.Sk ? vp[vo + kk * a.v_ld + d] : zero;
    }
    }
    __syncthreads();
    // S[wr0:wr0+16, 0:64] = Q K^T
    for (int n = 0; n < kKeys / 16; ++n) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.f);
      for (int kd = 0; kd < D; kd += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> fb;
        wmma::load_matrix_sync(fa, Qs + wr0 * L.qld + kd, L.qld);
        wmma::load_matrix_sync(fb, Ks + (n * 16) * L.kld + kd, L.kld);
        wmma::mma_sync(acc, fa, fb, acc);
      }
      wmma::store_matrix_sync(Ss + wr0 * L.sld + n * 16, acc, L.sld, wmma::mem_row_major);
    }
    __syncwarp();
    // Online softmax over this tile for `myrow`, columns half_*32 .. +32.
    float sv[32];
    float tmax = -INFINITY;
#pragma unroll
    for (int j = 0; j < 32; ++j) {
      const int c = half_ * 32 + j;
      const int64_t kk = k0 + c;
      float s = -INFINITY;
      if (kk < a.Sk) {
        s = Ss[myrow * L.sld + c] * a.scale;
        if (a.mask) {
          if (a.mask_mode == 0) s += ldf(a.mask, a.tmask, mo + kk * a.m_sk);
          else {
            const bool keep = static_cast<const uint8_t*>(a.mask)[mo + kk * a.m_sk] != 0;
            if (keep != (a.mask_mode == 1)) s = a.mask_fill;
          }
        }
      }
      sv[j] = s;
      tmax = fmaxf(tmax, s);
    }
    tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
    const float mnew = fmaxf(m, tmax);
    const bool none = mnew == -INFINITY;
    const float corr = none ? 1.f : __expf(m - mnew);
    float psum = 0.f;
#pragma unroll
    for (int j = 0; j < 32; ++j) {
      const float p = none ? 0.f : __expf(sv[j] - mnew);
      Ps[myrow * L.pld + half_ * 32 + j] = __float2half_rn(p);
      psum += p;
    }
    psum += __shfl_xor_sync(0xffffffffu, psum, 1);
    l = l * corr + psum;
    m = mnew;
    for (int d = half_; d < Dv; d += 2) Os[myrow * L.old + d] *= corr;
    __syncwarp();
    // O[wr0:wr0+16, :] += P V
    for (int n = 0; n < Dv; n += 16) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::load_matrix_sync(acc, Os + wr0 * L.old + n, L.old, wmma::mem_row_major);
      for (int kk = 0; kk < kKeys; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> fb;
        wmma::load_matrix_sync(fa, Ps + wr0 * L.pld + kk, L.pld);
        wmma::load_matrix_sync(fb, Vs + kk * L.vld + n, L.vld);
        wmma::mma_sync(acc, fa, fb, acc);
      }
      wmma::store_matrix_sync(Os + wr0 * L.old + n, acc, L.old, wmma::mem_row_major);
    }
    __syncwarp();
  }
  if (row >= a.Sq) return;
  const float inv = 1.f / l;
  const int64_t yo = b * a.y_sb + h * a.y_sh + row * a.y_ld;
  for (int d = half_; d < Dv; d += 2) stf(a.y, a.ty, yo + d, l > 0.f ? Os[myrow * L.old + d] * inv : NAN);
}

}  // namespace

bool attention_wmma_fits(const AttnArgs& a) {
  return a.t == kF16 && a.D > 0 && a.D % 16 == 0 && a.Dv % 16 == 0 && a.D <= 128 && a.Dv <= 128 && a.Dv > 0;
}

size_t attention_wmma_smem_bytes(const AttnArgs& a) { return layout(int(a.D), int(a.Dv)).bytes; }

void attention_wmma(const AttnArgs& a, cudaStream_t s) {
  const int64_t blocks = a.B * a.H * ((a.Sq + kRows - 1) / kRows);
  if (blocks == 0) return;
  const size_t smem = attention_wmma_smem_bytes(a);
  static size_t raised = 48 * 1024;  // first use of a size happens on an eager run
  if (smem > raised) {
    cudaFuncSetAttribute(attention_wmma_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    raised = smem;
  }
  attention_wmma_kernel<<<unsigned(blocks), kThreads, smem, s>>>(a);
}

}  // namespace deepep::cuda
