// Launchers of DeepEP's hand-written CUDA kernels (src/kernels/cuda/*.cu).
// Plain C++ over raw device pointers and small by-value geometry structs, so
// the host side (gpu_ops.cpp, compiled by the C++ compiler) needs no CUDA C++.
// Element types travel as deepep::DType codes (int): float32 1, float16 10,
// bfloat16 16, int64 7, int32 6, bool 9, uint8 2, int8 3, float64 11.
// Every launcher enqueues on `stream` and checks nothing itself: the caller
// checks cudaGetLastError() after it and names the op (cuda_check.h).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace deepep::cuda {

inline constexpr int kMaxDims = 8;

// Element strides of an operand in the output's index space (0 where it
// broadcasts); dims are the output's.
struct Indexer {
  int rank = 0;
  int64_t dims[kMaxDims] = {};
  int64_t strides[4][kMaxDims] = {};  // up to 4 operands
};

enum class BinOp : int { kAdd, kSub, kMul, kDiv, kPow, kMax, kMin, kMod, kFmod, kEqual, kLess, kLessEq, kGreater,
                         kGreaterEq, kAnd, kOr, kXor, kPRelu, kBitAnd, kBitOr };
enum class UnOp : int { kIdentity, kRelu, kSigmoid, kTanh, kExp, kLog, kSqrt, kNeg, kAbs, kErf, kGelu, kGeluTanh,
                        kReciprocal, kSin, kCos, kFloor, kCeil, kRound, kLeakyRelu, kElu, kHardSigmoid, kHardSwish,
                        kSoftplus, kSiLU, kClip, kNot, kSign, kRsqrt, kSelu, kCelu, kMish, kSoftsign, kThresholdedRelu,
                        kIsNaN, kIsInf };

// out = op(a, b) with numpy broadcasting through `ix` (operands 0 = a, 1 = b).
void binary(BinOp op, const void* a, int ta, const void* b, int tb, void* out, int tout, const Indexer& ix,
            int64_t n, cudaStream_t s);
// out = op(x) elementwise (contiguous); p0/p1 are the op's parameters.
void unary(UnOp op, const void* x, int tx, void* out, int tout, int64_t n, float p0, float p1, cudaStream_t s);
// Dtype conversion (Cast), contiguous.
void convert(const void* x, int tx, void* out, int tout, int64_t n, cudaStream_t s);
// out = cond ? a : b with broadcasting (operands 0 cond(bool), 1 a, 2 b).
void where(const void* cond, const void* a, const void* b, int t, void* out, int tout, const Indexer& ix, int64_t n,
           cudaStream_t s);
// Copies x into out with broadcasting/permutation through `ix` (operand 0
// strides in out's index space): Expand, Transpose, Slice (with an offset),
// Tile-free copies. Works on element bytes (1, 2, 4, 8).
void strided_copy(const void* x, int64_t x_offset, void* out, int elem_bytes, const Indexer& ix, int64_t n,
                  cudaStream_t s);
// Concat along `axis` of an outer x axis x inner layout: copies one input of
// `len` elements on the axis into out at `offset` on an axis of `out_len`.
void concat_part(const void* x, void* out, int elem_bytes, int64_t outer, int64_t len, int64_t out_len,
                 int64_t offset, int64_t inner, cudaStream_t s);
// Gather along an axis: data viewed as [outer, axis_len, inner], indices
// (int64 or int32, n_idx of them; negatives wrap), out [outer, n_idx, inner].
// An index out of range sets *bad (device int) to 1 and writes zeros.
void gather(const void* data, int elem_bytes, const void* idx, int tidx, void* out, int64_t outer,
            int64_t axis_len, int64_t n_idx, int64_t inner, int* bad, cudaStream_t s);
// Fills n elements of elem_bytes with a repeated pattern (NaN poisoning, zeros).
void fill_pattern(void* out, int elem_bytes, uint64_t pattern, int64_t n, cudaStream_t s);

// Per-row Softmax / LogSoftmax over the last `cols` elements of each row.
void softmax(const void* x, int tx, void* out, int64_t rows, int64_t cols, bool log, cudaStream_t s);

// LayerNormalization over rows of `cols`, optional skip (SkipLayerNorm):
//   s = x + skip (skip broadcast: skip row index = row % skip_rows, or the
//   element given by skip_ix when skip_ix != nullptr), y = (s - mean) * rstd
//   * gamma + beta; sum_out (optional) gets s. gamma/beta have `cols` values
//   (or nullptr). Statistics in float (Welford-free two-pass over registers).
struct NormArgs {
  const void* x = nullptr;
  int tx = 1;
  const void* skip = nullptr;
  int tskip = 1;
  int64_t skip_rows = 0;  // skip repeats every skip_rows rows; 0: no skip
  const void* gamma = nullptr;
  const void* beta = nullptr;
  int tparam = 1;
  void* y = nullptr;
  void* sum_out = nullptr;
  int ty = 1;
  int64_t rows = 0, cols = 0;
  float eps = 1e-5f;
  bool rms = false;
  // gamma and beta are fixed for the run (weights): the warp kernel loads them
  // before waiting on the kernel before it (programmatic dependent launch).
  bool params_fixed = false;
};
void layer_norm(const NormArgs& a, cudaStream_t s);

// Bias + activation + residual over a [rows, cols] output in place:
//   v = y + bias[col]; v += res (first) ; v = act(v); v += res (after).
// res is addressed through res_ix (operand 0 strides in y's index space).
struct EpilogueArgs {
  void* y = nullptr;
  int ty = 1;
  const void* bias = nullptr;
  int tbias = 1;
  int64_t bias_div = 1, bias_mod = 0;  // bias index = (i / bias_div) % bias_mod
  const void* res = nullptr;
  int tres = 1;
  Indexer res_ix;
  bool res_first = false;
  int act = 0;  // ops::Act as int
  float p0 = 0, p1 = 0;
  int64_t n = 0;
  // Fast path (y viewed as rows x cols, no index division per element):
  // cols > 0; bias by column (GEMM) or by row % bias_mod (NCHW conv, rows =
  // N*C); a residual must then be dense with y's shape (res_dense).
  int64_t cols = 0;
  bool bias_per_row = false;
  bool res_dense = false;
};
void epilogue(const EpilogueArgs& a, cudaStream_t s);

// Fused attention: per (batch, head, query row) one block computes scores
// against all keys, applies the mask, softmax, and the weighted sum of V.
// Views give element offsets: element (b, h, row, d) of Q at
// q + b*q_sb + h*q_sh + row*q_ld + d (K with k_transposed: row and d swap).
struct AttnArgs {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  int t = 1;  // Q, K, V dtype
  int64_t q_sb = 0, q_sh = 0, q_ld = 0;
  int64_t k_sb = 0, k_sh = 0, k_ld = 0;
  bool k_t = false;
  int64_t v_sb = 0, v_sh = 0, v_ld = 0;
  void* y = nullptr;
  int ty = 1;
  int64_t y_sb = 0, y_sh = 0, y_ld = 0;
  int64_t B = 0, H = 0, Sq = 0, Sk = 0, D = 0, Dv = 0;
  float scale = 1;
  const void* mask = nullptr;
  int tmask = 1;
  int mask_mode = 0;  // 0 add, 1 keep, 2 drop
  float mask_fill = 0;
  int64_t m_sb = 0, m_sh = 0, m_sq = 0, m_sk = 0;
  // The mask is known to keep exactly keys k <= q + (Sk - Sq) (causal, Sk >= Sq): kernels that know this
  // skip the mask reads and the key tiles past the diagonal; the others read the mask.
  bool causal = false;
  // Scratch for the tensor-core kernel's key-split partial results (attention_workspace_bytes); without
  // it every block covers all keys of its rows.
  void* work = nullptr;
  size_t work_bytes = 0;
};
// float16 that attention_mma_fits: tensor cores (attention_mma, below). Other
// head sizes up to 128: a tiled kernel (64 query rows x 64 keys per step,
// online softmax, float32 math from shared memory). Larger heads: one block per
// query row with all scores in shared memory (attention_rowwise).
void attention(const AttnArgs& a, cudaStream_t s);
// Dynamic shared memory attention() needs (the caller checks it against the device).
size_t attention_smem_bytes(const AttnArgs& a);
// Scratch attention() can use (AttnArgs::work): grids too small to fill the GPU split the keys.
size_t attention_workspace_bytes(const AttnArgs& a);
void attention_rowwise(const AttnArgs& a, cudaStream_t s);
size_t attention_rowwise_smem_bytes(const AttnArgs& a);
// Tensor cores (mma.sync, flash style) for float16 with head sizes multiples
// of 16 up to 128, 16-byte aligned rows, K not transposed: attention() takes
// it unless DEEPEP_CUDA_ATTENTION=tiled.
bool attention_mma_fits(const AttnArgs& a);
void attention_mma(const AttnArgs& a, cudaStream_t s);
size_t attention_mma_smem_bytes(const AttnArgs& a);
size_t attention_mma_workspace_bytes(const AttnArgs& a);

// Pooling over NCHW (2-D spatial; 1-D/3-D callers pad dims with 1s).
struct PoolArgs {
  const void* x = nullptr;
  void* y = nullptr;
  int t = 1;
  int64_t N = 0, C = 0, H = 0, W = 0, OH = 0, OW = 0;
  int kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  bool max = true;
  bool count_include_pad = false;
  bool nhwc = false;  // X [N, H, W, C], Y [N, OH, OW, C] (deepep.MaxPool channels_last): threads along C
};
void pool2d(const PoolArgs& a, cudaStream_t s);
// Mean over the last `inner` elements of each of `rows` rows (GlobalAveragePool, ReduceMean over trailing axes).
void row_mean(const void* x, void* y, int t, int64_t rows, int64_t inner, cudaStream_t s);
// Range: out[i] = start + i * delta (dtype t).
void range(double start, double delta, void* out, int t, int64_t n, cudaStream_t s);

}  // namespace deepep::cuda
