#include "optimizer_test_util.h"

using namespace deepep;

namespace {
const std::vector<std::unique_ptr<Pass> (*)()> kLN = {make_layer_norm_fusion};

// The decomposition torch.onnx writes below opset 17, with `mean_axes` and
// `sq` (the squaring line) and `scale` / `shift` lines to vary.
std::string decomposed(const std::string& mean_axes, const std::string& sq, const std::string& tail,
                       const std::string& ret = "%y") {
  return R"(graph main(%x: float32[b,s,4]) {
      %two: float32[] = const[2]
      %eps: float32[] = const[1e-12]
      %g: float32[4] = const[1, 2, 3, 4]
      %beta: float32[4] = const[0.5]
      %m: float32[b,s,1] = ReduceMean<axes=)" + mean_axes + R"(>(%x)
      %d: float32[b,s,4] = Sub(%x, %m)
      )" + sq + R"(
      %v: float32[b,s,1] = ReduceMean<axes=)" + mean_axes + R"(>(%sq)
      %ve: float32[b,s,1] = Add(%v, %eps)
      %sd: float32[b,s,1] = Sqrt(%ve)
      %n: float32[b,s,4] = Div(%d, %sd)
      )" + tail + "\n return " + ret + "\n}";
}
}  // namespace

TEST(LayerNormFusion, DecomposedLayerNormBecomesOneNode) {
  const char* after = R"(graph main(%x: float32[b,s,4]) {
      %g: float32[4] = const[1, 2, 3, 4]
      %beta: float32[4] = const[0.5]
      %y: float32[b,s,4] = LayerNormalization<axis=-1, epsilon=1e-12>(%x, %g, %beta)
      return %y
    })";
  EXPECT_REWRITE(kLN, decomposed("[-1]", "%sq: float32[b,s,4] = Pow(%d, %two)",
                                 "%ng: float32[b,s,4] = Mul(%n, %g)\n %y: float32[b,s,4] = Add(%ng, %beta)"),
                 after);
  // d * d, the axis spelled positively, gamma and beta first.
  EXPECT_REWRITE(kLN, decomposed("[2]", "%sq: float32[b,s,4] = Mul(%d, %d)",
                                 "%ng: float32[b,s,4] = Mul(%g, %n)\n %y: float32[b,s,4] = Add(%beta, %ng)"),
                 after);
}

TEST(LayerNormFusion, WithoutScaleAndShiftGetsOnes) {
  EXPECT_REWRITE(kLN, decomposed("[-1]", "%sq: float32[b,s,4] = Pow(%d, %two)", "", "%n"),
                 R"(graph main(%x: float32[b,s,4]) {
      %x_ln_scale: float32[4] = const[1, 1, 1, 1]
      %n: float32[b,s,4] = LayerNormalization<axis=-1, epsilon=1e-12>(%x, %x_ln_scale)
      return %n
    })");
}

TEST(LayerNormFusion, OverTwoTrailingAxes) {
  EXPECT_REWRITE(kLN, R"(graph main(%x: float32[b,3,4]) {
      %two: float32[] = const[2]
      %eps: float32[] = const[1e-5]
      %g: float32[3,4] = const[2]
      %m: float32[b,1,1] = ReduceMean<axes=[1,2]>(%x)
      %d: float32[b,3,4] = Sub(%x, %m)
      %sq: float32[b,3,4] = Pow(%d, %two)
      %v: float32[b,1,1] = ReduceMean<axes=[-2,-1]>(%sq)
      %ve: float32[b,1,1] = Add(%eps, %v)
      %sd: float32[b,1,1] = Sqrt(%ve)
      %n: float32[b,3,4] = Div(%d, %sd)
      %y: float32[b,3,4] = Mul(%n, %g)
      return %y
    })", R"(graph main(%x: float32[b,3,4]) {
      %g: float32[3,4] = const[2]
      %y: float32[b,3,4] = LayerNormalization<axis=-2, epsilon=1e-5>(%x, %g)
      return %y
    })");
}

TEST(LayerNormFusion, RMSNorm) {
  const char* after = R"(graph main(%x: float32[b,s,4]) {
      %g: float32[4] = const[1, 2, 3, 4]
      %y: float32[b,s,4] = RMSNormalization<axis=-1, epsilon=1e-6>(%x, %g)
      return %y
    })";
  EXPECT_REWRITE(kLN, R"(graph main(%x: float32[b,s,4]) {
      %two: float32[] = const[2]
      %eps: float32[] = const[1e-6]
      %g: float32[4] = const[1, 2, 3, 4]
      %sq: float32[b,s,4] = Pow(%x, %two)
      %v: float32[b,s,1] = ReduceMean<axes=[-1]>(%sq)
      %ve: float32[b,s,1] = Add(%v, %eps)
      %sd: float32[b,s,1] = Sqrt(%ve)
      %n: float32[b,s,4] = Div(%x, %sd)
      %y: float32[b,s,4] = Mul(%g, %n)
      return %y
    })", after);
  // LLaMA style: x * Reciprocal(Sqrt(mean(x * x) + eps)) * g
  EXPECT_REWRITE(kLN, R"(graph main(%x: float32[b,s,4]) {
      %eps: float32[] = const[1e-6]
      %g: float32[4] = const[1, 2, 3, 4]
      %sq: float32[b,s,4] = Mul(%x, %x)
      %v: float32[b,s,1] = ReduceMean<axes=[-1]>(%sq)
      %ve: float32[b,s,1] = Add(%v, %eps)
      %sd: float32[b,s,1] = Sqrt(%ve)
      %r: float32[b,s,1] = Reciprocal(%sd)
      %n: float32[b,s,4] = Mul(%x, %r)
      %y: float32[b,s,4] = Mul(%n, %g)
      return %y
    })", after);
}

TEST(LayerNormFusion, MustNotFuse) {
  // The reduction runs over axis 1, not the normalized (last) axis.
  EXPECT_UNCHANGED(kLN, R"(graph main(%x: float32[b,s,4]) {
      %two: float32[] = const[2]
      %eps: float32[] = const[1e-12]
      %g: float32[4] = const[1, 2, 3, 4]
      %m: float32[b,1,4] = ReduceMean<axes=[1]>(%x)
      %d: float32[b,s,4] = Sub(%x, %m)
      %sq: float32[b,s,4] = Pow(%d, %two)
      %v: float32[b,1,4] = ReduceMean<axes=[1]>(%sq)
      %ve: float32[b,1,4] = Add(%v, %eps)
      %sd: float32[b,1,4] = Sqrt(%ve)
      %n: float32[b,s,4] = Div(%d, %sd)
      %y: float32[b,s,4] = Mul(%n, %g)
      return %y
    })");
  // The two means reduce different axes.
  const std::string mixed = decomposed("[-1]", "%sq: float32[b,s,4] = Pow(%d, %two)", "%y: float32[b,s,4] = Mul(%n, %g)");
  std::string mixed2 = mixed;
  mixed2.replace(mixed2.rfind("axes=[-1]"), 9, "axes=[1]");
  EXPECT_UNCHANGED(kLN, mixed2);
  // A scale varying along the sequence axis is not LayerNorm's gamma: the
  // norm fuses, the per-row scale stays outside.
  EXPECT_REWRITE(kLN, R"(graph main(%x: float32[b,3,4]) {
      %two: float32[] = const[2]
      %eps: float32[] = const[1e-5]
      %g: float32[3,1] = const[1, 2, 3]
      %m: float32[b,3,1] = ReduceMean<axes=[-1]>(%x)
      %d: float32[b,3,4] = Sub(%x, %m)
      %sq: float32[b,3,4] = Pow(%d, %two)
      %v: float32[b,3,1] = ReduceMean<axes=[-1]>(%sq)
      %ve: float32[b,3,1] = Add(%v, %eps)
      %sd: float32[b,3,1] = Sqrt(%ve)
      %n: float32[b,3,4] = Div(%d, %sd)
      %y: float32[b,3,4] = Mul(%n, %g)
      return %y
    })", R"(graph main(%x: float32[b,3,4]) {
      %g: float32[3,1] = const[1, 2, 3]
      %x_ln_scale: float32[4] = const[1, 1, 1, 1]
      %n: float32[b,3,4] = LayerNormalization<axis=-1, epsilon=1e-5>(%x, %x_ln_scale)
      %y: float32[b,3,4] = Mul(%n, %g)
      return %y
    })");
  // The centered value is also a graph output: no LayerNorm, but what
  // follows it is an RMSNorm of x - mean, and fuses as one.
  const char* rms_of_d = R"(graph main(%x: float32[b,s,4]) {
      %g: float32[4] = const[1, 2, 3, 4]
      %m: float32[b,s,1] = ReduceMean<axes=[-1]>(%x)
      %d: float32[b,s,4] = Sub(%x, %m)
      %y: float32[b,s,4] = RMSNormalization<axis=-1, epsilon=1e-12>(%d, %g)
      return %y, %d
    })";
  EXPECT_REWRITE(kLN, decomposed("[-1]", "%sq: float32[b,s,4] = Pow(%d, %two)", "%y: float32[b,s,4] = Mul(%n, %g)",
                                 "%y, %d"),
                 rms_of_d);
  // keepdims = 0 on the mean: likewise.
  std::string nokeep = decomposed("[-1]", "%sq: float32[b,s,4] = Pow(%d, %two)", "%y: float32[b,s,4] = Mul(%n, %g)");
  nokeep.replace(nokeep.find("ReduceMean<axes=[-1]>"), 21, "ReduceMean<axes=[-1], keepdims=0>");
  std::string nokeep_after = rms_of_d;
  nokeep_after.replace(nokeep_after.find("ReduceMean<axes=[-1]>"), 21, "ReduceMean<axes=[-1], keepdims=0>");
  nokeep_after.replace(nokeep_after.find("return %y, %d"), 13, "return %y");
  EXPECT_REWRITE(kLN, nokeep, nokeep_after);
}
