// The channels-last fast kernels of deepep.FusedConv (cpu.conv_nhwc:
// implicit GEMM for 1x1 / KxK / grouped convs, direct depthwise) against the
// NCHW reference: X and the residual are drawn in NCHW, the reference runs
// on them (DEEPEP_CPU_ISA=none), its output is transposed to NHWC and
// compared with the fast kernel's output on the transposed inputs with
// channels_last=1, on each ISA path this CPU has (AVX-512 and AVX2 forced in
// turn). Odd channel counts (tails of the vectors and of the 8 x 8 packing
// transpose), tiny and empty images, empty batches, strides, pads,
// dilations, groups, channel multipliers, constant (packed-once) and
// variable weights, K over several GEMM K blocks, every epilogue; output
// channel counts on both sides of the register tile's width (the few-channel
// case runs the transposed GEMM and transposes its result); few input
// channels (the direct conv of an RGB stem). Every case also runs with
// channels_last=2 (X left NCHW): the direct conv gathers its rows from the
// planes, every other path on an NHWC copy.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <string>
#include <vector>

#include "cpu_kernel_test_util.h"
#include "deepep/error.h"
#include "kernels/cpu/conv_winograd.h"
#include "kernels/cpu/ops_conv_nhwc.h"

using namespace deepep;
using namespace deepep::cpu;
using namespace deepep::cputest;

namespace {

// [N, C, H, W] -> [N, H, W, C] (to_nhwc) and back.
Tensor permute4(const Tensor& t, bool to_nhwc) {
  const Shape s = t.shape();
  const Shape o = to_nhwc ? Shape{s[0], s[2], s[3], s[1]} : Shape{s[0], s[3], s[1], s[2]};
  Tensor r(DType::kFloat32, o);
  const int64_t N = to_nhwc ? s[0] : o[0], C = to_nhwc ? s[1] : o[1], H = to_nhwc ? s[2] : o[2],
                W = to_nhwc ? s[3] : o[3];
  const float* src = t.data<float>();
  float* dst = r.data<float>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w) {
          const int64_t nchw = ((n * C + c) * H + h) * W + w, nhwc = ((n * H + h) * W + w) * C + c;
          if (to_nhwc) dst[nhwc] = src[nchw];
          else dst[nchw] = src[nhwc];
        }
  return r;
}

std::string join(std::string a, const std::string& b) {
  if (b.empty()) return a;
  return a.empty() ? b : a + ", " + b;
}

// x, res in NCHW. The NCHW reference (no ISA), transposed, vs
// cpu.conv_nhwc on the NHWC inputs with channels_last=1 on each ISA.
void check(const Shape& xs, const Shape& ws, const std::string& attrs, uint32_t seed, bool wconst, bool bias,
           bool res, double tol = 5e-5) {
  SCOPED_TRACE("x" + shp(xs) + " w" + shp(ws) + " <" + attrs + "> wconst=" + std::to_string(wconst) +
               " bias=" + std::to_string(bias) + " res=" + std::to_string(res));
  const Tensor x = rnd(xs, seed), w = rnd(ws, seed + 1), b = rnd({ws[0]}, seed + 2);
  std::vector<Input> nchw = {{"x", x}, {"w", w, wconst}};
  if (bias || res) nchw.push_back(bias ? Input{"b", b, true} : Input{"_", Tensor()});
  std::string kernel;
  Tensor want;
  {
    IsaScope s(Isa::kNone);
    Tensor y0 = run_node("deepep.FusedConv", attrs, nchw, kernel);  // shape of the residual
    if (res) {
      nchw.push_back({"r", rnd(y0.shape(), seed + 3)});
      y0 = run_node("deepep.FusedConv", attrs, nchw, kernel);
    }
    EXPECT_EQ(kernel, "");
    want = permute4(y0, true);
  }
  std::vector<Input> nhwc = nchw;
  nhwc[0].t = permute4(x, true);
  if (res) nhwc.back().t = permute4(nhwc.back().t, true);
  {  // The channels-last reference agrees with the transposed NCHW one.
    IsaScope s(Isa::kNone);
    const Tensor got = run_node("deepep.FusedConv", join(attrs, "channels_last=1"), nhwc, kernel);
    EXPECT_EQ(kernel, "");
    EXPECT_LE(rel_err(got, want), 1e-6);
  }
  for (Isa isa : isas()) {
    SCOPED_TRACE(isa_name(isa));
    IsaScope s(isa);
    const Tensor got = run_node("deepep.FusedConv", join(attrs, "channels_last=1"), nhwc, kernel);
    EXPECT_EQ(kernel, "cpu.conv_nhwc");
    EXPECT_LE(rel_err(got, want), tol);
  }
  // channels_last = 2: X as drawn (NCHW), Y and the residual NHWC.
  std::vector<Input> mixed = nhwc;
  mixed[0].t = x;
  std::vector<Isa> with_reference = isas();
  with_reference.insert(with_reference.begin(), Isa::kNone);
  for (Isa isa : with_reference) {
    SCOPED_TRACE(std::string("channels_last=2 on ") + isa_name(isa));
    IsaScope s(isa);
    const Tensor got = run_node("deepep.FusedConv", join(attrs, "channels_last=2"), mixed, kernel);
    EXPECT_EQ(kernel, isa == Isa::kNone ? "" : "cpu.conv_nhwc");
    EXPECT_LE(rel_err(got, want), isa == Isa::kNone ? 1e-6 : tol);
  }
}

struct ConvCase {
  Shape x, w;
  std::string attrs;
};

// Each case with constant and variable weights, without and with a bias; seeds from `seed` in steps of 4.
template <size_t N>
void check_cases(const ConvCase (&cases)[N], uint32_t seed) {
  for (const ConvCase& c : cases) {
    for (bool wconst : {true, false}) {
      check(c.x, c.w, c.attrs, seed, wconst, false, false);
      check(c.x, c.w, c.attrs, seed, wconst, true, false);
    }
    seed += 4;
  }
}

// Forces the Winograd tile size m for its lifetime (0: the implicit GEMM).
struct WinogradScope {
  int old;
  explicit WinogradScope(int m) : old(set_winograd_override(m)) {}
  ~WinogradScope() { set_winograd_override(old); }
};

}  // namespace

// (The 3x3 stride-1 cases here run the implicit GEMM: Winograd is off; its
// own test below forces it.)
TEST(KernelsCpuNhwc, GeometriesGroupsDepthwise) {
  WinogradScope off(0);
  const ConvCase cases[] = {
      {{1, 3, 13, 11}, {8, 3, 3, 3}, "pads=[1,1,1,1]"},
      {{2, 5, 11, 9}, {7, 5, 3, 3}, "pads=[1,0,2,1], strides=[2,1]"},
      {{1, 17, 7, 5}, {33, 17, 1, 1}, ""},                                // pointwise, C = 17
      {{1, 16, 13, 12}, {24, 16, 1, 1}, "strides=[2,2]"},                 // strided 1x1
      {{1, 3, 13, 12}, {20, 3, 7, 7}, "pads=[3,3,3,3], strides=[2,2]"},   // stem
      {{1, 4, 12, 13}, {6, 4, 3, 3}, "dilations=[2,2], pads=[2,2,2,2]"},  // dilated
      {{1, 5, 10, 9}, {9, 5, 3, 2}, "dilations=[1,2], strides=[1,2], pads=[0,1,2,1]"},
      {{1, 8, 9, 9}, {10, 4, 3, 3}, "group=2, pads=[1,1,1,1]"},
      {{1, 6, 8, 8}, {6, 2, 3, 3}, "group=3, strides=[2,2], pads=[0,1,1,0]"},
      {{1, 64, 14, 14}, {96, 64, 3, 3}, "pads=[1,1,1,1]"},  // K = 576: two K blocks
      {{1, 130, 5, 7}, {50, 130, 3, 3}, "pads=[1,1,1,1]"},  // K = 1170
      {{1, 256, 14, 14}, {96, 256, 3, 3}, "pads=[1,1,1,1]"},  // im2col packed whole by several threads
      {{2, 17, 9, 10}, {17, 1, 3, 3}, "group=17, pads=[1,1,1,1]"},                   // depthwise, C tail
      {{1, 40, 11, 13}, {40, 1, 3, 3}, "group=40, strides=[2,2], pads=[1,1,1,1]"},   // 40 = 2 x 16 + 8
      {{1, 5, 9, 9}, {5, 1, 5, 5}, "group=5, auto_pad=\"SAME_UPPER\""},
      {{1, 4, 13, 11}, {4, 1, 3, 3}, "group=4, dilations=[2,3], pads=[2,3,1,0]"},    // dilated depthwise
      {{1, 3, 17, 16}, {3, 1, 3, 2}, "group=3, strides=[3,3], pads=[1,0,0,1]"},
      {{1, 3, 6, 6}, {6, 1, 3, 3}, "group=3, pads=[1,1,1,1]"},                       // multiplier 2: GEMM path
      {{1, 8, 9, 9}, {32, 8, 3, 3}, "pads=[1,1,1,1]"},  // Mg = 32: a vector multiple below the tile width
      {{1, 32, 11, 12}, {16, 32, 1, 1}, ""},             // Mg = 16: one vector
      {{1, 8, 120, 110}, {8, 8, 1, 1}, ""},              // transposed GEMM (AVX-512), transposed back by several threads
      {{1, 8, 60, 55}, {24, 8, 1, 1}, ""},               // Mg = 24: the register tile, last vector half used (AVX-512)
      {{1, 8, 9, 9}, {40, 8, 3, 3}, "pads=[1,1,1,1]"},   // Mg = 40: the register tile, 40 of 48 lanes
      {{1, 3, 2, 2}, {4, 3, 3, 3}, "pads=[1,1,1,1]"},                                // tiny image
      {{1, 3, 1, 1}, {5, 3, 1, 1}, ""},                                              // 1 x 1 image
      {{1, 6, 1, 1}, {6, 1, 3, 3}, "group=6, pads=[1,1,1,1]"},
      {{1, 1000, 7, 7}, {1000, 1, 3, 3}, "group=1000, pads=[1,1,1,1]"},  // few rows, many channels: split by channel
      {{1, 3, 4, 4}, {4, 3, 5, 5}, ""},                                              // empty output
      {{0, 3, 5, 5}, {4, 3, 3, 3}, "pads=[1,1,1,1]"},                                // empty batch
      {{0, 6, 5, 5}, {6, 1, 3, 3}, "group=6, pads=[1,1,1,1]"},                       // empty batch, depthwise
      {{1, 64, 12, 11}, {40, 64, 1, 1}, ""},  // pointwise, K >= 64 and >= 128 pixels: X read in place as A
      {{2, 96, 9, 8}, {24, 96, 1, 1}, ""},
  };
  check_cases(cases, 100);
}

TEST(KernelsCpuNhwc, EveryEpilogueAndResidual) {
  WinogradScope off(0);
  uint32_t s = 300;
  const std::vector<std::pair<Shape, std::string>> geo = {{{7, 5, 3, 3}, "pads=[1,1,1,1]"},
                                                          {{5, 1, 3, 3}, "group=5, pads=[1,1,1,1]"},
                                                          {{9, 5, 1, 1}, ""},
                                                          {{21, 5, 1, 1}, "strides=[2,2]"},
                                                          {{50, 5, 3, 3}, "pads=[0,1,1,2]"},
                                                          {{64, 5, 1, 1}, ""}};
  for (const auto& [ws, gattrs] : geo)
    for (const char* act : kActAttrs)
      for (int res = 0; res < 3; ++res) {
        std::string attrs = join(gattrs, act);
        if (res == 2) attrs = join(attrs, "residual_before_activation=1");
        check({2, 5, 10, 11}, ws, attrs, s, true, res != 1, res != 0);
        s += 4;
      }
  // im2col too large to pack whole before the GEMM (packed per block inside it).
  check({1, 64, 40, 40}, {64, 64, 3, 3}, "pads=[1,1,1,1], activation=\"Relu\"", 11, true, true, true);
  check({1, 64, 40, 40}, {64, 64, 3, 3}, "pads=[1,1,1,1], residual_before_activation=1, activation=\"Tanh\"", 12,
        false, true, true);
  // Residual without bias on a larger GEMM (several row blocks and column strips).
  check({1, 32, 12, 13}, {100, 32, 1, 1}, "activation=\"Relu\"", 9, true, false, true);
  // The same read in place (K = 80): the micro-kernel's epilogue with the residual.
  check({1, 80, 12, 13}, {100, 80, 1, 1}, "activation=\"Relu\", residual_before_activation=1", 13, true, true, true);
  check({1, 96, 12, 13}, {96, 1, 3, 3}, "group=96, activation=\"Clip\", activation_params=[0.0, 6.0]", 10, true,
        true, true);
}

// Few input channels (<= 4, output channels a multiple of the vector width):
// the direct conv, not the implicit GEMM. Output channel counts of one tile
// chunk, several, and a chunk plus single vectors; rows with border outputs
// only, interior blocks of 6 with tails; strides, asymmetric pads, dilation
// (the per-tap loop), SAME padding, empty batch; every epilogue.
TEST(KernelsCpuNhwc, DirectFewInputChannels) {
  WinogradScope off(0);
  const ConvCase cases[] = {
      {{1, 3, 13, 12}, {16, 3, 7, 7}, "pads=[3,3,3,3], strides=[2,2]"},  // stem, one vector
      {{2, 3, 19, 23}, {64, 3, 7, 7}, "pads=[3,3,3,3], strides=[2,2]"},  // stem, 64 channels
      {{1, 1, 9, 31}, {32, 1, 3, 3}, "pads=[1,1,1,1]"},
      {{1, 4, 11, 17}, {80, 4, 3, 3}, "pads=[0,1,2,1], strides=[1,2]"},  // 80 = 64 + 16
      {{1, 2, 12, 14}, {48, 2, 3, 3}, "dilations=[2,2], pads=[2,2,2,2]"},
      {{1, 3, 5, 5}, {16, 3, 7, 7}, "pads=[3,3,3,3]"},  // every output has a tap outside
      {{1, 3, 8, 9}, {32, 3, 3, 3}, "auto_pad=\"SAME_UPPER\", strides=[2,2]"},
      {{1, 3, 6, 40}, {16, 3, 1, 5}, "pads=[0,2,0,2]"},
      {{0, 3, 5, 5}, {16, 3, 3, 3}, "pads=[1,1,1,1]"},  // empty batch
      // One channel, 26 (or 17) pixels a row: OW a multiple of 6 leaves the ring's rows no right slack.
      {{2, 1, 5, 26}, {16, 1, 3, 3}, ""},
      {{1, 1, 7, 17}, {8, 1, 3, 6}, "pads=[1,0,1,0]"},
  };
  check_cases(cases, 500);
  uint32_t s = 500 + 4 * std::size(cases);  // the seeds this loop had after the cases
  for (const char* act : kActAttrs)
    for (int res = 0; res < 3; ++res) {
      std::string attrs = join("pads=[1,2,1,0], strides=[1,2]", act);
      if (res == 2) attrs = join(attrs, "residual_before_activation=1");
      check({2, 3, 10, 29}, {32, 3, 3, 3}, attrs, s, true, res != 1, res != 0);
      s += 4;
    }
}

// 3x3 stride-1 convs through Winograd F(2,3) and F(4,3), forced: images
// smaller than one tile, sizes that leave partial tiles on both edges, pads
// of 0-2 on each side (tiles that read only padding), two images, channel
// counts of one and several vectors (C = 48: K in three AVX-512 vectors),
// output channels over several GEMM strips (80, 112), tiles over several
// GEMM row blocks (40 x 40 at m = 2: 400 tiles), every epilogue with and
// without the residual. Variable weights are transformed per call.
// Tolerances: F(2,3)'s transforms add about one rounding per term; F(4,3)'s
// points +-2 scale some terms by up to 8 x 8 (the usual fp32 error growth).
TEST(KernelsCpuNhwc, Winograd) {
  struct Case {
    Shape x, w;
    std::string attrs;
  };
  const Case cases[] = {
      {{1, 16, 1, 1}, {16, 16, 3, 3}, "pads=[1,1,1,1]"},
      {{1, 16, 2, 3}, {32, 16, 3, 3}, "pads=[1,1,1,1]"},
      {{2, 32, 13, 11}, {16, 32, 3, 3}, "pads=[1,1,1,1]"},
      {{1, 48, 9, 14}, {80, 48, 3, 3}, "pads=[0,2,1,0]"},
      {{1, 16, 7, 7}, {112, 16, 3, 3}, "pads=[2,2,2,2]"},
      {{1, 16, 6, 10}, {16, 16, 3, 3}, ""},
      {{1, 64, 14, 14}, {64, 64, 3, 3}, "pads=[1,1,1,1]"},
      {{1, 32, 40, 40}, {32, 32, 3, 3}, "pads=[1,1,1,1]"},
      {{0, 16, 5, 5}, {16, 16, 3, 3}, "pads=[1,1,1,1]"},
  };
  for (int m : {2, 4}) {
    SCOPED_TRACE("m = " + std::to_string(m));
    WinogradScope ws(m);
    const double tol = m == 2 ? 2e-5 : 1e-4;
    uint32_t s = 900;
    for (const Case& c : cases) {
      check(c.x, c.w, c.attrs, s, true, true, false, tol);
      check(c.x, c.w, c.attrs, s, false, false, false, tol);
      s += 4;
    }
    for (const char* act : kActAttrs)
      for (int res = 0; res < 3; ++res) {
        std::string attrs = join("pads=[1,1,1,1]", act);
        if (res == 2) attrs = join(attrs, "residual_before_activation=1");
        check({2, 16, 9, 7}, {32, 16, 3, 3}, attrs, s, true, res != 1, res != 0, tol);
        s += 4;
      }
  }
}

// Which convs Winograd takes by default, and with which tile.
TEST(KernelsCpuNhwc, WinogradChoice) {
  auto plan = [](int64_t n, int64_t c, int64_t hw, int64_t m, int64_t k, int64_t s) {
    ConvPlan p{};
    p.N = n, p.C = c, p.H = p.W = hw, p.M = m, p.group = 1, p.Cg = c, p.Mg = m, p.KH = p.KW = k;
    p.sh = p.sw = s, p.dh = p.dw = 1, p.ph = p.pw = k / 2;
    p.OH = p.OW = (hw + 2 * (k / 2) - k) / s + 1;
    return p;
  };
  for (Isa isa : isas()) {
    SCOPED_TRACE(isa_name(isa));
    EXPECT_EQ(winograd_tile(isa, plan(1, 64, 56, 64, 3, 1)), 4);
    EXPECT_EQ(winograd_tile(isa, plan(1, 128, 28, 128, 3, 1)), 4);
    EXPECT_EQ(winograd_tile(isa, plan(1, 256, 14, 256, 3, 1)), 2);
    EXPECT_EQ(winograd_tile(isa, plan(2, 256, 14, 256, 3, 1)), 4);  // 32 tiles of 4x4
    EXPECT_EQ(winograd_tile(isa, plan(1, 512, 7, 512, 3, 1)), 2);
    EXPECT_EQ(winograd_tile(isa, plan(1, 512, 4, 512, 3, 1)), 0);  // 4 tiles of 2x2: the implicit GEMM
    EXPECT_EQ(winograd_tile(isa, plan(1, 64, 56, 64, 3, 2)), 0);   // strided
    EXPECT_EQ(winograd_tile(isa, plan(1, 64, 56, 64, 1, 1)), 0);   // 1x1
    EXPECT_EQ(winograd_tile(isa, plan(1, 20, 56, 64, 3, 1)), 0);   // C not whole vectors
    EXPECT_EQ(winograd_tile(isa, plan(1, 64, 56, 36, 3, 1)), 0);   // M not whole vectors
    ConvPlan g = plan(1, 64, 56, 64, 3, 1);
    g.group = 2, g.Cg = 32, g.Mg = 32;
    EXPECT_EQ(winograd_tile(isa, g), 0);
    g = plan(1, 64, 56, 64, 3, 1);
    g.dh = 2;
    EXPECT_EQ(winograd_tile(isa, g), 0);
    WinogradScope off(0);
    EXPECT_EQ(winograd_tile(isa, plan(1, 64, 56, 64, 3, 1)), 0);
  }
  EXPECT_EQ(winograd_tile(Isa::kNone, plan(1, 64, 56, 64, 3, 1)), 0);
}

TEST(KernelsCpuNhwc, DeclinesWhatItDoesNotTake) {
  for (Isa isa : isas()) {
    IsaScope sc(isa);
    std::string kernel;
    // channels_last = 0 stays on the NCHW kernel.
    run_node("deepep.FusedConv", "pads=[1,1,1,1]", {{"x", rnd({1, 3, 5, 5}, 1)}, {"w", rnd({4, 3, 3, 3}, 2), true}},
             kernel);
    EXPECT_EQ(kernel, "cpu.conv_gemm");
    // Bad shapes are left to the reference (which reports them).
    const std::vector<Input> bad = {{"x", rnd({1, 5, 5, 4}, 1)}, {"w", rnd({4, 3, 3, 3}, 2), true}};
    std::string k2 = "?";
    try {
      run_node("deepep.FusedConv", "channels_last=1", bad, k2);
    } catch (const Error&) {
    }
    EXPECT_EQ(k2, "");
  }
}

TEST(KernelsCpuNhwc, LayoutTransposes) {
  // {2, 300, 17, 19}: 256 x 256 tiles cut both dims with partial tiles (300 channels x 323 pixels).
  // 1-4 channels to NHWC (8 pixels a step, each stored 4 floats wide): pixel counts over and under a tile,
  // 9 (one step, one scalar pixel) and 8 (scalar only); {5, 2, 2, 2}: 4 pixels to NCHW the same way.
  const Shape shapes[] = {{1, 3, 13, 11}, {2, 17, 9, 10}, {1, 64, 20, 23}, {3, 8, 1, 1},  {0, 4, 5, 5},
                          {2, 5, 0, 3},   {2, 300, 17, 19}, {2, 1, 9, 31}, {1, 2, 16, 17}, {1, 4, 20, 13},
                          {1, 3, 3, 3},   {1, 3, 1, 8},     {5, 2, 2, 2},  {1, 40, 1, 2}};
  uint32_t s = 700;
  for (const Shape& xs : shapes)
    for (bool to_nhwc : {true, false}) {
      SCOPED_TRACE(shp(xs) + (to_nhwc ? " to NHWC" : " to NCHW"));
      const Tensor x = rnd(xs, s++);
      const std::string attrs = to_nhwc ? "perm=[0,2,3,1]" : "perm=[0,3,1,2]";
      const Tensor want = permute4(to_nhwc ? x : permute4(x, true), to_nhwc);
      const Tensor in = to_nhwc ? x : permute4(x, true);
      std::string kernel;
      for (Isa isa : isas()) {
        SCOPED_TRACE(isa_name(isa));
        IsaScope sc(isa);
        const Tensor got = run_node("Transpose", attrs, {{"x", in}}, kernel);
        EXPECT_EQ(kernel, "cpu.transpose_nhwc");
        EXPECT_EQ(rel_err(got, want), 0.0);
      }
    }
  // Other permutations and ranks stay on the reference.
  for (Isa isa : isas()) {
    IsaScope sc(isa);
    std::string kernel;
    run_node("Transpose", "perm=[0,1,3,2]", {{"x", rnd({1, 2, 3, 4}, 1)}}, kernel);
    EXPECT_EQ(kernel, "");
    run_node("Transpose", "perm=[0,2,1]", {{"x", rnd({2, 3, 4}, 1)}}, kernel);
    EXPECT_EQ(kernel, "");
  }
}

// The ISA transpose itself, [rows, cols] -> [cols, rows], into a buffer with sentinels after its end:
// every element right, nothing written past cols * ldd (the 1-4 row path stores 4 floats a pixel; with
// one row, 9 or 10 pixels once wrote 1-2 floats past the end). Rows 1-9, cols 0-40.
TEST(KernelsCpuNhwc, TransposeWritesNothingPastItsEnd) {
  constexpr float kSentinel = 12345.f;
  for (Isa isa : isas()) {
    SCOPED_TRACE(isa_name(isa));
    const NhwcKernels* nk = nhwc_kernels_of(isa);
    ASSERT_NE(nk, nullptr);
    for (int64_t rows = 1; rows <= 9; ++rows)
      for (int64_t cols = 0; cols <= 40; ++cols) {
        SCOPED_TRACE("rows " + std::to_string(rows) + " cols " + std::to_string(cols));
        const Tensor src = rnd({rows, std::max<int64_t>(cols, 1)}, uint32_t(rows * 100 + cols));
        const int64_t lds = std::max<int64_t>(cols, 1);
        std::vector<float> dst(size_t(cols * rows + 16), kSentinel);
        nk->transpose(src.data<float>(), lds, rows, cols, dst.data(), rows);
        int bad = 0;
        for (int64_t j = 0; j < cols; ++j)
          for (int64_t i = 0; i < rows; ++i) bad += dst[size_t(j * rows + i)] != src.data<float>()[i * lds + j];
        for (size_t k = size_t(cols * rows); k < dst.size(); ++k) bad += dst[k] != kSentinel;
        EXPECT_EQ(bad, 0);
      }
  }
}

// deepep.MaxPool with channels_last=1 (cpu.maxpool2d_nhwc) against ONNX MaxPool's reference on the NCHW
// data, transposed: equal element for element (a max is exact), NaNs included (same order and `>` as the
// reference); odd channel counts, pads, strides, dilations, ceil_mode, auto_pad, an empty batch.
TEST(KernelsCpuNhwc, MaxPoolChannelsLast) {
  struct Case {
    Shape xs;  // NCHW
    std::string attrs;
  };
  const Case cases[] = {
      {{1, 17, 13, 11}, "kernel_shape=[3,3], strides=[2,2], pads=[1,1,1,1]"},  // ResNet's stem geometry
      {{2, 5, 9, 10}, "kernel_shape=[2,2], strides=[2,2]"},
      {{1, 8, 7, 7}, "kernel_shape=[3,3], pads=[2,2,2,2], dilations=[2,2]"},
      {{1, 3, 10, 10}, "kernel_shape=[3,3], strides=[2,2], ceil_mode=1"},
      {{1, 6, 7, 9}, "kernel_shape=[3,2], strides=[2,3], auto_pad=\"SAME_UPPER\""},
      {{1, 1, 5, 4}, "kernel_shape=[1,1]"},
      {{0, 4, 5, 5}, "kernel_shape=[2,2]"},
      {{1, 70, 9, 9}, "kernel_shape=[3,3], strides=[2,2], pads=[1,1,1,1]"},  // four vectors a pass, then tails
      {{1, 64, 6, 6}, "kernel_shape=[2,2], strides=[2,2]"},
  };
  uint32_t seed = 800;
  auto same = [](const Tensor& a, const Tensor& b) {
    if (a.shape() != b.shape()) return false;
    for (int64_t i = 0; i < a.numel(); ++i) {
      const float x = a.data<float>()[i], y = b.data<float>()[i];
      if (!(x == y || (std::isnan(x) && std::isnan(y)))) return false;
    }
    return true;
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(shp(c.xs) + " <" + c.attrs + ">");
    Tensor x = rnd(c.xs, seed++);
    if (x.numel() > 7) x.data<float>()[7] = std::nanf("");  // a NaN inside some windows
    std::string kernel;
    Tensor want;
    {
      IsaScope s(Isa::kNone);
      want = permute4(run_node("MaxPool", c.attrs, {{"x", x}}, kernel), true);
      EXPECT_EQ(kernel, "");
      const Tensor ref = run_node("deepep.MaxPool", join(c.attrs, "channels_last=1"), {{"x", permute4(x, true)}}, kernel);
      EXPECT_EQ(kernel, "");
      EXPECT_TRUE(same(ref, want)) << "the channels-last reference";
      // channels_last=0 is MaxPool itself, on the reference (the NHWC kernel declines it).
      const Tensor plain = run_node("deepep.MaxPool", c.attrs, {{"x", x}}, kernel);
      EXPECT_TRUE(same(permute4(plain, true), want));
    }
    for (Isa isa : isas()) {
      SCOPED_TRACE(isa_name(isa));
      IsaScope s(isa);
      const Tensor got = run_node("deepep.MaxPool", join(c.attrs, "channels_last=1"), {{"x", permute4(x, true)}}, kernel);
      EXPECT_EQ(kernel, "cpu.maxpool2d_nhwc");
      EXPECT_TRUE(same(got, want));
      run_node("deepep.MaxPool", c.attrs, {{"x", x}}, kernel);
      EXPECT_EQ(kernel, "");
    }
  }
  // Bad input reaches the reference, whose error names the node and the problem.
  for (Isa isa : isas()) {
    IsaScope sc(isa);
    std::string kernel = "?";
    try {
      run_node("deepep.MaxPool", "channels_last=1, kernel_shape=[2]", {{"x", rnd({1, 5, 4}, 1)}}, kernel);
      ADD_FAILURE() << "a 1-D input with channels_last=1 ran";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("channels_last needs 2-D pooling"), std::string::npos) << e.what();
    }
    EXPECT_EQ(kernel, "");
  }
}
