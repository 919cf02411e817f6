// The fast CPU kernels of deepep.Attention, deepep.SkipLayerNorm and
// LayerNormalization (src/kernels/cpu/ops_attention.cpp, ops_norm.cpp)
// against their reference kernels, node by node, on each ISA path this CPU
// has (AVX2 and AVX-512 forced in turn): random data, odd sizes (sequence
// 1, 7, 33; 1 and 3 heads; hidden sizes that are not a multiple of 16),
// masks with -inf and large negative values, fully masked rows, empty
// batches; also checks that the fast kernel takes each case meant for it and
// declines (the reference runs and reports) what it does not handle. And the
// GEMM's whole-A prepack (several column blocks, A transposed or not, each B
// form) against a naive product.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "cpu_kernel_test_util.h"
#include "deepep/error.h"
#include "kernels/cpu/row_kernels.h"
#include "kernels/cpu/sgemm.h"

using namespace deepep;
using namespace deepep::cpu;
using namespace deepep::cputest;

namespace {

Tensor bools(const Shape& s, uint32_t seed, double p_true = 0.7) {
  std::mt19937 rng(seed);
  std::bernoulli_distribution d(p_true);
  Tensor t(DType::kBool, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<bool>()[i] = d(rng);
  return t;
}

// Reference with no ISA, then each ISA; expect_fast: the fast kernel must take the node.
void check(const std::string& op, const std::string& attrs, const std::vector<Input>& ins, int n_out = 1,
           bool expect_fast = true, double tol = 2e-5) {
  SCOPED_TRACE(op + "<" + attrs + ">");
  bool fast = true;
  std::vector<Tensor> want;
  {
    IsaScope s(Isa::kNone);
    want = run_node(op, attrs, ins, n_out, fast);
    EXPECT_FALSE(fast);
  }
  for (Isa isa : isas()) {
    SCOPED_TRACE(isa_name(isa));
    IsaScope s(isa);
    const std::vector<Tensor> got = run_node(op, attrs, ins, n_out, fast);
    EXPECT_EQ(fast, expect_fast);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_LE(rel_err(got[i], want[i]), tol) << "output " << i;
  }
}

}  // namespace

TEST(KernelsCpuTx, Attention3DWithMasks) {
  if (isas().empty()) GTEST_SKIP() << "no AVX2";
  uint32_t seed = 11;
  const float ninf = -std::numeric_limits<float>::infinity();
  for (int64_t B : {0, 1, 2})
    for (int64_t S : {1, 7, 33})
      for (int64_t H : {1, 3}) {
        const int64_t D = 5 + 6 * (S % 2), Dv = 7;  // D 11 or 5: not a multiple of the vector width
        const Tensor q = rnd({B, S, H * D}, seed++), k = rnd({B, S + 2, H * D}, seed++),
                     v = rnd({B, S + 2, H * Dv}, seed++);
        const std::string attrs = "num_heads=" + std::to_string(H) + ", scale=0.37";
        check("deepep.Attention", attrs, {{"q", q}, {"k", k}, {"v", v}});
        // Additive padding mask [B, 1, 1, Sk]: -inf and -1e4 on some keys, a row of -inf keys only for S = 1.
        Tensor m = rnd({B, 1, 1, S + 2}, seed++, -2.f, 0.f);
        for (int64_t b = 0; b < B; ++b) {
          m.data<float>()[b * (S + 2) + S + 1] = ninf;
          m.data<float>()[b * (S + 2) + 0] = -1e4f;
        }
        check("deepep.Attention", attrs, {{"q", q}, {"k", k}, {"v", v}, {"m", m}});
        // Full float mask [B, H, S, Sk] with a fully masked row (NaN in both).
        Tensor mf = rnd({B, H, S, S + 2}, seed++, -3.f, 0.f);
        if (mf.numel())
          for (int64_t j = 0; j < S + 2; ++j) mf.data<float>()[j] = ninf;
        check("deepep.Attention", attrs, {{"q", q}, {"k", k}, {"v", v}, {"m", mf}});
        // Boolean masks broadcast from [S, Sk] (a causal one) and [Sk].
        Tensor causal(DType::kBool, {S, S + 2});
        for (int64_t i = 0; i < S; ++i)
          for (int64_t j = 0; j < S + 2; ++j) causal.data<bool>()[i * (S + 2) + j] = j <= i;
        check("deepep.Attention", attrs + ", mask_mode=\"keep\"", {{"q", q}, {"k", k}, {"v", v}, {"m", causal}});
        check("deepep.Attention", attrs + ", mask_mode=\"keep\", mask_fill=-3.4e38",
              {{"q", q}, {"k", k}, {"v", v}, {"m", causal}});
        check("deepep.Attention", attrs + ", mask_mode=\"drop\", mask_fill=-100.0",
              {{"q", q}, {"k", k}, {"v", v}, {"m", bools({S + 2}, seed++, 0.3)}});
      }
}

TEST(KernelsCpuTx, AttentionPackedAnd4D) {
  if (isas().empty()) GTEST_SKIP() << "no AVX2";
  for (int64_t S : {1, 7, 33}) {
    const int64_t H = 3, D = 9;
    const Tensor qkv = rnd({2, S, 3 * H * D}, 100 + uint32_t(S));
    check("deepep.Attention", "num_heads=3, scale=0.3, qkv_hidden_sizes=[27,27,27]", {{"qkv", qkv}});
    Tensor causal(DType::kBool, {1, 1, S, S});
    for (int64_t i = 0; i < S; ++i)
      for (int64_t j = 0; j < S; ++j) causal.data<bool>()[i * S + j] = j <= i;
    check("deepep.Attention", "num_heads=3, scale=0.3, qkv_hidden_sizes=[27,27,27], mask_mode=\"keep\"",
          {{"qkv", qkv}, {"_", Tensor()}, {"_", Tensor()}, {"m", causal, true}});
  }
  const Tensor q = rnd({2, 3, 33, 4}, 1), k = rnd({2, 3, 40, 4}, 2), kt = rnd({2, 3, 4, 40}, 3),
               v = rnd({2, 3, 40, 17}, 4), m = rnd({33, 40}, 5, -2, 0);
  check("deepep.Attention", "scale=0.3", {{"q", q}, {"k", k}, {"v", v}, {"m", m}});
  check("deepep.Attention", "scale=1.0, k_transposed=1", {{"q", q}, {"k", kt}, {"v", v}});
  // Long keys: several query-row blocks per head.
  const Tensor ql = rnd({1, 1, 300, 8}, 6), kl = rnd({1, 1, 300, 8}, 7), vl = rnd({1, 1, 300, 8}, 8);
  check("deepep.Attention", "scale=0.5", {{"q", ql}, {"k", kl}, {"v", vl}});
  // Empty keys: zeros, as the chain.
  check("deepep.Attention", "scale=0.5", {{"q", rnd({1, 2, 3, 4}, 9)}, {"k", rnd({1, 2, 0, 4}, 9)}, {"v", rnd({1, 2, 0, 5}, 9)}});
}

TEST(KernelsCpuTx, AttentionDeclinesWhatTheReferenceRejects) {
  if (isas().empty()) GTEST_SKIP() << "no AVX2";
  const Tensor q = rnd({1, 4, 6}, 1), k = rnd({1, 5, 6}, 2), v = rnd({1, 5, 6}, 3);
  bool fast = true;
  IsaScope s(isas().back());
  // Heads do not divide the hidden size; missing scale; a float mask in keep mode; a mask that does not broadcast.
  EXPECT_THROW(run_node("deepep.Attention", "num_heads=4, scale=1.0", {{"q", q}, {"k", k}, {"v", v}}, 1, fast), Error);
  EXPECT_FALSE(fast);
  EXPECT_THROW(run_node("deepep.Attention", "num_heads=2", {{"q", q}, {"k", k}, {"v", v}}, 1, fast), Error);
  EXPECT_FALSE(fast);
  EXPECT_THROW(run_node("deepep.Attention", "num_heads=2, scale=1.0, mask_mode=\"keep\"",
                        {{"q", q}, {"k", k}, {"v", v}, {"m", rnd({4, 5}, 4)}}, 1, fast),
               Error);
  EXPECT_FALSE(fast);
  EXPECT_THROW(run_node("deepep.Attention", "num_heads=2, scale=1.0", {{"q", q}, {"k", k}, {"v", v}, {"m", rnd({3, 5}, 4)}},
                        1, fast),
               Error);
  EXPECT_FALSE(fast);
}

TEST(KernelsCpuTx, SkipLayerNorm) {
  if (isas().empty()) GTEST_SKIP() << "no AVX2";
  uint32_t seed = 200;
  for (int64_t B : {0, 1, 2})
    for (int64_t S : {1, 7, 33})
      for (int64_t d : {5, 16, 37, 100}) {
        const Tensor x = rnd({B, S, d}, seed++, -3.f, 5.f), skip = rnd({B, S, d}, seed++), g = rnd({d}, seed++),
                     b = rnd({d}, seed++), pos = rnd({1, S, d}, seed++), bias = rnd({d}, seed++);
        check("deepep.SkipLayerNorm", "", {{"x", x}, {"s", skip}, {"g", g, true}, {"b", b, true}});
        check("deepep.SkipLayerNorm", "epsilon=1e-3", {{"x", x}, {"s", skip}, {"g", g, true}}, 2);  // with the sum
        check("deepep.SkipLayerNorm", "", {{"x", pos, true}, {"s", x}, {"g", g, true}, {"b", b, true}}, 2);
        check("deepep.SkipLayerNorm", "", {{"x", x}, {"s", bias, true}, {"g", g, true}, {"b", b, true}});
      }
  // Normalized over the last two dims; gamma [S, d]; and what runs the reference.
  const Tensor x = rnd({2, 7, 5}, 1), s = rnd({2, 7, 5}, 2), g2 = rnd({7, 5}, 3), g1 = rnd({5}, 4);
  check("deepep.SkipLayerNorm", "axis=1", {{"x", x}, {"s", s}, {"g", g2, true}});
  check("deepep.SkipLayerNorm", "axis=1", {{"x", x}, {"s", s}, {"g", g1, true}}, 1, false);        // gamma broadcast
  check("deepep.SkipLayerNorm", "", {{"x", x}, {"s", rnd({2, 1, 5}, 5)}, {"g", g1, true}}, 1, false);  // not periodic
}

TEST(KernelsCpuTx, LayerNormalization) {
  if (isas().empty()) GTEST_SKIP() << "no AVX2";
  uint32_t seed = 300;
  for (int64_t rows : {0, 1, 7, 33})
    for (int64_t d : {1, 5, 16, 37, 768}) {
      const Tensor x = rnd({rows, d}, seed++, -2.f, 6.f), g = rnd({d}, seed++), b = rnd({1, d}, seed++);
      check("LayerNormalization", "", {{"x", x}, {"g", g, true}, {"b", b, true}});
      check("LayerNormalization", "epsilon=0.01", {{"x", x}, {"g", g, true}});
    }
  const Tensor x = rnd({3, 4, 5}, 1);
  check("LayerNormalization", "axis=1", {{"x", x}, {"g", rnd({4, 5}, 2), true}, {"b", rnd({4, 5}, 3), true}});
  check("LayerNormalization", "axis=1", {{"x", x}, {"g", rnd({5}, 2), true}}, 1, false);  // broadcast gamma
  check("LayerNormalization", "", {{"x", x}, {"g", rnd({5}, 2), true}}, 3, false);        // Mean, InvStdDev
}

TEST(KernelsCpuTx, SoftmaxRowKernelEdgeCases) {
  for (Isa isa : isas()) {
    SCOPED_TRACE(isa_name(isa));
    const RowKernels* rk = row_kernels_of(isa);
    ASSERT_NE(rk, nullptr);
    for (int64_t n : {1, 7, 16, 33}) {
      std::vector<float> s(static_cast<size_t>(n));
      for (int64_t j = 0; j < n; ++j) s[size_t(j)] = float(j % 5) - 2.f;
      std::vector<float> m(static_cast<size_t>(n), 0.f);
      m[0] = -std::numeric_limits<float>::infinity();
      SoftmaxRowArgs a;
      a.scale = 2.f;
      a.mode = RowMask::kAdd;
      a.mask = m.data();
      a.mstep = 1;
      std::vector<double> want(static_cast<size_t>(n));
      double mx = -1e300, sum = 0;
      for (int64_t j = 0; j < n; ++j) mx = std::max(mx, double(2.f * s[size_t(j)] + m[size_t(j)]));
      for (int64_t j = 0; j < n; ++j) sum += want[size_t(j)] = std::exp(double(2.f * s[size_t(j)] + m[size_t(j)]) - mx);
      rk->softmax_row(s.data(), n, a);
      for (int64_t j = 0; j < n; ++j) {
        if (n == 1) EXPECT_TRUE(std::isnan(s[0]));  // the only key masked with -inf
        else EXPECT_NEAR(s[size_t(j)], want[size_t(j)] / sum, 1e-6) << j;
      }
      if (n > 1) EXPECT_EQ(s[0], 0.f);  // exp(-inf) is exactly 0
    }
  }
}

// op(A) packed once per call (several column blocks), A transposed or not,
// B raw, packed or through a strip packer, one thread and all of them.
TEST(KernelsCpuTx, GemmWholeAPrepackAcrossColumnBlocks) {
  const int64_t M = 37, N = 1000, K = 600;
  for (Isa isa : isas()) {
    for (bool ta : {false, true}) {
      std::vector<float> A(static_cast<size_t>(M * K)), B(static_cast<size_t>(K * N)), bias(static_cast<size_t>(N));
      std::mt19937 rng(ta ? 5 : 6);
      std::uniform_real_distribution<float> d(-1.f, 1.f);
      for (float& x : A) x = d(rng);
      for (float& x : B) x = d(rng);
      for (float& x : bias) x = d(rng);
      const int64_t lda = ta ? M : K;
      std::vector<float> want(size_t(M * N));
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
          double acc = 0;
          for (int64_t k = 0; k < K; ++k) acc += double(ta ? A[k * lda + i] : A[i * lda + k]) * double(B[k * N + j]);
          want[size_t(i * N + j)] = float(acc) + bias[size_t(j)];
        }
      GemmEpi e;
      e.bias = bias.data();
      auto pb = pack_b(isa, K, N, B.data(), N, false);
      const int NR = tile_of(isa).NR;
      const StripPacker packer = [&](int64_t j0, int64_t cols, float* dst) {
        for (int64_t k = 0; k < K; ++k)
          for (int64_t t = 0; t < NR; ++t) dst[k * NR + t] = t < cols ? B[k * N + j0 + t] : 0.f;
      };
      for (int threads : {1, 0})
        for (int form = 0; form < 3; ++form) {
          SCOPED_TRACE(std::string(isa_name(isa)) + (ta ? " transA" : "") + " threads " + std::to_string(threads) +
                       " form " + std::to_string(form));
          std::vector<float> c(size_t(M * N), std::nanf(""));
          const Operand a{A.data(), lda, ta, nullptr};
          if (form == 0) gemm(isa, M, N, K, a, Operand{B.data(), N, false, nullptr}, c.data(), N, e, threads);
          else if (form == 1) gemm(isa, M, N, K, a, Operand{nullptr, 0, false, pb.get()}, c.data(), N, e, threads);
          else gemm(isa, M, N, K, a, Operand{}, c.data(), N, e, threads, &packer);
          double err = 0;
          for (size_t i = 0; i < c.size(); ++i) err = std::max(err, double(std::fabs(c[i] - want[i])));
          EXPECT_LE(err, 1e-3);
        }
    }
  }
}
