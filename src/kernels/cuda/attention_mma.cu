// Tensor-core attention for float16 Q/K/V (head sizes multiples of 16, up to
// 128), flash-attention style with everything per row in registers: each warp
// owns 16 query rows; per 64-key tile it computes S = Q K^T with
// mma.sync.m16n8k16 (fp32 accumulation), scales and masks S, updates the
// running max and sum (online softmax, fp32), turns S into P (float16) in
// place -- the accumulator layout of S is the A-operand layout of P V -- and
// adds P V into fp32 output registers. K and V tiles stream through shared
// memory with cp.async, double-buffered, so the next tile loads while this one
// computes. Blocks of 4 warps (64 query rows); the kernel takes any warp
// count (blockDim), smaller blocks measured slower even on grids that leave
// SMs idle. Scores are kept in log2 units (one MUFU.EX2 per exponential).
// Needs 16-byte aligned rows (head sizes, row strides and offsets multiples
// of 8 halves), K not transposed and a float32/float16 additive or boolean
// mask; attention.cu takes the tiled kernel otherwise.
//
// Grids of fewer blocks than SMs (batch 1) split the keys: each block then
// covers a range of key tiles of its rows and writes unnormalized partial
// results (O, running max and sum) to the workspace, and a second kernel
// combines the splits. Causal blocks run the rows with the most key tiles
// (the last rows) first, so the longest blocks do not start in the last wave.
#include <algorithm>
#include <cfloat>

#include "kernels/cuda/device_util.cuh"

namespace deepep::cuda {
namespace {

constexpr int kKeys = 64, kMaxWarps = 4, kPad = 8;  // kPad halves per row: 16-byte rows, no bank conflicts

__host__ __device__ constexpr int row_ld(int kD) { return kD + kPad; }
__host__ __device__ constexpr size_t smem_bytes(int kD, int warps) {
  // Q, then K and V twice, then a key-mask row twice (kAddRowF32).
  return size_t(warps * 16 + 4 * kKeys) * row_ld(kD) * sizeof(__half) + 2 * kKeys * sizeof(float);
}

__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Not volatile: a pure function of its registers, so the compiler may interleave independent products
// (volatile pinned them in program order, each waiting out the previous one's latency).
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}

__device__ __forceinline__ float fast_exp2(float x) {  // MUFU.EX2; exp2(-inf) = 0
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
  const __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}

// rows x width halves from src (row stride ld, rows from `first`, those at or
// past `limit` zero-filled) into dst (row stride row_ld(kD)), 16 bytes per copy.
// The thread's (row, 16-byte column) walk is stepped, not divided, per copy.
template <int kD>
__device__ __forceinline__ void load_rows(__half* dst, const __half* src, int64_t ld, int first, int limit, int rows,
                                          int width) {
  const int per_row = width / 8, step = int(blockDim.x);
  const int dr = step / per_row, dc = step - dr * per_row;
  int r = int(threadIdx.x) / per_row, c = int(threadIdx.x) - r * per_row;
  for (; r < rows;) {
    const bool valid = first + r < limit;
    cp_async16(dst + r * row_ld(kD) + c * 8, valid ? src + int64_t(first + r) * ld + c * 8 : src, valid);
    r += dr, c += dc;
    if (c >= per_row) c -= per_row, ++r;
  }
}

// load_rows for the common case -- 64 rows of kD halves by 4 warps -- with the thread's walk fixed at compile
// time: a few instructions per 16-byte copy (the general walk cost about a third of each key tile's
// instructions, and this kernel is bound by its instruction count).
template <int kD>
__device__ __forceinline__ void load_tile(__half* dst, const __half* src, int64_t ld, int first, int limit, int rows,
                                          int width) {
  constexpr int kThreads = kMaxWarps * 32, kPerRow = kD / 8, kRowsPerStep = kThreads / kPerRow;
  static_assert(kThreads % kPerRow == 0 && kKeys % kRowsPerStep == 0, "whole rows per step");
  if (rows != kKeys || width != kD || blockDim.x != kThreads)
    return load_rows<kD>(dst, src, ld, first, limit, rows, width);
  const int r = int(threadIdx.x) / kPerRow, c = (int(threadIdx.x) % kPerRow) * 8;
  const __half* s = src + int64_t(first + r) * ld + c;
  const int64_t step = int64_t(kRowsPerStep) * ld;
  __half* d = dst + r * row_ld(kD) + c;
#pragma unroll
  for (int i = 0; i < kKeys / kRowsPerStep; ++i) {
    const bool valid = first + r + i * kRowsPerStep < limit;
    cp_async16(d + i * kRowsPerStep * row_ld(kD), valid ? s + i * step : src, valid);
  }
}

// How the mask is read: typed loads, no per-element dtype switch, so a tile's
// loads all issue before the first is used (the switch serialized them: each
// row waited on a global load per key).
// kCausal: AttnArgs::causal, no reads; key tiles past the block's last row are skipped.
// kAddRowF32: a float32 mask over keys only (BERT's [B, 1, 1, S]): each tile's 64 values ride the K/V
// copies into shared memory (per-thread register prefetch of the mask cost bert b32 s128 9 us of 39).
enum MaskKind { kNoMask, kAddF32, kAddF16, kBoolMask, kCausal, kAddRowF32 };

template <int kMask>
__device__ __forceinline__ float mask_value(const AttnArgs& a, int64_t i) {
  if constexpr (kMask == kAddF32) return static_cast<const float*>(a.mask)[i];
  else if constexpr (kMask == kAddF16) return __half2float(static_cast<const __half*>(a.mask)[i]);
  else if constexpr (kMask == kBoolMask) return static_cast<const uint8_t*>(a.mask)[i] != 0 ? 1.f : 0.f;
  else return 0.f;
}

// kD: head size rounded up to 32, 64 or 128 (register arrays); D, Dv <= kD.
// Heads <= 64: at most 128 registers (4 blocks per SM; shared memory allows it), 168 for the masks read
// into registers ahead of each tile (their 32 values).
template <int kD, int kMask>
constexpr int min_blocks() {
  return kD > 64 ? 1 : kMask == kNoMask || kMask == kCausal || kMask == kAddRowF32 ? 4 : 3;
}

template <int kD, int kMask>
__global__ void __launch_bounds__(kMaxWarps * 32, min_blocks<kD, kMask>())
    attention_mma_kernel(AttnArgs a, int splits, int split_tiles) {
  extern __shared__ __align__(16) unsigned char smem[];
  constexpr int ld = row_ld(kD), kC = kD / 16, kN = kD / 8;  // k-chunks of Q K^T, n-tiles of P V
  const int warps = int(blockDim.x) / 32, rows = warps * 16;
  __half* Qs = reinterpret_cast<__half*>(smem);
  __half* KV = Qs + rows * ld;  // K0, V0, K1, V1
  float* Ms = reinterpret_cast<float*>(KV + 4 * kKeys * ld);  // mask rows 0, 1 (kAddRowF32)
  const int D = int(a.D), Dv = int(a.Dv);
  const __half* q = static_cast<const __half*>(a.q);
  const __half* kp = static_cast<const __half*>(a.k);
  const __half* vp = static_cast<const __half*>(a.v);

  pdl_wait();  // Q, K and V come from the kernel before; the workspace may be its too (cuBLASLt's)
  const int64_t qtiles = (a.Sq + rows - 1) / rows, BH = a.B * a.H;
  int64_t bh, qt;
  int split;
  if constexpr (kMask == kCausal) {  // the last rows (the most key tiles) first
    bh = blockIdx.x % BH;
    const int64_t rest = blockIdx.x / BH;
    split = int(rest % splits), qt = qtiles - 1 - rest / splits;
  } else {  // a head's blocks side by side (its K and V stay in L2)
    split = int(blockIdx.x % splits);
    const int64_t rest = blockIdx.x / splits;
    qt = rest % qtiles, bh = rest / qtiles;
  }
  const int64_t b = bh / a.H, h = bh % a.H;
  const int64_t r0 = qt * rows;
  const __half* kb = kp + b * a.k_sb + h * a.k_sh;
  const __half* vb = vp + b * a.v_sb + h * a.v_sh;
  // Lengths fit int (attention_mma_fits): 32-bit index math in the loop.
  const int Sq = int(a.Sq), Sk = int(a.Sk);
  const int off = Sk - Sq;  // causal: row q sees keys k <= q + off
  int ntiles = (Sk + kKeys - 1) / kKeys;
  if constexpr (kMask == kCausal) {
    const int last = int(r0) + rows - 1 + off;  // the block's last row's last key
    if (last / kKeys + 1 < ntiles) ntiles = last / kKeys + 1;
  }
  const int t_begin = splits > 1 ? split * split_tiles : 0;
  const int t_end = splits > 1 && t_begin + split_tiles < ntiles ? t_begin + split_tiles : ntiles;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = lane >> 2, t4 = lane & 3;  // mma fragment coordinates: row group, thread in group
  const int row_lo = int(r0) + warp * 16 + g, row_hi = row_lo + 8;
  // Key-split partial results: O (unnormalized), then (max, sum) per row; splits x BH x Sq rows each.
  float* part_o = static_cast<float*>(a.work);
  float* part_ml = part_o + int64_t(splits) * BH * Sq * Dv;
  const int64_t part_row = (int64_t(split) * BH + bh) * Sq;
  auto write_ml = [&](float mlo, float llo, float mhi, float lhi) {  // this split's (max, sum) of the rows
    if (t4 != 0) return;
    if (row_lo < Sq) reinterpret_cast<float2*>(part_ml)[part_row + row_lo] = make_float2(mlo, llo);
    if (row_hi < Sq) reinterpret_cast<float2*>(part_ml)[part_row + row_hi] = make_float2(mhi, lhi);
  };
  if (t_begin >= t_end) {  // no keys in this split for these rows (causal): an empty partial
    write_ml(-INFINITY, 0.f, -INFINITY, 0.f);
    return;
  }

  load_tile<kD>(Qs, q + b * a.q_sb + h * a.q_sh, a.q_ld, int(r0), Sq, rows, D);
  load_tile<kD>(KV, kb, a.k_ld, t_begin * kKeys, Sk, kKeys, D);
  load_tile<kD>(KV + kKeys * ld, vb, a.v_ld, t_begin * kKeys, Sk, kKeys, Dv);
  const float* mrow = kMask == kAddRowF32 ? static_cast<const float*>(a.mask) + b * a.m_sb + h * a.m_sh : nullptr;
  if constexpr (kMask == kAddRowF32)
    if (threadIdx.x < kKeys / 4) {
      const int key = t_begin * kKeys + 4 * int(threadIdx.x);
      cp_async16(Ms + 4 * threadIdx.x, mrow + (key < Sk ? key : 0), key < Sk);
    }
  cp_async_commit();

  const int64_t mo_lo = b * a.m_sb + h * a.m_sh + (row_lo < Sq ? row_lo : 0) * a.m_sq;
  const int64_t mo_hi = b * a.m_sb + h * a.m_sh + (row_hi < Sq ? row_hi : 0) * a.m_sq;
  const int warp_row0 = int(r0) + warp * 16;  // causal: keys up to warp_row0 + off are every row's
  const int kc_n = D / 16, nt_n = Dv / 8;

  uint32_t qf[kC][4];
  float o[kN][4];
#pragma unroll
  for (int n = 0; n < kN; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  float m_lo = -INFINITY, m_hi = -INFINITY, l_lo = 0.f, l_hi = 0.f;
  // Scores in log2 units (exp2 is one instruction): scale and mask times log2(e). A finite fill stays
  // finite (all-masked rows average V, as the reference's softmax over equal scores does).
  constexpr float kLog2e = 1.4426950408889634f;
  const float scale2 = a.scale * kLog2e, fill2 = fmaxf(a.mask_fill * kLog2e, -FLT_MAX);

  for (int t = t_begin; t < t_end; ++t) {
    const int k0 = t * kKeys, buf = (t - t_begin) & 1;
    // This tile's mask values (element e of n-tile j: row g or g+8, key k0 + 8j + 2 t4 + (e & 1)), loaded
    // before the wait below so their latency overlaps it; keys past Sk read key Sk-1 and are dropped later.
    float mv[8][4];
    if constexpr (kMask != kNoMask && kMask != kCausal && kMask != kAddRowF32) {
#pragma unroll
      for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          int kk = k0 + j * 8 + 2 * t4 + (e & 1);
          kk = kk < Sk ? kk : Sk - 1;
          if (e >= 2 && a.m_sq == 0) mv[j][e] = mv[j][e - 2];  // one mask row for all queries (BERT's)
          else mv[j][e] = mask_value<kMask>(a, (e < 2 ? mo_lo : mo_hi) + kk * a.m_sk);
        }
    }
    if (t + 1 < t_end) {  // next tile into the other buffer (freed by the barrier ending the last step)
      __half* nk = KV + (buf ^ 1) * 2 * kKeys * ld;
      load_tile<kD>(nk, kb, a.k_ld, k0 + kKeys, Sk, kKeys, D);
      load_tile<kD>(nk + kKeys * ld, vb, a.v_ld, k0 + kKeys, Sk, kKeys, Dv);
      if constexpr (kMask == kAddRowF32)
        if (threadIdx.x < kKeys / 4) {
          const int key = k0 + kKeys + 4 * int(threadIdx.x);
          cp_async16(Ms + (buf ^ 1) * kKeys + 4 * threadIdx.x, mrow + (key < Sk ? key : 0), key < Sk);
        }
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    if (t == t_begin) {
      const __half* qw = Qs + (warp * 16 + g) * ld + 2 * t4;
#pragma unroll
      for (int c = 0; c < kC; ++c) {
        if (c >= kc_n) break;
        qf[c][0] = *reinterpret_cast<const uint32_t*>(qw + c * 16);
        qf[c][1] = *reinterpret_cast<const uint32_t*>(qw + 8 * ld + c * 16);
        qf[c][2] = *reinterpret_cast<const uint32_t*>(qw + c * 16 + 8);
        qf[c][3] = *reinterpret_cast<const uint32_t*>(qw + 8 * ld + c * 16 + 8);
      }
    }
    const __half* Ks = KV + buf * 2 * kKeys * ld;
    const __half* Vs = Ks + kKeys * ld;

    // S = Q K^T: 16 rows x 64 keys per warp, 8 n-tiles of 8 keys (the 8 products of one k-chunk are
    // independent: issued back to back).
    float s[8][4];
#pragma unroll
    for (int j = 0; j < 8; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
    // K's B fragments by ldmatrix, two n-tiles a load: lanes 8i..8i+7 address rows of matrix i = (keys +8
    // if i >= 2) x (columns +8 if i odd), i.e. (b0, b1) of n-tile j, then of n-tile j+1 (one load for four
    // 32-bit reads: the instruction count, not bandwidth, bounds this kernel).
    const __half* krow = Ks + ((lane >> 4) * 8 + (lane & 7)) * ld + ((lane >> 3) & 1) * 8;
#pragma unroll
    for (int c = 0; c < kC; ++c) {
      if (c >= kc_n) break;
#pragma unroll
      for (int j = 0; j < 8; j += 2) {
        uint32_t kb4[4];
        ldmatrix_x4(kb4, krow + j * 8 * ld + c * 16);
        mma16816(s[j], qf[c], kb4[0], kb4[1]);
        mma16816(s[j + 1], qf[c], kb4[2], kb4[3]);
      }
    }
    // Scale, mask, running max: element e of tile j is row g (e < 2) or g+8, key k0 + 8j + 2 t4 + (e & 1).
    // A tile inside the keys (and, causal, left of every row's diagonal) needs no per-key bounds.
    const bool inside = k0 + kKeys <= Sk && (kMask != kCausal || k0 + kKeys - 1 <= warp_row0 + off);
    // Without a mask the scores stay unscaled until the exponent, one FFMA (scale > 0: attention_mma_fits).
    constexpr bool kRaw = kMask == kNoMask || kMask == kCausal;
#pragma unroll
    for (int j = 0; j < 8 && !kRaw; ++j) {
      float2 mk = make_float2(0.f, 0.f);  // kAddRowF32: this thread's two keys of n-tile j
      if constexpr (kMask == kAddRowF32) mk = *reinterpret_cast<const float2*>(Ms + buf * kKeys + j * 8 + 2 * t4);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float v = s[j][e] * scale2;
        if constexpr (kMask == kAddF32 || kMask == kAddF16) v = fmaf(mv[j][e], kLog2e, v);
        if constexpr (kMask == kAddRowF32) v = fmaf(e & 1 ? mk.y : mk.x, kLog2e, v);
        if constexpr (kMask == kBoolMask) if ((mv[j][e] != 0.f) != (a.mask_mode == 1)) v = fill2;
        s[j][e] = v;
      }
    }
    if (!inside)  // the per-key bounds only on edge tiles (warp-uniform branch)
#pragma unroll
      for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int kk = k0 + j * 8 + 2 * t4 + (e & 1);
          if (!(kk < Sk && (kMask != kCausal || kk <= (e < 2 ? row_lo : row_hi) + off))) s[j][e] = -INFINITY;
        }
    float mx_lo = -INFINITY, mx_hi = -INFINITY;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      mx_lo = fmaxf(mx_lo, fmaxf(s[j][0], s[j][1]));
      mx_hi = fmaxf(mx_hi, fmaxf(s[j][2], s[j][3]));
    }
#pragma unroll
    for (int x = 1; x <= 2; x <<= 1) {
      mx_lo = fmaxf(mx_lo, __shfl_xor_sync(0xffffffffu, mx_lo, x));
      mx_hi = fmaxf(mx_hi, __shfl_xor_sync(0xffffffffu, mx_hi, x));
    }
    if constexpr (kRaw) mx_lo *= scale2, mx_hi *= scale2;
    // All scores so far -inf: subtract 0 instead of the max, so p = exp2(-inf) = 0 and the correction
    // exp2(-inf) = 0 multiplies an o and l that are still 0 (no per-element select).
    const float mn_lo = fmaxf(m_lo, mx_lo), mn_hi = fmaxf(m_hi, mx_hi);
    const float base_lo = mn_lo == -INFINITY ? 0.f : mn_lo, base_hi = mn_hi == -INFINITY ? 0.f : mn_hi;
    const float corr_lo = fast_exp2(m_lo - base_lo), corr_hi = fast_exp2(m_hi - base_hi);
    m_lo = mn_lo, m_hi = mn_hi;
    float ps_lo = 0.f, ps_hi = 0.f;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      if constexpr (kRaw) {
        s[j][0] = fast_exp2(fmaf(s[j][0], scale2, -base_lo));
        s[j][1] = fast_exp2(fmaf(s[j][1], scale2, -base_lo));
        s[j][2] = fast_exp2(fmaf(s[j][2], scale2, -base_hi));
        s[j][3] = fast_exp2(fmaf(s[j][3], scale2, -base_hi));
      } else {
        s[j][0] = fast_exp2(s[j][0] - base_lo);
        s[j][1] = fast_exp2(s[j][1] - base_lo);
        s[j][2] = fast_exp2(s[j][2] - base_hi);
        s[j][3] = fast_exp2(s[j][3] - base_hi);
      }
      ps_lo += s[j][0] + s[j][1];
      ps_hi += s[j][2] + s[j][3];
    }
    l_lo = l_lo * corr_lo + ps_lo;  // this thread's columns; the 4 threads of a row add up at the end
    l_hi = l_hi * corr_hi + ps_hi;
#pragma unroll
    for (int n = 0; n < kN; ++n) o[n][0] *= corr_lo, o[n][1] *= corr_lo, o[n][2] *= corr_hi, o[n][3] *= corr_hi;

    // O += P V, 16 keys at a time: P's A fragment is S's accumulators of n-tiles 2c and 2c+1.
#pragma unroll
    for (int c = 0; c < kKeys / 16; ++c) {
      const uint32_t pa[4] = {pack_half2(s[2 * c][0], s[2 * c][1]), pack_half2(s[2 * c][2], s[2 * c][3]),
                              pack_half2(s[2 * c + 1][0], s[2 * c + 1][1]), pack_half2(s[2 * c + 1][2], s[2 * c + 1][3])};
      // ldmatrix.trans: lanes 8i..8i+7 address rows of matrix i = (keys +8 if i odd) x (columns +8 if i >= 2).
      const __half* vrow = Vs + (c * 16 + ((lane >> 3) & 1) * 8 + (lane & 7)) * ld + (lane >> 4) * 8;
#pragma unroll
      for (int n = 0; n < kN; n += 2) {
        if (n >= nt_n) break;
        uint32_t vb4[4];
        ldmatrix_x4_trans(vb4, vrow + n * 8);
        mma16816(o[n], pa, vb4[0], vb4[1]);
        mma16816(o[n + 1], pa, vb4[2], vb4[3]);
      }
    }
    __syncthreads();  // this buffer is free for the load two steps on
  }

  pdl_trigger();  // the combine kernel may start (it waits for this one to end)
#pragma unroll
  for (int x = 1; x <= 2; x <<= 1) {
    l_lo += __shfl_xor_sync(0xffffffffu, l_lo, x);
    l_hi += __shfl_xor_sync(0xffffffffu, l_hi, x);
  }
  if (splits > 1) {  // partial results; attention_combine_kernel normalizes
#pragma unroll
    for (int n = 0; n < kN; ++n) {
      if (n >= nt_n) break;
      const int col = n * 8 + 2 * t4;
      if (row_lo < Sq) part_o[(part_row + row_lo) * Dv + col] = o[n][0], part_o[(part_row + row_lo) * Dv + col + 1] = o[n][1];
      if (row_hi < Sq) part_o[(part_row + row_hi) * Dv + col] = o[n][2], part_o[(part_row + row_hi) * Dv + col + 1] = o[n][3];
    }
    write_ml(m_lo, l_lo, m_hi, l_hi);
    return;
  }
  // A row with every score -inf has l = 0: NaN, as the reference gives (0/0).
  const float inv_lo = l_lo > 0.f ? 1.f / l_lo : NAN, inv_hi = l_hi > 0.f ? 1.f / l_hi : NAN;
  const int64_t yb = b * a.y_sb + h * a.y_sh;
  // float16 Y with even offsets: each thread's column pair as one 32-bit store.
  const bool pairs = a.ty == kF16 && ((yb | a.y_ld) & 1) == 0 && (reinterpret_cast<uintptr_t>(a.y) & 3) == 0;
#pragma unroll
  for (int n = 0; n < kN; ++n) {
    if (n >= nt_n) break;
    const int col = n * 8 + 2 * t4;
    if (pairs) {
      __half* y = static_cast<__half*>(a.y) + yb + col;
      if (row_lo < Sq)
        *reinterpret_cast<__half2*>(y + row_lo * a.y_ld) = __floats2half2_rn(o[n][0] * inv_lo, o[n][1] * inv_lo);
      if (row_hi < Sq)
        *reinterpret_cast<__half2*>(y + row_hi * a.y_ld) = __floats2half2_rn(o[n][2] * inv_hi, o[n][3] * inv_hi);
      continue;
    }
    if (row_lo < Sq) {
      stf(a.y, a.ty, yb + row_lo * a.y_ld + col, o[n][0] * inv_lo);
      stf(a.y, a.ty, yb + row_lo * a.y_ld + col + 1, o[n][1] * inv_lo);
    }
    if (row_hi < Sq) {
      stf(a.y, a.ty, yb + row_hi * a.y_ld + col, o[n][2] * inv_hi);
      stf(a.y, a.ty, yb + row_hi * a.y_ld + col + 1, o[n][3] * inv_hi);
    }
  }
}

// Y from the key splits' partial results: one thread per 4 output columns of a row (Dv is a multiple of
// 16), 32-bit index math (key_splits keeps the partials under 2^31 floats). A split whose keys were all
// masked for the row (max -inf) adds nothing; a row with no key in any split is NaN, as unsplit.
__global__ void attention_combine_kernel(AttnArgs a, int splits) {
  const int Dv = int(a.Dv), quads = Dv / 4, Sq = int(a.Sq), rows = int(a.B * a.H) * Sq;
  const int i = int(blockIdx.x) * int(blockDim.x) + int(threadIdx.x);
  if (i >= rows * quads) return;
  pdl_wait();  // the partials
  const int r = i / quads, col = (i - r * quads) * 4;
  const float* part_o = static_cast<const float*>(a.work);
  const float2* part_ml = reinterpret_cast<const float2*>(part_o + size_t(splits) * rows * Dv);
  float mx = -INFINITY;
  for (int s = 0; s < splits; ++s) mx = fmaxf(mx, part_ml[s * rows + r].x);
  float l = 0.f;
  float4 o = make_float4(0.f, 0.f, 0.f, 0.f);
  if (mx != -INFINITY)
    for (int s = 0; s < splits; ++s) {
      const float2 ml = part_ml[s * rows + r];
      if (ml.x == -INFINITY) continue;
      const float w = exp2f(ml.x - mx);
      const float4 p = *reinterpret_cast<const float4*>(part_o + (s * rows + r) * Dv + col);
      l += w * ml.y;
      o.x += w * p.x, o.y += w * p.y, o.z += w * p.z, o.w += w * p.w;
    }
  const float inv = l > 0.f ? 1.f / l : NAN;
  const int bh = r / Sq, row = r - bh * Sq;
  const int64_t y = (bh / a.H) * a.y_sb + (bh % a.H) * a.y_sh + row * a.y_ld + col;
  stf(a.y, a.ty, y, o.x * inv);
  stf(a.y, a.ty, y + 1, o.y * inv);
  stf(a.y, a.ty, y + 2, o.z * inv);
  stf(a.y, a.ty, y + 3, o.w * inv);
}

// Key splits for a grid of fewer blocks than SMs: about four blocks' worth of key tiles per SM, each
// split `*split_tiles` tiles long. 1: no split.
int key_splits(const AttnArgs& a, int rows, int* split_tiles) {
  const int64_t blocks = a.B * a.H * ((a.Sq + rows - 1) / rows), ntiles = (a.Sk + kKeys - 1) / kKeys;
  *split_tiles = int(ntiles);
  int device = 0, sms = 0;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (sms <= 0 || blocks >= sms || ntiles < 2 || a.B * a.H * a.Sq * (a.Dv + 2) * ntiles >= (int64_t(1) << 31)) return 1;
  // About four blocks' worth per SM: eight (one-tile splits) measured slower (gpt2 b1 s512 21.0 vs 16.9 us).
  const int64_t per = std::min<int64_t>(ntiles, std::max<int64_t>(1, (ntiles * blocks + 4 * sms - 1) / (4 * sms)));
  const int64_t splits = (ntiles + per - 1) / per;
  if (splits < 2) return 1;
  *split_tiles = int(per);
  return int(splits);
}

size_t split_workspace_bytes(const AttnArgs& a, int splits) {
  return splits > 1 ? size_t(splits) * size_t(a.B * a.H * a.Sq) * size_t(a.Dv + 2) * sizeof(float) : 0;
}

int padded_head(const AttnArgs& a) {
  const int64_t d = a.D > a.Dv ? a.D : a.Dv;
  return d <= 32 ? 32 : d <= 64 ? 64 : 128;
}

int mask_kind(const AttnArgs& a) {
  if (!a.mask) return kNoMask;
  if (a.causal) return kCausal;
  if (a.mask_mode == 0 && a.tmask == kF32 && a.m_sq == 0 && a.m_sk == 1 && a.Sk % 4 == 0 && (a.m_sb | a.m_sh) % 4 == 0 &&
      (reinterpret_cast<uintptr_t>(a.mask) & 15) == 0)
    return kAddRowF32;
  if (a.mask_mode != 0) return a.tmask == kBool ? kBoolMask : -1;
  return a.tmask == kF32 ? kAddF32 : a.tmask == kF16 ? kAddF16 : -1;
}

template <int kD, int kMask>
void launch(const AttnArgs& a, int warps, cudaStream_t s) {
  const int rows = warps * 16;
  int split_tiles = 0, splits = key_splits(a, rows, &split_tiles);
  if (!a.work || a.work_bytes < split_workspace_bytes(a, splits)) splits = 1;
  const int64_t blocks = a.B * a.H * ((a.Sq + rows - 1) / rows) * splits;
  const size_t smem = smem_bytes(kD, warps);
  static size_t raised = 48 * 1024;  // first use of a size happens on an eager run
  if (smem > raised) {
    cudaFuncSetAttribute(attention_mma_kernel<kD, kMask>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    raised = smem;
  }
  launch_pdl(attention_mma_kernel<kD, kMask>, unsigned(blocks), unsigned(warps * 32), smem, s, a, splits, split_tiles);
  if (splits > 1) {
    const int64_t n = a.B * a.H * a.Sq * (a.Dv / 4);
    launch_pdl(attention_combine_kernel, unsigned((n + 255) / 256), 256u, 0, s, a, splits);
  }
}

template <int kD>
void launch(const AttnArgs& a, int warps, cudaStream_t s) {
  switch (mask_kind(a)) {
    case kNoMask: return launch<kD, kNoMask>(a, warps, s);
    case kAddF32: return launch<kD, kAddF32>(a, warps, s);
    case kAddF16: return launch<kD, kAddF16>(a, warps, s);
    case kBoolMask: return launch<kD, kBoolMask>(a, warps, s);
    case kAddRowF32: return launch<kD, kAddRowF32>(a, warps, s);
    default: return launch<kD, kCausal>(a, warps, s);
  }
}

}  // namespace

bool attention_mma_fits(const AttnArgs& a) {
  const auto addr = [](const void* p) { return reinterpret_cast<uintptr_t>(p); };
  return a.t == kF16 && !a.k_t && a.scale > 0.f && a.D > 0 && a.Dv > 0 && a.D % 16 == 0 && a.Dv % 16 == 0 &&
         a.D <= 128 && a.Dv <= 128 &&
         ((a.q_ld | a.k_ld | a.v_ld | a.q_sb | a.q_sh | a.k_sb | a.k_sh | a.v_sb | a.v_sh) & 7) == 0 &&
         ((addr(a.q) | addr(a.k) | addr(a.v)) & 15) == 0 && mask_kind(a) >= 0 && a.Sq < (int64_t(1) << 30) &&
         a.Sk < (int64_t(1) << 30);
}

size_t attention_mma_smem_bytes(const AttnArgs& a) { return smem_bytes(padded_head(a), kMaxWarps); }

size_t attention_mma_workspace_bytes(const AttnArgs& a) {
  int split_tiles = 0;
  return split_workspace_bytes(a, key_splits(a, kMaxWarps * 16, &split_tiles));
}

void attention_mma(const AttnArgs& a, cudaStream_t s) {
  if (a.B * a.H * a.Sq == 0) return;
  // 4 warps (64 rows) a block. Measured on an H200 (bench/cuda_attention_bench.cpp): smaller blocks for
  // grids under one block per SM were slower, e.g. bert b1 s128 14.5 us (1-2 warps) vs 11.6 us.
  const int warps = 4;  // 8 measured no faster (bert b32 s128 29.6 vs 30.2 us; gpt2 b8 s512 66 vs 61 us)
  switch (padded_head(a)) {
    case 32: return launch<32>(a, warps, s);
    case 64: return launch<64>(a, warps, s);
    default: return launch<128>(a, warps, s);
  }
}

}  // namespace deepep::cuda
