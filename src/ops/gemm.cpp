// Gemm, and the float GEMM engine behind Conv, ConvTranspose, MatMul and Gemm:
// BLIS-style blocking (KC x NC panels of B and MC x KC blocks of A packed into
// MR/NR-wide strips) around a register-blocked MR x NR micro-kernel written
// with GCC/Clang vector extensions, so -O3 turns it into SIMD code for the
// baseline ISA. On x86-64 a second copy compiled for AVX2+FMA is chosen at
// run time when the CPU has it (no -march flag: the build stays portable).
// Large problems are split over std::threads by rows (or columns).
#include <atomic>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include "kernels/cpu/sgemm.h"
#include "kernels/cpu/thread_pool.h"
#include "ops/gemm_util.h"

namespace deepep::ops {

int threads_for_work(double work) {
  static const int hw = cpu::ThreadPool::global().size();
  if (work < double(1 << 21)) return 1;
  return int(std::clamp(work / double(1 << 20), 1.0, double(hw)));
}

// On the process-wide pool (src/kernels/cpu/thread_pool.h): no thread
// creation per call, and concurrent Sessions share its workers. A few chunks
// per thread let faster threads take more.
void parallel_for(int64_t n, int threads, const std::function<void(int64_t, int64_t)>& f) {
  if (n <= 0) return;
  threads = int(std::clamp<int64_t>(threads, 1, n));
  const int64_t grain = threads == 1 ? n : std::max<int64_t>(1, n / (int64_t(threads) * 3));
  cpu::ThreadPool::global().parallel_for(n, grain, threads, f);
}

namespace {

#if defined(__GNUC__) || defined(__clang__)
#define DEEPEP_INLINE inline __attribute__((always_inline))
typedef float v4sf __attribute__((vector_size(16)));
typedef float v8sf __attribute__((vector_size(32)));
#define DEEPEP_HAVE_VEC 1
#else
#define DEEPEP_INLINE inline
#endif
#if defined(DEEPEP_HAVE_VEC) && defined(__x86_64__)
#define DEEPEP_X86_AVX2 1
#endif

constexpr int64_t KC = 256;
constexpr int64_t MC = 96;
constexpr int64_t NC = 1536;

struct GemmArgs {
  bool ta, tb;
  int64_t M, N, K;
  float alpha;
  const float* A;
  int64_t lda;
  const float* B;
  int64_t ldb;
  float beta;
  float* C;
  int64_t ldc;
};

// Packs rows [i0, i0+mc) x cols [p0, p0+kc) of op(A) into MR-row strips:
// ap[strip][k][r], zero-padded past mc.
template <int MR>
void pack_a(const GemmArgs& g, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float* ap) {
  for (int64_t ir = 0; ir < mc; ir += MR) {
    const int64_t rows = std::min<int64_t>(MR, mc - ir);
    float* dst = ap + ir * kc;
    if (g.ta) {  // A is K x M: row k of the strip is contiguous
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = g.A + (p0 + k) * g.lda + i0 + ir;
        int64_t r = 0;
        for (; r < rows; ++r) dst[k * MR + r] = src[r];
        for (; r < MR; ++r) dst[k * MR + r] = 0.f;
      }
    } else {
      for (int64_t r = 0; r < MR; ++r) {
        if (r < rows) {
          const float* src = g.A + (i0 + ir + r) * g.lda + p0;
          for (int64_t k = 0; k < kc; ++k) dst[k * MR + r] = src[k];
        } else {
          for (int64_t k = 0; k < kc; ++k) dst[k * MR + r] = 0.f;
        }
      }
    }
  }
}

// Packs rows [p0, p0+kc) x cols [j0, j0+nc) of op(B) into NR-column strips:
// bp[strip][k][c], zero-padded past nc.
template <int NR>
void pack_b(const GemmArgs& g, int64_t p0, int64_t kc, int64_t j0, int64_t nc, float* bp) {
  for (int64_t jr = 0; jr < nc; jr += NR) {
    const int64_t cols = std::min<int64_t>(NR, nc - jr);
    float* dst = bp + jr * kc;
    if (!g.tb) {  // B is K x N: rows contiguous
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = g.B + (p0 + k) * g.ldb + j0 + jr;
        int64_t c = 0;
        for (; c < cols; ++c) dst[k * NR + c] = src[c];
        for (; c < NR; ++c) dst[k * NR + c] = 0.f;
      }
    } else {
      for (int64_t c = 0; c < NR; ++c) {
        if (c < cols) {
          const float* src = g.B + (j0 + jr + c) * g.ldb + p0;
          for (int64_t k = 0; k < kc; ++k) dst[k * NR + c] = src[k];
        } else {
          for (int64_t k = 0; k < kc; ++k) dst[k * NR + c] = 0.f;
        }
      }
    }
  }
}

#ifdef DEEPEP_HAVE_VEC
// MR x (NV*VW) register tile: c = alpha * a*b + beta * c (beta == 0: no read).
template <class V, int VW, int MR, int NV>
DEEPEP_INLINE void micro_kernel(int64_t kc, const float* __restrict a, const float* __restrict b,
                                float* __restrict c, int64_t ldc, int64_t mr, int64_t nr,
                                float alpha, float beta) {
  constexpr int NR = VW * NV;
  V acc[MR][NV];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) acc[i][v] = V{} + 0.f;
  for (int64_t k = 0; k < kc; ++k) {
    V bv[NV];
    for (int v = 0; v < NV; ++v) std::memcpy(&bv[v], b + v * VW, sizeof(V));
    for (int i = 0; i < MR; ++i) {
      const V av = V{} + a[i];
      for (int v = 0; v < NV; ++v) acc[i][v] += av * bv[v];
    }
    a += MR;
    b += NR;
  }
  if (mr == MR && nr == NR) {
    for (int i = 0; i < MR; ++i) {
      float* ci = c + i * ldc;
      for (int v = 0; v < NV; ++v) {
        V r = acc[i][v] * alpha;
        if (beta != 0.f) {
          V old;
          std::memcpy(&old, ci + v * VW, sizeof(V));
          r += old * beta;
        }
        std::memcpy(ci + v * VW, &r, sizeof(V));
      }
    }
    return;
  }
  float tile[MR][NR];
  std::memcpy(tile, acc, sizeof(tile));
  for (int64_t i = 0; i < mr; ++i)
    for (int64_t j = 0; j < nr; ++j) {
      float& o = c[i * ldc + j];
      o = alpha * tile[i][j] + (beta != 0.f ? beta * o : 0.f);
    }
}
#else
template <class V, int VW, int MR, int NV>
inline void micro_kernel(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                         int64_t mr, int64_t nr, float alpha, float beta) {
  constexpr int NR = VW * NV;
  float acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k, a += MR, b += NR)
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += a[i] * b[j];
  for (int64_t i = 0; i < mr; ++i)
    for (int64_t j = 0; j < nr; ++j) {
      float& o = c[i * ldc + j];
      o = alpha * acc[i][j] + (beta != 0.f ? beta * o : 0.f);
    }
}
#endif

// Single-threaded blocked GEMM on rows [m0, m1) and cols [n0, n1) of C.
template <class V, int VW, int MR, int NV>
DEEPEP_INLINE void gemm_block(const GemmArgs& g, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  constexpr int NR = VW * NV;
  const int64_t kcmax = std::min(KC, g.K);
  const int64_t ncmax = std::min(NC, n1 - n0);
  const int64_t mcmax = std::min(MC, m1 - m0);
  std::vector<float> abuf(size_t((mcmax + MR) * kcmax)), bbuf(size_t((ncmax + NR) * kcmax));
  for (int64_t jc = n0; jc < n1; jc += NC) {
    const int64_t nc = std::min(NC, n1 - jc);
    for (int64_t pc = 0; pc < g.K; pc += KC) {
      const int64_t kc = std::min(KC, g.K - pc);
      const float beta = pc == 0 ? g.beta : 1.f;
      pack_b<NR>(g, pc, kc, jc, nc, bbuf.data());
      for (int64_t ic = m0; ic < m1; ic += MC) {
        const int64_t mc = std::min(MC, m1 - ic);
        pack_a<MR>(g, ic, mc, pc, kc, abuf.data());
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const float* bp = bbuf.data() + jr * kc;
          for (int64_t ir = 0; ir < mc; ir += MR) {
            micro_kernel<V, VW, MR, NV>(kc, abuf.data() + ir * kc, bp,
                                        g.C + (ic + ir) * g.ldc + jc + jr, g.ldc,
                                        std::min<int64_t>(MR, mc - ir),
                                        std::min<int64_t>(NR, nc - jr), g.alpha, beta);
          }
        }
      }
    }
  }
}

#ifdef DEEPEP_HAVE_VEC
using VBase = v4sf;
#else
struct VBase {};
#endif
constexpr int kBaseMR = 4, kBaseNV = 2;  // 4 x 8 floats: fits 16 SSE registers

void gemm_block_base(const GemmArgs& g, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  gemm_block<VBase, 4, kBaseMR, kBaseNV>(g, m0, m1, n0, n1);
}

#ifdef DEEPEP_X86_AVX2
__attribute__((target("avx2,fma"))) void gemm_block_avx2(const GemmArgs& g, int64_t m0, int64_t m1,
                                                        int64_t n0, int64_t n1) {
  gemm_block<v8sf, 8, 6, 2>(g, m0, m1, n0, n1);  // 6 x 16 floats: 12 of 16 AVX registers
}
bool cpu_has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}
#endif

// Dot product of two contiguous float rows, 8 lanes of partial sums.
float dot(const float* a, const float* b, int64_t n) {
  int64_t k = 0;
  float sum = 0.f;
#ifdef DEEPEP_HAVE_VEC
  v4sf s0 = v4sf{} + 0.f, s1 = s0;
  for (; k + 8 <= n; k += 8) {
    v4sf a0, a1, b0, b1;
    std::memcpy(&a0, a + k, 16);
    std::memcpy(&a1, a + k + 4, 16);
    std::memcpy(&b0, b + k, 16);
    std::memcpy(&b1, b + k + 4, 16);
    s0 += a0 * b0;
    s1 += a1 * b1;
  }
  s0 += s1;
  sum = (s0[0] + s0[1]) + (s0[2] + s0[3]);
#endif
  for (; k < n; ++k) sum += a[k] * b[k];
  return sum;
}

void gemm_block_dispatch(const GemmArgs& g, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
#ifdef DEEPEP_X86_AVX2
  if (cpu_has_avx2()) return gemm_block_avx2(g, m0, m1, n0, n1);
#endif
  gemm_block_base(g, m0, m1, n0, n1);
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int threads) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.f) {
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        float& o = C[i * ldc + j];
        o = beta != 0.f ? beta * o : 0.f;
      }
    return;
  }
  if (M <= 2 && !trans_b) {
    // Row-vector times matrix: packing B would cost as much as the product.
    std::vector<float> row(static_cast<size_t>(N));
    for (int64_t i = 0; i < M; ++i) {
      float* __restrict r = row.data();
      std::fill(row.begin(), row.end(), 0.f);
      for (int64_t k = 0; k < K; ++k) {
        const float a = trans_a ? A[k * lda + i] : A[i * lda + k];
        const float* __restrict bk = B + k * ldb;
        for (int64_t j = 0; j < N; ++j) r[j] += a * bk[j];
      }
      float* c = C + i * ldc;
      for (int64_t j = 0; j < N; ++j) c[j] = alpha * r[j] + (beta != 0.f ? beta * c[j] : 0.f);
    }
    return;
  }
  if (M <= 2 && trans_b) {
    // Row-vector times rows of B: dot products of contiguous rows.
    std::vector<float> arow(static_cast<size_t>(K));
    for (int64_t i = 0; i < M; ++i) {
      for (int64_t k = 0; k < K; ++k) arow[k] = trans_a ? A[k * lda + i] : A[i * lda + k];
      float* c = C + i * ldc;
      for (int64_t j = 0; j < N; ++j) {
        const float v = alpha * dot(arow.data(), B + j * ldb, K);
        c[j] = v + (beta != 0.f ? beta * c[j] : 0.f);
      }
    }
    return;
  }
  // With a fast CPU ISA active (src/kernels/cpu), the packed AVX2/AVX-512
  // GEMM does the work for every kernel built on sgemm (attention,
  // ConvTranspose, ...). DEEPEP_CPU_ISA=none keeps the code below.
  if (beta == 0.f) {
    const cpu::Isa isa = cpu::active_isa();
    if (isa != cpu::Isa::kNone) {
      cpu::GemmEpi e;
      e.alpha = alpha;
      cpu::gemm(isa, M, N, K, cpu::Operand{A, lda, trans_a, nullptr}, cpu::Operand{B, ldb, trans_b, nullptr}, C, ldc,
                e, threads);
      return;
    }
  }
  const GemmArgs g{trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc};
  if (threads <= 0) threads = threads_for_work(double(M) * double(N) * double(K));
  if (threads <= 1) {
    gemm_block_dispatch(g, 0, M, 0, N);
    return;
  }
  // Split the larger side into strips of whole register tiles.
  constexpr int64_t kTileM = 24, kTileN = 16;  // whole 4- and 6-row tiles
  if (M / kTileM >= N / kTileN) {
    const int64_t tiles = (M + kTileM - 1) / kTileM;
    parallel_for(tiles, threads, [&](int64_t b, int64_t e) {
      gemm_block_dispatch(g, b * kTileM, std::min(M, e * kTileM), 0, N);
    });
  } else {
    const int64_t tiles = (N + kTileN - 1) / kTileN;
    parallel_for(tiles, threads, [&](int64_t b, int64_t e) {
      gemm_block_dispatch(g, 0, M, b * kTileN, std::min(N, e * kTileN));
    });
  }
}

}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

namespace {

// Dims of op(X) for a 2-D Gemm operand.
std::pair<Dim, Dim> gemm_dims(const SymShape& s, bool trans) {
  if (s.size() != 2) return {Dim{}, Dim{}};
  return trans ? std::make_pair(s[1], s[0]) : std::make_pair(s[0], s[1]);
}

void gemm_infer(InferContext& ctx) {
  if (!ctx.has_input(0)) return;
  const Value& a = ctx.input(0);
  std::optional<SymShape> shape;
  if (a.shape && ctx.has_input(1) && ctx.input(1).shape) {
    auto [m, ka] = gemm_dims(*a.shape, ctx.node.attr_int("transA", 0) != 0);
    auto [kb, n] = gemm_dims(*ctx.input(1).shape, ctx.node.attr_int("transB", 0) != 0);
    if (a.shape->size() == 2 && ctx.input(1).shape->size() == 2) shape = SymShape{m, n};
  }
  ctx.set(0, a.dtype, shape);
}

void gemm_kernel(KernelContext& ctx) {
  const Node& node = ctx.node;
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  const Tensor* c = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  const bool ta = node.attr_int("transA", 0) != 0, tb = node.attr_int("transB", 0) != 0;
  const float alpha = node.attr_float("alpha", 1.f), beta = node.attr_float("beta", 1.f);
  DEEPEP_CHECK(a.rank() == 2 && b.rank() == 2, node.describe(), ": A and B must be 2-D, got ",
               shape_str(a.shape()), " and ", shape_str(b.shape()));
  DEEPEP_CHECK(a.dtype() == b.dtype(), node.describe(), ": A and B dtypes differ (",
               dtype_name(a.dtype()), " vs ", dtype_name(b.dtype()), ")");
  const int64_t M = ta ? a.dim(1) : a.dim(0), K = ta ? a.dim(0) : a.dim(1);
  const int64_t KB = tb ? b.dim(1) : b.dim(0), N = tb ? b.dim(0) : b.dim(1);
  DEEPEP_CHECK(K == KB, node.describe(), ": inner dimensions differ: op(A) is ", M, "x", K,
               ", op(B) is ", KB, "x", N);
  const Shape out{M, N};
  std::vector<int64_t> cst(2, 0);  // C's strides broadcast into [M, N]
  const bool use_c = c && beta != 0.f && c->numel() > 0;
  if (c) {
    DEEPEP_CHECK(c->dtype() == a.dtype(), node.describe(), ": C has dtype ", dtype_name(c->dtype()),
                 ", expected ", dtype_name(a.dtype()));
    DEEPEP_CHECK(c->rank() <= 2, node.describe(), ": C must have rank <= 2, got ", shape_str(c->shape()));
    const Shape& cs = c->shape();
    for (int d = 0; d < c->rank(); ++d) {
      const int64_t od = out[2 - c->rank() + d];
      DEEPEP_CHECK(cs[d] == od || cs[d] == 1, node.describe(), ": C of shape ", shape_str(cs),
                   " cannot be broadcast to ", shape_str(out));
    }
    cst = broadcast_strides(cs, out);
  }
  Tensor& y = ctx.output(0, a.dtype(), out);
  if (y.numel() == 0) return;
  dispatch_numeric(a.dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pc = c ? c->data<T>() : nullptr;
    T* py = y.data<T>();
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, float16> ||
                  std::is_same_v<T, bfloat16>) {
      std::vector<float> fa, fb, fy;
      const float *A, *B;
      float* Y;
      if constexpr (std::is_same_v<T, float>) {
        A = a.data<float>(), B = b.data<float>(), Y = py;
      } else {
        fa = to_float_vec(a.data<T>(), a.numel());
        fb = to_float_vec(b.data<T>(), b.numel());
        fy.resize(size_t(M * N));
        A = fa.data(), B = fb.data(), Y = fy.data();
      }
      if (use_c)
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = 0; j < N; ++j) Y[i * N + j] = float(pc[i * cst[0] + j * cst[1]]);
      sgemm(ta, tb, M, N, K, alpha, A, a.dim(1), B, b.dim(1), use_c ? beta : 0.f, Y, N);
      if constexpr (!std::is_same_v<T, float>)
        for (int64_t i = 0; i < M * N; ++i) py[i] = T(Y[i]);
    } else if constexpr (std::is_same_v<T, int8_t> || std::is_same_v<T, uint8_t> ||
                         std::is_same_v<T, int16_t> || std::is_same_v<T, uint16_t>) {
      DEEPEP_FAIL(node.describe(), ": unsupported dtype ", dtype_name(a.dtype()),
                  " (Gemm takes float, int32, int64, uint32 and uint64 types)");
    } else {
      gemm_generic<acc_t<T>>(ta, tb, M, N, K, a.data<T>(), a.dim(1), b.data<T>(), b.dim(1),
                             [&](int64_t i, int64_t j, auto acc) {
        double v = double(alpha) * double(acc);
        if (use_c) v += double(beta) * double(pc[i * cst[0] + j * cst[1]]);
        py[i * N + j] = T(v);
      });
    }
  });
}

}  // namespace

DEEPEP_DEFINE_OP(Gemm) {
  def.infer = gemm_infer;
  def.reference = gemm_kernel;
  def.cost = [](const Node&, const std::vector<Shape>& in, const std::vector<Shape>& out) {
    Cost c;
    c.bytes = bytes_moved(in, out);
    if (in.size() >= 2 && in[0].size() == 2 && !out.empty() && out[0].size() == 2)
      c.flops = 2.0 * double(out[0][0]) * double(out[0][1]) * double(in[0][0] * in[0][1]) /
                double(std::max<int64_t>(1, out[0][0]));
    return c;
  };
}
