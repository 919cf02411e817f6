#include "optimizer_test_util.h"

using namespace deepep;

namespace {
const std::vector<std::unique_ptr<Pass> (*)()> kFold = {make_constant_folding};
}

TEST(ConstantFolding, FoldsChainsOfConstantNodes) {
  EXPECT_REWRITE(kFold, R"(graph main(%x: float32[3]) {
      %a: float32[3] = const[1, -2, 3]
      %b: float32[1] = const[0.5]
      %s: float32[3] = Add(%a, %b)
      %r: float32[3] = Relu(%s)
      %y: float32[3] = Add(%x, %r)
      return %y
    })",
                 R"(graph main(%x: float32[3]) {
      %r: float32[3] = const[1.5, 0, 3.5]
      %y: float32[3] = Add(%x, %r)
      return %y
    })");
}

TEST(ConstantFolding, AGraphOutputKeepsItsName) {
  EXPECT_REWRITE(kFold, R"(graph main() {
      %a: int64[2] = const[1, 2]
      %y: int64[2] = Add(%a, %a)
      return %y
    })",
                 R"(graph main() {
      %y: int64[2] = const[2, 4]
      return %y
    })");
}

TEST(ConstantFolding, LeavesRandomControlFlowAndUnknownOpsAlone) {
  EXPECT_UNCHANGED(kFold, R"(graph main() {
      %a: float32[2] = const[1, 2]
      %c: bool[] = const[true]
      %r: float32[2] = RandomUniformLike(%a)
      %i: float32[2] = If<else_branch=graph e() { return %a }, then_branch=graph t() { return %a }>(%c)
      %u: float32[2] = com.example.Custom(%a)
      %q: float32[2] = DequantizeLinear(%a, %a)
      return %r, %i, %u, %q
    })");
}

TEST(ConstantFolding, LeavesNodesWhoseKernelFails) {
  // Shapes [2] and [3] do not broadcast: the runtime reports it, not the optimizer.
  EXPECT_UNCHANGED(kFold, R"(graph main() {
      %a: float32[2] = const[1, 2]
      %b: float32[3] = const[1, 2, 3]
      %y: float32[?] = Add(%a, %b)
      return %y
    })");
}

TEST(ConstantFolding, CapsTheSizeOfFoldedOutputs) {
  // 4096 x 4097 float32 is just over 64 MiB: it stays computed at run time.
  EXPECT_UNCHANGED(kFold, R"(graph main() {
      %a: float32[4096,1] = const[1]
      %b: float32[1,4097] = const[2]
      %y: float32[4096,4097] = Add(%a, %b)
      return %y
    })");
}
