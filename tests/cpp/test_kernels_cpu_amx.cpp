// The bf16x3 AMX path of the fast CPU GEMM (gemm_amx.h) against a float64
// product with the same epilogue: odd sizes (rows and columns off the 16 x 16
// tiles, K off the 32-deep tile rows), every epilogue, both thread schedules
// (A split once with B's columns divided; rows per thread), and the
// precision switch: strict by default, bf16x3 only inside a scope that
// allows it, carried into the thread pool's workers. Skipped where the CPU or
// the OS offers no AMX tiles.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <random>
#include <tuple>

#include "cpu_kernel_test_util.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/gemm_amx.h"
#include "kernels/cpu/sgemm.h"
#include "kernels/cpu/thread_pool.h"

using namespace deepep;
using namespace deepep::cpu;
using deepep::ops::Act;

namespace {

using cputest::rnd_floats;

// C = epilogue(A x B) in double, the epilogue as the scalar functions.
std::vector<float> reference(int64_t M, int64_t N, int64_t K, const std::vector<float>& A,
                             const std::vector<float>& B, const GemmEpi& e) {
  std::vector<float> c(size_t(M * N));
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += double(A[size_t(i * K + k)]) * double(B[size_t(k * N + j)]);
      float v = float(acc) * e.alpha;
      if (e.bias) v += e.bias_per_row ? e.bias[i] : e.bias[j];
      const float r = e.res ? e.res[(e.res_row_off ? e.res_row_off[i] : i * e.res_ld) + j * e.res_col_step] : 0.f;
      if (e.res && e.res_first) v += r;
      ops::with_activation(e.act, [&]<Act X>() { v = ops::activate<X>(v, e.p0, e.p1); });
      if (e.res && !e.res_first) v += r;
      c[size_t(i * N + j)] = v;
    }
  return c;
}

// Largest |got - want| relative to the largest |want| (at least 1).
double max_rel_err(const std::vector<float>& got, const std::vector<float>& want) {
  double scale = 1.0, err = 0.0;
  for (float w : want) scale = std::max(scale, double(std::fabs(w)));
  for (size_t i = 0; i < got.size(); ++i) err = std::max(err, std::fabs(double(got[i]) - double(want[i])));
  return err / scale;
}

// bf16x3 keeps ~16 bits of each product: ~1e-5 of the output's scale on
// random data (float FMAs: ~1e-7); a dropped cross term (hi*lo) would cost
// ~2e-3, a wrong tile far more.
constexpr double kTol = 1e-4;

std::vector<float> run(int64_t M, int64_t N, int64_t K, const std::vector<float>& A, const Packed& B,
                       const GemmEpi& e, bool bf16x3, int threads = 0) {
  std::vector<float> c(size_t(M * N), std::nanf(""));
  const Fp32PrecisionScope precision(bf16x3);
  gemm(Isa::kAvx512, M, N, K, Operand{A.data(), K, false, nullptr}, Operand{nullptr, 0, false, &B}, c.data(), N, e,
       threads);
  return c;
}

bool skip() { return !amx_usable(); }

}  // namespace

TEST(KernelsCpuAmx, OddSizesMatchFloat64WithinBf16x3Error) {
  if (skip()) GTEST_SKIP() << "no AMX tiles on this CPU / OS";
  uint32_t seed = 1;
  for (int64_t M : {1, 15, 16, 17, 33, 49, 130})
    for (int64_t N : {256, 271, 300})
      for (int64_t K : {512, 530, 777}) {
        const std::vector<float> A = rnd_floats(M * K, seed++), B = rnd_floats(K * N, seed++);
        auto pb = pack_b(Isa::kAvx512, K, N, B.data(), N, false);
        const std::vector<float> want = reference(M, N, K, A, B, GemmEpi{});
        const std::vector<float> fast = run(M, N, K, A, *pb, GemmEpi{}, true);
        const std::string what = std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K);
        EXPECT_LE(max_rel_err(fast, want), kTol) << what;
        // The bf16x3 products really ran: they differ from the float FMAs'.
        if (M * N >= 256) EXPECT_NE(fast, run(M, N, K, A, *pb, GemmEpi{}, false)) << what;
      }
}

TEST(KernelsCpuAmx, EveryEpilogue) {
  if (skip()) GTEST_SKIP() << "no AMX tiles on this CPU / OS";
  const int64_t M = 37, N = 270, K = 520;
  const std::vector<float> A = rnd_floats(M * K, 7), B = rnd_floats(K * N, 8), bias_c = rnd_floats(N, 9), bias_r = rnd_floats(M, 10);
  const std::vector<float> res = rnd_floats(M * N * 2, 11);
  std::vector<int64_t> row_off(static_cast<size_t>(M));
  for (int64_t i = 0; i < M; ++i) row_off[size_t(i)] = (M - 1 - i) * N;  // rows in reverse
  auto pb = pack_b(Isa::kAvx512, K, N, B.data(), N, false);
  for (Act act : {Act::kNone, Act::kRelu, Act::kGelu, Act::kClip, Act::kSigmoid})
    for (int form = 0; form < 5; ++form) {
      GemmEpi e;
      e.act = act;
      if (act == Act::kClip) e.p0 = -0.5f, e.p1 = 0.7f;
      if (form == 0) e.bias = bias_c.data();
      if (form == 1) e.bias = bias_r.data(), e.bias_per_row = true;
      if (form == 2) e.res = res.data(), e.res_ld = N, e.res_first = true;
      if (form == 3) e.res = res.data(), e.res_ld = 2 * N, e.bias = bias_c.data();  // strided rows
      if (form == 4) e.res = res.data(), e.res_row_off = row_off.data(), e.alpha = 0.5f;
      const std::vector<float> want = reference(M, N, K, A, B, e);
      EXPECT_LE(max_rel_err(run(M, N, K, A, *pb, e, true), want), kTol)
          << "act " << int(act) << " form " << form;
    }
}

TEST(KernelsCpuAmx, BothThreadSchedules) {
  if (skip()) GTEST_SKIP() << "no AMX tiles on this CPU / OS";
  // B of 2.4 MB (columns divided, A split once), of 557 and 524 KB (rows per
  // thread), and few rows (columns divided).
  for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{128, 768, 768}, {300, 272, 512}, {1000, 256, 512},
                         {49, 512, 600}}) {
    const std::vector<float> A = rnd_floats(M * K, 21), B = rnd_floats(K * N, 22);
    auto pb = pack_b(Isa::kAvx512, K, N, B.data(), N, false);
    const std::vector<float> want = reference(M, N, K, A, B, GemmEpi{});
    const std::vector<float> one = run(M, N, K, A, *pb, GemmEpi{}, true, 1);
    const std::vector<float> all = run(M, N, K, A, *pb, GemmEpi{}, true, 0);
    EXPECT_LE(max_rel_err(one, want), kTol) << M << "x" << N << "x" << K;
    // Each element's sum runs in the same order whoever computes it.
    EXPECT_EQ(one, all) << M << "x" << N << "x" << K;
  }
}

TEST(KernelsCpuAmx, StrictUnlessAllowedAndCarriedIntoWorkers) {
  EXPECT_FALSE(fp32_bf16x3_allowed());
  {
    const Fp32PrecisionScope allow(true);
    EXPECT_TRUE(fp32_bf16x3_allowed());
    std::atomic<int> seen_strict{0};
    ThreadPool::global().parallel_for(64, 1, 0, [&](int64_t, int64_t) {
      if (!fp32_bf16x3_allowed()) ++seen_strict;
    });
    EXPECT_EQ(seen_strict.load(), 0);
    {
      const Fp32PrecisionScope strict(false);
      EXPECT_FALSE(fp32_bf16x3_allowed());
    }
    EXPECT_TRUE(fp32_bf16x3_allowed());
  }
  EXPECT_FALSE(fp32_bf16x3_allowed());
  if (skip()) return;
  // Without a scope the float path runs: bit-identical to a strict scope.
  const int64_t M = 64, N = 256, K = 512;
  const std::vector<float> A = rnd_floats(M * K, 31), B = rnd_floats(K * N, 32);
  auto pb = pack_b(Isa::kAvx512, K, N, B.data(), N, false);
  std::vector<float> c(size_t(M * N));
  gemm(Isa::kAvx512, M, N, K, Operand{A.data(), K, false, nullptr}, Operand{nullptr, 0, false, pb.get()}, c.data(), N,
       GemmEpi{});
  EXPECT_EQ(c, run(M, N, K, A, *pb, GemmEpi{}, false));
  // Few columns, or a short K, stay on the float path even where bf16x3 is
  // allowed (the split of A would cost more than the tiles save).
  auto narrow = pack_b(Isa::kAvx512, K, 64, B.data(), 64, false);
  EXPECT_EQ(run(M, 64, K, A, *narrow, GemmEpi{}, true), run(M, 64, K, A, *narrow, GemmEpi{}, false));
  auto shallow = pack_b(Isa::kAvx512, 256, N, B.data(), N, false);
  EXPECT_EQ(run(M, N, 256, A, *shallow, GemmEpi{}, true), run(M, N, 256, A, *shallow, GemmEpi{}, false));
}

TEST(KernelsCpuAmx, SplitIsKeptWithItsOperandNotItsCopies) {
  if (skip()) GTEST_SKIP() << "no AMX tiles on this CPU / OS";
  const std::vector<float> B = rnd_floats(64 * 40, 41);
  auto pb = pack_b(Isa::kAvx512, 64, 40, B.data(), 40, false);
  const std::shared_ptr<const AmxB> s = pb->amx_b();
  EXPECT_EQ(s, pb->amx_b());  // made once
  EXPECT_EQ(s->Kp, 64);
  EXPECT_EQ(s->panels, 3);
  Packed copy = *pb;  // a copy may be pointed at other data: it splits its own
  EXPECT_NE(copy.amx_b(), s);
}

// A cached weight the tiles take is split straight from the weight (B or
// B^T, columns off the 16-wide panels, K off the 32-deep rows) and holds no
// float strips; a float GEMM on it (strict precision, or an A the tiles do
// not read) packs them on first use. Both bit-identical to a weight packed
// as floats first.
TEST(KernelsCpuAmx, CachedWeightOnTilesHoldsNoFloats) {
  if (skip()) GTEST_SKIP() << "no AMX tiles on this CPU / OS";
  const int64_t M = 37, N = 270, K = 520;
  const std::vector<float> A = rnd_floats(M * K, 51);
  const auto pa = pack_a(Isa::kAvx512, M, K, A.data(), K, false);
  auto packed_a_run = [&](const Packed& b) {
    std::vector<float> c(size_t(M * N));
    const Fp32PrecisionScope precision(true);
    gemm(Isa::kAvx512, M, N, K, Operand{nullptr, 0, false, pa.get()}, Operand{nullptr, 0, false, &b}, c.data(), N,
         GemmEpi{});
    return c;
  };
  for (const bool trans : {false, true}) {
    SCOPED_TRACE(trans ? "B^T" : "B");
    const int64_t ld = trans ? K : N;
    Tensor w(DType::kFloat32, trans ? Shape{N, K} : Shape{K, N});
    const std::vector<float> wv = rnd_floats(K * N, 52);
    std::copy(wv.begin(), wv.end(), w.data<float>());
    const auto kept = pack_b(Isa::kAvx512, K, N, w.data<float>(), ld, trans);
    std::shared_ptr<const Packed> split;
    {
      const Fp32PrecisionScope precision(true);
      split = cached_pack_b(Isa::kAvx512, w, K, N, w.data<float>(), ld, trans);
    }
    ASSERT_NE(split, nullptr);
    EXPECT_EQ(split->data, nullptr) << "float strips were packed beside the split";
    EXPECT_EQ(run(M, N, K, A, *split, GemmEpi{}, true), run(M, N, K, A, *kept, GemmEpi{}, true));
    EXPECT_EQ(run(M, N, K, A, *split, GemmEpi{}, false), run(M, N, K, A, *kept, GemmEpi{}, false));
    EXPECT_EQ(packed_a_run(*split), packed_a_run(*kept));
  }
  // Outside a bf16x3 scope (fp32-strict), or below the thresholds, weights are floats.
  Tensor w2(DType::kFloat32, Shape{K, N});
  EXPECT_NE(cached_pack_b(Isa::kAvx512, w2, K, N, w2.data<float>(), N, false)->data, nullptr);
  const Fp32PrecisionScope precision(true);
  EXPECT_NE(cached_pack_b(Isa::kAvx512, w2, K, 128, w2.data<float>(), N, false)->data, nullptr);
}

// A pointwise channels-last conv whose weight the tiles take (packed as a
// MatMul weight: split only) against the reference, and not the float path.
TEST(KernelsCpuAmx, PointwiseConvWeightOnTiles) {
  if (skip()) GTEST_SKIP() << "no AMX tiles on this CPU / OS";
  using namespace cputest;
  const Tensor x = rnd({1, 5, 7, 520}, 61), w = rnd({272, 520, 1, 1}, 62), b = rnd({272}, 63);
  const std::vector<Input> ins = {{"x", x}, {"w", w, true}, {"b", b, true}};
  const std::string attrs = "activation=\"Relu\", channels_last=1";
  std::string kernel;
  Tensor want;
  {
    IsaScope s(Isa::kNone);
    want = run_node("deepep.FusedConv", attrs, ins, kernel);
  }
  IsaScope s(Isa::kAvx512);
  const Tensor strict = run_node("deepep.FusedConv", attrs, ins, kernel);
  EXPECT_EQ(kernel, "cpu.conv_nhwc");
  Tensor tiles;
  {
    const Fp32PrecisionScope precision(true);
    tiles = run_node("deepep.FusedConv", attrs, ins, kernel);
  }
  EXPECT_LT(rel_err(strict, want), 1e-5);
  EXPECT_LT(rel_err(tiles, want), kTol);
  EXPECT_GT(rel_err(tiles, strict), 0.0) << "the tiles did not run";
}
