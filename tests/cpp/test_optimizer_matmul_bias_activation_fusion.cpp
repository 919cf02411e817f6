#include "optimizer_test_util.h"

using namespace deepep;

namespace {
const std::vector<std::unique_ptr<Pass> (*)()> kMM = {make_matmul_bias_activation_fusion};

// %a [b,s,3] x %w [3,2] then `lines` (reading %m).
std::string mm(const std::string& lines, const std::string& ret = "%y", const std::string& extra_ins = "") {
  return "graph main(%a: float32[b,s,3]" + extra_ins + R"() {
      %w: float32[3,2] = const[1, 2, 3, 4, 5, 6]
      %bias: float32[2] = const[10, 20]
      %m: float32[b,s,2] = MatMul(%a, %w)
      )" + lines + "\n return " + ret + "\n}";
}
}  // namespace

TEST(MatMulBiasActivationFusion, BiasActivationAndResidualGrowTheEpilogue) {
  // BERT's FF: Add(bias, MatMul) -> Gelu.
  EXPECT_REWRITE(kMM, mm("%mb: float32[b,s,2] = Add(%bias, %m)\n %y: float32[b,s,2] = Gelu(%mb)"),
                 R"(graph main(%a: float32[b,s,3]) {
      %w: float32[3,2] = const[1, 2, 3, 4, 5, 6]
      %bias: float32[2] = const[10, 20]
      %y: float32[b,s,2] = deepep.FusedMatMul<activation="Gelu">(%a, %w, %bias)
      return %y
    })");
  // bias, then residual, then activation: the residual goes before it.
  EXPECT_REWRITE(kMM,
                 mm("%mb: float32[b,s,2] = Add(%m, %bias)\n %mr: float32[b,s,2] = Add(%r, %mb)\n"
                    " %y: float32[b,s,2] = Relu(%mr)",
                    "%y", ", %r: float32[b,s,2]"),
                 R"(graph main(%a: float32[b,s,3], %r: float32[b,s,2]) {
      %w: float32[3,2] = const[1, 2, 3, 4, 5, 6]
      %bias: float32[2] = const[10, 20]
      %y: float32[b,s,2] = deepep.FusedMatMul<activation="Relu", residual_before_activation=1>(%a, %w, %bias, %r)
      return %y
    })");
  // activation then residual (a broadcast residual that keeps the output shape), no bias.
  EXPECT_REWRITE(kMM,
                 mm("%t: float32[b,s,2] = Tanh(%m)\n %y: float32[b,s,2] = Add(%t, %r)", "%y", ", %r: float32[s,2]"),
                 R"(graph main(%a: float32[b,s,3], %r: float32[s,2]) {
      %w: float32[3,2] = const[1, 2, 3, 4, 5, 6]
      %y: float32[b,s,2] = deepep.FusedMatMul<activation="Tanh">(%a, %w, _, %r)
      return %y
    })");
}

TEST(MatMulBiasActivationFusion, SiLUClipAndLeakyRelu) {
  EXPECT_REWRITE(kMM, mm("%sg: float32[b,s,2] = Sigmoid(%m)\n %y: float32[b,s,2] = Mul(%sg, %m)"),
                 R"(graph main(%a: float32[b,s,3]) {
      %w: float32[3,2] = const[1, 2, 3, 4, 5, 6]
      %y: float32[b,s,2] = deepep.FusedMatMul<activation="SiLU">(%a, %w)
      return %y
    })");
  EXPECT_REWRITE(kMM, mm("%lo: float32[] = const[0]\n %hi: float32[] = const[6]\n %y: float32[b,s,2] = Clip(%m, %lo, %hi)"),
                 R"(graph main(%a: float32[b,s,3]) {
      %w: float32[3,2] = const[1, 2, 3, 4, 5, 6]
      %y: float32[b,s,2] = deepep.FusedMatMul<activation="Clip", activation_params=[0.0,6.0]>(%a, %w)
      return %y
    })");
  EXPECT_REWRITE(kMM, mm("%y: float32[b,s,2] = LeakyRelu<alpha=0.25>(%m)"),
                 R"(graph main(%a: float32[b,s,3]) {
      %w: float32[3,2] = const[1, 2, 3, 4, 5, 6]
      %y: float32[b,s,2] = deepep.FusedMatMul<activation="LeakyRelu", activation_params=[0.25]>(%a, %w)
      return %y
    })");
}

TEST(MatMulBiasActivationFusion, GemmWithAnEpilogue) {
  // The BERT pooler: Gemm(transB) + Tanh; beta folds into the bias.
  EXPECT_REWRITE(kMM, R"(graph main(%a: float32[n,3]) {
      %w: float32[2,3] = const[1, 2, 3, 4, 5, 6]
      %c: float32[2] = const[10, 20]
      %g: float32[n,2] = Gemm<alpha=0.5, beta=2.0, transB=1>(%a, %w, %c)
      %y: float32[n,2] = Tanh(%g)
      return %y
    })", R"(graph main(%a: float32[n,3]) {
      %w: float32[2,3] = const[1, 2, 3, 4, 5, 6]
      %c_bias: float32[2] = const[20, 40]
      %y: float32[n,2] = deepep.FusedMatMul<activation="Tanh", alpha=0.5, trans_b=1>(%a, %w, %c_bias)
      return %y
    })");
  // A Gemm with nothing to fuse stays a Gemm.
  EXPECT_UNCHANGED(kMM, R"(graph main(%a: float32[n,3]) {
      %w: float32[2,3] = const[1, 2, 3, 4, 5, 6]
      %c: float32[2] = const[10, 20]
      %y: float32[n,2] = Gemm<transB=1>(%a, %w, %c)
      return %y
    })");
}

TEST(MatMulBiasActivationFusion, TransposedConstantWeightIsReadTransposed) {
  EXPECT_REWRITE(kMM, R"(graph main(%h: float32[b,s,3]) {
      %wte: float32[2,3] = const[1, 2, 3, 4, 5, 6]
      %wt: float32[3,2] = Transpose<perm=[1,0]>(%wte)
      %y: float32[b,s,2] = MatMul(%h, %wt)
      return %y
    })", R"(graph main(%h: float32[b,s,3]) {
      %wte: float32[2,3] = const[1, 2, 3, 4, 5, 6]
      %y: float32[b,s,2] = deepep.FusedMatMul<trans_b=1>(%h, %wte)
      return %y
    })");
  // The transposed weight is read elsewhere too: it stays.
  EXPECT_UNCHANGED(kMM, R"(graph main(%h: float32[b,s,3]) {
      %wte: float32[2,3] = const[1, 2, 3, 4, 5, 6]
      %wt: float32[3,2] = Transpose<perm=[1,0]>(%wte)
      %y: float32[b,s,2] = MatMul(%h, %wt)
      return %y, %wt
    })");
}

TEST(MatMulBiasActivationFusion, MustNotFuse) {
  // The MatMul output has another reader.
  EXPECT_UNCHANGED(kMM, mm("%y: float32[b,s,2] = Relu(%m)", "%y, %m"));
  // A computed weight (attention's products are not GEMMs with weights).
  EXPECT_UNCHANGED(kMM, R"(graph main(%a: float32[b,s,3], %w: float32[3,2]) {
      %m: float32[b,s,2] = MatMul(%a, %w)
      %y: float32[b,s,2] = Relu(%m)
      return %y
    })");
  // An Add that broadcasts the output to a larger shape is no residual.
  EXPECT_UNCHANGED(kMM, mm("%y: float32[k,b,s,2] = Add(%m, %r)", "%y", ", %r: float32[k,b,s,2]"));
  // A [1, 2] bias on a 1-D product would make the output 2-D.
  EXPECT_UNCHANGED(kMM, R"(graph main(%a: float32[3]) {
      %w: float32[3,2] = const[1, 2, 3, 4, 5, 6]
      %bias: float32[1,2] = const[10, 20]
      %m: float32[2] = MatMul(%a, %w)
      %y: float32[1,2] = Add(%m, %bias)
      return %y
    })");
  // float64.
  EXPECT_UNCHANGED(kMM, R"(graph main(%a: float64[n,3]) {
      %w: float64[3,2] = const[1, 2, 3, 4, 5, 6]
      %m: float64[n,2] = MatMul(%a, %w)
      %y: float64[n,2] = Relu(%m)
      return %y
    })");
  // A second activation stays outside.
  EXPECT_REWRITE(kMM, mm("%r1: float32[b,s,2] = Relu(%m)\n %y: float32[b,s,2] = Sigmoid(%r1)"),
                 R"(graph main(%a: float32[b,s,3]) {
      %w: float32[3,2] = const[1, 2, 3, 4, 5, 6]
      %r1: float32[b,s,2] = deepep.FusedMatMul<activation="Relu">(%a, %w)
      %y: float32[b,s,2] = Sigmoid(%r1)
      return %y
    })");
}
