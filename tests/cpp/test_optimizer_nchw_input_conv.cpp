// nchw_input_conv: a channels-last FusedConv of at most four input channels
// whose input is the NHWC region's edge transpose reads the NCHW tensor
// itself (channels_last = 2) and the transpose goes; the CPU graph computes
// the same; convs it must leave alone stay as they are.
#include <gtest/gtest.h>

#include <cmath>

#include "cpu_kernel_test_util.h"
#include "ir/graph_edit.h"
#include "optimizer_test_util.h"
#include "runtime/executor.h"

using namespace deepep;

namespace {

const std::vector<std::unique_ptr<Pass> (*)()> kPass = {make_nchw_input_conv, make_dead_code_elimination};

}  // namespace

TEST(NchwInputConv, TheStemReadsTheImageAndTheTransposeGoes) {
  EXPECT_REWRITE(kPass, R"(graph main(%x: float32[n,3,9,9], %w: float32[8,3,3,3], %b: float32[8], %r: float32[n,5,5,8]) {
      %t: float32[n,9,9,3] = Transpose<perm=[0,2,3,1]>(%x)
      %y: float32[n,5,5,8] = deepep.FusedConv<activation="Relu", channels_last=1, pads=[1,1,1,1], strides=[2,2]>(%t, %w, %b, %r)
      return %y
    })",
                 R"(graph main(%x: float32[n,3,9,9], %w: float32[8,3,3,3], %b: float32[8], %r: float32[n,5,5,8]) {
      %y: float32[n,5,5,8] = deepep.FusedConv<activation="Relu", channels_last=2, pads=[1,1,1,1], strides=[2,2]>(%x, %w, %b, %r)
      return %y
    })");
}

TEST(NchwInputConv, LeavesOtherConvsAlone) {
  // Five input channels (over the direct conv's four).
  EXPECT_UNCHANGED(kPass, R"(graph main(%x: float32[1,5,6,6], %w: float32[8,5,3,3]) {
      %t: float32[1,6,6,5] = Transpose<perm=[0,2,3,1]>(%x)
      %y: float32[1,4,4,8] = deepep.FusedConv<channels_last=1>(%t, %w)
      return %y
    })");
  // Channels unknown.
  EXPECT_UNCHANGED(kPass, R"(graph main(%x: float32[1,c,6,6], %w: float32[8,3,3,3]) {
      %t: float32[1,6,6,c] = Transpose<perm=[0,2,3,1]>(%x)
      %y: float32[1,4,4,8] = deepep.FusedConv<channels_last=1>(%t, %w)
      return %y
    })");
  // Grouped (depthwise over the three channels).
  EXPECT_UNCHANGED(kPass, R"(graph main(%x: float32[1,3,6,6], %w: float32[3,1,3,3]) {
      %t: float32[1,6,6,3] = Transpose<perm=[0,2,3,1]>(%x)
      %y: float32[1,4,4,3] = deepep.FusedConv<channels_last=1, group=3>(%t, %w)
      return %y
    })");
  // The transposed image has another reader (and is a graph output).
  EXPECT_UNCHANGED(kPass, R"(graph main(%x: float32[1,3,6,6], %w: float32[8,3,3,3]) {
      %t: float32[1,6,6,3] = Transpose<perm=[0,2,3,1]>(%x)
      %y: float32[1,4,4,8] = deepep.FusedConv<channels_last=1>(%t, %w)
      %z: float32[1,4,4,8] = deepep.FusedConv<channels_last=1>(%t, %w)
      return %y, %z, %t
    })");
  // The input is the NHWC image itself (no transpose), or another permutation.
  EXPECT_UNCHANGED(kPass, R"(graph main(%h: float32[1,6,6,3], %w: float32[8,3,3,3]) {
      %y: float32[1,4,4,8] = deepep.FusedConv<channels_last=1>(%h, %w)
      %t: float32[1,6,3,6] = Transpose<perm=[0,2,1,3]>(%h)
      return %y, %t
    })");
  // An NCHW conv.
  EXPECT_UNCHANGED(kPass, R"(graph main(%x: float32[1,3,6,6], %w: float32[8,3,3,3]) {
      %y: float32[1,8,4,4] = Conv(%x, %w)
      return %y
    })");
}

TEST(NchwInputConv, TheCpuGraphComputesTheSame) {
  // An RGB stem (7x7, stride 2, 16 channels) and a 1x1 conv after it, as the
  // CPU Engine converts them; two images, odd sizes.
  const std::string text = R"(graph main(%x: float32[2,3,23,21], %w1: float32[16,3,7,7], %b1: float32[16],
                                         %w2: float32[8,16,1,1]) {
      %c: float32[2,16,12,11] = Conv<pads=[3,3,3,3], strides=[2,2]>(%x, %w1, %b1)
      %r: float32[2,16,12,11] = Relu(%c)
      %y: float32[2,8,12,11] = Conv(%r, %w2)
      return %y
    })";
  auto before = parse_graph_text(text);
  auto g = parse_graph_text(text);
  convert_to_channels_last(*g);
  fuse_for_cpu(*g);
  verify(*g);
  int nchw_convs = 0, transposes_in = 0;  // (the Relu's output still enters the second conv through one)
  for (const auto& n : g->nodes()) {
    nchw_convs += n->op_type == "FusedConv" && n->attr_int("channels_last", 0) == 2;
    transposes_in += n->op_type == "Transpose" && n->inputs[0]->name == "x";
  }
  EXPECT_EQ(nchw_convs, 1);
  EXPECT_EQ(transposes_in, 0);
  const std::vector<Tensor> in = {cputest::rnd({2, 3, 23, 21}, 1), cputest::rnd({16, 3, 7, 7}, 2),
                                  cputest::rnd({16}, 3), cputest::rnd({8, 16, 1, 1}, 4)};
  Executor a, b;
  const Tensor want = a.run_graph(*before, in, nullptr)[0], got = b.run_graph(*g, in, nullptr)[0];
  ASSERT_EQ(got.shape(), want.shape());
  double err = 0;
  for (int64_t i = 0; i < want.numel(); ++i)
    err = std::max(err, double(std::fabs(got.data<float>()[i] - want.data<float>()[i])));
  EXPECT_LE(err, 1e-4);
}
