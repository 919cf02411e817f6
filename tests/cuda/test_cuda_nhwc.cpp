// Channels-last on the GPU: deepep.FusedConv<channels_last=1> (cuDNN NHWC,
// W reordered at upload, bias/ReLU/residual inside cuDNN where it allows,
// the NHWC epilogue pass otherwise, the transposing fallback) and the tiled
// Transpose, against the CPU reference on random data. Skipped without a GPU.
#include <cstdlib>

#include "cuda_test_util.h"

using namespace deepep;
using namespace deepep::cuda_test;

namespace {
std::string graph(const std::string& inputs, const std::string& body, const std::string& outs) {
  return "graph main(" + inputs + ") {\n" + body + "\n  return " + outs + "\n}";
}
std::string f32(const Shape& s) { return "float32" + shape_str(s); }

struct Geometry {
  Shape x;  // NHWC
  Shape w;  // OIHW
  std::string attrs;
  bool all_epilogues;
};

// Output shape [N, OH, OW, M] of a 2-D conv (symmetric pads).
Shape out_shape(const Geometry& g, int64_t s0, int64_t s1, int64_t p0, int64_t p1, int64_t d0, int64_t d1) {
  const int64_t oh = (g.x[1] + 2 * p0 - d0 * (g.w[2] - 1) - 1) / s0 + 1;
  const int64_t ow = (g.x[2] + 2 * p1 - d1 * (g.w[3] - 1) - 1) / s1 + 1;
  return {g.x[0], oh, ow, g.w[0]};
}

// One graph per geometry: several FusedConv<channels_last=1> nodes over the
// same X, W (a constant), B and residual, one per epilogue.
Graphed conv_graph(const Geometry& g, const Shape& y, uint32_t seed) {
  const std::string base = "channels_last=1" + (g.attrs.empty() ? std::string() : ", " + g.attrs);
  std::vector<std::pair<std::string, bool>> epis = {  // attributes, reads the residual
      {"activation=\"Relu\", residual_before_activation=1", true},  // ResNet's block end: fused in cuDNN
      {"activation=\"Relu\"", false},                               // fused (ReLU)
      {"", false}};                                                 // fused (identity)
  if (g.all_epilogues) {
    epis.push_back({"", true});                                                        // identity + residual: fused
    epis.push_back({"activation=\"Relu\"", true});                                     // residual after ReLU: epilogue pass
    epis.push_back({"activation=\"Clip\", activation_params=[0.0, 0.5]", false});      // MobileNetV2's ReLU6 form
    epis.push_back({"activation=\"HardSwish\", residual_before_activation=1", true});  // epilogue pass
    epis.push_back({"activation=\"Sigmoid\"", false});
  }
  std::string body, outs;
  for (size_t i = 0; i < epis.size(); ++i) {
    const std::string yn = "%y" + std::to_string(i);
    body += "  " + yn + " = deepep.FusedConv<" + base + (epis[i].first.empty() ? "" : ", " + epis[i].first) +
            ">(%x, %w, %b" + (epis[i].second ? ", %r" : "") + ")\n";
    outs += (i ? ", " : "") + yn;
  }
  Graphed c = make(graph("%x: " + f32(g.x) + ", %w: " + f32(g.w) + ", %b: float32[" + std::to_string(g.w[0]) +
                             "], %r: " + f32(y),
                         body, outs),
                   {{"w", rnd(g.w, seed)}, {"b", rnd({g.w[0]}, seed + 1)}});
  c.inputs = {rnd(g.x, seed + 2), rnd(y, seed + 3)};
  return c;
}

struct EnvGuard {
  explicit EnvGuard(const char* name, const char* v) : name_(name) { setenv(name, v, 1); }
  ~EnvGuard() { unsetenv(name_); }
  const char* name_;
};
}  // namespace

// Every geometry (odd channel counts 3, 5, 17 included: cuDNN's NHWC fp16
// kernels want multiples of 8, so these take its other algorithms or the
// transposing fallback), every epilogue, fp32 strict, TF32 and fp16, under
// each DEEPEP_CUDA_CONV option: "" (fused in cuDNN where it allows),
// "nofuse" (the NHWC epilogue pass), "nchw" (the transposing fallback),
// "find" (cuDNN-timed algorithms).
TEST(CudaNhwc, FusedConvChannelsLast) {
  REQUIRE_GPU();
  struct G {
    Geometry g;
    int64_t s0, s1, p0, p1, d0, d1;
  };
  const std::vector<G> geos = {
      {{{2, 11, 13, 8}, {16, 8, 3, 3}, "pads=[1,1,1,1]", true}, 1, 1, 1, 1, 1, 1},
      {{{2, 12, 12, 3}, {8, 3, 7, 7}, "pads=[3,3,3,3], strides=[2,2]", true}, 2, 2, 3, 3, 1, 1},  // ResNet stem, C = 3
      {{{1, 9, 9, 5}, {6, 5, 3, 3}, "pads=[1,1,1,1], strides=[2,1]", false}, 2, 1, 1, 1, 1, 1},   // C = 5
      {{{2, 7, 7, 17}, {9, 17, 1, 1}, "", true}, 1, 1, 0, 0, 1, 1},                                 // C = 17, M = 9
      {{{1, 10, 7, 8}, {8, 2, 3, 3}, "group=4, pads=[1,1,1,1]", false}, 1, 1, 1, 1, 1, 1},          // groups
      {{{2, 9, 9, 16}, {16, 1, 3, 3}, "group=16, pads=[1,1,1,1], strides=[2,2]", true}, 2, 2, 1, 1, 1, 1},  // depthwise
      {{{1, 10, 10, 8}, {8, 8, 3, 3}, "pads=[2,2,2,2], dilations=[2,2]", false}, 1, 1, 2, 2, 2, 2},
      {{{1, 5, 6, 24}, {32, 24, 1, 1}, "auto_pad=\"SAME_UPPER\"", false}, 1, 1, 0, 0, 1, 1},
      {{{3, 7, 7, 64}, {64, 64, 3, 3}, "pads=[1,1,1,1]", true}, 1, 1, 1, 1, 1, 1},  // ResNet-like, vector epilogue
  };
  for (const char* opt : {"", "nofuse", "nchw", "find"}) {
    EnvGuard env("DEEPEP_CUDA_CONV", opt);
    uint32_t seed = 100;
    for (const G& c : geos) {
      SCOPED_TRACE(std::string("DEEPEP_CUDA_CONV=") + opt + " X " + shape_str(c.g.x) + " W " + shape_str(c.g.w) + " " +
                   c.g.attrs);
      const Shape y = out_shape(c.g, c.s0, c.s1, c.p0, c.p1, c.d0, c.d1);
      const Graphed gr = conv_graph(c.g, y, seed += 10);
      expect_match(gr, 1e-5);
      expect_match(gr, 5e-3, {true, false});
      if (*opt == 0) expect_match(gr, 5e-3, {false, false});  // TF32
    }
  }
}

// W read by a channels-last node (reordered copy) and an NCHW Conv (plain
// copy) at once; W a graph input (not a constant: reordered on the device
// each run); a chain of channels-last convs between transposes, as the
// load-time pass leaves it.
TEST(CudaNhwc, WeightCopiesAndChains) {
  REQUIRE_GPU();
  auto shared = make(graph("%xh: float32[2,9,9,8], %xn: float32[2,8,9,9], %w: float32[16,8,3,3], %b: float32[16]",
                           "  %y = deepep.FusedConv<channels_last=1, pads=[1,1,1,1], activation=\"Relu\">(%xh, %w, %b)\n"
                           "  %z = Conv<pads=[1,1,1,1]>(%xn, %w, %b)",
                           "%y, %z"),
                     {{"w", rnd({16, 8, 3, 3}, 200)}, {"b", rnd({16}, 201)}});
  shared.inputs = {rnd({2, 9, 9, 8}, 202), rnd({2, 8, 9, 9}, 203)};
  expect_match(shared, 1e-5);
  expect_match(shared, 5e-3, {true, false});
  for (const char* opt : {"", "nchw"}) {
    EnvGuard env("DEEPEP_CUDA_CONV", opt);
    SCOPED_TRACE(opt);
    auto dyn = make(graph("%x: float32[2,9,9,5], %w: float32[7,5,3,3], %b: float32[7]",
                          "  %y = deepep.FusedConv<channels_last=1, pads=[1,1,1,1], activation=\"Relu\">(%x, %w, %b)",
                          "%y"));
    dyn.inputs = {rnd({2, 9, 9, 5}, 204), rnd({7, 5, 3, 3}, 205), rnd({7}, 206)};
    expect_match(dyn, 1e-5);
    expect_match(dyn, 5e-3, {true, false});
  }
  auto chain = make(graph("%x: float32[2,3,20,20], %w1: float32[16,3,3,3], %b1: float32[16], %w2: float32[16,16,3,3], "
                          "%b2: float32[16]",
                          "  %xh = Transpose<perm=[0,2,3,1]>(%x)\n"
                          "  %a = deepep.FusedConv<channels_last=1, pads=[1,1,1,1], strides=[2,2], activation=\"Relu\">(%xh, %w1, %b1)\n"
                          "  %c = deepep.FusedConv<channels_last=1, pads=[1,1,1,1], activation=\"Relu\", residual_before_activation=1>(%a, %w2, %b2, %a)\n"
                          "  %y = Transpose<perm=[0,3,1,2]>(%c)\n"
                          "  %m = MaxPool<kernel_shape=[3,3], strides=[2,2], pads=[1,1,1,1]>(%y)\n"
                          "  %g = GlobalAveragePool(%m)",
                          "%y, %g"),
                    {{"w1", rnd({16, 3, 3, 3}, 207)}, {"b1", rnd({16}, 208)}, {"w2", rnd({16, 16, 3, 3}, 209)},
                     {"b2", rnd({16}, 210)}});
  chain.inputs = {rnd({2, 3, 20, 20}, 211)};
  expect_match(chain, 1e-5);
  expect_match(chain, 5e-3, {true, false});
}

// Transpose: perms that collapse to a batched 2-D transpose take the
// transpose kernels (narrow rows or columns, 64x64 pair tiles for 2-byte
// elements, 32x32 tiles; sizes across tile edges, size-1 dims, 1/2/4/8-byte
// elements); others the strided copy. Exact.
TEST(CudaNhwc, TiledTranspose) {
  REQUIRE_GPU();
  struct T {
    Shape x;
    std::string perm;
  };
  for (const char* mode : {"", "generic"}) {
    EnvGuard env("DEEPEP_CUDA_TRANSPOSE", mode);
    SCOPED_TRACE(mode);
    for (const T& t : std::vector<T>{{{2, 3, 33, 65}, "[0,2,3,1]"},
                                     {{2, 33, 65, 3}, "[0,3,1,2]"},
                                     {{3, 64, 7, 7}, "[0,2,3,1]"},
                                     {{1, 7, 7, 2048}, "[0,3,1,2]"},
                                     {{37, 70}, "[1,0]"},
                                     {{4, 5, 6}, "[2,0,1]"},
                                     {{4, 5, 6}, "[0,2,1]"},
                                     {{2, 3, 4, 5}, "[0,1,3,2]"},
                                     {{1, 3, 1, 40}, "[0,2,3,1]"},
                                     {{2, 3, 4, 5}, "[0,2,1,3]"},
                                     {{2, 3, 4, 5}, "[3,1,2,0]"},
                                     {{2, 0, 4, 5}, "[0,2,3,1]"},
                                     {{2, 64, 10, 12}, "[0,2,3,1]"},  // fp16: 64x64 pair tiles, partial
                                     {{2, 10, 12, 66}, "[0,3,1,2]"},
                                     {{3, 130, 34}, "[0,2,1]"},
                                     {{2, 33, 70}, "[0,2,1]"}}) {
      SCOPED_TRACE(shape_str(t.x) + " perm " + t.perm);
      auto f = make(graph("%x: " + f32(t.x), "  %y = Transpose<perm=" + t.perm + ">(%x)", "%y"));
      f.inputs = {rnd(t.x, 220)};
      expect_match(f, 0);
      expect_match(f, 0, {true, false});  // 2-byte elements
      auto i = make(graph("%x: int64" + shape_str(t.x),
                          "  %y = Transpose<perm=" + t.perm + ">(%x)\n  %s = Cast<to=9>(%x)\n  %z = Transpose<perm=" +
                              t.perm + ">(%s)",
                          "%y, %z"));
      i.inputs = {ints(t.x, 221, -5, 5)};
      expect_match(i, 0);  // 8- and 1-byte elements
    }
  }
}

// deepep.MaxPool<channels_last=1> (the channels-last pass's stem pooling): threads along the channels of
// NHWC data, against the CPU (its NHWC kernel and reference). Exact in fp32.
TEST(CudaNhwc, MaxPoolChannelsLast) {
  REQUIRE_GPU();
  struct P {
    Shape x;  // NHWC
    std::string attrs;
  };
  for (const P& p : std::vector<P>{{{2, 13, 11, 17}, "kernel_shape=[3,3], strides=[2,2], pads=[1,1,1,1]"},
                                   {{1, 10, 10, 3}, "kernel_shape=[3,3], strides=[2,2], ceil_mode=1"},
                                   {{1, 7, 9, 6}, "kernel_shape=[3,2], strides=[2,3], auto_pad=\"SAME_UPPER\""},
                                   {{1, 8, 8, 64}, "kernel_shape=[3,3], pads=[2,2,2,2], dilations=[2,2]"},
                                   {{0, 5, 5, 4}, "kernel_shape=[2,2]"}}) {
    SCOPED_TRACE(shape_str(p.x) + " <" + p.attrs + ">");
    auto f = make(graph("%x: " + f32(p.x), "  %y = deepep.MaxPool<channels_last=1, " + p.attrs + ">(%x)", "%y"));
    f.inputs = {rnd(p.x, 230)};
    expect_match(f, 0);
    expect_match(f, 0, {true, false});  // float16 on the device: the same values rounded (the max commutes)
  }
}
