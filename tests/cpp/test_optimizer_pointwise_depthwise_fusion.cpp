// pointwise_depthwise_fusion (through fuse_for_cpu, as the CPU Engine runs
// it after the channels-last pass): a channels-last 1x1 FusedConv whose
// large output only a depthwise FusedConv reads becomes one
// deepep.PointwiseDepthwiseConv with both epilogues, and the graph computes
// the same; pairs it must leave alone stay as they are.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "ir/graph_edit.h"
#include "ir/graph_text_parser.h"
#include "optimizer/pipeline.h"
#include "runtime/executor.h"

using namespace deepep;

namespace {

// "%name: float32[d0,d1,..] = const[...]" with deterministic values.
std::string constant(const std::string& name, const Shape& s, int salt) {
  std::string t = "  %" + name + ": float32[";
  int64_t n = 1;
  for (size_t i = 0; i < s.size(); ++i) {
    t += (i ? "," : "") + std::to_string(s[i]);
    n *= s[i];
  }
  t += "] = const[";
  for (int64_t i = 0; i < n; ++i) t += (i ? ", " : "") + std::to_string(double((i * 7 + salt) % 13) / 16 - 0.375);
  return t + "]\n";
}

struct Pair {
  int64_t H = 64, W = 64, C = 4, E = 32;
  std::string pw_attrs = "channels_last=1, activation=\"Clip\", activation_params=[0.0, 6.0]";
  std::string dw_attrs = "strides=[2,2], pads=[1,1,1,1], activation=\"Relu\"";
  int64_t dw_group = 0;      // 0: E (depthwise)
  bool e_output = false;     // e is also a graph output
  bool pw_residual = false;  // the 1x1 conv adds a residual (x itself, C == E)
  bool w1_input = false;     // W1 is a graph input, not a constant
  bool nchw = false;         // both convs in NCHW (channels_last absent)
};

std::string text(const Pair& p) {
  const int64_t group = p.dw_group ? p.dw_group : p.E, oh = (p.H + 1) / 2, ow = (p.W + 1) / 2;
  auto shape = [&](int64_t h, int64_t w, int64_t c) {
    return "float32[1," + (p.nchw ? std::to_string(c) + "," + std::to_string(h) + "," + std::to_string(w)
                                  : std::to_string(h) + "," + std::to_string(w) + "," + std::to_string(c)) + "]";
  };
  std::string t = "graph main(%x: " + shape(p.H, p.W, p.C) +
                  (p.w1_input ? ", %w1: float32[" + std::to_string(p.E) + "," + std::to_string(p.C) + ",1,1]" : "") +
                  ") {\n";
  if (!p.w1_input) t += constant("w1", {p.E, p.C, 1, 1}, 1);
  t += constant("b1", {p.E}, 2) + constant("w2", {p.E, p.E / group, 3, 3}, 3) + constant("b2", {p.E}, 4);
  const std::string cl = p.nchw ? "" : "channels_last=1, ";
  std::string pw = p.pw_attrs;
  if (p.nchw) pw = pw.substr(pw.find(", ") + 2);
  t += "  %e: " + shape(p.H, p.W, p.E) + " = deepep.FusedConv<" + pw + ">(%x, %w1, %b1" +
       (p.pw_residual ? ", %x" : "") + ")\n";
  t += "  %y: " + shape(oh, ow, p.E) + " = deepep.FusedConv<" + cl + "group=" + std::to_string(group) + ", " +
       p.dw_attrs + ">(%e, %w2, %b2)\n";
  return t + "  return %y" + (p.e_output ? ", %e" : "") + "\n}";
}

std::vector<Tensor> run(const Graph& g, const Tensor& x) {
  Executor ex;
  return ex.run_graph(g, {x}, nullptr);
}

Tensor input(const Pair& p) {
  Tensor x(DType::kFloat32, p.nchw ? Shape{1, p.C, p.H, p.W} : Shape{1, p.H, p.W, p.C});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = float((i * 5) % 11) / 8 - 0.6f;
  return x;
}

// fuse_for_cpu on the pair: how many it fused; `after` gets the result's text.
int fuse(const Pair& p, std::string* after = nullptr) {
  auto g = parse_graph_text(text(p));
  const int n = fuse_for_cpu(*g);
  verify(*g);
  if (after) *after = g->to_text();
  return n;
}

}  // namespace

TEST(PointwiseDepthwiseFusion, FusesTheExpandDepthwisePairAndComputesTheSame) {
  const Pair p;  // e: 64x64x32 floats = 512 KiB, the threshold
  auto before = parse_graph_text(text(p));
  auto g = parse_graph_text(text(p));
  EXPECT_EQ(fuse_for_cpu(*g), 1);
  verify(*g);
  ASSERT_EQ(g->nodes().size(), 1u);
  const Node& n = *g->nodes()[0];
  EXPECT_EQ(n.domain, kDeepepDomain);
  EXPECT_EQ(n.op_type, "PointwiseDepthwiseConv");
  std::vector<std::string> ins;
  for (const Value* v : n.inputs) ins.push_back(v ? v->name : "_");
  EXPECT_EQ(ins, (std::vector<std::string>{"x", "w1", "b1", "w2", "b2"}));
  EXPECT_EQ(n.attr_string("pointwise_activation", ""), "Clip");
  EXPECT_EQ(n.attr_floats("pointwise_activation_params", {}), (std::vector<float>{0.f, 6.f}));
  EXPECT_EQ(n.attr_string("activation", ""), "Relu");
  EXPECT_EQ(n.attr_int("group", 0), 32);
  EXPECT_EQ(n.attr_ints("strides", {}), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(n.attr_int("channels_last", 0), 1);
  EXPECT_EQ(n.outputs[0]->name, "y");
  const Tensor x = input(p);
  const Tensor want = run(*before, x)[0], got = run(*g, x)[0];
  ASSERT_EQ(got.shape(), want.shape());
  double err = 0;
  for (int64_t i = 0; i < want.numel(); ++i)
    err = std::max(err, double(std::fabs(got.data<float>()[i] - want.data<float>()[i])));
  EXPECT_LE(err, 1e-5);
}

TEST(PointwiseDepthwiseFusion, LeavesOtherPairsAlone) {
  // Each case differs from the fused Pair{} in the one thing named.
  auto unchanged = [](const Pair& p, const char* why) {
    SCOPED_TRACE(why);
    std::string after;
    EXPECT_EQ(fuse(p, &after), 0);
    EXPECT_EQ(after, parse_graph_text(text(p))->to_text());
  };
  Pair p;
  p.H = p.W = 16;
  unchanged(p, "expanded map of 32 KiB: stays in cache anyway");
  p = Pair{};
  p.e_output = true;
  unchanged(p, "expanded map is a graph output");
  p = Pair{};
  p.pw_attrs = "channels_last=1, strides=[1,1], pads=[0,0,1,1]";
  unchanged(p, "padded 1x1 conv");
  p = Pair{};
  p.dw_group = 1;
  unchanged(p, "3x3 conv of one group, not depthwise");
  p = Pair{};
  p.C = p.E;
  p.pw_residual = true;
  unchanged(p, "1x1 conv with a residual");
  p = Pair{};
  p.w1_input = true;
  unchanged(p, "1x1 weight not a constant");
  p = Pair{};
  p.nchw = true;
  unchanged(p, "NCHW convs");
}
