// The fast float GEMM of the CPU kernels: C[M,N] = epilogue(op(A) x op(B)),
// BLIS-style. op(B) is packed into NR-column strips over the whole K
// (bp[strip][k][0..NR)), op(A) into MR-row strips (ap[strip][k][0..MR));
// a constant operand (a weight) is packed once and cached (cached_pack_*),
// the other is packed per call (A: one MC x KC block at a time, B: whole,
// in parallel) -- except a plain row-major A (not transposed, not packed, no
// APacker), which the micro-kernels read in place. The register-blocked micro-kernels live in sgemm_avx512.cpp
// (8 x 48) and sgemm_avx2.cpp (6 x 16), each compiled with its ISA's flags;
// the ISA is picked at run time (cpu_features.h). The epilogue (alpha, bias
// per column or per row, activation, residual) runs on each register tile
// right after its last K block, while the tile is in L1. Work is split into
// (MC rows x NC columns) tasks run by the shared thread pool.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "deepep/tensor.h"
#include "kernels/cpu/cpu_features.h"
#include "ops/fused_epilogue.h"

namespace deepep::cpu {

// What happens to each output element (i, j) after the product:
//   v = alpha * acc + bias[j] (bias[i] when bias_per_row)
//   v += res(i, j) if res_first;  v = act(v);  v += res(i, j) if !res_first
// res(i, j) = res[(res_row_off ? res_row_off[i] : i * res_ld) + j * res_col_step].
struct GemmEpi {
  float alpha = 1.f;
  const float* bias = nullptr;
  bool bias_per_row = false;
  const float* res = nullptr;
  int64_t res_ld = 0;
  int64_t res_col_step = 1;
  const int64_t* res_row_off = nullptr;
  ops::Act act = ops::Act::kNone;
  float p0 = 0.f, p1 = 0.f;
  bool res_first = false;
  bool trivial() const { return alpha == 1.f && !bias && !res && act == ops::Act::kNone; }
};

// Register tile of an ISA: MR rows x NR columns (NR = NV vectors of VW floats).
struct Tile {
  int MR = 0, NR = 0, VW = 0;
};
// The tile of `isa` (zero for Isa::kNone).
Tile tile_of(Isa isa);

// The widest block of B (KC x NC, KC = 512) a GEMM task keeps in L2 while
// every row block uses it: half of an L2 of l2_bytes, whole NR-column
// strips, between 4 strips and 384 columns. 384 on a 2 MiB L2 (Sapphire
// Rapids, 48-column strips), 128 on Zen 3's 512 KiB (16-column strips),
// where 384 columns (768 KiB) spilled: every 6-row strip reread its block
// from L3, and bert-base ran 10 % slower (in-process A/B, 2 threads).
int64_t gemm_nc_max(int64_t l2_bytes, int nr);

struct AmxB;
// A packed operand (see above). For A: rows = M, strips of MR rows; for B:
// cols = N, strips of NR columns. K is the full inner dimension.
struct Packed {
  Packed() = default;
  // A copy shares the data but not the AMX split (callers may point the
  // copy's data elsewhere: the Winograd conv's per-tile-element views).
  Packed(const Packed& o)
      : isa(o.isa), is_a(o.is_a), K(o.K), len(o.len), R(o.R), data(o.data), parts(o.parts), source(o.source) {}
  Packed& operator=(const Packed& o) {
    if (this == &o) return *this;
    isa = o.isa, is_a = o.is_a, K = o.K, len = o.len, R = o.R, data = o.data, parts = o.parts, source = o.source;
    std::lock_guard<std::mutex> lock(amx_mu_);
    amx_.reset();
    return *this;
  }

  Isa isa = Isa::kNone;
  bool is_a = false;
  int64_t K = 0, len = 0;  // len: M for A, N for B
  int R = 0;               // MR or NR
  std::shared_ptr<float> data;  // 64-byte aligned; null for a B split straight from its weight (below)
  // Operands stacked in data, each a view of its own slice (the Winograd
  // conv's a*a transformed weights): long-lived, so each keeps its AMX split.
  std::vector<std::shared_ptr<const Packed>> parts;
  // Where a B without float strips packs them from (the constant weight,
  // op(B) = B or B^T with leading dimension ld; owner: its storage).
  struct Source {
    const float* p = nullptr;
    int64_t ld = 0;
    bool trans = false;
    std::weak_ptr<void> owner;
  } source;
  int64_t strips() const { return (len + R - 1) / R; }
  // B only: its bf16 hi / lo split for the AMX path (gemm_amx.h), made on
  // first use and kept with it (thread-safe).
  std::shared_ptr<const AmxB> amx_b() const;
  // The float strips the float micro-kernels read: data, or for a weight
  // that runs on AMX tiles and so has none (cached_pack_b), strips packed
  // from `source` on first use and kept (thread-safe).
  const float* floats() const;

 private:
  mutable std::mutex amx_mu_;
  mutable std::shared_ptr<const AmxB> amx_;
  mutable std::mutex floats_mu_;
  mutable std::shared_ptr<float> floats_;
};

// Packs op(A) (M x K; A is K x M when trans) or op(B) (K x N; B is N x K when trans).
std::shared_ptr<const Packed> pack_a(Isa isa, int64_t M, int64_t K, const float* A, int64_t lda, bool trans);
std::shared_ptr<const Packed> pack_b(Isa isa, int64_t K, int64_t N, const float* B, int64_t ldb, bool trans);
// The same, cached by the constant tensor `t` that holds the data (its
// storage: while t's storage lives, the packed copy is reused by every
// Session and thread; thread-safe). Returns nullptr when t has no owner.
// A B the AMX path will take (bf16x3 allowed on the calling thread, AMX
// usable, K and N past the path's thresholds) is split straight from the
// weight and holds no float strips (they would double its memory for
// nothing); floats() packs them should a float GEMM ever need them.
std::shared_ptr<const Packed> cached_pack_a(Isa isa, const Tensor& t, int64_t M, int64_t K, const float* A,
                                            int64_t lda, bool trans);
std::shared_ptr<const Packed> cached_pack_b(Isa isa, const Tensor& t, int64_t K, int64_t N, const float* B,
                                            int64_t ldb, bool trans);
// A packed operand that `make` derives from constant t (e.g. its data
// reordered into another layout first: the channels-last conv's weight),
// cached like cached_pack_* under (data, isa, is_a, rows, cols) and `layout`
// (> 0), which tells different derived layouts of the same data apart.
std::shared_ptr<const Packed> cached_derived_pack(Isa isa, const Tensor& t, const void* data, int layout, bool is_a,
                                                  int64_t rows, int64_t cols,
                                                  const std::function<std::shared_ptr<const Packed>()>& make);
// Number of cached packed operands (tests).
size_t packed_cache_size();

// One GEMM operand: raw (p, ld, trans) or packed.
struct Operand {
  const float* p = nullptr;
  int64_t ld = 0;
  bool trans = false;
  const Packed* packed = nullptr;
};

// Fills one NR-wide strip of op(B): columns [j0, j0 + cols) over the whole K
// into dst[k * NR + c], zero-padding columns cols..NR. Lets im2col pack
// straight into the GEMM's layout.
using StripPacker = std::function<void(int64_t j0, int64_t cols, float* dst)>;

// Fills rows [i0, i0 + mc) x k [p0, p0 + kc) of op(A) as MR-row strips,
// dst[(r / MR) * kc * MR + k * MR + r % MR] (rows mc.. of the last strip
// zero). Lets an implicit-GEMM conv (channels last: rows = output pixels)
// pack its activations straight into the GEMM's layout.
using APacker = std::function<void(int64_t i0, int64_t mc, int64_t p0, int64_t kc, float* dst)>;

// C = epilogue(op(A) x op(B)) on isa (not kNone). B may be given by a strip
// packer instead (B.p == nullptr, B.packed == nullptr), A by a block packer
// (A.p == nullptr, A.packed == nullptr). max_threads <= 0: by size.
// C may be the residual's own memory (epi.res == C, same ld: an in-place
// FusedConv): each element's residual is read before it is overwritten.
void gemm(Isa isa, int64_t M, int64_t N, int64_t K, const Operand& A, const Operand& B, float* C, int64_t ldc,
          const GemmEpi& epi, int max_threads = 0, const StripPacker* b_packer = nullptr,
          const APacker* a_packer = nullptr);

// Applies the epilogue to a whole M x N matrix (rows i0.., used by kernels
// whose product is not the GEMM's, e.g. depthwise conv).
void apply_epilogue(Isa isa, const GemmEpi& epi, float* C, int64_t ldc, int64_t i0, int64_t M, int64_t N);

}  // namespace deepep::cpu
