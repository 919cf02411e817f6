// The fast CPU GEMM (src/kernels/cpu/sgemm.h) against a double-precision
// naive product with the same epilogue, on each ISA path this CPU has
// (AVX-512 and AVX2 are both forced in turn): odd sizes (1, 7, 17, 33, 129,
// K not a multiple of the vector width, K across several KC blocks), empty
// and K = 0 products, transposed operands, packed / raw / strip-packed
// operands, every activation, bias per column and per row, and full,
// broadcast and strided residuals. Also the thread pool.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <tuple>
#include <random>
#include <chrono>
#include <thread>

#include <pthread.h>
#include <sched.h>

#include "cpu_kernel_test_util.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/sgemm.h"
#include "kernels/cpu/thread_pool.h"

using namespace deepep;
using namespace deepep::cpu;
using deepep::ops::Act;

namespace {

using cputest::rnd_floats;

std::vector<Isa> isas() {
  std::vector<Isa> out;
  if (int(cpu_best_isa()) >= int(Isa::kAvx2)) out.push_back(Isa::kAvx2);
  if (int(cpu_best_isa()) >= int(Isa::kAvx512)) out.push_back(Isa::kAvx512);
  return out;
}

const Act kActs[] = {Act::kNone, Act::kRelu,  Act::kLeakyRelu, Act::kSigmoid,     Act::kTanh,     Act::kSiLU,
                     Act::kGelu, Act::kGeluTanh, Act::kClip, Act::kHardSigmoid, Act::kHardSwish};

float act_params(Act a, float& p0, float& p1) {
  p0 = 0.f, p1 = 0.f;
  if (a == Act::kLeakyRelu) p0 = 0.1f;
  if (a == Act::kClip) p0 = -0.5f, p1 = 0.7f;
  if (a == Act::kHardSigmoid) p0 = 0.2f, p1 = 0.5f;
  return 0.f;
}

// Reference: C = epilogue(op(A) op(B)) in double, then the scalar epilogue.
std::vector<float> ref_gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, bool ta, const float* B,
                            int64_t ldb, bool tb, const GemmEpi& e) {
  std::vector<float> c(size_t(M * N));
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k)
        acc += double(ta ? A[k * lda + i] : A[i * lda + k]) * double(tb ? B[j * ldb + k] : B[k * ldb + j]);
      float v = float(acc) * e.alpha;
      if (e.bias) v += e.bias_per_row ? e.bias[i] : e.bias[j];
      float r = 0.f;
      if (e.res) r = e.res[(e.res_row_off ? e.res_row_off[i] : i * e.res_ld) + j * e.res_col_step];
      if (e.res && e.res_first) v += r;
      ops::with_activation(e.act, [&]<Act X>() { v = ops::activate<X>(v, e.p0, e.p1); });
      if (e.res && !e.res_first) v += r;
      c[size_t(i * N + j)] = v;
    }
  return c;
}

void expect_close(const std::vector<float>& got, const std::vector<float>& want, double tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 1.0;
  for (float w : want) scale = std::max(scale, double(std::fabs(w)));
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(got[i])) << what << " at " << i;
      continue;
    }
    ASSERT_LE(std::fabs(double(got[i]) - double(want[i])), tol * scale)
        << what << " at " << i << ": got " << got[i] << " want " << want[i];
  }
}

struct IsaScope {
  int old;
  explicit IsaScope(Isa isa) : old(set_isa_override(int(isa))) {}
  ~IsaScope() { set_isa_override(old); }
};

// Runs one configuration through every operand form.
void check_all_forms(Isa isa, int64_t M, int64_t N, int64_t K, bool ta, bool tb, const GemmEpi& e, uint32_t seed,
                     const std::string& what) {
  const std::vector<float> A = rnd_floats(M * K, seed), B = rnd_floats(K * N, seed + 1);
  const int64_t lda = ta ? M : K, ldb = tb ? K : N;
  const std::vector<float> want = ref_gemm(M, N, K, A.data(), lda, ta, B.data(), ldb, tb, e);
  const double tol = 2e-5 * std::max<double>(1.0, std::sqrt(double(K)));
  const Operand rawA{A.data(), lda, ta, nullptr}, rawB{B.data(), ldb, tb, nullptr};
  auto pa = pack_a(isa, M, K, A.data(), lda, ta);
  auto pb = pack_b(isa, K, N, B.data(), ldb, tb);
  const Operand packA{nullptr, 0, false, pa.get()}, packB{nullptr, 0, false, pb.get()};
  for (int form = 0; form < 5; ++form) {
    std::vector<float> c(size_t(M * N), std::nanf(""));  // beta = 0: stale C must not leak in
    const Operand& a = (form == 1 || form == 3) ? packA : rawA;
    const Operand& b = (form == 2 || form == 3) ? packB : rawB;
    if (form == 4) {
      // B through a strip packer (the im2col route).
      const int NR = tile_of(isa).NR;
      const StripPacker packer = [&](int64_t j0, int64_t cols, float* dst) {
        for (int64_t k = 0; k < K; ++k)
          for (int64_t t = 0; t < NR; ++t)
            dst[k * NR + t] = t < cols ? (tb ? B[(j0 + t) * ldb + k] : B[k * ldb + j0 + t]) : 0.f;
      };
      gemm(isa, M, N, K, rawA, Operand{}, c.data(), N, e, 0, &packer);
    } else {
      gemm(isa, M, N, K, a, b, c.data(), N, e);
    }
    expect_close(c, want, tol, what + " form " + std::to_string(form));
  }
}

}  // namespace

TEST(KernelsCpuGemm, OddSizesTransposesAndOperandForms) {
  const int64_t sizes[] = {1, 7, 17, 33, 129};
  for (Isa isa : isas()) {
    uint32_t seed = 1;
    for (int64_t M : sizes)
      for (int64_t N : sizes)
        for (int64_t K : {int64_t(1), int64_t(6), int64_t(17), int64_t(131)})  // K % 4: 1, 2, 1, 3
          for (int t = 0; t < 4; ++t) {
            if (t && (M + N + K) % 3 != 0 && M != 129) continue;  // transposes on a subset
            check_all_forms(isa, M, N, K, t & 1, t & 2, GemmEpi{}, seed++,
                            std::string(isa_name(isa)) + " " + std::to_string(M) + "x" + std::to_string(N) + "x" +
                                std::to_string(K) + " t" + std::to_string(t));
          }
  }
}

TEST(KernelsCpuGemm, LargeKAndThreadedTasks) {
  for (Isa isa : isas()) {
    // K spans several KC blocks (accumulation across blocks); tasks split both ways.
    check_all_forms(isa, 130, 301, 700, false, false, GemmEpi{}, 7, std::string(isa_name(isa)) + " big");
    check_all_forms(isa, 9, 1000, 513, false, true, GemmEpi{}, 8, std::string(isa_name(isa)) + " wide");
    check_all_forms(isa, 700, 20, 300, true, false, GemmEpi{}, 9, std::string(isa_name(isa)) + " tall");
    // Many rows over few column blocks: row groups until each thread has six tasks.
    check_all_forms(isa, 301, 200, 600, false, false, GemmEpi{}, 11, std::string(isa_name(isa)) + " many rows");
    // Few rows (one row block) over several column blocks per thread, the last strip partial, with a
    // per-column bias and a residual: the shapes of 7x7 convs and batch-1 heads.
    std::vector<float> bias(2000), res(size_t(49 * 2000));
    for (size_t i = 0; i < bias.size(); ++i) bias[i] = float(int(i % 13) - 6) * 0.25f;
    for (size_t i = 0; i < res.size(); ++i) res[i] = float(int(i % 7) - 3) * 0.5f;
    for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{49, 512, 600}, {49, 2000, 300}, {7, 100, 2000}}) {
      GemmEpi e;
      e.bias = bias.data();
      e.res = res.data();
      e.res_ld = N;
      check_all_forms(isa, M, N, K, false, false, e, 10,
                      std::string(isa_name(isa)) + " few rows N=" + std::to_string(N));
    }
  }
}

TEST(KernelsCpuGemm, BlockWidthFollowsTheL2) {
  EXPECT_EQ(gemm_nc_max(2 << 20, 48), 384);   // Sapphire Rapids, AVX-512 strips: capped
  EXPECT_EQ(gemm_nc_max(1 << 20, 48), 240);   // 512 KiB of B: five 48-column strips
  EXPECT_EQ(gemm_nc_max(512 << 10, 16), 128); // Zen 3, AVX2 strips
  EXPECT_EQ(gemm_nc_max(16 << 10, 16), 64);   // tiny L2: at least four strips
  EXPECT_EQ(gemm_nc_max(int64_t(1) << 40, 16), 384);
  // This machine's width still gives right products across many column blocks.
  for (Isa isa : isas()) {
    const int64_t nc = gemm_nc_max(l2_cache_bytes(), tile_of(isa).NR);
    check_all_forms(isa, 37, 3 * nc + 5, 600, false, false, GemmEpi{}, 11,
                    std::string(isa_name(isa)) + " 3 blocks of " + std::to_string(nc));
  }
}

TEST(KernelsCpuGemm, EmptyAndZeroK) {
  for (Isa isa : isas()) {
    std::vector<float> c(12, 5.f);
    gemm(isa, 0, 4, 3, Operand{nullptr, 3, false, nullptr}, Operand{nullptr, 4, false, nullptr}, c.data(), 4,
         GemmEpi{});
    gemm(isa, 3, 0, 3, Operand{nullptr, 3, false, nullptr}, Operand{nullptr, 0, false, nullptr}, c.data(), 0,
         GemmEpi{});
    EXPECT_EQ(c, std::vector<float>(12, 5.f));  // nothing written
    // K = 0: the product is zero, the epilogue still runs.
    const std::vector<float> bias = {1.f, -2.f, 3.f, -4.f};
    GemmEpi e;
    e.bias = bias.data();
    e.act = Act::kRelu;
    gemm(isa, 3, 4, 0, Operand{nullptr, 0, false, nullptr}, Operand{nullptr, 4, false, nullptr}, c.data(), 4, e);
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 4; ++j) EXPECT_EQ(c[size_t(i * 4 + j)], std::max(0.f, bias[size_t(j)]));
  }
}

TEST(KernelsCpuGemm, EveryEpilogue) {
  for (Isa isa : isas()) {
    uint32_t seed = 100;
    for (Act act : kActs)
      for (int variant = 0; variant < 6; ++variant) {
        const int64_t M = variant % 2 ? 17 : 33, N = variant % 3 ? 129 : 7, K = 19;
        GemmEpi e;
        e.act = act;
        act_params(act, e.p0, e.p1);
        const std::vector<float> bias = rnd_floats(std::max(M, N), seed + 7);
        const std::vector<float> res = rnd_floats(M * N, seed + 8);
        std::vector<int64_t> row_off(static_cast<size_t>(M));
        e.alpha = variant == 3 ? 0.5f : 1.f;
        if (variant != 5) {
          e.bias = bias.data();
          e.bias_per_row = variant == 2;
        }
        switch (variant) {
          case 0: break;                                          // bias only
          case 1: e.res = res.data(), e.res_ld = N; break;        // full residual after act
          case 2: e.res = res.data(), e.res_ld = N, e.res_first = true; break;
          case 3:  // residual broadcast over rows: [N]
            e.res = res.data(), e.res_ld = 0;
            break;
          case 4:  // per-row scalar residual with row offsets: [M, 1]
            for (int64_t i = 0; i < M; ++i) row_off[size_t(i)] = (M - 1 - i);
            e.res = res.data(), e.res_row_off = row_off.data(), e.res_col_step = 0;
            break;
          case 5:  // strided residual (column step 2), no bias
            e.res = res.data(), e.res_ld = 0, e.res_col_step = 2;
            break;
        }
        const int64_t Nn = variant == 5 ? std::min<int64_t>(N, M * N / 2) : N;
        check_all_forms(isa, M, Nn, K, false, false, e, seed,
                        std::string(isa_name(isa)) + " act " + std::to_string(int(act)) + " variant " +
                            std::to_string(variant));
        seed += 3;
      }
  }
}

// The epilogues the micro-kernel applies on its registers (alpha 1, bias per
// column, none / Relu / ordered Clip, plain residual before or after) after
// several K blocks (the last one accumulates onto C first), partial column
// vectors and row strips; an unordered Clip (lo > hi) takes the separate pass
// and must agree too.
TEST(KernelsCpuGemm, RegisterEpilogueAfterSeveralKBlocks) {
  for (Isa isa : isas()) {
    uint32_t seed = 400;
    const std::pair<Act, std::pair<float, float>> acts[] = {
        {Act::kNone, {0.f, 0.f}}, {Act::kRelu, {0.f, 0.f}}, {Act::kClip, {-0.3f, 0.4f}}, {Act::kClip, {0.7f, -0.2f}}};
    for (const auto& [act, params] : acts)
      for (int res = 0; res < 3; ++res) {
        const int64_t M = 137, N = 101, K = 1100;  // (137 rows: raw A is read in place)
        GemmEpi e;
        e.act = act;
        e.p0 = params.first, e.p1 = params.second;
        const std::vector<float> bias = rnd_floats(N, seed + 7);
        const std::vector<float> r = rnd_floats(M * N, seed + 8);
        e.bias = bias.data();
        if (res) e.res = r.data(), e.res_ld = N, e.res_first = res == 2;
        check_all_forms(isa, M, N, K, false, false, e, seed,
                        std::string(isa_name(isa)) + " act " + std::to_string(int(act)) + " res " +
                            std::to_string(res));
        seed += 3;
      }
  }
}

TEST(KernelsCpuGemm, ActivationsAtExtremesMatchTheScalarFunctions) {
  // Large magnitudes, zeros and NaN through each vector activation.
  const std::vector<float> vals = {-100.f, -20.f, -5.f, -1e-3f, 0.f, 1e-3f, 0.3f, 5.f, 20.f, 100.f, std::nanf("")};
  for (Isa isa : isas())
    for (Act act : kActs) {
      GemmEpi e;
      e.act = act;
      act_params(act, e.p0, e.p1);
      // vals over 33 or 40 columns (tiles of 16, 16 and 1 or 8 columns: whole
      // vectors and a partial one, whose epilogues run in different code), 7
      // rows (a full strip and one row).
      const int64_t V = int64_t(vals.size()), M = 7;
      for (const int64_t N : {int64_t(33), int64_t(40)}) {
        std::vector<float> row(static_cast<size_t>(N));
        for (int64_t j = 0; j < N; ++j) row[size_t(j)] = vals[size_t(j % V)];
        // C = ones x row (K = 1) -> the epilogue sees vals exactly.
        const std::vector<float> A(static_cast<size_t>(M), 1.f);
        std::vector<float> c(static_cast<size_t>(M * N));
        gemm(isa, M, N, 1, Operand{A.data(), 1, false, nullptr}, Operand{row.data(), N, false, nullptr}, c.data(), N,
             e);
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = 0; j < N; ++j) {
            float want = row[size_t(j)];
            const float got = c[size_t(i * N + j)];
            ops::with_activation(act, [&]<Act X>() { want = ops::activate<X>(want, e.p0, e.p1); });
            if (std::isnan(want)) {
              EXPECT_TRUE(std::isnan(got)) << isa_name(isa) << " act " << int(act) << " x " << row[size_t(j)];
            } else {
              EXPECT_NEAR(got, want, 2e-6 * std::max(1.f, std::fabs(want)))
                  << isa_name(isa) << " act " << int(act) << " x " << row[size_t(j)] << " at " << i << "," << j;
            }
          }
      }
    }
}

TEST(KernelsCpuGemm, PackedWeightCacheFollowsTheTensorStorage) {
  for (Isa isa : isas()) {
    std::shared_ptr<const Packed> p1, p2;
    {
      Tensor w(DType::kFloat32, Shape{5, 9});
      for (int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] = float(i);
      p1 = cached_pack_b(isa, w, 5, 9, w.data<float>(), 9, false);
      const size_t entries = packed_cache_size();
      p2 = cached_pack_b(isa, w, 5, 9, w.data<float>(), 9, false);
      EXPECT_EQ(p1.get(), p2.get());  // packed once
      Tensor copy = w;                // shares the storage: same entry
      EXPECT_EQ(cached_pack_b(isa, copy, 5, 9, copy.data<float>(), 9, false).get(), p1.get());
      EXPECT_EQ(packed_cache_size(), entries);
    }
    // The storage is gone: a new tensor (maybe at the same address) repacks.
    Tensor w2(DType::kFloat32, Shape{5, 9});
    for (int64_t i = 0; i < w2.numel(); ++i) w2.data<float>()[i] = float(-i);
    auto p3 = cached_pack_b(isa, w2, 5, 9, w2.data<float>(), 9, false);
    EXPECT_NE(p3.get(), p1.get());
    EXPECT_EQ(p3->data.get()[1], -1.f);
  }
}

// parallel_for_affine: every part once (one part per call), exceptions come
// back, nested loops run serially, several callers at once each complete,
// interleaved with plain loops. (Which thread runs a part is a preference,
// not a promise: a descheduled thread's parts are taken by others.)
TEST(KernelsCpuThreadPool, AffineLoopsCoverEachPartOnce) {
  ThreadPool& pool = ThreadPool::global();
  for (int64_t n : {int64_t(0), int64_t(1), int64_t(2), int64_t(7), int64_t(64)})
    for (int threads : {0, 1, 2, 3}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      pool.parallel_for_affine(n, threads, [&](int64_t b, int64_t e) {
        EXPECT_EQ(e - b, 1);
        hits[size_t(b)]++;
        int inner = 0;
        pool.parallel_for_affine(3, 0, [&](int64_t s, int64_t t) { inner += int(t - s); });
        EXPECT_EQ(inner, 3);
      });
      for (auto& h : hits) EXPECT_EQ(h.load(), 1);
    }
  EXPECT_THROW(pool.parallel_for_affine(16, 0,
                                        [](int64_t b, int64_t) {
                                          if (b == 11) throw std::runtime_error("part 11");
                                        }),
               std::runtime_error);
  std::vector<std::thread> callers;
  std::atomic<int64_t> total{0};
  for (int t = 0; t < 4; ++t)
    callers.emplace_back([&, t] {
      for (int r = 0; r < 50; ++r) {
        if ((r + t) % 2) pool.parallel_for_affine(16, 0, [&](int64_t b, int64_t e) { total += e - b; });
        else pool.parallel_for(16, 2, 0, [&](int64_t b, int64_t e) { total += e - b; });
      }
    });
  for (auto& c : callers) c.join();
  EXPECT_EQ(total.load(), 4 * 50 * 16);
}

TEST(KernelsCpuThreadPool, CoversTheRangeOnceRethrowsAndNests) {
  ThreadPool& pool = ThreadPool::global();
  for (int64_t n : {int64_t(0), int64_t(1), int64_t(7), int64_t(1000)})
    for (int64_t grain : {int64_t(1), int64_t(3), int64_t(64)}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      pool.parallel_for(n, grain, 0, [&](int64_t b, int64_t e) {
        EXPECT_LE(e - b, grain);
        for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
        // A nested loop runs serially on this thread.
        int inner = 0;
        pool.parallel_for(5, 1, 0, [&](int64_t s, int64_t t) { inner += int(t - s); });
        EXPECT_EQ(inner, 5);
      });
      for (auto& h : hits) EXPECT_EQ(h.load(), 1);
    }
  EXPECT_THROW(pool.parallel_for(100, 1, 0,
                                 [](int64_t b, int64_t) {
                                   if (b == 37) throw std::runtime_error("chunk 37");
                                 }),
               std::runtime_error);
  // Several callers at once (several Sessions): each loop completes.
  std::vector<std::thread> callers;
  std::atomic<int64_t> total{0};
  for (int t = 0; t < 4; ++t)
    callers.emplace_back([&] {
      for (int r = 0; r < 50; ++r)
        pool.parallel_for(64, 4, 0, [&](int64_t b, int64_t e) { total += e - b; });
    });
  for (auto& c : callers) c.join();
  EXPECT_EQ(total.load(), 4 * 50 * 64);
}

// Loops inside run scopes (one, several at once on several threads, nested)
// and after them cover their ranges once: the scopes change only how long
// idle workers spin.
TEST(KernelsCpuThreadPool, ALoneRunGivesTheCallerItsCpuMaskBack) {
  // With pinned workers a lone run moves its caller off their CPUs; nested
  // and concurrent scopes leave it alone; every scope's end restores it.
  cpu_set_t before, during, after;
  ASSERT_EQ(pthread_getaffinity_np(pthread_self(), sizeof(before), &before), 0);
  {
    ThreadPool::RunScope run;
    ASSERT_EQ(pthread_getaffinity_np(pthread_self(), sizeof(during), &during), 0);
    cpu_set_t both;
    CPU_AND(&both, &during, &before);
    EXPECT_TRUE(CPU_EQUAL(&both, &during)) << "the run's mask must be part of the caller's own";
    EXPECT_GT(CPU_COUNT(&during), 0);
    {
      ThreadPool::RunScope nested;
      std::atomic<int64_t> sum{0};
      ThreadPool::global().parallel_for(1000, 1, 0, [&](int64_t b, int64_t e) { sum += e - b; });
      EXPECT_EQ(sum.load(), 1000);
    }
    cpu_set_t still;
    ASSERT_EQ(pthread_getaffinity_np(pthread_self(), sizeof(still), &still), 0);
    EXPECT_TRUE(CPU_EQUAL(&still, &during));
  }
  ASSERT_EQ(pthread_getaffinity_np(pthread_self(), sizeof(after), &after), 0);
  EXPECT_TRUE(CPU_EQUAL(&after, &before));
}

TEST(KernelsCpuThreadPool, LoopsInsideAndAfterRunScopes) {
  ThreadPool& pool = ThreadPool::global();
  auto loop = [&](int64_t n) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    pool.parallel_for(n, 1, 0, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
    });
    for (auto& h : hits) EXPECT_EQ(h.load(), 1);
  };
  {
    ThreadPool::RunScope run;
    for (int r = 0; r < 20; ++r) loop(257);
    std::this_thread::sleep_for(std::chrono::milliseconds(3));  // past the long spin
    loop(257);
    ThreadPool::RunScope nested;
    loop(31);
  }
  std::vector<std::thread> callers;
  for (int t = 0; t < 3; ++t)
    callers.emplace_back([&] {
      ThreadPool::RunScope run;
      for (int r = 0; r < 30; ++r) loop(64);
    });
  for (auto& c : callers) c.join();
  std::this_thread::sleep_for(std::chrono::milliseconds(1));
  loop(1000);
}
