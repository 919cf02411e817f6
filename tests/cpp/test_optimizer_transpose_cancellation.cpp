#include "optimizer_test_util.h"

using namespace deepep;

namespace {
const std::vector<std::unique_ptr<Pass> (*)()> kTranspose = {make_transpose_cancellation, make_dead_code_elimination};
}

TEST(TransposeCancellation, InversePairsCancel) {
  EXPECT_REWRITE(kTranspose, R"(graph main(%x: float32[2,3,4]) {
      %r: float32[2,3,4] = Relu(%x)
      %t: float32[4,2,3] = Transpose<perm=[2,0,1]>(%r)
      %y: float32[2,3,4] = Transpose<perm=[1,2,0]>(%t)
      return %y
    })",
                 R"(graph main(%x: float32[2,3,4]) {
      %y: float32[2,3,4] = Relu(%x)
      return %y
    })");
  // Default perms (reversed dims) with a known rank.
  EXPECT_REWRITE(kTranspose, R"(graph main(%x: float32[2,3]) {
      %r: float32[2,3] = Relu(%x)
      %t: float32[3,2] = Transpose(%r)
      %y: float32[2,3] = Transpose(%t)
      return %y
    })",
                 R"(graph main(%x: float32[2,3]) {
      %y: float32[2,3] = Relu(%x)
      return %y
    })");
}

TEST(TransposeCancellation, OtherPairsMergeIntoOne) {
  // [0,2,1] then [1,0,2]: r[i] = p[q[i]] = [2,0,1].
  EXPECT_REWRITE(kTranspose, R"(graph main(%x: float32[2,3,4]) {
      %t: float32[2,4,3] = Transpose<perm=[0,2,1]>(%x)
      %y: float32[4,2,3] = Transpose<perm=[1,0,2]>(%t)
      return %y
    })",
                 R"(graph main(%x: float32[2,3,4]) {
      %y: float32[4,2,3] = Transpose<perm=[2,0,1]>(%x)
      return %y
    })");
}

TEST(TransposeCancellation, TransposeOfAConstantIsAConstant) {
  EXPECT_REWRITE(kTranspose, R"(graph main(%a: float32[n,3]) {
      %w: float32[2,3] = const[1, 2, 3, 4, 5, 6]
      %wt: float32[3,2] = Transpose<perm=[1,0]>(%w)
      %y: float32[n,2] = MatMul(%a, %wt)
      return %y
    })",
                 R"(graph main(%a: float32[n,3]) {
      %wt: float32[3,2] = const[1, 4, 2, 5, 3, 6]
      %y: float32[n,2] = MatMul(%a, %wt)
      return %y
    })");
  // Rank 3, int64, default perm: [2,1,2] -> [2,1,2] reversed.
  EXPECT_REWRITE(kTranspose, R"(graph main() {
      %c: int64[2,1,2] = const[1, 2, 3, 4]
      %y: int64[2,1,2] = Transpose(%c)
      return %y
    })",
                 R"(graph main() {
      %y: int64[2,1,2] = const[1, 3, 2, 4]
      return %y
    })");
}

TEST(TransposeCancellation, UnknownRankWithDefaultPermStays) {
  EXPECT_UNCHANGED(kTranspose, R"(graph main(%x: float32[*]) {
      %t: float32[*] = Transpose(%x)
      %y: float32[*] = Transpose<perm=[1,0]>(%t)
      return %y
    })");
}
