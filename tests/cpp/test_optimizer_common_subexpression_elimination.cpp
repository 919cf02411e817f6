#include "optimizer_test_util.h"

using namespace deepep;

namespace {
const std::vector<std::unique_ptr<Pass> (*)()> kCse = {make_common_subexpression_elimination};
}

TEST(CommonSubexpressionElimination, MergesEqualNodesAndCascades) {
  EXPECT_REWRITE(kCse, R"(graph main(%x: float32[2]) {
      %a: float32[2] = Relu(%x)
      %b: float32[2] = Relu(%x)
      %c: float32[2] = Relu(%a)
      %d: float32[2] = Relu(%b)
      %y: float32[2] = Add(%c, %d)
      return %y
    })",
                 R"(graph main(%x: float32[2]) {
      %a: float32[2] = Relu(%x)
      %c: float32[2] = Relu(%a)
      %y: float32[2] = Add(%c, %c)
      return %y
    })");
}

TEST(CommonSubexpressionElimination, CommutativeOpsMatchEitherOrder) {
  // %b merges into %a, which takes the graph output's name; Sub is not commutative.
  EXPECT_REWRITE(kCse, R"(graph main(%x: float32[2], %z: float32[2]) {
      %a: float32[2] = Add(%x, %z)
      %b: float32[2] = Add(%z, %x)
      %s: float32[2] = Sub(%x, %z)
      %t: float32[2] = Sub(%z, %x)
      %y: float32[2] = Relu(%a)
      return %y, %b, %s, %t
    })",
                 R"(graph main(%x: float32[2], %z: float32[2]) {
      %b: float32[2] = Add(%x, %z)
      %s: float32[2] = Sub(%x, %z)
      %t: float32[2] = Sub(%z, %x)
      %y: float32[2] = Relu(%b)
      return %y, %b, %s, %t
    })");
}

TEST(CommonSubexpressionElimination, DifferentAttributesDoNotMerge) {
  EXPECT_REWRITE(kCse, R"(graph main(%x: float32[2]) {
      %a: float32[2] = LeakyRelu<alpha=0.1>(%x)
      %b: float32[2] = LeakyRelu<alpha=0.2>(%x)
      %c: float32[2] = LeakyRelu<alpha=0.1>(%x)
      %y: float32[2] = Add(%a, %b)
      %z: float32[2] = Add(%y, %c)
      return %z
    })",
                 R"(graph main(%x: float32[2]) {
      %a: float32[2] = LeakyRelu<alpha=0.1>(%x)
      %b: float32[2] = LeakyRelu<alpha=0.2>(%x)
      %y: float32[2] = Add(%a, %b)
      %z: float32[2] = Add(%y, %a)
      return %z
    })");
}

TEST(CommonSubexpressionElimination, RandomAndForeignOpsAndTwoOutputsStay) {
  // Two random draws are two values (so may be two calls of an op from
  // another domain); two graph outputs keep their two names.
  EXPECT_UNCHANGED(kCse, R"(graph main(%x: float32[2]) {
      %r1: float32[2] = RandomUniformLike(%x)
      %r2: float32[2] = RandomUniformLike(%x)
      %c1: float32[2] = com.example.Sample(%x)
      %c2: float32[2] = com.example.Sample(%x)
      %a: float32[2] = Relu(%x)
      %b: float32[2] = Relu(%x)
      return %r1, %r2, %c1, %c2, %a, %b
    })");
}

TEST(CommonSubexpressionElimination, MergesEqualConstants) {
  EXPECT_REWRITE(kCse, R"(graph main(%x: float32[2]) {
      %w1: float32[2] = const[1, 2]
      %w2: float32[2] = const[1, 2]
      %w3: float32[2] = const[1, 3]
      %a: float32[2] = Add(%x, %w1)
      %b: float32[2] = Add(%x, %w2)
      %c: float32[2] = Add(%x, %w3)
      %y: float32[2] = Add(%a, %b)
      %z: float32[2] = Add(%y, %c)
      return %z
    })",
                 R"(graph main(%x: float32[2]) {
      %w1: float32[2] = const[1, 2]
      %w3: float32[2] = const[1, 3]
      %a: float32[2] = Add(%x, %w1)
      %c: float32[2] = Add(%x, %w3)
      %y: float32[2] = Add(%a, %a)
      %z: float32[2] = Add(%y, %c)
      return %z
    })");
}
