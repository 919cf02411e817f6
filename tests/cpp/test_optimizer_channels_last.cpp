#include "ir/graph_edit.h"
#include "optimizer_test_util.h"

using namespace deepep;

namespace {
std::string converted(const std::string& text, int* count = nullptr) {
  auto g = parse_graph_text(text);
  const int n = convert_to_channels_last(*g);
  if (count) *count = n;
  verify(*g);
  return g->to_text();
}
}  // namespace

TEST(ChannelsLast, ConvChainKeepsTransposesOnlyAtTheEdges) {
  // Conv -> FusedConv(residual) -> MaxPool: the pairs between the convs, the
  // residual's and the MaxPool's cancel; one transpose in (the image), one
  // out (the pooled features).
  int count = 0;
  const std::string got = converted(R"(graph main(%x: float32[n,3,8,8], %w1: float32[4,3,3,3], %b: float32[4],
                                                   %w2: float32[4,4,1,1]) {
      %c1: float32[n,4,8,8] = Conv<pads=[1,1,1,1]>(%x, %w1, %b)
      %c2: float32[n,4,8,8] = deepep.FusedConv<activation="Relu">(%c1, %w2, %b, %c1)
      %p: float32[n,4,4,4] = MaxPool<kernel_shape=[2,2], strides=[2,2]>(%c2)
      return %p
    })",
                                    &count);
  EXPECT_EQ(count, 2);
  EXPECT_EQ(got, optest::canon(R"(graph main(%x: float32[n,3,8,8], %w1: float32[4,3,3,3], %b: float32[4],
                                             %w2: float32[4,4,1,1]) {
      %x_nhwc: float32[n,8,8,3] = Transpose<perm=[0,2,3,1]>(%x)
      %c1_nhwc: float32[n,8,8,4] = deepep.FusedConv<channels_last=1, pads=[1,1,1,1]>(%x_nhwc, %w1, %b)
      %c2_nhwc: float32[n,8,8,4] = deepep.FusedConv<activation="Relu", channels_last=1>(%c1_nhwc, %w2, %b, %c1_nhwc)
      %p_nhwc: float32[n,4,4,4] = deepep.MaxPool<channels_last=1, kernel_shape=[2,2], strides=[2,2]>(%c2_nhwc)
      %p: float32[n,4,4,4] = Transpose<perm=[0,3,1,2]>(%p_nhwc)
      return %p
    })"));
}

TEST(ChannelsLast, LeavesOtherConvolutionsAlone) {
  // A 1-D conv, one already channels-last: nothing to do.
  const std::string text = R"(graph main(%x: float32[n,3,8], %w: float32[4,3,3], %w4: float32[4,3,1,1],
                                         %h: float32[n,8,8,3]) {
      %a: float32[n,4,6] = Conv(%x, %w)
      %c: float32[n,8,8,4] = deepep.FusedConv<channels_last=1>(%h, %w4)
      return %a, %c
    })";
  int count = -1;
  EXPECT_EQ(converted(text, &count), optest::canon(text));
  EXPECT_EQ(count, 0);
}

TEST(ChannelsLast, ConvReadByTwoConsumersKeepsOneTransposeForTheOther) {
  // c1 feeds a conv (its pair cancels) and a Relu (keeps the NCHW transpose).
  const std::string got = converted(R"(graph main(%x: float32[1,2,5,5], %w: float32[2,2,1,1]) {
      %c1: float32[1,2,5,5] = Conv(%x, %w)
      %c2: float32[1,2,5,5] = Conv(%c1, %w)
      %r: float32[1,2,5,5] = Relu(%c1)
      return %c2, %r
    })");
  EXPECT_EQ(got, optest::canon(R"(graph main(%x: float32[1,2,5,5], %w: float32[2,2,1,1]) {
      %x_nhwc: float32[1,5,5,2] = Transpose<perm=[0,2,3,1]>(%x)
      %c1_nhwc: float32[1,5,5,2] = deepep.FusedConv<channels_last=1>(%x_nhwc, %w)
      %c1: float32[1,2,5,5] = Transpose<perm=[0,3,1,2]>(%c1_nhwc)
      %c2_nhwc: float32[1,5,5,2] = deepep.FusedConv<channels_last=1>(%c1_nhwc, %w)
      %c2: float32[1,2,5,5] = Transpose<perm=[0,3,1,2]>(%c2_nhwc)
      %r: float32[1,2,5,5] = Relu(%c1)
      return %c2, %r
    })"));
}

TEST(ChannelsLast, MaxPoolJoinsTheRegion) {
  // The stem MaxPool between two convs becomes deepep.MaxPool channels_last, and the only transposes left
  // are the image in and the features out. A MaxPool whose Indices are read, or a 1-D one, stays as it is.
  const std::string got = converted(R"(graph main(%x: float32[n,3,8,8], %w1: float32[4,3,3,3], %w2: float32[4,4,1,1],
                                                   %s: float32[n,4,6]) {
      %c1: float32[n,4,8,8] = Conv<pads=[1,1,1,1]>(%x, %w1)
      %p: float32[n,4,4,4] = MaxPool<kernel_shape=[3,3], pads=[1,1,1,1], strides=[2,2]>(%c1)
      %c2: float32[n,4,4,4] = Conv(%p, %w2)
      %q: float32[n,4,2,2], %i: int64[n,4,2,2] = MaxPool<kernel_shape=[2,2], strides=[2,2]>(%c2)
      %t: float32[n,4,3] = MaxPool<kernel_shape=[2], strides=[2]>(%s)
      return %q, %i, %t
    })");
  EXPECT_EQ(got, optest::canon(R"(graph main(%x: float32[n,3,8,8], %w1: float32[4,3,3,3], %w2: float32[4,4,1,1],
                                             %s: float32[n,4,6]) {
      %x_nhwc: float32[n,8,8,3] = Transpose<perm=[0,2,3,1]>(%x)
      %c1_nhwc: float32[n,8,8,4] = deepep.FusedConv<channels_last=1, pads=[1,1,1,1]>(%x_nhwc, %w1)
      %p_nhwc: float32[n,4,4,4] = deepep.MaxPool<channels_last=1, kernel_shape=[3,3], pads=[1,1,1,1], strides=[2,2]>(%c1_nhwc)
      %c2_nhwc: float32[n,4,4,4] = deepep.FusedConv<channels_last=1>(%p_nhwc, %w2)
      %c2: float32[n,4,4,4] = Transpose<perm=[0,3,1,2]>(%c2_nhwc)
      %q: float32[n,4,2,2], %i: int64[n,4,2,2] = MaxPool<kernel_shape=[2,2], strides=[2,2]>(%c2)
      %t: float32[n,4,3] = MaxPool<kernel_shape=[2], strides=[2]>(%s)
      return %q, %i, %t
    })"));
}
