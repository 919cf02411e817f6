// The fast CPU kernels of MatMul, Gemm, deepep.FusedMatMul, Conv and
// deepep.FusedConv against their reference kernels (the oracle), node by
// node, on each ISA path this CPU has (AVX-512 and AVX2 forced in turn):
// random data, odd sizes, constant (packed-once) and variable weights,
// broadcasting biases and residuals, every epilogue activation, strides,
// pads, dilations, groups and depthwise convs, empty tensors. Also checks
// that the fast kernel really takes each case meant for it, and declines
// (reference runs, reference errors) for what it does not handle.
#include <gtest/gtest.h>

#include "cpu_kernel_test_util.h"
#include "deepep/error.h"

using namespace deepep;
using namespace deepep::cpu;
using namespace deepep::cputest;

namespace {

// Reference under DEEPEP_CPU_ISA=none, then each ISA; expect_fast: the fast
// kernel must take the node.
void check(const std::string& op, const std::string& attrs, const std::vector<Input>& ins, bool expect_fast = true,
           double tol = 3e-5) {
  SCOPED_TRACE(op + "<" + attrs + ">");
  bool fast = true;
  Tensor want;
  {
    IsaScope s(Isa::kNone);
    want = run_node(op, attrs, ins, fast);
    EXPECT_FALSE(fast);
  }
  for (Isa isa : isas()) {
    SCOPED_TRACE(isa_name(isa));
    IsaScope s(isa);
    const Tensor got = run_node(op, attrs, ins, fast);
    EXPECT_EQ(fast, expect_fast);
    EXPECT_LE(rel_err(got, want), tol);
  }
}

}  // namespace

TEST(KernelsCpuOps, MatMulConstantAndVariableWeightsAndBatches) {
  uint32_t s = 1;
  for (int64_t M : {1, 7, 33})
    for (int64_t K : {1, 17, 129})
      for (int64_t N : {7, 50}) {
        check("MatMul", "", {{"a", rnd({M, K}, s)}, {"b", rnd({K, N}, s + 1), true}});
        check("MatMul", "", {{"a", rnd({2, M, K}, s)}, {"b", rnd({K, N}, s + 1), M <= 1}}, true);
        s += 2;
      }
  // Batched B, broadcasting batch dims.
  check("MatMul", "", {{"a", rnd({3, 1, 9, 17}, 5)}, {"b", rnd({1, 4, 17, 33}, 6)}});
  check("MatMul", "", {{"a", rnd({2, 3, 40, 64}, 7)}, {"b", rnd({2, 3, 64, 40}, 8)}});
  // Empty.
  check("MatMul", "", {{"a", rnd({0, 5}, 9)}, {"b", rnd({5, 6}, 10), true}});
  check("MatMul", "", {{"a", rnd({4, 0}, 9)}, {"b", rnd({0, 6}, 10), true}});
  // Not taken: 1-D operands, tiny variable products, integer types.
  check("MatMul", "", {{"a", rnd({5}, 11)}, {"b", rnd({5, 6}, 12), true}}, false);
  check("MatMul", "", {{"a", rnd({1, 5}, 11)}, {"b", rnd({5, 6}, 12)}}, false);
}

TEST(KernelsCpuOps, GemmTransposesAlphaBetaAndCShapes) {
  uint32_t s = 20;
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    for (int64_t M : {1, 17, 66})
      for (int64_t N : {1, 33}) {
        const int64_t K = 19;
        const Shape as = ta ? Shape{K, M} : Shape{M, K}, bs = tb ? Shape{N, K} : Shape{K, N};
        const std::string tr = "transA=" + std::to_string(int(ta)) + ", transB=" + std::to_string(int(tb));
        check("Gemm", tr, {{"a", rnd(as, s)}, {"b", rnd(bs, s + 1), true}});
        check("Gemm", tr + ", alpha=0.5, beta=2.0", {{"a", rnd(as, s)}, {"b", rnd(bs, s + 1), true}, {"c", rnd({N}, s + 2)}});
        check("Gemm", tr + ", beta=0.5", {{"a", rnd(as, s)}, {"b", rnd(bs, s + 1), true}, {"c", rnd({1, N}, s + 3)}});
        check("Gemm", tr + ", beta=-1.5", {{"a", rnd(as, s)}, {"b", rnd(bs, s + 1), true}, {"c", rnd({M, 1}, s + 4)}});
        check("Gemm", tr, {{"a", rnd(as, s)}, {"b", rnd(bs, s + 1), M == 1}, {"c", rnd({M, N}, s + 5)}});
        s += 6;
      }
  }
  // Not taken: full C with beta != 1 (unless it is also a bias shape), scalar C.
  check("Gemm", "beta=0.5", {{"a", rnd({5, 4}, 1)}, {"b", rnd({4, 6}, 2), true}, {"c", rnd({5, 6}, 3)}}, false);
  check("Gemm", "", {{"a", rnd({5, 4}, 1)}, {"b", rnd({4, 6}, 2), true}, {"c", rnd({}, 3)}}, false);
}

TEST(KernelsCpuOps, FusedMatMulEveryEpilogueAndResidualBroadcast) {
  uint32_t s = 50;
  for (const char* act : kActAttrs)
    for (int res = 0; res < 4; ++res) {
      const int64_t B = 2, M = 9, K = 33, N = 49;
      std::vector<Input> ins = {{"a", rnd({B, M, K}, s)}, {"w", rnd({K, N}, s + 1), res != 3}, {"b", rnd({N}, s + 2)}};
      std::string attrs = act;
      if (res == 1) ins.push_back({"r", rnd({B, M, N}, s + 3)});
      if (res == 2) ins.push_back({"r", rnd({M, 1}, s + 3)});  // broadcasts over batch and columns
      if (res == 3) {
        ins.push_back({"r", rnd({N}, s + 3)});
        attrs += std::string(attrs.empty() ? "" : ", ") + "residual_before_activation=1, trans_b=0, alpha=0.75";
      }
      check("deepep.FusedMatMul", attrs, ins, true, 5e-5);
      s += 4;
    }
  // Transposed weight, no bias, residual only.
  check("deepep.FusedMatMul", "trans_b=1", {{"a", rnd({130, 20}, 1)}, {"w", rnd({70, 20}, 2), true}, {"_", Tensor()},
                                            {"r", rnd({130, 70}, 3)}});
}

TEST(KernelsCpuOps, ConvStridesPadsDilationsGroupsDepthwise) {
  struct C {
    Shape x, w;
    std::string attrs;
  };
  const C cases[] = {
      {{1, 3, 17, 19}, {8, 3, 3, 3}, "pads=[1,1,1,1]"},
      {{2, 5, 11, 9}, {7, 5, 3, 3}, "pads=[1,0,2,1], strides=[2,1]"},
      {{1, 16, 19, 17}, {33, 16, 1, 1}, ""},                             // pointwise
      {{1, 16, 19, 17}, {24, 16, 1, 1}, "strides=[2,2]"},                // strided 1x1
      {{1, 3, 40, 37}, {64, 3, 7, 7}, "pads=[3,3,3,3], strides=[2,2]"},  // stem
      {{1, 4, 15, 15}, {6, 4, 3, 3}, "dilations=[2,2], pads=[2,2,2,2]"},
      {{1, 8, 13, 13}, {8, 4, 3, 3}, "group=2, pads=[1,1,1,1]"},
      {{2, 6, 13, 14}, {6, 1, 3, 3}, "group=6, pads=[1,1,1,1]"},                 // depthwise
      {{1, 6, 13, 13}, {12, 1, 3, 3}, "group=6, pads=[1,1,1,1], strides=[2,2]"},  // multiplier 2
      {{1, 5, 9, 9}, {5, 1, 5, 5}, "group=5, auto_pad=\"SAME_UPPER\""},
      {{1, 4, 23, 21}, {4, 1, 3, 3}, "group=4, dilations=[2,3], pads=[2,3,1,0]"},        // dilated depthwise
      {{1, 4, 40, 37}, {4, 1, 3, 3}, "group=4, strides=[2,2], pads=[1,1,1,1]"},          // stride-2 vector path
      {{1, 3, 17, 16}, {3, 1, 3, 2}, "group=3, strides=[3,3], pads=[1,0,0,1]"},          // scalar path
      {{1, 2, 7, 7}, {2, 1, 3, 3}, "group=2, strides=[2,2], dilations=[2,2]"},           // strided + dilated
      {{1, 3, 2, 2}, {4, 3, 3, 3}, "pads=[1,1,1,1]"},                           // tiny image
      {{1, 3, 4, 4}, {4, 3, 5, 5}, ""},                                         // empty output
  };
  uint32_t s = 200;
  for (const C& c : cases) {
    for (bool wconst : {true, false}) {
      check("Conv", c.attrs, {{"x", rnd(c.x, s)}, {"w", rnd(c.w, s + 1), wconst}});
      check("Conv", c.attrs, {{"x", rnd(c.x, s)}, {"w", rnd(c.w, s + 1), wconst}, {"b", rnd({c.w[0]}, s + 2), true}});
    }
    s += 3;
  }
  // Declined: 1-D conv (the reference runs).
  check("Conv", "", {{"x", rnd({1, 2, 9}, 1)}, {"w", rnd({3, 2, 3}, 2), true}}, false);
}

TEST(KernelsCpuOps, FusedConvEpiloguesAndResidual) {
  uint32_t s = 300;
  const std::vector<std::pair<Shape, std::string>> geo = {{{7, 5, 3, 3}, "pads=[1,1,1,1]"},
                                                          {{5, 1, 3, 3}, "group=5, pads=[1,1,1,1]"},
                                                          {{9, 5, 1, 1}, ""}};
  for (const auto& [ws, gattrs] : geo)
    for (const char* act : kActAttrs)
      for (int res = 0; res < 3; ++res) {
        const Shape xs{2, 5, 10, 11};
        std::string attrs = gattrs;
        if (*act) attrs += std::string(attrs.empty() ? "" : ", ") + act;
        if (res == 2) attrs += std::string(attrs.empty() ? "" : ", ") + "residual_before_activation=1";
        std::vector<Input> ins = {{"x", rnd(xs, s)}, {"w", rnd(ws, s + 1), true}, {"b", rnd({ws[0]}, s + 2), true}};
        if (res) ins.push_back({"r", rnd({2, ws[0], 10, 11}, s + 3)});
        check("deepep.FusedConv", attrs, ins, true, 5e-5);
        s += 4;
      }
}

TEST(KernelsCpuOps, BadInputsStillGetTheReferenceErrors) {
  for (Isa isa : isas()) {
    IsaScope sc(isa);
    bool fast = false;
    EXPECT_THROW(run_node("MatMul", "", {{"a", rnd({3, 4}, 1)}, {"b", rnd({5, 6}, 2), true}}, fast), Error);
    EXPECT_FALSE(fast);
    EXPECT_THROW(run_node("Conv", "", {{"x", rnd({1, 3, 8, 8}, 1)}, {"w", rnd({4, 2, 3, 3}, 2), true}}, fast), Error);
    EXPECT_FALSE(fast);
    EXPECT_THROW(run_node("deepep.FusedMatMul", "activation=\"Swishy\"",
                          {{"a", rnd({3, 4}, 1)}, {"w", rnd({4, 6}, 2), true}}, fast),
                 Error);
    EXPECT_FALSE(fast);
  }
}

TEST(KernelsCpuOps, MaxPoolGeometriesAndNaN) {
  const std::pair<Shape, std::string> cases[] = {
      {{1, 3, 17, 19}, "kernel_shape=[3,3], strides=[2,2], pads=[1,1,1,1]"},  // the ResNet stem pool
      {{2, 4, 9, 8}, "kernel_shape=[2,2]"},
      {{1, 2, 10, 11}, "kernel_shape=[3,2], strides=[2,3], ceil_mode=1"},
      {{1, 2, 12, 12}, "kernel_shape=[3,3], dilations=[2,2], pads=[2,1,0,2]"},
      {{1, 1, 7, 7}, "kernel_shape=[3,3], auto_pad=\"SAME_UPPER\", strides=[2,2]"},
      {{1, 2, 1, 1}, "kernel_shape=[1,1]"},
      {{0, 2, 5, 5}, "kernel_shape=[2,2]"},
  };
  uint32_t s = 500;
  for (const auto& [xs, attrs] : cases) {
    Tensor x = rnd(xs, s++);
    if (x.numel() > 3) x.data<float>()[3] = std::nanf("");  // NaN inside some windows
    check("MaxPool", attrs, {{"x", x}});
  }
  // Declined: 1-D pools (the reference runs).
  check("MaxPool", "kernel_shape=[2]", {{"x", rnd({1, 2, 9}, 1)}}, false);
}

// GlobalAveragePool (cpu.global_average_pool) against the reference: 1-3
// spatial dims, planes of 1 to 3,000 elements (tails of the 8 partial sums),
// a NaN in one plane, large offsets (the double sum); empty tensors decline.
TEST(KernelsCpuOps, GlobalAveragePoolRanksAndNaN) {
  const Shape cases[] = {{2, 5, 7, 7}, {1, 3, 1, 1}, {1, 4, 3}, {1, 2, 3, 4, 5}, {3, 1, 50, 60}, {1, 1280, 7, 7}};
  uint32_t s = 800;
  for (const Shape& xs : cases) {
    Tensor x = rnd(xs, s++);
    if (x.numel() > 9) x.data<float>()[9] = std::nanf("");
    check("GlobalAveragePool", "", {{"x", x}}, true, 1e-6);
    for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] += 1000.f;
    check("GlobalAveragePool", "", {{"x", x}}, true, 1e-6);
  }
  check("GlobalAveragePool", "", {{"x", rnd({0, 3, 4, 4}, 1)}}, false);
  check("GlobalAveragePool", "", {{"x", rnd({1, 3, 0, 4}, 1)}}, false);
}
