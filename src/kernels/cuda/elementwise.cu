// Elementwise and data-movement kernels: broadcasting binary ops, unary ops,
// Cast, Where, the fused bias/activation/residual epilogue, strided copies
// (Expand, Transpose, Slice), Concat, Gather, Range and fills. All compute in
// float (int64 in integer paths) and load/store any supported dtype.
#include <algorithm>
#include <cfloat>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels/cuda/device_util.cuh"

namespace deepep::cuda {
namespace {

__device__ __forceinline__ float sigmoidf_(float v) {
  if (v >= 0) return 1.f / (1.f + __expf(-v));
  const float e = __expf(v);
  return e / (1.f + e);
}

__device__ __forceinline__ float apply_binary(BinOp op, float a, float b) {
  switch (op) {
    case BinOp::kAdd: return a + b;
    case BinOp::kSub: return a - b;
    case BinOp::kMul: return a * b;
    case BinOp::kDiv: return a / b;
    case BinOp::kPow: return powf(a, b);
    case BinOp::kMax: return (a != a || b != b) ? NAN : fmaxf(a, b);
    case BinOp::kMin: return (a != a || b != b) ? NAN : fminf(a, b);
    case BinOp::kMod: {  // Python-style (sign of the divisor), fmod=0 for floats is not allowed by ONNX
      float r = fmodf(a, b);
      if (r != 0.f && ((r < 0) != (b < 0))) r += b;
      return r;
    }
    case BinOp::kFmod: return fmodf(a, b);
    case BinOp::kEqual: return a == b;
    case BinOp::kLess: return a < b;
    case BinOp::kLessEq: return a <= b;
    case BinOp::kGreater: return a > b;
    case BinOp::kGreaterEq: return a >= b;
    case BinOp::kAnd: return (a != 0.f) && (b != 0.f);
    case BinOp::kOr: return (a != 0.f) || (b != 0.f);
    case BinOp::kXor: return (a != 0.f) != (b != 0.f);
    case BinOp::kPRelu: return a < 0.f ? a * b : a;
    default: return 0.f;
  }
}

__device__ __forceinline__ int64_t apply_binary_int(BinOp op, int64_t a, int64_t b) {
  switch (op) {
    case BinOp::kAdd: return a + b;
    case BinOp::kSub: return a - b;
    case BinOp::kMul: return a * b;
    case BinOp::kDiv: return b == 0 ? 0 : a / b;
    case BinOp::kMax: return a > b ? a : b;
    case BinOp::kMin: return a < b ? a : b;
    case BinOp::kMod: {
      if (b == 0) return 0;
      int64_t r = a % b;
      if (r != 0 && ((r < 0) != (b < 0))) r += b;
      return r;
    }
    case BinOp::kFmod: return b == 0 ? 0 : a % b;
    case BinOp::kEqual: return a == b;
    case BinOp::kLess: return a < b;
    case BinOp::kLessEq: return a <= b;
    case BinOp::kGreater: return a > b;
    case BinOp::kGreaterEq: return a >= b;
    case BinOp::kAnd: return (a != 0) && (b != 0);
    case BinOp::kOr: return (a != 0) || (b != 0);
    case BinOp::kXor: return (a != 0) != (b != 0);
    case BinOp::kBitAnd: return a & b;
    case BinOp::kBitOr: return a | b;
    case BinOp::kPow: {
      int64_t r = 1;
      for (int64_t e = 0; e < b; ++e) r *= a;
      return r;
    }
    default: return 0;
  }
}

__global__ void binary_kernel(BinOp op, const void* a, int ta, const void* b, int tb, void* out, int tout, Indexer ix,
                              int64_t n, bool int_path) {
  DEEPEP_GRID_STRIDE(i, n) {
    int64_t off[2];
    offsets<2>(ix, i, off);
    if (int_path) {
      sti(out, tout, i, apply_binary_int(op, ldi(a, ta, off[0]), ldi(b, tb, off[1])));
    } else {
      stf(out, tout, i, apply_binary(op, ldf(a, ta, off[0]), ldf(b, tb, off[1])));
    }
  }
}

// Same shapes, no broadcasting: no index arithmetic.
__global__ void binary_flat_kernel(BinOp op, const void* a, int ta, const void* b, int tb, void* out, int tout,
                                   int64_t n) {
  DEEPEP_GRID_STRIDE(i, n) stf(out, tout, i, apply_binary(op, ldf(a, ta, i), ldf(b, tb, i)));
}

// Same shapes and one float type throughout, 16-byte aligned: 16 bytes per operand a step (the scalar kernel's
// per-element dtype switches ran BERT's b32 embedding sum at 18.7 us for 6.3 MB).
template <class T>
__global__ void binary_flat_vec_kernel(BinOp op, const uint4* a, const uint4* b, uint4* out, int64_t nvec) {
  constexpr int kV = 16 / sizeof(T);
  DEEPEP_GRID_STRIDE(i, nvec) {
    const uint4 ra = a[i], rb = b[i];
    const T* va = reinterpret_cast<const T*>(&ra);
    const T* vb = reinterpret_cast<const T*>(&rb);
    uint4 ro;
    T* vo = reinterpret_cast<T*>(&ro);
#pragma unroll
    for (int k = 0; k < kV; ++k) vo[k] = T(apply_binary(op, float(va[k]), float(vb[k])));
    out[i] = ro;
  }
}

}  // namespace

__device__ float apply_unary(UnOp op, float v, float p0, float p1) {
  switch (op) {
    case UnOp::kIdentity: return v;
    case UnOp::kRelu: return v > 0.f ? v : (v == v ? 0.f : v);
    case UnOp::kSigmoid: return sigmoidf_(v);
    case UnOp::kTanh: return tanhf(v);
    case UnOp::kExp: return expf(v);
    case UnOp::kLog: return logf(v);
    case UnOp::kSqrt: return sqrtf(v);
    case UnOp::kRsqrt: return rsqrtf(v);
    case UnOp::kNeg: return -v;
    case UnOp::kAbs: return fabsf(v);
    case UnOp::kErf: return erff(v);
    case UnOp::kGelu: return 0.5f * v * (1.f + erff(v * 0.70710678118654752f));
    case UnOp::kGeluTanh: return 0.5f * v * (1.f + tanhf(0.79788456080286535588f * (v + 0.044715f * v * v * v)));
    case UnOp::kReciprocal: return 1.f / v;
    case UnOp::kSin: return sinf(v);
    case UnOp::kCos: return cosf(v);
    case UnOp::kFloor: return floorf(v);
    case UnOp::kCeil: return ceilf(v);
    case UnOp::kRound: return rintf(v);
    case UnOp::kLeakyRelu: return v >= 0.f ? v : p0 * v;
    case UnOp::kElu: return v >= 0.f ? v : p0 * (expf(v) - 1.f);
    case UnOp::kCelu: return fmaxf(0.f, v) + fminf(0.f, p0 * (expf(v / p0) - 1.f));
    case UnOp::kSelu: return v > 0.f ? p1 * v : p1 * (p0 * expf(v) - p0);
    case UnOp::kHardSigmoid: return fmaxf(0.f, fminf(1.f, p0 * v + p1));
    case UnOp::kHardSwish: return v * fmaxf(0.f, fminf(1.f, v / 6.f + 0.5f));
    case UnOp::kSoftplus: return v > 20.f ? v : log1pf(expf(v));
    case UnOp::kSiLU: return v * sigmoidf_(v);
    case UnOp::kMish: return v * tanhf(v > 20.f ? v : log1pf(expf(v)));
    case UnOp::kSoftsign: return v / (1.f + fabsf(v));
    case UnOp::kThresholdedRelu: return v > p0 ? v : 0.f;
    case UnOp::kClip: return v != v ? v : (v < p0 ? p0 : (v > p1 ? p1 : v));
    case UnOp::kNot: return v == 0.f;
    case UnOp::kSign: return v > 0.f ? 1.f : (v < 0.f ? -1.f : v);
    case UnOp::kIsNaN: return v != v;
    case UnOp::kIsInf: return isinf(v) ? 1.f : 0.f;
  }
  return v;
}

namespace {
__global__ void unary_kernel(UnOp op, const void* x, int tx, void* out, int tout, int64_t n, float p0, float p1) {
  DEEPEP_GRID_STRIDE(i, n) {
    if (is_int_type(tx) && is_int_type(tout)) {  // Neg/Abs/Sign/Identity/Clip on integers stay exact
      int64_t v = ldi(x, tx, i);
      switch (op) {
        case UnOp::kNeg: v = -v; break;
        case UnOp::kAbs: v = v < 0 ? -v : v; break;
        case UnOp::kSign: v = v > 0 ? 1 : (v < 0 ? -1 : 0); break;
        case UnOp::kRelu: v = v > 0 ? v : 0; break;
        case UnOp::kClip: v = v < int64_t(p0) ? int64_t(p0) : (v > int64_t(p1) ? int64_t(p1) : v); break;
        case UnOp::kNot: v = v == 0; break;
        default: break;
      }
      sti(out, tout, i, v);
    } else {
      stf(out, tout, i, apply_unary(op, ldf(x, tx, i), p0, p1));
    }
  }
}

__global__ void convert_kernel(const void* x, int tx, void* out, int tout, int64_t n) {
  DEEPEP_GRID_STRIDE(i, n) {
    if (is_int_type(tout) || tout == kF64) {
      if (is_int_type(tx)) sti(out, tout, i, ldi(x, tx, i));
      else if (tout == kF64) static_cast<double*>(out)[i] = ldd(x, tx, i);
      else {
        const double v = ldd(x, tx, i);
        sti(out, tout, i, v != v ? 0 : int64_t(v));
      }
    } else if (tout == kBool) {
      static_cast<uint8_t*>(out)[i] = ldd(x, tx, i) != 0.0;
    } else {
      stf(out, tout, i, tx == kI64 ? float(ldi(x, tx, i)) : ldf(x, tx, i));
    }
  }
}

__global__ void where_kernel(const void* cond, const void* a, const void* b, int t, void* out, int tout, Indexer ix,
                             int64_t n) {
  DEEPEP_GRID_STRIDE(i, n) {
    int64_t off[3];
    offsets<3>(ix, i, off);
    const bool c = static_cast<const uint8_t*>(cond)[off[0]] != 0;
    if (is_int_type(t)) sti(out, tout, i, c ? ldi(a, t, off[1]) : ldi(b, t, off[2]));
    else stf(out, tout, i, c ? ldf(a, t, off[1]) : ldf(b, t, off[2]));
  }
}
}  // namespace

__device__ float apply_act(int act, float v, float p0, float p1) {
  // ops::Act order: kNone, kRelu, kLeakyRelu, kSigmoid, kTanh, kSiLU, kGelu, kGeluTanh, kClip, kHardSigmoid, kHardSwish
  switch (act) {
    case 0: return v;
    case 1: return apply_unary(UnOp::kRelu, v, p0, p1);
    case 2: return apply_unary(UnOp::kLeakyRelu, v, p0, p1);
    case 3: return apply_unary(UnOp::kSigmoid, v, p0, p1);
    case 4: return apply_unary(UnOp::kTanh, v, p0, p1);
    case 5: return apply_unary(UnOp::kSiLU, v, p0, p1);
    case 6: return apply_unary(UnOp::kGelu, v, p0, p1);
    case 7: return apply_unary(UnOp::kGeluTanh, v, p0, p1);
    case 8: return v < p0 ? p0 : (v > p1 ? p1 : v);
    case 9: return apply_unary(UnOp::kHardSigmoid, v, p0, p1);
    case 10: return apply_unary(UnOp::kHardSwish, v, p0, p1);
  }
  return v;
}

namespace {
__global__ void epilogue_kernel(EpilogueArgs a) {
  DEEPEP_GRID_STRIDE(i, a.n) {
    float v = ldf(a.y, a.ty, i);
    if (a.bias) v += ldf(a.bias, a.tbias, (i / a.bias_div) % a.bias_mod);
    float r = 0.f;
    if (a.res) {
      int64_t off[1];
      offsets<1>(a.res_ix, i, off);
      r = ldf(a.res, a.tres, off[0]);
    }
    if (a.res && a.res_first) v += r;
    v = apply_act(a.act, v, a.p0, a.p1);
    if (a.res && !a.res_first) v += r;
    stf(a.y, a.ty, i, v);
  }
}

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
template <class T>
__device__ __forceinline__ T from_f(float v);
template <>
__device__ __forceinline__ float from_f<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }

// The epilogue over rows x cols with typed loads: bias by column or by row.
template <class T>
__global__ void epilogue_2d_kernel(T* y, const T* bias, const T* res, int64_t rows, int64_t cols, int64_t bias_mod,
                                   bool bias_per_row, bool res_first, int act, float p0, float p1) {
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    const float brow = (bias && bias_per_row) ? to_f(bias[r % bias_mod]) : 0.f;
    T* yr = y + r * cols;
    const T* rr = res ? res + r * cols : nullptr;
    for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < cols; c += int64_t(gridDim.x) * blockDim.x) {
      float v = to_f(yr[c]);
      if (bias) v += bias_per_row ? brow : to_f(bias[c]);
      const float rv = rr ? to_f(rr[c]) : 0.f;
      if (rr && res_first) v += rv;
      v = apply_act(act, v, p0, p1);
      if (rr && !res_first) v += rv;
      yr[c] = from_f<T>(v);
    }
  }
}

// The same with 16-byte loads and stores of y and the residual (n a
// multiple of V = 16 / sizeof(T), y and res 16-byte aligned). A vector may
// cross rows (NCHW convs with 7x7 or 14x14 outputs): row and column advance
// per element. Column bias: one 16-byte load when cols is a multiple of V
// (bias_vec), else per element; row bias (NCHW): by row % bias_mod, tracked.
template <class T>
__global__ void epilogue_vec_kernel(T* y, const T* bias, const T* res, int64_t nvec, int64_t cols, int64_t bias_mod,
                                    bool bias_per_row, bool bias_vec, bool res_first, int act, float p0, float p1) {
  constexpr int V = 16 / sizeof(T);
  DEEPEP_GRID_STRIDE(i, nvec) {
    const int64_t e = i * V;
    int64_t r = e / cols, c = e - r * cols;
    int64_t rm = (bias && bias_per_row) ? r % bias_mod : 0;
    uint4 yv = reinterpret_cast<const uint4*>(y)[i];
    uint4 rv = make_uint4(0, 0, 0, 0), bv = make_uint4(0, 0, 0, 0);
    if (res) rv = reinterpret_cast<const uint4*>(res)[i];
    if (bias && bias_vec) bv = *reinterpret_cast<const uint4*>(bias + c);
    T* yy = reinterpret_cast<T*>(&yv);
    const T* rr = reinterpret_cast<const T*>(&rv);
    const T* bb = reinterpret_cast<const T*>(&bv);
#pragma unroll
    for (int k = 0; k < V; ++k) {
      float v = to_f(yy[k]);
      if (bias) v += bias_vec ? to_f(bb[k]) : to_f(bias[bias_per_row ? rm : c]);
      if (res && res_first) v += to_f(rr[k]);
      v = apply_act(act, v, p0, p1);
      if (res && !res_first) v += to_f(rr[k]);
      yy[k] = from_f<T>(v);
      if (++c == cols) {
        c = 0;
        if (++rm == bias_mod) rm = 0;
      }
    }
    reinterpret_cast<uint4*>(y)[i] = yv;
  }
}

template <class T>
__global__ void strided_copy_kernel(const T* x, T* out, Indexer ix, int64_t n) {
  DEEPEP_GRID_STRIDE(i, n) {
    int64_t off[1];
    offsets<1>(ix, i, off);
    out[i] = x[off[0]];
  }
}

template <class T>
__global__ void concat_kernel(const T* x, T* out, int64_t outer, int64_t len, int64_t out_len, int64_t offset,
                              int64_t inner) {
  const int64_t n = outer * len * inner;
  DEEPEP_GRID_STRIDE(i, n) {
    const int64_t in_i = i % inner, t = i / inner, l = t % len, o = t / len;
    out[(o * out_len + offset + l) * inner + in_i] = x[i];
  }
}

template <class T>
__global__ void gather_kernel(const T* data, const void* idx, int tidx, T* out, int64_t outer, int64_t axis_len,
                              int64_t n_idx, int64_t inner, int* bad) {
  const int64_t n = outer * n_idx * inner;
  DEEPEP_GRID_STRIDE(i, n) {
    const int64_t in_i = i % inner, t = i / inner, j = t % n_idx, o = t / n_idx;
    int64_t k = tidx == kI64 ? static_cast<const int64_t*>(idx)[j] : static_cast<const int32_t*>(idx)[j];
    if (k < 0) k += axis_len;
    if (k < 0 || k >= axis_len) {
      *bad = 1;
      out[i] = T{};
    } else {
      out[i] = data[(o * axis_len + k) * inner + in_i];
    }
  }
}

template <class T>
__global__ void fill_kernel(T* out, T v, int64_t n) {
  DEEPEP_GRID_STRIDE(i, n) out[i] = v;
}

__global__ void range_kernel(double start, double delta, void* out, int t, int64_t n) {
  DEEPEP_GRID_STRIDE(i, n) {
    if (t == kI64 || t == kI32) sti(out, t, i, int64_t(start) + i * int64_t(delta));
    else if (t == kF64) static_cast<double*>(out)[i] = start + double(i) * delta;
    else stf(out, t, i, float(start + double(i) * delta));
  }
}

constexpr int kThreads = 256;
}  // namespace

void binary(BinOp op, const void* a, int ta, const void* b, int tb, void* out, int tout, const Indexer& ix, int64_t n,
            cudaStream_t s) {
  if (n == 0) return;
  const bool int_path = is_int_type(ta) && is_int_type(tb);
  bool flat = !int_path;
  // Flat when both operands are dense in the output's layout.
  int64_t expect = 1;
  for (int d = ix.rank - 1; d >= 0 && flat; --d) {
    if (ix.dims[d] != 1 && (ix.strides[0][d] != expect || ix.strides[1][d] != expect)) flat = false;
    expect *= ix.dims[d];
  }
  const auto aligned16 = [](const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; };
  const int vec = ta == tb && ta == tout && (ta == kF32 || ta == kF16) ? (ta == kF32 ? 4 : 8) : 0;
  if (flat && vec && n % vec == 0 && aligned16(a) && aligned16(b) && aligned16(out)) {
    const auto* va = static_cast<const uint4*>(a);
    const auto* vb = static_cast<const uint4*>(b);
    auto* vo = static_cast<uint4*>(out);
    if (vec == 4) binary_flat_vec_kernel<float><<<blocks_for(n / 4, kThreads), kThreads, 0, s>>>(op, va, vb, vo, n / 4);
    else binary_flat_vec_kernel<__half><<<blocks_for(n / 8, kThreads), kThreads, 0, s>>>(op, va, vb, vo, n / 8);
  } else if (flat) binary_flat_kernel<<<blocks_for(n, kThreads), kThreads, 0, s>>>(op, a, ta, b, tb, out, tout, n);
  else binary_kernel<<<blocks_for(n, kThreads), kThreads, 0, s>>>(op, a, ta, b, tb, out, tout, ix, n, int_path);
}

void unary(UnOp op, const void* x, int tx, void* out, int tout, int64_t n, float p0, float p1, cudaStream_t s) {
  if (n == 0) return;
  unary_kernel<<<blocks_for(n, kThreads), kThreads, 0, s>>>(op, x, tx, out, tout, n, p0, p1);
}

void convert(const void* x, int tx, void* out, int tout, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  convert_kernel<<<blocks_for(n, kThreads), kThreads, 0, s>>>(x, tx, out, tout, n);
}

void where(const void* cond, const void* a, const void* b, int t, void* out, int tout, const Indexer& ix, int64_t n,
           cudaStream_t s) {
  if (n == 0) return;
  where_kernel<<<blocks_for(n, kThreads), kThreads, 0, s>>>(cond, a, b, t, out, tout, ix, n);
}

void epilogue(const EpilogueArgs& a, cudaStream_t s) {
  if (a.n == 0) return;
  const bool typed = (a.ty == kF32 || a.ty == kF16) && (!a.bias || a.tbias == a.ty) && (!a.res || a.tres == a.ty);
  if (a.cols > 0 && typed && (!a.res || a.res_dense)) {
    const int64_t rows = a.n / a.cols;
    const int V = a.ty == kF32 ? 4 : 8;
    const auto aligned16 = [](const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; };
    const char* mode = std::getenv("DEEPEP_CUDA_EPILOGUE");  // "scalar": the 2-D kernel below (A/B)
    const bool bias_vec = a.bias && !a.bias_per_row && a.cols % V == 0 && aligned16(a.bias);
    if (!(mode && std::strcmp(mode, "scalar") == 0) && a.n % V == 0 && aligned16(a.y) && aligned16(a.res)) {
      const int64_t nvec = a.n / V;
      const unsigned g = blocks_for(nvec, kThreads);
      if (a.ty == kF32)
        epilogue_vec_kernel<float><<<g, kThreads, 0, s>>>(
            static_cast<float*>(a.y), static_cast<const float*>(a.bias), static_cast<const float*>(a.res), nvec, a.cols,
            a.bias_mod, a.bias_per_row, bias_vec, a.res_first, a.act, a.p0, a.p1);
      else
        epilogue_vec_kernel<__half><<<g, kThreads, 0, s>>>(
            static_cast<__half*>(a.y), static_cast<const __half*>(a.bias), static_cast<const __half*>(a.res), nvec,
            a.cols, a.bias_mod, a.bias_per_row, bias_vec, a.res_first, a.act, a.p0, a.p1);
      return;
    }
    const int threads = a.cols >= 256 ? 256 : (a.cols >= 128 ? 128 : 64);
    const unsigned gx = unsigned(std::min<int64_t>((a.cols + threads - 1) / threads, 64));
    const unsigned gy = unsigned(std::min<int64_t>(rows, 65535));
    if (a.ty == kF32)
      epilogue_2d_kernel<float><<<dim3(gx, gy), threads, 0, s>>>(
          static_cast<float*>(a.y), static_cast<const float*>(a.bias), static_cast<const float*>(a.res), rows, a.cols,
          a.bias_mod, a.bias_per_row, a.res_first, a.act, a.p0, a.p1);
    else
      epilogue_2d_kernel<__half><<<dim3(gx, gy), threads, 0, s>>>(
          static_cast<__half*>(a.y), static_cast<const __half*>(a.bias), static_cast<const __half*>(a.res), rows,
          a.cols, a.bias_mod, a.bias_per_row, a.res_first, a.act, a.p0, a.p1);
    return;
  }
  epilogue_kernel<<<blocks_for(a.n, kThreads), kThreads, 0, s>>>(a);
}

void strided_copy(const void* x, int64_t x_offset, void* out, int elem_bytes, const Indexer& ix, int64_t n,
                  cudaStream_t s) {
  if (n == 0) return;
  const unsigned g = blocks_for(n, kThreads);
  switch (elem_bytes) {
    case 1: strided_copy_kernel<<<g, kThreads, 0, s>>>(static_cast<const uint8_t*>(x) + x_offset, static_cast<uint8_t*>(out), ix, n); break;
    case 2: strided_copy_kernel<<<g, kThreads, 0, s>>>(static_cast<const uint16_t*>(x) + x_offset, static_cast<uint16_t*>(out), ix, n); break;
    case 4: strided_copy_kernel<<<g, kThreads, 0, s>>>(static_cast<const uint32_t*>(x) + x_offset, static_cast<uint32_t*>(out), ix, n); break;
    default: strided_copy_kernel<<<g, kThreads, 0, s>>>(static_cast<const uint64_t*>(x) + x_offset, static_cast<uint64_t*>(out), ix, n); break;
  }
}

void concat_part(const void* x, void* out, int eb, int64_t outer, int64_t len, int64_t out_len, int64_t offset,
                 int64_t inner, cudaStream_t s) {
  const int64_t n = outer * len * inner;
  if (n == 0) return;
  const unsigned g = blocks_for(n, kThreads);
  switch (eb) {
    case 1: concat_kernel<<<g, kThreads, 0, s>>>(static_cast<const uint8_t*>(x), static_cast<uint8_t*>(out), outer, len, out_len, offset, inner); break;
    case 2: concat_kernel<<<g, kThreads, 0, s>>>(static_cast<const uint16_t*>(x), static_cast<uint16_t*>(out), outer, len, out_len, offset, inner); break;
    case 4: concat_kernel<<<g, kThreads, 0, s>>>(static_cast<const uint32_t*>(x), static_cast<uint32_t*>(out), outer, len, out_len, offset, inner); break;
    default: concat_kernel<<<g, kThreads, 0, s>>>(static_cast<const uint64_t*>(x), static_cast<uint64_t*>(out), outer, len, out_len, offset, inner); break;
  }
}

void gather(const void* data, int eb, const void* idx, int tidx, void* out, int64_t outer, int64_t axis_len,
            int64_t n_idx, int64_t inner, int* bad, cudaStream_t s) {
  const int64_t n = outer * n_idx * inner;
  if (n == 0) return;
  // Rows of whole 16-byte vectors (embedding lookups: 768 float16 values a row) move as vectors: an
  // element per thread ran at a quarter of the bandwidth.
  const bool vec = (inner * eb) % 16 == 0 && ((reinterpret_cast<uintptr_t>(data) | reinterpret_cast<uintptr_t>(out)) & 15) == 0;
  if (vec && eb < 16) {
    const int64_t vi = inner * eb / 16;
    gather_kernel<<<blocks_for(outer * n_idx * vi, kThreads), kThreads, 0, s>>>(
        static_cast<const uint4*>(data), idx, tidx, static_cast<uint4*>(out), outer, axis_len, n_idx, vi, bad);
    return;
  }
  const unsigned g = blocks_for(n, kThreads);
  switch (eb) {
    case 1: gather_kernel<<<g, kThreads, 0, s>>>(static_cast<const uint8_t*>(data), idx, tidx, static_cast<uint8_t*>(out), outer, axis_len, n_idx, inner, bad); break;
    case 2: gather_kernel<<<g, kThreads, 0, s>>>(static_cast<const uint16_t*>(data), idx, tidx, static_cast<uint16_t*>(out), outer, axis_len, n_idx, inner, bad); break;
    case 4: gather_kernel<<<g, kThreads, 0, s>>>(static_cast<const uint32_t*>(data), idx, tidx, static_cast<uint32_t*>(out), outer, axis_len, n_idx, inner, bad); break;
    default: gather_kernel<<<g, kThreads, 0, s>>>(static_cast<const uint64_t*>(data), idx, tidx, static_cast<uint64_t*>(out), outer, axis_len, n_idx, inner, bad); break;
  }
}

void fill_pattern(void* out, int eb, uint64_t pattern, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  const unsigned g = blocks_for(n, kThreads);
  switch (eb) {
    case 1: fill_kernel<<<g, kThreads, 0, s>>>(static_cast<uint8_t*>(out), uint8_t(pattern), n); break;
    case 2: fill_kernel<<<g, kThreads, 0, s>>>(static_cast<uint16_t*>(out), uint16_t(pattern), n); break;
    case 4: fill_kernel<<<g, kThreads, 0, s>>>(static_cast<uint32_t*>(out), uint32_t(pattern), n); break;
    default: fill_kernel<<<g, kThreads, 0, s>>>(static_cast<uint64_t*>(out), pattern, n); break;
  }
}

void range(double start, double delta, void* out, int t, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  range_kernel<<<blocks_for(n, kThreads), kThreads, 0, s>>>(start, delta, out, t, n);
}

}  // namespace deepep::cuda
