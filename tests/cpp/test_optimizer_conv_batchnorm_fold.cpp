#include "optimizer_test_util.h"

using namespace deepep;

namespace {
const std::vector<std::unique_ptr<Pass> (*)()> kFold = {make_conv_batchnorm_fold};

// A 1x1 conv, 1 input channel, 2 output channels, then `tail` reading %c.
std::string conv_then(const std::string& consts, const std::string& tail, bool bias = true) {
  return "graph main(%x: float32[1,1,3,3]) {\n"
         "  %w: float32[2,1,1,1] = const[1, 2]\n" +
         std::string(bias ? "  %b: float32[2] = const[1, 1]\n" : "") + consts +
         "\n  %c: float32[1,2,3,3] = Conv(%x, %w" + (bias ? ", %b" : "") + ")\n  " + tail +
         "\n  return %y\n}\n";
}
// BN with scale [2, 3], var [4, 1] (epsilon 0), so s = [1, 3]; mean [1, 2],
// bias [0.5, 1], so t = bias - mean * s = [-0.5, -5].
const std::string kBnParams =
    "  %scale: float32[2] = const[2, 3]\n  %beta: float32[2] = const[0.5, 1]\n"
    "  %mean: float32[2] = const[1, 2]\n  %var: float32[2] = const[4, 1]";
}  // namespace

TEST(ConvBatchNormFold, FoldsInferenceBatchNormIntoWeightsAndBias) {
  // W' = W * s = [1, 6]; B' = B * s + t = [0.5, -2].
  EXPECT_REWRITE(kFold,
                 conv_then(kBnParams,
                           "%y: float32[1,2,3,3] = BatchNormalization<epsilon=0.0>(%c, %scale, %beta, %mean, %var)"),
                 R"(graph main(%x: float32[1,1,3,3]) {
      %w_folded: float32[2,1,1,1] = const[1, 6]
      %b_folded: float32[2] = const[0.5, -2]
      %y: float32[1,2,3,3] = Conv(%x, %w_folded, %b_folded)
      return %y
    })");
}

TEST(ConvBatchNormFold, BatchNormWhoseInputHasTwoReadersStays) {
  const std::string text = R"(graph main(%x: float32[1,1,3,3]) {
      %w: float32[2,1,1,1] = const[1, 2]
      %scale: float32[2] = const[2, 3]
      %beta: float32[2] = const[0.5, 1]
      %mean: float32[2] = const[1, 2]
      %var: float32[2] = const[4, 1]
      %c: float32[1,2,3,3] = Conv(%x, %w)
      %y: float32[1,2,3,3] = BatchNormalization(%c, %scale, %beta, %mean, %var)
      %z: float32[1,2,3,3] = Relu(%c)
      return %y, %z
    })";
  EXPECT_UNCHANGED(kFold, text);
  // Nor when the conv output is itself a graph output.
  EXPECT_UNCHANGED(kFold, R"(graph main(%x: float32[1,1,3,3]) {
      %w: float32[2,1,1,1] = const[1, 2]
      %scale: float32[2] = const[2, 3]
      %beta: float32[2] = const[0.5, 1]
      %mean: float32[2] = const[1, 2]
      %var: float32[2] = const[4, 1]
      %c: float32[1,2,3,3] = Conv(%x, %w)
      %y: float32[1,2,3,3] = BatchNormalization(%c, %scale, %beta, %mean, %var)
      return %y, %c
    })");
}

TEST(ConvBatchNormFold, TrainingBatchNormOrReadStatisticsStay) {
  EXPECT_UNCHANGED(kFold, conv_then(kBnParams, "%y: float32[1,2,3,3] = BatchNormalization<training_mode=1>(%c, %scale, %beta, %mean, %var)"));
  EXPECT_UNCHANGED(kFold, R"(graph main(%x: float32[1,1,3,3]) {
      %w: float32[2,1,1,1] = const[1, 2]
      %scale: float32[2] = const[2, 3]
      %beta: float32[2] = const[0.5, 1]
      %mean: float32[2] = const[1, 2]
      %var: float32[2] = const[4, 1]
      %c: float32[1,2,3,3] = Conv(%x, %w)
      %y: float32[1,2,3,3], %rm: float32[2] = BatchNormalization(%c, %scale, %beta, %mean, %var)
      return %y, %rm
    })");
}

TEST(ConvBatchNormFold, PerChannelMulAddSub) {
  // Mul by [2, 3] per channel (shape [2,1,1]) scales W and the (absent) bias.
  EXPECT_REWRITE(kFold, conv_then("  %k: float32[2,1,1] = const[2, 3]", "%y: float32[1,2,3,3] = Mul(%k, %c)", false),
                 R"(graph main(%x: float32[1,1,3,3]) {
      %w_folded: float32[2,1,1,1] = const[2, 6]
      %w_bias: float32[2] = const[0, 0]
      %y: float32[1,2,3,3] = Conv(%x, %w_folded, %w_bias)
      return %y
    })");
  // Add of [1,2,1,1] goes into the bias; W is untouched.
  EXPECT_REWRITE(kFold, conv_then("  %k: float32[1,2,1,1] = const[10, 20]", "%y: float32[1,2,3,3] = Add(%c, %k)"),
                 R"(graph main(%x: float32[1,1,3,3]) {
      %w: float32[2,1,1,1] = const[1, 2]
      %b_folded: float32[2] = const[11, 21]
      %y: float32[1,2,3,3] = Conv(%x, %w, %b_folded)
      return %y
    })");
  // Sub(c, k) subtracts; a scalar applies to every channel.
  EXPECT_REWRITE(kFold, conv_then("  %k: float32[] = const[1]", "%y: float32[1,2,3,3] = Sub(%c, %k)"),
                 R"(graph main(%x: float32[1,1,3,3]) {
      %w: float32[2,1,1,1] = const[1, 2]
      %b_folded: float32[2] = const[0, 0]
      %y: float32[1,2,3,3] = Conv(%x, %w, %b_folded)
      return %y
    })");
}

TEST(ConvBatchNormFold, NonPerChannelConstantsStay) {
  // Varies along the width: not a per-channel map.
  EXPECT_UNCHANGED(kFold, conv_then("  %k: float32[1,1,1,3] = const[1, 2, 3]", "%y: float32[1,2,3,3] = Mul(%c, %k)"));
  // [2,1,1,1] aligns with the batch axis: would broadcast the batch to 2.
  EXPECT_UNCHANGED(kFold, conv_then("  %k: float32[2,1,1,1] = const[1, 2]", "%y: float32[2,2,3,3] = Add(%c, %k)"));
  // c - k is a map, k - c negates: not folded.
  EXPECT_UNCHANGED(kFold, conv_then("  %k: float32[] = const[1]", "%y: float32[1,2,3,3] = Sub(%k, %c)"));
  // A computed multiplier.
  EXPECT_UNCHANGED(kFold, R"(graph main(%x: float32[1,1,3,3], %k: float32[2,1,1]) {
      %w: float32[2,1,1,1] = const[1, 2]
      %c: float32[1,2,3,3] = Conv(%x, %w)
      %y: float32[1,2,3,3] = Mul(%c, %k)
      return %y
    })");
}

TEST(ConvBatchNormFold, ChainsFoldOneStepPerRound) {
  FusionReport r;
  EXPECT_EQ(optest::run_passes(kFold,
                                conv_then(kBnParams + "\n  %k: float32[2,1,1] = const[2, 0.5]",
                                          "%n: float32[1,2,3,3] = BatchNormalization<epsilon=0.0>(%c, %scale, %beta, %mean, %var)\n"
                                          "  %y: float32[1,2,3,3] = Mul(%n, %k)"),
                                &r),
            optest::canon(R"(graph main(%x: float32[1,1,3,3]) {
      %w_folded_1: float32[2,1,1,1] = const[2, 3]
      %b_folded_1: float32[2] = const[1, -1]
      %y: float32[1,2,3,3] = Conv(%x, %w_folded_1, %b_folded_1)
      return %y
    })"));
  EXPECT_EQ(r.pass("conv_batchnorm_fold")->counters.at("folded.BatchNormalization"), 1);
  EXPECT_EQ(r.pass("conv_batchnorm_fold")->counters.at("folded.Mul"), 1);
}
