// make_conv_plan hands the plan a supports() call made to the run() after it
// (conv_plan.cpp's memo): the plan must still be the one of the call at hand
// when the node, an input tensor or a shape differs from the call before.
#include <gtest/gtest.h>

#include "cpu_kernel_test_util.h"
#include "kernels/cpu/conv_plan.h"

using namespace deepep;
using namespace deepep::cputest;
using deepep::cpu::ConvPlan;

namespace {

ConvPlan plan_of(const Node& n, const std::vector<const Tensor*>& in, bool& ok) {
  KernelContext ctx{n, in, {}, nullptr, nullptr};
  ConvPlan p{};
  ok = cpu::make_conv_plan(ctx, true, true, p);
  return p;
}

TEST(ConvPlan, EachCallGetsItsOwnNodesAndShapesPlan) {
  // Two convs over the same tensors: stride 1 and stride 2.
  auto g = parse_graph_text(
      "graph main(%x: float32[1, 9, 9, 8], %w: float32[16, 8, 3, 3]) {\n"
      " %a = deepep.FusedConv<pads=[1,1,1,1], channels_last=1>(%x, %w)\n"
      " %b = deepep.FusedConv<pads=[1,1,1,1], strides=[2,2], channels_last=1>(%x, %w)\n"
      " return %a, %b\n}");
  const Node& a = *g->nodes().at(0);
  const Node& b = *g->nodes().at(1);
  const Tensor x = rnd({1, 9, 9, 8}, 1), w = rnd({16, 8, 3, 3}, 2);
  bool ok = false;
  // supports(a) then run(b) with the same tensors: b's plan, not a's.
  EXPECT_EQ(plan_of(a, {&x, &w}, ok).OH, 9);
  EXPECT_TRUE(ok);
  EXPECT_EQ(plan_of(b, {&x, &w}, ok).OH, 5);
  EXPECT_TRUE(ok);
  // Back to back on one node (the memo's use), then again (used once).
  for (int i = 0; i < 3; ++i) {
    const ConvPlan p = plan_of(b, {&x, &w}, ok);
    EXPECT_TRUE(ok);
    EXPECT_EQ(p.OH, 5);
    EXPECT_EQ(p.sh, 2);
    EXPECT_EQ(p.M, 16);
  }
  // The same node and tensor objects, other shapes: planned again.
  Tensor xm = x;
  EXPECT_EQ(plan_of(b, {&xm, &w}, ok).OH, 5);
  xm = rnd({1, 13, 11, 8}, 3);
  ConvPlan p = plan_of(b, {&xm, &w}, ok);
  EXPECT_TRUE(ok);
  EXPECT_EQ(p.OH, 7);
  EXPECT_EQ(p.OW, 6);
  // A call it declines stays declined when repeated, and a supported one
  // after it is planned afresh.
  const Tensor w_bad = rnd({16, 4, 3, 3}, 4);  // C 8 is not 4 per group
  plan_of(b, {&x, &w_bad}, ok);
  EXPECT_FALSE(ok);
  plan_of(b, {&x, &w_bad}, ok);
  EXPECT_FALSE(ok);
  p = plan_of(b, {&x, &w}, ok);
  EXPECT_TRUE(ok);
  EXPECT_EQ(p.OH, 5);
}

}  // namespace
