#include "optimizer_test_util.h"

using namespace deepep;

namespace {
const std::vector<std::unique_ptr<Pass> (*)()> kGemm = {make_matmul_add_to_gemm};

std::string matmul_add(const std::string& a_type, const std::string& bias, const std::string& add,
                       const std::string& out = "%y") {
  return "graph main(%a: " + a_type + ") {\n  %w: float32[3,2] = const[1, 2, 3, 4, 5, 6]\n  " + bias +
         "\n  %m: float32[*] = MatMul(%a, %w)\n  " + add + "\n  return " + out + "\n}\n";
}
const char* kGemmAfter = R"(graph main(%a: float32[n,3]) {
    %w: float32[3,2] = const[1, 2, 3, 4, 5, 6]
    %b: float32[2] = const[10, 20]
    %y: float32[n,2] = Gemm(%a, %w, %b)
    return %y
  })";
}  // namespace

TEST(MatMulAddToGemm, TwoDimensionalMatMulWithRowBiasBecomesGemm) {
  EXPECT_REWRITE(kGemm, matmul_add("float32[n,3]", "%b: float32[2] = const[10, 20]", "%y: float32[n,2] = Add(%m, %b)"),
                 kGemmAfter);
  // Bias first, as Add(b, y).
  EXPECT_REWRITE(kGemm, matmul_add("float32[n,3]", "%b: float32[2] = const[10, 20]", "%y: float32[n,2] = Add(%b, %m)"),
                 kGemmAfter);
  // A [1, N] bias broadcasts the same way.
  EXPECT_REWRITE(kGemm, matmul_add("float32[n,3]", "%b: float32[1,2] = const[10, 20]", "%y: float32[n,2] = Add(%m, %b)"),
                 R"(graph main(%a: float32[n,3]) {
    %w: float32[3,2] = const[1, 2, 3, 4, 5, 6]
    %b: float32[1,2] = const[10, 20]
    %y: float32[n,2] = Gemm(%a, %w, %b)
    return %y
  })");
}

TEST(MatMulAddToGemm, ThreeDimensionalActivationsKeepMatMulAdd) {
  EXPECT_UNCHANGED(kGemm, matmul_add("float32[batch,seq,3]", "%b: float32[2] = const[10, 20]",
                                     "%y: float32[batch,seq,2] = Add(%m, %b)"));
  // Unknown rank: not known to be 2-D.
  EXPECT_UNCHANGED(kGemm, matmul_add("float32[*]", "%b: float32[2] = const[10, 20]", "%y: float32[*] = Add(%m, %b)"));
}

TEST(MatMulAddToGemm, OtherReadersOrOtherBiasesStay) {
  // The MatMul output is read twice.
  EXPECT_UNCHANGED(kGemm, matmul_add("float32[n,3]", "%b: float32[2] = const[10, 20]",
                                     "%y: float32[n,2] = Add(%m, %b)", "%y, %m"));
  // A per-row bias [4, 1] is a different broadcast.
  EXPECT_UNCHANGED(kGemm, matmul_add("float32[4,3]", "%b: float32[4,1] = const[1, 2, 3, 4]",
                                     "%y: float32[4,2] = Add(%m, %b)"));
  // A computed bias.
  EXPECT_UNCHANGED(kGemm, R"(graph main(%a: float32[n,3], %b: float32[2]) {
      %w: float32[3,2] = const[1, 2, 3, 4, 5, 6]
      %m: float32[n,2] = MatMul(%a, %w)
      %y: float32[n,2] = Add(%m, %b)
      return %y
    })");
  // A computed weight.
  EXPECT_UNCHANGED(kGemm, R"(graph main(%a: float32[n,3], %w: float32[3,2]) {
      %b: float32[2] = const[10, 20]
      %m: float32[n,2] = MatMul(%a, %w)
      %y: float32[n,2] = Add(%m, %b)
      return %y
    })");
}
