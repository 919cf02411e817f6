#include "optimizer_test_util.h"

using namespace deepep;

namespace {
const std::vector<std::unique_ptr<Pass> (*)()> kGelu = {make_gelu_fusion};

const char* kErfAfter = R"(graph main(%x: float32[n,8]) {
    %y: float32[n,8] = Gelu(%x)
    return %y
  })";
const char* kTanhAfter = R"(graph main(%x: float32[n,8]) {
    %y: float32[n,8] = Gelu<approximate="tanh">(%x)
    return %y
  })";
}  // namespace

TEST(GeluFusion, ErfFormAsBertExportsIt) {
  // Mul(Mul(x, Add(Erf(Div(x, sqrt 2)), 1)), 0.5)
  EXPECT_REWRITE(kGelu, R"(graph main(%x: float32[n,8]) {
      %r2: float32[] = const[1.4142135381698608]
      %one: float32[] = const[1]
      %half: float32[] = const[0.5]
      %d: float32[n,8] = Div(%x, %r2)
      %e: float32[n,8] = Erf(%d)
      %a: float32[n,8] = Add(%e, %one)
      %m: float32[n,8] = Mul(%x, %a)
      %y: float32[n,8] = Mul(%m, %half)
      return %y
    })", kErfAfter);
}

TEST(GeluFusion, ErfFormInOtherOperandOrders) {
  // (0.5 * x) * (1 + Erf(x * 0.70710678))
  EXPECT_REWRITE(kGelu, R"(graph main(%x: float32[n,8]) {
      %r: float32[] = const[0.70710678]
      %one: float32[] = const[1]
      %half: float32[] = const[0.5]
      %d: float32[n,8] = Mul(%r, %x)
      %e: float32[n,8] = Erf(%d)
      %a: float32[n,8] = Add(%one, %e)
      %h: float32[n,8] = Mul(%half, %x)
      %y: float32[n,8] = Mul(%a, %h)
      return %y
    })", kErfAfter);
  // x * ((1 + Erf(x / sqrt 2)) * 0.5)
  EXPECT_REWRITE(kGelu, R"(graph main(%x: float32[n,8]) {
      %r2: float32[] = const[1.4142135]
      %one: float32[] = const[1]
      %half: float32[] = const[0.5]
      %d: float32[n,8] = Div(%x, %r2)
      %e: float32[n,8] = Erf(%d)
      %a: float32[n,8] = Add(%e, %one)
      %m: float32[n,8] = Mul(%a, %half)
      %y: float32[n,8] = Mul(%x, %m)
      return %y
    })", kErfAfter);
}

TEST(GeluFusion, TanhFormWithPowAndWithMul) {
  // GPT-2's gelu_new: 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
  EXPECT_REWRITE(kGelu, R"(graph main(%x: float32[n,8]) {
      %three: float32[] = const[3]
      %c: float32[] = const[0.044715]
      %k: float32[] = const[0.7978845608028654]
      %one: float32[] = const[1]
      %half: float32[] = const[0.5]
      %p: float32[n,8] = Pow(%x, %three)
      %pc: float32[n,8] = Mul(%p, %c)
      %in: float32[n,8] = Add(%x, %pc)
      %ik: float32[n,8] = Mul(%in, %k)
      %t: float32[n,8] = Tanh(%ik)
      %h: float32[n,8] = Mul(%x, %half)
      %a: float32[n,8] = Add(%t, %one)
      %y: float32[n,8] = Mul(%h, %a)
      return %y
    })", kTanhAfter);
  // x^3 as x * (x * x), operands swapped everywhere.
  EXPECT_REWRITE(kGelu, R"(graph main(%x: float32[n,8]) {
      %c: float32[] = const[0.044715]
      %k: float32[] = const[0.79788456]
      %one: float32[] = const[1]
      %half: float32[] = const[0.5]
      %xx: float32[n,8] = Mul(%x, %x)
      %p: float32[n,8] = Mul(%x, %xx)
      %pc: float32[n,8] = Mul(%c, %p)
      %in: float32[n,8] = Add(%pc, %x)
      %ik: float32[n,8] = Mul(%k, %in)
      %t: float32[n,8] = Tanh(%ik)
      %a: float32[n,8] = Add(%one, %t)
      %m: float32[n,8] = Mul(%a, %x)
      %y: float32[n,8] = Mul(%half, %m)
      return %y
    })", kTanhAfter);
}

TEST(GeluFusion, NearMissesStay) {
  // Erf(x / 2): not GELU's constant.
  EXPECT_UNCHANGED(kGelu, R"(graph main(%x: float32[n,8]) {
      %r2: float32[] = const[2]
      %one: float32[] = const[1]
      %half: float32[] = const[0.5]
      %d: float32[n,8] = Div(%x, %r2)
      %e: float32[n,8] = Erf(%d)
      %a: float32[n,8] = Add(%e, %one)
      %m: float32[n,8] = Mul(%x, %a)
      %y: float32[n,8] = Mul(%m, %half)
      return %y
    })");
  // The Erf output is read elsewhere (a graph output).
  EXPECT_UNCHANGED(kGelu, R"(graph main(%x: float32[n,8]) {
      %r2: float32[] = const[1.4142135]
      %one: float32[] = const[1]
      %half: float32[] = const[0.5]
      %d: float32[n,8] = Div(%x, %r2)
      %e: float32[n,8] = Erf(%d)
      %a: float32[n,8] = Add(%e, %one)
      %m: float32[n,8] = Mul(%x, %a)
      %y: float32[n,8] = Mul(%m, %half)
      return %y, %e
    })");
  // The outer product uses another tensor than the Erf's input.
  EXPECT_UNCHANGED(kGelu, R"(graph main(%x: float32[n,8], %z: float32[n,8]) {
      %r2: float32[] = const[1.4142135]
      %one: float32[] = const[1]
      %half: float32[] = const[0.5]
      %d: float32[n,8] = Div(%x, %r2)
      %e: float32[n,8] = Erf(%d)
      %a: float32[n,8] = Add(%e, %one)
      %m: float32[n,8] = Mul(%z, %a)
      %y: float32[n,8] = Mul(%m, %half)
      return %y
    })");
  // tanh form with 0.5 * x^3: not the cube coefficient.
  EXPECT_UNCHANGED(kGelu, R"(graph main(%x: float32[n,8]) {
      %three: float32[] = const[3]
      %c: float32[] = const[0.5]
      %k: float32[] = const[0.7978845608028654]
      %one: float32[] = const[1]
      %half: float32[] = const[0.5]
      %p: float32[n,8] = Pow(%x, %three)
      %pc: float32[n,8] = Mul(%p, %c)
      %in: float32[n,8] = Add(%x, %pc)
      %ik: float32[n,8] = Mul(%in, %k)
      %t: float32[n,8] = Tanh(%ik)
      %h: float32[n,8] = Mul(%x, %half)
      %a: float32[n,8] = Add(%t, %one)
      %y: float32[n,8] = Mul(%h, %a)
      return %y
    })");
}
