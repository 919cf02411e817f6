// deepep.PointwiseDepthwiseConv (channels_last = 1): its reference is the two
// deepep.FusedConv references in turn (checked bit for bit against running
// them as two nodes, so the pointwise_* attributes reach the first conv), and
// the fast kernel cpu.pointwise_depthwise_nhwc (the expanded map made a
// chunk of rows at a time into a per-thread buffer) matches the reference on
// random data on each ISA path: odd channel counts on both sides (vector and
// packing tails), strides 1-3 and unequal ones, pads larger than the
// kernel's reach (rows wholly in padding), dilation, 5x5 and 1x1 depthwise
// kernels, tiny, single-pixel and empty images, a batch whose threads' bands
// cross images, maps tall enough for several chunks per band, constant and
// variable weights, with and without biases, every activation in either
// place. A node the kernel does not take (wrong W1 shape) goes to the
// reference, which names the problem.
#include <gtest/gtest.h>

#include "cpu_kernel_test_util.h"
#include "deepep/error.h"

using namespace deepep;
using namespace deepep::cpu;
using namespace deepep::cputest;

namespace {

std::string join(std::string a, const std::string& b) {
  if (b.empty()) return a;
  return a.empty() ? b : a + ", " + b;
}

// "activation=..." as "pointwise_activation=...".
std::string as_pointwise(const std::string& act) {
  std::string out;
  size_t i = 0;
  while (i < act.size()) {
    const size_t at = act.find("activation", i);
    if (at == std::string::npos) break;
    out += act.substr(i, at - i) + "pointwise_activation";
    i = at + std::string("activation").size();
  }
  return out + act.substr(i);
}

struct Case {
  Shape x;               // [N, H, W, C]
  int64_t E, KH, KW;     // expanded channels, depthwise kernel
  std::string dw_attrs;  // strides, pads, dilations (group and channels_last added)
};

// The fused reference vs the two FusedConv references, then every ISA's fast kernel vs the reference.
void check(const Case& c, const std::string& act1, const std::string& act2, bool wconst, bool bias, uint32_t seed) {
  SCOPED_TRACE("x" + shp(c.x) + " E=" + std::to_string(c.E) + " k=" + std::to_string(c.KH) + "x" +
               std::to_string(c.KW) + " <" + c.dw_attrs + "> act1 <" + act1 + "> act2 <" + act2 +
               "> wconst=" + std::to_string(wconst) + " bias=" + std::to_string(bias));
  const int64_t C = c.x[3];
  const Tensor x = rnd(c.x, seed), w1 = rnd({c.E, C, 1, 1}, seed + 1), b1 = rnd({c.E}, seed + 2);
  const Tensor w2 = rnd({c.E, 1, c.KH, c.KW}, seed + 3), b2 = rnd({c.E}, seed + 4);
  const std::string dw = join(join(c.dw_attrs, "group=" + std::to_string(c.E)), "channels_last=1");
  const std::string attrs = join(join(dw, act2), as_pointwise(act1));
  std::vector<Input> ins = {{"x", x}, {"w1", w1, wconst}, bias ? Input{"b1", b1, true} : Input{"_", Tensor()},
                            {"w2", w2, wconst}};
  if (bias) ins.push_back({"b2", b2, true});
  std::string kernel;
  Tensor want;
  {
    IsaScope s(Isa::kNone);
    want = run_node("deepep.PointwiseDepthwiseConv", attrs, ins, kernel);
    EXPECT_EQ(kernel, "");
    std::vector<Input> first = {{"x", x}, {"w1", w1, wconst}};
    if (bias) first.push_back({"b1", b1, true});
    const Tensor e = run_node("deepep.FusedConv", join("channels_last=1", act1), first, kernel);
    std::vector<Input> second = {{"e", e}, {"w2", w2, wconst}};
    if (bias) second.push_back({"b2", b2, true});
    const Tensor two = run_node("deepep.FusedConv", join(dw, act2), second, kernel);
    EXPECT_EQ(rel_err(want, two), 0.0);
  }
  for (Isa isa : isas()) {
    SCOPED_TRACE(isa_name(isa));
    IsaScope s(isa);
    const Tensor got = run_node("deepep.PointwiseDepthwiseConv", attrs, ins, kernel);
    EXPECT_EQ(kernel, "cpu.pointwise_depthwise_nhwc");
    EXPECT_LE(rel_err(got, want), 5e-5);
  }
}

const Case kCases[] = {
    {{1, 13, 11, 5}, 20, 3, 3, "pads=[1,1,1,1]"},
    {{2, 17, 9, 3}, 37, 3, 3, "strides=[2,2], pads=[1,1,1,1]"},  // bands cross the two images
    {{1, 12, 14, 16}, 16, 5, 5, "dilations=[2,2], pads=[4,3,2,4]"},
    {{1, 9, 10, 7}, 33, 3, 2, "strides=[1,2], pads=[0,1,1,0]"},
    {{1, 11, 13, 4}, 24, 1, 1, "strides=[2,2]"},                  // rows between strides never made
    {{1, 10, 9, 6}, 17, 3, 3, "strides=[3,3], pads=[1,1,1,1]"},
    {{1, 5, 6, 8}, 32, 3, 3, "pads=[3,3,3,3]"},                   // output rows wholly in padding
    {{1, 1, 1, 9}, 40, 3, 3, "pads=[1,1,1,1]"},                   // one pixel
    {{1, 64, 40, 8}, 96, 3, 3, "pads=[1,1,1,1]"},                 // several chunks per band
    {{1, 65, 41, 12}, 96, 3, 3, "strides=[2,2], pads=[1,1,1,1]"},
    {{3, 23, 19, 16}, 144, 3, 3, "pads=[1,1,1,1]"},
    {{0, 5, 5, 4}, 16, 3, 3, "pads=[1,1,1,1]"},                   // empty batch
    {{1, 2, 2, 4}, 16, 5, 5, ""},                                 // empty output
    {{1, 4, 0, 4}, 16, 3, 3, "pads=[1,2,1,2]"},                   // zero-width image, outputs of padding only
};

}  // namespace

TEST(KernelsCpuPointwiseDepthwise, GeometriesMatchTheReference) {
  uint32_t seed = 700;
  for (const Case& c : kCases)
    for (bool wconst : {true, false})
      for (bool bias : {true, false}) {
        check(c, "activation=\"Clip\", activation_params=[0.0, 6.0]", "activation=\"Relu\"", wconst, bias, seed);
        seed += 8;
      }
}

TEST(KernelsCpuPointwiseDepthwise, EveryActivationInEitherPlace) {
  uint32_t seed = 900;
  const Case c{{2, 14, 9, 5}, 20, 3, 3, "strides=[2,2], pads=[1,1,1,1]"};
  for (const char* act : kActAttrs) {
    check(c, act, "", true, true, seed);
    check(c, "", act, true, true, seed + 8);
    seed += 16;
  }
}

TEST(KernelsCpuPointwiseDepthwise, UnsupportedNodeGoesToTheReferenceWhichNamesIt) {
  // W1 of a 3x3 conv: the fast kernel declines, the reference throws naming W1.
  const std::vector<Input> ins = {{"x", rnd({1, 5, 5, 4}, 1)},
                                  {"w1", rnd({8, 4, 3, 3}, 2), true},
                                  {"_", Tensor()},
                                  {"w2", rnd({8, 1, 3, 3}, 3), true}};
  std::string kernel = "?";
  try {
    run_node("deepep.PointwiseDepthwiseConv", "group=8, channels_last=1, pads=[1,1,1,1]", ins, kernel);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("W1 must be a 1x1 conv weight"), std::string::npos) << e.what();
  }
  EXPECT_EQ(kernel, "");
}
