#include "optimizer_test_util.h"

using namespace deepep;

namespace {
const std::vector<std::unique_ptr<Pass> (*)()> kSkip = {make_skip_layer_norm_fusion};

std::string add_ln(const std::string& a_type, const std::string& b_type, const std::string& add,
                   const std::string& ln = "%y: float32[b,s,8] = LayerNormalization<epsilon=1e-12>(%h, %g, %be)",
                   const std::string& ret = "%y") {
  return "graph main(%a: " + a_type + ", %r: " + b_type + R"() {
      %g: float32[8] = const[1.5]
      %be: float32[8] = const[0.25]
      )" + add + "\n " + ln + "\n return " + ret + "\n}";
}
}  // namespace

TEST(SkipLayerNormFusion, ResidualAddAndLayerNormBecomeOneNode) {
  EXPECT_REWRITE(kSkip, add_ln("float32[b,s,8]", "float32[b,s,8]", "%h: float32[b,s,8] = Add(%a, %r)"),
                 R"(graph main(%a: float32[b,s,8], %r: float32[b,s,8]) {
      %g: float32[8] = const[1.5]
      %be: float32[8] = const[0.25]
      %y: float32[b,s,8] = deepep.SkipLayerNorm<epsilon=1e-12>(%a, %r, %g, %be)
      return %y
    })");
}

TEST(SkipLayerNormFusion, SumReadElsewhereIsTheSecondOutput) {
  // GPT-2's residual stream: the sum feeds the norm and the next residual Add.
  EXPECT_REWRITE(kSkip,
                 add_ln("float32[b,s,8]", "float32[b,s,8]", "%h: float32[b,s,8] = Add(%a, %r)",
                        "%y: float32[b,s,8] = LayerNormalization<epsilon=1e-12>(%h, %g, %be)\n"
                        " %z: float32[b,s,8] = Add(%h, %y)",
                        "%z"),
                 R"(graph main(%a: float32[b,s,8], %r: float32[b,s,8]) {
      %g: float32[8] = const[1.5]
      %be: float32[8] = const[0.25]
      %y: float32[b,s,8], %h: float32[b,s,8] = deepep.SkipLayerNorm<epsilon=1e-12>(%a, %r, %g, %be)
      %z: float32[b,s,8] = Add(%h, %y)
      return %z
    })");
  // ... and when the sum is a graph output.
  EXPECT_REWRITE(kSkip, add_ln("float32[b,s,8]", "float32[b,s,8]", "%h: float32[b,s,8] = Add(%a, %r)",
                               "%y: float32[b,s,8] = LayerNormalization<epsilon=1e-12>(%h, %g)", "%y, %h"),
                 R"(graph main(%a: float32[b,s,8], %r: float32[b,s,8]) {
      %g: float32[8] = const[1.5]
      %y: float32[b,s,8], %h: float32[b,s,8] = deepep.SkipLayerNorm<epsilon=1e-12>(%a, %r, %g)
      return %y, %h
    })");
}

TEST(SkipLayerNormFusion, BroadcastSkipOfTrailingDims) {
  // BERT embeddings: tokens [b,s,8] + positions [1,s,8], in either order.
  const char* after = R"(graph main(%a: float32[b,s,8], %r: float32[1,s,8]) {
      %g: float32[8] = const[1.5]
      %be: float32[8] = const[0.25]
      %y: float32[b,s,8] = deepep.SkipLayerNorm<epsilon=1e-12>(%a, %r, %g, %be)
      return %y
    })";
  EXPECT_REWRITE(kSkip, add_ln("float32[b,s,8]", "float32[1,s,8]", "%h: float32[b,s,8] = Add(%a, %r)"), after);
  EXPECT_REWRITE(kSkip, add_ln("float32[b,s,8]", "float32[1,s,8]", "%h: float32[b,s,8] = Add(%r, %a)"), after);
}

TEST(SkipLayerNormFusion, AnyBroadcastOfTheAddFuses) {
  // A skip broadcasting inside the rows, or of another batch symbol: the
  // kernel broadcasts as Add does (checked against the chain in test_ops_fused).
  EXPECT_REWRITE(kSkip, add_ln("float32[b,s,8]", "float32[b,s,1]", "%h: float32[b,s,8] = Add(%a, %r)"),
                 R"(graph main(%a: float32[b,s,8], %r: float32[b,s,1]) {
      %g: float32[8] = const[1.5]
      %be: float32[8] = const[0.25]
      %y: float32[b,s,8] = deepep.SkipLayerNorm<epsilon=1e-12>(%a, %r, %g, %be)
      return %y
    })");
  // Unknown sequence lengths (as exported BERT's are after the position Slice).
  EXPECT_REWRITE(kSkip, add_ln("float32[b,?,8]", "float32[b,?,8]", "%h: float32[b,?,8] = Add(%a, %r)",
                               "%y: float32[b,?,8] = LayerNormalization<epsilon=1e-12>(%h, %g, %be)"),
                 R"(graph main(%a: float32[b,?,8], %r: float32[b,?,8]) {
      %g: float32[8] = const[1.5]
      %be: float32[8] = const[0.25]
      %y: float32[b,?,8] = deepep.SkipLayerNorm<epsilon=1e-12>(%a, %r, %g, %be)
      return %y
    })");
}

TEST(SkipLayerNormFusion, MustNotFuse) {
  // gamma varies along the sequence: LayerNorm allows it, the fused kernel does not.
  EXPECT_UNCHANGED(kSkip, R"(graph main(%a: float32[b,3,8], %r: float32[b,3,8]) {
      %g: float32[3,8] = const[1.5]
      %h: float32[b,3,8] = Add(%a, %r)
      %y: float32[b,3,8] = LayerNormalization(%h, %g)
      return %y
    })");
  // Unknown shapes.
  EXPECT_UNCHANGED(kSkip, add_ln("float32[*]", "float32[*]", "%h: float32[*] = Add(%a, %r)",
                                 "%y: float32[*] = LayerNormalization<epsilon=1e-12>(%h, %g, %be)"));
  // The LayerNorm's Mean output is read.
  EXPECT_UNCHANGED(kSkip, add_ln("float32[b,s,8]", "float32[b,s,8]", "%h: float32[b,s,8] = Add(%a, %r)",
                                 "%y: float32[b,s,8], %mu: float32[b,s,1] = LayerNormalization<epsilon=1e-12>(%h, %g, %be)",
                                 "%y, %mu"));
  // float64.
  EXPECT_UNCHANGED(kSkip, R"(graph main(%a: float64[b,8], %r: float64[b,8]) {
      %g: float64[8] = const[1.5]
      %h: float64[b,8] = Add(%a, %r)
      %y: float64[b,8] = LayerNormalization(%h, %g)
      return %y
    })");
}
