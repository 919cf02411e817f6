// The GEMM driver: packing, blocking, threading and the packed-weight cache.
// ISA-neutral code (compiled without -m flags); the inner loops are the
// ISA files' (gemm_isa.h).
#include "kernels/cpu/sgemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "deepep/error.h"
#include "kernels/cpu/gemm_amx.h"
#include "kernels/cpu/gemm_isa.h"
#include "kernels/cpu/scratch.h"
#include "kernels/cpu/thread_pool.h"

namespace deepep::cpu {

const IsaKernels* kernels_of(Isa isa) { return DEEPEP_ISA_TABLE(isa, avx512_kernels, avx2_kernels); }

Tile tile_of(Isa isa) {
  const IsaKernels* k = kernels_of(isa);
  return k ? k->tile : Tile{};
}

namespace {

constexpr int64_t kKC = 512;  // A micro-panel (MR x KC) stays in L1
constexpr int64_t kMCTarget = 96;
}  // namespace

int64_t gemm_nc_max(int64_t l2_bytes, int nr) {
  const int64_t fit = l2_bytes / 2 / (kKC * int64_t(sizeof(float))) / nr * nr;
  return std::clamp<int64_t>(fit, 4 * int64_t(nr), 384);
}

namespace {
// Row-split schedule (see gemm): B of at most this many bytes (a KC x N
// panel then stays in L2 beside the row block), at least this many rows a thread.
constexpr double kAffineMaxBBytes = 512 * 1024;
constexpr int64_t kAffineMinRowsPerThread = 64;
// Column tasks over many rows (a batch of sequences: 512 x 768 x 3072 is
// batch-4 BERT's FFN) are split into row groups until each thread has this
// many tasks, so a thread the host slows for a while leaves more of its
// share to the others (the gap between wall time and CPU time was ~7 % at
// 6 tasks). Measured on the 2-vCPU EPYC, 512 x 768 x 3072 at 2 threads, 18
// alternating pairs of processes: 12 tasks faster in 13, median 16.8 vs
// 17.5 ms. Fewer rows (batch-1 CNN layers with large weights have at
// most 196) keep 3 a thread, as measured before.
constexpr int64_t kManyRows = 256;
constexpr int64_t kManyRowsTasksPerThread = 6;
// op(A) up to this size (8 MiB: 512 x 3072, batch-4 BERT's FFN input) is
// packed once per call when several column blocks use it, into a buffer each
// calling thread keeps (so a server with many Session threads holds at most
// this much per thread); larger ones are packed per block as before.
constexpr int64_t kPrepackMaxFloats = int64_t(2) << 20;


// The AMX path's smallest K and N. Splitting A is a pass over it each call,
// paid back only over enough columns: with few, the split eats the gain
// (MobileNetV2's 24-column projections ran 2x slower on tiles; in-process
// whole-model A/Bs at 2 threads: N >= 256 beat N >= 128 on resnet50 and
// MobileNetV2, and N >= 64 lost outright). With a short K the per-block
// costs (zeroing, storing and the epilogue pass) weigh more: resnet50's
// per-op profiles at one thread had its K >= 512 convs 0.7-1.0x the float
// time and the K 128-256 ones 0.76-1.3x, the whole model 8 % slower with
// K >= 128.
constexpr int64_t kAmxMinK = 512;
constexpr int64_t kAmxMinN = 256;

// Whether a K x N product with a packed B runs on the AMX tiles (given a
// plain-row A) on the calling thread.
bool amx_takes(Isa isa, int64_t K, int64_t N) {
  return isa == Isa::kAvx512 && K >= kAmxMinK && N >= kAmxMinN && fp32_bf16x3_allowed() && amx_usable();
}


// Whether the M x N residual of `epi` and C (ldc) may share bytes (their
// address ranges overlap; interleaved but disjoint layouts count too: the
// caller then copies the residual, which is correct either way).
bool residual_overlaps(const GemmEpi& epi, const float* C, int64_t ldc, int64_t M, int64_t N) {
  if (!epi.res) return false;
  const float* c_end = C + (M - 1) * ldc + N;
  const int64_t span = (N - 1) * std::max<int64_t>(epi.res_col_step, 0) + 1;
  if (!epi.res_row_off) {
    const float* r_end = epi.res + (M - 1) * std::max<int64_t>(epi.res_ld, 0) + span;
    return epi.res < c_end && C < r_end;
  }
  for (int64_t i = 0; i < M; ++i) {
    const float* r = epi.res + epi.res_row_off[i];
    if (r < c_end && C < r + span) return true;
  }
  return false;
}

// Rows [i0, i0+mc) x k [p0, p0+kc) of op(A) as MR-row strips: dst[s][k][r].
void pack_a_block(int MR, const float* A, int64_t lda, bool trans, int64_t i0, int64_t mc, int64_t p0, int64_t kc,
                  float* dst) {
  for (int64_t ir = 0; ir < mc; ir += MR) {
    const int64_t rows = std::min<int64_t>(MR, mc - ir);
    float* d = dst + ir * kc;
    if (trans) {  // A is K x M
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = A + (p0 + k) * lda + i0 + ir;
        float* dk = d + k * MR;
        int64_t r = 0;
        for (; r < rows; ++r) dk[r] = src[r];
        for (; r < MR; ++r) dk[r] = 0.f;
      }
    } else {
      for (int64_t r = 0; r < rows; ++r) {
        const float* src = A + (i0 + ir + r) * lda + p0;
        for (int64_t k = 0; k < kc; ++k) d[k * MR + r] = src[k];
      }
      for (int64_t r = rows; r < MR; ++r)
        for (int64_t k = 0; k < kc; ++k) d[k * MR + r] = 0.f;
    }
  }
}

// Columns [j0, j0+cols) of op(B) over all K as one NR strip: dst[k][c].
void pack_b_strip(int NR, const float* B, int64_t ldb, bool trans, int64_t K, int64_t j0, int64_t cols, float* dst) {
  if (!trans) {
    for (int64_t k = 0; k < K; ++k) {
      const float* src = B + k * ldb + j0;
      float* d = dst + k * NR;
      int64_t c = 0;
      for (; c < cols; ++c) d[c] = src[c];
      for (; c < NR; ++c) d[c] = 0.f;
    }
  } else {  // B is N x K
    for (int64_t c = 0; c < cols; ++c) {
      const float* src = B + (j0 + c) * ldb;
      for (int64_t k = 0; k < K; ++k) dst[k * NR + c] = src[k];
    }
    for (int64_t c = cols; c < NR; ++c)
      for (int64_t k = 0; k < K; ++k) dst[k * NR + c] = 0.f;
  }
}

// All of op(B) (K x N) as NR-column strips in a new buffer, over the pool.
std::shared_ptr<float> pack_b_strips(int NR, const float* B, int64_t ldb, bool trans, int64_t K, int64_t N) {
  const int64_t strips = (N + NR - 1) / NR;
  std::shared_ptr<float> out = alloc_floats(strips * K * NR);
  float* d = out.get();
  ThreadPool::global().parallel_for(strips, 1, threads_for(double(N) * double(K) * 4), [&](int64_t s0, int64_t s1) {
    for (int64_t s = s0; s < s1; ++s)
      pack_b_strip(NR, B, ldb, trans, K, s * NR, std::min<int64_t>(NR, N - s * NR), d + s * K * NR);
  });
  return out;
}

struct CacheKey {
  const void* data;
  int isa;
  bool is_a, trans;
  int64_t rows, cols, ld;
  bool operator<(const CacheKey& o) const {
    return std::tie(data, isa, is_a, trans, rows, cols, ld) <
           std::tie(o.data, o.isa, o.is_a, o.trans, o.rows, o.cols, o.ld);
  }
};
struct CacheEntry {
  std::weak_ptr<void> owner;  // the constant's storage: expired = stale entry
  std::shared_ptr<const Packed> packed;
};
std::mutex g_cache_mu;
std::map<CacheKey, CacheEntry> g_cache;

template <class PackFn>
std::shared_ptr<const Packed> cached(const CacheKey& key, const Tensor& t, PackFn&& pack) {
  if (!t.owner()) return nullptr;
  {
    std::lock_guard<std::mutex> lock(g_cache_mu);
    auto it = g_cache.find(key);
    if (it != g_cache.end()) {
      std::shared_ptr<void> alive = it->second.owner.lock();
      if (alive && alive == t.owner()) return it->second.packed;
    }
  }
  std::shared_ptr<const Packed> p = pack();
  std::lock_guard<std::mutex> lock(g_cache_mu);
  // Drop entries whose constants are gone.
  for (auto it = g_cache.begin(); it != g_cache.end();)
    it = it->second.owner.expired() ? g_cache.erase(it) : std::next(it);
  auto [it, inserted] = g_cache.insert_or_assign(key, CacheEntry{t.owner(), p});
  (void)inserted;
  return it->second.packed;
}

// The B panels a later block reads: `panels` segments of `len` floats,
// `stride` floats apart from `base`. take(kc) hands out the address of the
// next lines a micro-kernel of kc steps prefetches (one every k_per_line
// steps: IsaKernels::pf_k_per_line), or null once all are handed out.
struct PfCursor {
  const float* base = nullptr;
  int64_t stride = 0, len = 0, panels = 0, k_per_line = 1;
  int64_t seg = 0, off = 0;
  const float* take(int64_t kc) {
    if (seg >= panels) return nullptr;
    const float* p = base + seg * stride + off;
    off += (kc + k_per_line - 1) / k_per_line * 16;  // 16 floats a line
    if (off >= len) {
      ++seg;
      off = 0;
    }
    return p;
  }
};
// The next task's B: its first panel and how many panels it has (bs null: none).
struct NextB {
  const float* bs = nullptr;
  int64_t panels = 0;
};

// Rows of A the AMX path splits and runs over all of B at a time: the split
// (4 bytes a value) stays in L2 while B's panels stream past it.
constexpr int64_t kAmxChunkRows = 128;
// Above this many bytes of B, or with too few rows for each thread to take
// some (and with threads to spare), the AMX path splits A once, shared, and
// the threads divide B's columns, so B is read once in all; otherwise each
// thread takes rows (the fast GEMM's row-split schedule, the same rows every
// call) and splits its own.
constexpr double kAmxColumnSplitMinBBytes = 1 << 20;

// Splits rows [r0, r1) of A (local row 0 = r0) into hi / lo [rows16][Kp],
// rows past r1 up to a multiple of 16 zero.
void amx_split_rows(const Operand& A, int64_t K, int64_t Kp, int64_t r0, int64_t r1, uint16_t* hi, uint16_t* lo) {
  const int64_t rows = r1 - r0, padded = (rows + kAmxRows - 1) / kAmxRows * kAmxRows;
  amx_split_a(A.p + r0 * A.ld, A.ld, rows, K, Kp, hi, lo);
  std::fill(hi + rows * Kp, hi + padded * Kp, uint16_t(0));
  std::fill(lo + rows * Kp, lo + padded * Kp, uint16_t(0));
}

// C = epilogue(A x B) as bf16x3 on AMX tiles (gemm_amx.h), A plain rows.
void gemm_amx(int64_t M, int64_t N, int64_t K, const Operand& A, const Packed& B, float* C, int64_t ldc,
              const GemmEpi& epi, int threads) {
  const std::shared_ptr<const AmxB> b = B.amx_b();
  const int64_t Kp = b->Kp;
  ThreadPool& pool = ThreadPool::global();
  if (threads > 1 &&
      (double(K) * double(N) * 4 > kAmxColumnSplitMinBBytes || M < kAffineMinRowsPerThread * threads)) {
    // A split once, in parallel; tasks are pairs of 16-column panels over a
    // group of 32-row blocks (rows split only as far as the pairs fall short
    // of the threads), so each task's B stays in L2.
    const int64_t blocks16 = (M + kAmxRows - 1) / kAmxRows, Mp = blocks16 * kAmxRows;
    thread_local std::vector<uint16_t> split;
    if (int64_t(split.size()) < 2 * Mp * Kp) split.resize(size_t(2 * Mp * Kp));
    uint16_t* const hi = split.data();
    uint16_t* const lo = hi + Mp * Kp;
    pool.parallel_for(blocks16, 1, threads, [&](int64_t s0, int64_t s1) {
      const int64_t r1 = std::min(M, s1 * kAmxRows);
      amx_split_rows(A, K, Kp, s0 * kAmxRows, r1, hi + s0 * kAmxRows * Kp, lo + s0 * kAmxRows * Kp);
    });
    const int64_t pairs = (b->panels + 1) / 2, blocks32 = (M + 2 * kAmxRows - 1) / (2 * kAmxRows);
    int64_t groups = std::min(blocks32, std::max<int64_t>(1, (4 * threads + pairs - 1) / pairs));
    const int64_t per_group = (blocks32 + groups - 1) / groups;
    groups = (blocks32 + per_group - 1) / per_group;
    pool.parallel_for(pairs * groups, 1, threads, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t pair = t / groups, g = t % groups;
        const int64_t i0 = g * per_group * 2 * kAmxRows, i1 = std::min(Mp, (g + 1) * per_group * 2 * kAmxRows);
        amx_gemm_block(hi, lo, M, *b, i0, i1, 2 * pair, std::min(b->panels, 2 * pair + 2), C, ldc, 0, epi);
      }
    });
    return;
  }
  auto rows = [&](int64_t r0, int64_t r1) {
    thread_local std::vector<uint16_t> split;
    const int64_t need = 2 * kAmxChunkRows * Kp;
    if (int64_t(split.size()) < need) split.resize(size_t(need));
    uint16_t* const hi = split.data();
    uint16_t* const lo = hi + kAmxChunkRows * Kp;
    for (int64_t c0 = r0; c0 < r1; c0 += kAmxChunkRows) {
      const int64_t c1 = std::min(r1, c0 + kAmxChunkRows), padded = (c1 - c0 + kAmxRows - 1) / kAmxRows * kAmxRows;
      amx_split_rows(A, K, Kp, c0, c1, hi, lo);
      amx_gemm_block(hi, lo, c1 - c0, *b, 0, padded, 0, b->panels, C, ldc, c0, epi);
    }
  };
  if (threads <= 1) return rows(0, M);
  // The same row parts as the fast GEMM's row-split schedule (parallel_for_affine).
  const int64_t parts = threads * std::clamp<int64_t>(M / (kAffineMinRowsPerThread * threads), 1, 4);
  auto row_at = [&](int64_t q) { return q == parts ? M : M * q / parts / kAmxRows * kAmxRows; };
  pool.parallel_for_affine(parts, threads, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q)
      if (row_at(q) < row_at(q + 1)) rows(row_at(q), row_at(q + 1));
  });
}

}  // namespace

const float* Packed::floats() const {
  if (data) return data.get();
  std::lock_guard<std::mutex> lock(floats_mu_);
  if (!floats_) {
    const std::shared_ptr<void> alive = source.owner.lock();
    DEEPEP_CHECK(!is_a && alive && source.p, "fast GEMM: a packed B without float strips and no live source");
    floats_ = pack_b_strips(R, source.p, source.ld, source.trans, K, len);
  }
  return floats_.get();
}

std::shared_ptr<const AmxB> Packed::amx_b() const {
  DEEPEP_CHECK(!is_a, "AMX GEMM: only a packed B has a bf16 split");
  std::lock_guard<std::mutex> lock(amx_mu_);
  if (!amx_) amx_ = amx_pack_b(*this);
  return amx_;
}

std::shared_ptr<const Packed> pack_a(Isa isa, int64_t M, int64_t K, const float* A, int64_t lda, bool trans) {
  const Tile tl = tile_of(isa);
  DEEPEP_CHECK(tl.MR > 0, "fast GEMM: no kernels for ISA ", isa_name(isa));
  auto p = std::make_shared<Packed>();
  p->isa = isa;
  p->is_a = true;
  p->K = K;
  p->len = M;
  p->R = tl.MR;
  p->data = alloc_floats(p->strips() * K * tl.MR);
  float* d = p->data.get();
  const int64_t strips = p->strips();
  ThreadPool::global().parallel_for(strips, 1, threads_for(double(M) * double(K) * 4), [&](int64_t s0, int64_t s1) {
    for (int64_t s = s0; s < s1; ++s)
      pack_a_block(tl.MR, A, lda, trans, s * tl.MR, std::min<int64_t>(tl.MR, M - s * tl.MR), 0, K,
                   d + s * K * tl.MR);
  });
  return p;
}

std::shared_ptr<const Packed> pack_b(Isa isa, int64_t K, int64_t N, const float* B, int64_t ldb, bool trans) {
  const Tile tl = tile_of(isa);
  DEEPEP_CHECK(tl.NR > 0, "fast GEMM: no kernels for ISA ", isa_name(isa));
  auto p = std::make_shared<Packed>();
  p->isa = isa;
  p->is_a = false;
  p->K = K;
  p->len = N;
  p->R = tl.NR;
  p->data = pack_b_strips(tl.NR, B, ldb, trans, K, N);
  return p;
}

std::shared_ptr<const Packed> cached_pack_a(Isa isa, const Tensor& t, int64_t M, int64_t K, const float* A,
                                            int64_t lda, bool trans) {
  return cached(CacheKey{A, int(isa), true, trans, M, K, lda}, t, [&] { return pack_a(isa, M, K, A, lda, trans); });
}

std::shared_ptr<const Packed> cached_pack_b(Isa isa, const Tensor& t, int64_t K, int64_t N, const float* B,
                                            int64_t ldb, bool trans) {
  return cached(CacheKey{B, int(isa), false, trans, K, N, ldb}, t, [&]() -> std::shared_ptr<const Packed> {
    if (!amx_takes(isa, K, N)) return pack_b(isa, K, N, B, ldb, trans);
    // Split straight from the weight: no float strips, not even for a while.
    auto p = std::make_shared<Packed>();
    p->isa = isa;
    p->K = K;
    p->len = N;
    p->R = tile_of(isa).NR;
    p->source = Packed::Source{B, ldb, trans, t.owner()};
    p->amx_b();
    return p;
  });
}

std::shared_ptr<const Packed> cached_derived_pack(Isa isa, const Tensor& t, const void* data, int layout, bool is_a,
                                                  int64_t rows, int64_t cols,
                                                  const std::function<std::shared_ptr<const Packed>()>& make) {
  DEEPEP_CHECK(layout > 0, "cached_derived_pack: layout must be > 0");
  return cached(CacheKey{data, int(isa), is_a, true, rows, cols, -int64_t(layout)}, t, make);
}

size_t packed_cache_size() {
  std::lock_guard<std::mutex> lock(g_cache_mu);
  return g_cache.size();
}

void apply_epilogue(Isa isa, const GemmEpi& epi, float* C, int64_t ldc, int64_t i0, int64_t M, int64_t N) {
  if (M <= 0 || N <= 0 || epi.trivial()) return;
  const IsaKernels* ks = kernels_of(isa);
  DEEPEP_CHECK(ks, "fast GEMM: no kernels for ISA ", isa_name(isa));
  const int64_t rows = std::max<int64_t>(1, 16384 / std::max<int64_t>(N, 1));
  const int threads = threads_for(double(M) * double(N) * 8);
  ThreadPool::global().parallel_for(M, rows, threads, [&](int64_t r0, int64_t r1) {
    ks->epilogue(epi, C + r0 * ldc, ldc, i0 + r0, 0, r1 - r0, N);
  });
}

void gemm(Isa isa, int64_t M, int64_t N, int64_t K, const Operand& A, const Operand& B, float* C, int64_t ldc,
          const GemmEpi& epi_in, int max_threads, const StripPacker* b_packer, const APacker* a_packer) {
  const IsaKernels* ks = kernels_of(isa);
  DEEPEP_CHECK(ks, "fast GEMM: no kernels for ISA ", isa_name(isa));
  if (M <= 0 || N <= 0) return;
  const int MR = ks->tile.MR, NR = ks->tile.NR, VW = ks->tile.VW;
  GemmEpi epi = epi_in;
  // The common epilogues run on the micro-kernel's registers (no second pass
  // over the tile); the rest after it, on the L1-hot tile.
  const bool clip_ok = epi.act == ops::Act::kClip && epi.p0 <= epi.p1;
  const bool fuse_epi = !epi.trivial() && epi.alpha == 1.f && !epi.bias_per_row && !epi.res_row_off &&
                        (!epi.res || epi.res_col_step == 1) &&
                        (epi.act == ops::Act::kNone || epi.act == ops::Act::kRelu || clip_ok);
  // A given as plain rows (activations, row-major) is read in place by the
  // micro-kernel (its broadcasts take any address): no packing pass. Measured
  // faster than packing, or the same, for every K and row count of
  // MobileNetV2 and ResNet-50 (K = 16 -> 16-column projections 15 %; 49-row
  // 7x7 layers 2-4 % in strips of 7, docs/CPU.md). With a packed B and a
  // deep, wide product it runs on AMX tiles where allowed.
  const bool rows_a = !A.packed && !a_packer && A.p && !A.trans;
  const bool use_amx = rows_a && B.packed && amx_takes(isa, K, N);
  // C over the residual (an in-place FusedConv). The float micro-kernels
  // read each residual tile right before they store it when the epilogue is
  // fused and K is one block; elsewhere (partial sums in C, an epilogue pass
  // after the store, the AMX tiles) the residual is copied aside first. (The
  // residual convs of ResNets have K <= 512; the deeper ones, MobileNetV2's
  // projections, have small outputs: the copy is cheap there.)
  if (residual_overlaps(epi, C, ldc, M, N)) {
    const bool exact = epi.res == C && epi.res_ld == ldc && epi.res_col_step == 1 && !epi.res_row_off;
    if (!(exact && fuse_epi && K > 0 && K <= kKC && !use_amx)) {
      thread_local Scratch saved;
      float* d = saved.get(M * N);
      const GemmEpi r = epi;
      ThreadPool::global().parallel_for(M, std::max<int64_t>(1, 16384 / N), threads_for(double(M) * double(N) * 2),
                                        [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          const float* src = r.res + (r.res_row_off ? r.res_row_off[i] : i * r.res_ld);
          for (int64_t j = 0; j < N; ++j) d[i * N + j] = src[j * r.res_col_step];
        }
      });
      epi.res = d;
      epi.res_ld = N;
      epi.res_col_step = 1;
      epi.res_row_off = nullptr;
    }
  }
  if (K <= 0) {
    for (int64_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0.f);
    apply_epilogue(isa, epi, C, ldc, 0, M, N);
    return;
  }
  DEEPEP_CHECK(A.packed || A.p || a_packer, "fast GEMM: no A operand");
  if (A.packed) DEEPEP_CHECK(A.packed->isa == isa && A.packed->K == K && A.packed->len == M, "fast GEMM: packed A mismatch");
  if (B.packed) DEEPEP_CHECK(B.packed->isa == isa && B.packed->K == K && B.packed->len == N, "fast GEMM: packed B mismatch");
  const double work = double(M) * double(N) * double(K);
  int threads = threads_for(work);
  if (max_threads > 0) threads = std::min(threads, max_threads);
  ThreadPool& pool = ThreadPool::global();

  const int64_t nstrips = (N + NR - 1) / NR;
  // Row blocks of about kMCTarget rows, balanced (128 rows: 2 x 64, not 96 + 32).
  const int64_t mb0 = (M + kMCTarget - 1) / kMCTarget;
  const int64_t mc_blk = ((M + mb0 - 1) / mb0 + MR - 1) / MR * MR;
  const int64_t mb = (M + mc_blk - 1) / mc_blk;
  const bool do_epi = !epi.trivial();
  TileEpi te0;
  if (fuse_epi) {
    te0.clamp = epi.act != ops::Act::kNone;
    te0.lo = epi.act == ops::Act::kRelu ? 0.f : epi.p0;
    te0.hi = epi.act == ops::Act::kRelu ? std::numeric_limits<float>::infinity() : epi.p1;
    te0.res_ld = epi.res_ld;
    te0.res_first = epi.res_first;
  }
  const int64_t kc_max = std::min(kKC, K);

  // op(A) packed whole (given packed, or packed once below when several
  // column blocks would each pack it again).
  const float* apre = A.packed ? A.packed->data.get() : nullptr;
  if (use_amx) {
    gemm_amx(M, N, K, A, *B.packed, C, ldc, epi, threads);
    return;
  }
  auto prepack_a = [&](int64_t column_tasks) {
    if (rows_a) return;
    // (a_packer: A is not a matrix in memory; its packer runs per block.)
    if (apre || a_packer || column_tasks < 2 || M * K > kPrepackMaxFloats) return;
    const int64_t strips = (M + MR - 1) / MR;
    thread_local Scratch pbuf;
    float* d = pbuf.get(strips * K * MR);
    pool.parallel_for(strips, 1, threads, [&](int64_t s0, int64_t s1) {
      for (int64_t st = s0; st < s1; ++st)
        pack_a_block(MR, A.p, A.ld, A.trans, st * MR, std::min<int64_t>(MR, M - st * MR), 0, K, d + st * K * MR);
    });
    apre = d;
  };
  // Rows [r0, r1) (r0 a multiple of MR) x columns [j0, j1) of C, mc_blk rows
  // at a time; bs: op(B)'s strip holding column j0 (strips of K x NR,
  // consecutive). K blocks outermost, so each
  // KC x NC block of B stays in L2 for all the row blocks.
  // (Measured on the 2-vCPU SPR: B-panel-outer with KC 128-192 and no B
  // prefetch are within noise of this order, slightly slower.)
  auto block = [&](int64_t r0, int64_t r1, int64_t j0, int64_t j1, const float* bs, float* abuf,
                   const NextB& next) {
    const int64_t panels = (j1 - j0 + NR - 1) / NR;
    for (int64_t pc = 0; pc < K; pc += kKC) {
      const int64_t kc = std::min(kKC, K - pc);
      const bool last = pc + kc >= K;
      // What the micro-kernels prefetch while this K block computes: the
      // next K block of these panels, or after the last one the next task's
      // first K block (weights streaming from memory otherwise arrive all at
      // once, at the first row strip's pace).
      PfCursor pf;
      if (!last) pf = PfCursor{bs + (pc + kc) * NR, K * NR, std::min(kKC, K - pc - kc) * NR, panels, ks->pf_k_per_line};
      else if (next.bs) pf = PfCursor{next.bs, K * NR, kc_max * NR, next.panels, ks->pf_k_per_line};
      for (int64_t i0 = r0; i0 < r1; i0 += mc_blk) {
        const int64_t mc = std::min(mc_blk, r1 - i0);
        const float* ablk = nullptr;  // A's packed strips (none when A is read in place)
        int64_t astride = 0;
        if (apre) {
          ablk = apre + (i0 / MR) * K * MR + pc * MR;
          astride = K * MR;
        } else if (!rows_a) {
          if (a_packer) (*a_packer)(i0, mc, pc, kc, abuf);
          else pack_a_block(MR, A.p, A.ld, A.trans, i0, mc, pc, kc, abuf);
          ablk = abuf;
          astride = kc * MR;
        }
        // Rows read in place run in strips of balanced height (49 rows: 7 x 7,
        // not 6 x 8 + 1: a 1-row strip costs about a third of a full one).
        const int64_t strips = (mc + MR - 1) / MR;
        const int64_t sh = rows_a ? (mc + strips - 1) / strips : MR;
        for (int64_t ir = 0; ir < mc; ir += sh) {
          const int64_t mr = std::min<int64_t>(sh, mc - ir);
          const float* a = rows_a ? A.p + (i0 + ir) * A.ld + pc : ablk + (ir / MR) * astride;
          float* crow = C + (i0 + ir) * ldc;
          for (int64_t jr = j0; jr < j1; jr += NR) {
            const int64_t nr = std::min<int64_t>(NR, j1 - jr);
            const float* b = bs + ((jr - j0) / NR) * K * NR + pc * NR;
            const TileEpi* te = nullptr;
            TileEpi tile_epi;
            if (last && fuse_epi) {
              tile_epi = te0;
              if (epi.bias) tile_epi.bias = epi.bias + jr;
              if (epi.res) tile_epi.res = epi.res + (i0 + ir) * epi.res_ld + jr;
              te = &tile_epi;
            }
            // (The first row strip streams this block itself.)
            const float* pfp = i0 > r0 || ir > 0 ? pf.take(kc) : nullptr;
            (rows_a ? ks->ukr_rows : ks->ukr)[mr][(nr + VW - 1) / VW](kc, a, A.ld, b, crow + jr, ldc, nr, pc > 0, te,
                                                                      pfp);
            if (last && do_epi && !fuse_epi) ks->epilogue(epi, crow + jr, ldc, i0 + ir, jr, mr, nr);
          }
        }
      }
    }
  };
  auto abuf_for_thread = [&]() -> float* {
    const int64_t abuf_len = apre || rows_a ? 0 : mc_blk * kc_max;
    thread_local std::vector<float> abuf;
    if (int64_t(abuf.size()) < abuf_len) abuf.resize(size_t(abuf_len));
    return abuf.data();
  };

  // Few columns for many threads (small images, N = 49 or 196): pack all of
  // B once, shared, then split rows as well as columns.
  const float* shared_b = nullptr;
  if (!B.packed && threads > 1 && nstrips < 3 * threads) {
    thread_local Scratch sbuf;
    float* d = sbuf.get(nstrips * K * NR);
    pool.parallel_for(nstrips, 1, threads, [&](int64_t s0, int64_t s1) {
      for (int64_t st = s0; st < s1; ++st) {
        const int64_t jr = st * NR, cols = std::min<int64_t>(NR, N - jr);
        if (b_packer) (*b_packer)(jr, cols, d + st * K * NR);
        else pack_b_strip(NR, B.p, B.ld, B.trans, K, jr, cols, d + st * K * NR);
      }
    });
    shared_b = d;
  }
  const float* bp = B.packed ? B.packed->floats() : shared_b;
  if (bp && threads > 1 && M >= kAffineMinRowsPerThread * threads &&
      double(K) * double(N) * sizeof(float) <= kAffineMaxBBytes) {
    // Many rows, a small B (a conv's weights against its feature map): each
    // thread takes whole rows, the same share of them every call
    // (parallel_for_affine), so an op that splits its rows alike reads
    // this one's output from its own core's cache; B is read by all.
    const int64_t parts = threads * std::min<int64_t>(4, M / (kAffineMinRowsPerThread * threads));
    auto row_at = [&](int64_t q) { return q == parts ? M : M * q / parts / MR * MR; };
    pool.parallel_for_affine(parts, threads, [&](int64_t q0, int64_t q1) {
      float* abuf = abuf_for_thread();
      for (int64_t q = q0; q < q1; ++q)
        if (row_at(q) < row_at(q + 1)) block(row_at(q), row_at(q + 1), 0, N, bp, abuf, NextB{});
    });
    return;
  }
  if (B.packed || shared_b) {
    // Tasks: NC-column blocks, each over a group of row blocks (all of them
    // unless there are too few column blocks to keep the threads busy).
    const int64_t nc_cap = gemm_nc_max(l2_cache_bytes(), NR);
    int64_t nb = (N + nc_cap - 1) / nc_cap;
    // With A packed by a_packer (implicit-GEMM convs: many rows, few
    // columns), every column block packs its rows' A again: split the rows
    // first and the columns only as far as the row blocks fall short.
    if (threads > 1 && nb < 3 * threads)
      nb = a_packer ? std::min(nstrips, std::max(nb, (3 * threads + mb - 1) / mb))
                    : std::min(nstrips, int64_t(3 * threads));
    int64_t nc_strips = (nstrips + nb - 1) / nb;
    if (!a_packer && threads > 1 && nb < 8 * threads) {
      // Few blocks: the width whose busiest thread gets the fewest strips
      // (16 strips on 2 threads: 2 x 8, each split in row groups below, not
      // 6 blocks of 3, 3, 3, 3, 3, 1), the widest on ties (narrower blocks
      // reread A more often: measured slower).
      auto busiest = [&](int64_t ns) { return ((nstrips + ns - 1) / ns + threads - 1) / threads * ns; };
      for (int64_t ns = 1; ns <= nc_cap / NR; ++ns) {
        const int64_t b = busiest(ns), cur = busiest(nc_strips);
        if (b < cur || (b == cur && ns > nc_strips)) nc_strips = ns;
      }
    }
    nb = (nstrips + nc_strips - 1) / nc_strips;
    const int64_t nc_blk = nc_strips * NR;
    const int64_t min_tasks = (!a_packer && M >= kManyRows ? kManyRowsTasksPerThread : 3) * threads;
    const int64_t row_groups = threads > 1 && nb < min_tasks ? std::min(mb, (min_tasks + nb - 1) / nb) : 1;
    const int64_t rg_size = (mb + row_groups - 1) / row_groups;
    const int64_t tasks = nb * row_groups;
    prepack_a(nb);
    pool.parallel_for(tasks, 1, threads, [&](int64_t t0, int64_t t1) {
      float* abuf = abuf_for_thread();
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t jb = t / row_groups, rg = t % row_groups;
        const int64_t j0 = jb * nc_blk;
        // The task this thread likely runs next (chunks are taken in order).
        NextB next;
        if (const int64_t tn = t + threads; tn < tasks) {
          const int64_t jn = (tn / row_groups) * nc_blk;
          next = NextB{bp + (jn / NR) * K * NR, (std::min(N, jn + nc_blk) - jn + NR - 1) / NR};
        }
        block(rg * rg_size * mc_blk, std::min(M, (rg + 1) * rg_size * mc_blk), j0, std::min(N, j0 + nc_blk),
              bp + (j0 / NR) * K * NR, abuf, next);
      }
    });
    return;
  }
  // B packed per call: tasks are column blocks; each packs its strips (all
  // of K, sized to stay in L2) into a per-thread buffer and runs every row
  // block over them while they are hot.
  constexpr int64_t kBBlockFloats = 256 * 1024;  // 1 MiB
  int64_t nc_strips = std::max<int64_t>(1, kBBlockFloats / (K * NR));
  if (threads > 1) nc_strips = std::min(nc_strips, std::max<int64_t>(1, nstrips / (3 * threads)));
  const int64_t nb = (nstrips + nc_strips - 1) / nc_strips;
  prepack_a(nb);
  pool.parallel_for(nb, 1, threads, [&](int64_t t0, int64_t t1) {
    float* abuf = abuf_for_thread();
    thread_local Scratch bbuf;
    float* const d = bbuf.get(nc_strips * K * NR);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t j0 = t * nc_strips * NR, j1 = std::min(N, j0 + nc_strips * NR);
      for (int64_t jr = j0; jr < j1; jr += NR) {
        const int64_t cols = std::min<int64_t>(NR, N - jr);
        float* dst = d + ((jr - j0) / NR) * K * NR;
        if (b_packer) (*b_packer)(jr, cols, dst);
        else pack_b_strip(NR, B.p, B.ld, B.trans, K, jr, cols, dst);
      }
      block(0, M, j0, j1, d, abuf, NextB{});
    }
  });
}

}  // namespace deepep::cpu
