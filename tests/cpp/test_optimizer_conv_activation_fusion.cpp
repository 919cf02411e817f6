#include "optimizer_test_util.h"

using namespace deepep;

namespace {
const std::vector<std::unique_ptr<Pass> (*)()> kConv = {make_conv_activation_fusion};

std::string conv(const std::string& lines, const std::string& ret = "%y", const std::string& extra = "") {
  return "graph main(%x: float32[n,2,5,5]" + extra + R"() {
      %w: float32[4,2,3,3] = const[0.5]
      %b: float32[4] = const[1, 2, 3, 4]
      %c: float32[n,4,5,5] = Conv<pads=[1,1,1,1]>(%x, %w, %b)
      )" + lines + "\n return " + ret + "\n}";
}
}  // namespace

TEST(ConvActivationFusion, ActivationsFuse) {
  EXPECT_REWRITE(kConv, conv("%y: float32[n,4,5,5] = Relu(%c)"), R"(graph main(%x: float32[n,2,5,5]) {
      %w: float32[4,2,3,3] = const[0.5]
      %b: float32[4] = const[1, 2, 3, 4]
      %y: float32[n,4,5,5] = deepep.FusedConv<activation="Relu", pads=[1,1,1,1]>(%x, %w, %b)
      return %y
    })");
  // MobileNet's ReLU6.
  EXPECT_REWRITE(kConv, conv("%lo: float32[] = const[0]\n %hi: float32[] = const[6]\n %y: float32[n,4,5,5] = Clip(%c, %lo, %hi)"),
                 R"(graph main(%x: float32[n,2,5,5]) {
      %w: float32[4,2,3,3] = const[0.5]
      %b: float32[4] = const[1, 2, 3, 4]
      %y: float32[n,4,5,5] = deepep.FusedConv<activation="Clip", activation_params=[0.0,6.0], pads=[1,1,1,1]>(%x, %w, %b)
      return %y
    })");
}

TEST(ConvActivationFusion, ResNetResidualThenRelu) {
  EXPECT_REWRITE(kConv, conv("%s: float32[n,4,5,5] = Add(%c, %id)\n %y: float32[n,4,5,5] = Relu(%s)", "%y",
                             ", %id: float32[n,4,5,5]"),
                 R"(graph main(%x: float32[n,2,5,5], %id: float32[n,4,5,5]) {
      %w: float32[4,2,3,3] = const[0.5]
      %b: float32[4] = const[1, 2, 3, 4]
      %y: float32[n,4,5,5] = deepep.FusedConv<activation="Relu", pads=[1,1,1,1], residual_before_activation=1>(%x, %w, %b, %id)
      return %y
    })");
  // Residual after the activation (MobileNet adds after a linear conv; here after a Relu).
  EXPECT_REWRITE(kConv, conv("%r: float32[n,4,5,5] = Relu(%c)\n %y: float32[n,4,5,5] = Add(%id, %r)", "%y",
                             ", %id: float32[n,4,5,5]"),
                 R"(graph main(%x: float32[n,2,5,5], %id: float32[n,4,5,5]) {
      %w: float32[4,2,3,3] = const[0.5]
      %b: float32[4] = const[1, 2, 3, 4]
      %y: float32[n,4,5,5] = deepep.FusedConv<activation="Relu", pads=[1,1,1,1]>(%x, %w, %b, %id)
      return %y
    })");
}

TEST(ConvActivationFusion, MustNotFuse) {
  // The conv output is read twice.
  EXPECT_UNCHANGED(kConv, conv("%y: float32[n,4,5,5] = Relu(%c)", "%y, %c"));
  // A per-channel Add broadcasts: conv_batchnorm_fold's business, not a residual.
  EXPECT_UNCHANGED(kConv, conv("%y: float32[n,4,5,5] = Add(%c, %t)", "%y", ", %t: float32[4,1,1]"));
  // A residual that would enlarge the output.
  EXPECT_UNCHANGED(kConv, conv("%y: float32[k,n,4,5,5] = Add(%c, %t)", "%y", ", %t: float32[k,n,4,5,5]"));
  // float64.
  EXPECT_UNCHANGED(kConv, R"(graph main(%x: float64[n,2,5,5]) {
      %w: float64[4,2,3,3] = const[0.5]
      %c: float64[n,4,3,3] = Conv(%x, %w)
      %y: float64[n,4,3,3] = Relu(%c)
      return %y
    })");
}
