// Reference kernels of the advanced nn family (Resize, Upsample, GridSample,
// AffineGrid, Attention, RotaryEmbedding, NonMaxSuppression, DFT, STFT, the
// windows, MelWeightMatrix, RNN, GRU, LSTM) against hand-computed values.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "ir/dtype_dispatch.h"
#include "ir/graph.h"
#include "ir/op_registry.h"

using namespace deepep;

namespace {

template <class T>
Tensor tensor(Shape s, std::vector<T> v) {
  Tensor t(dtype_of<T>(), s);
  EXPECT_EQ(int64_t(v.size()), t.numel());
  std::copy(v.begin(), v.end(), t.data<T>());
  return t;
}
Tensor f32(Shape s, std::vector<float> v) { return tensor<float>(std::move(s), std::move(v)); }
Tensor i64(Shape s, std::vector<int64_t> v) { return tensor<int64_t>(std::move(s), std::move(v)); }
Tensor iota_f32(Shape s, float start = 0, float step = 1) {
  Tensor t(DType::kFloat32, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = start + step * float(i);
  return t;
}

// Builds one node with inputs and attributes and runs its reference kernel.
struct OpCase {
  Graph g;
  Node* n;
  std::vector<Tensor> in;
  std::vector<bool> present;
  explicit OpCase(const std::string& op, int opset = 22) {
    n = g.add_node(op, "t");
    n->opset = opset;
    n->def = find_op(op);
  }
  OpCase& input(Tensor t) {
    n->inputs.push_back(g.add_value("in" + std::to_string(in.size())));
    in.push_back(std::move(t));
    present.push_back(true);
    return *this;
  }
  OpCase& none() {
    n->inputs.push_back(nullptr);
    in.emplace_back();
    present.push_back(false);
    return *this;
  }
  OpCase& attr(const std::string& k, int64_t v) {
    Attribute a;
    a.kind = Attribute::Kind::kInt;
    a.i = v;
    n->attrs[k] = a;
    return *this;
  }
  OpCase& attr(const std::string& k, double v) {
    Attribute a;
    a.kind = Attribute::Kind::kFloat;
    a.f = float(v);
    n->attrs[k] = a;
    return *this;
  }
  OpCase& attr(const std::string& k, const char* v) {
    Attribute a;
    a.kind = Attribute::Kind::kString;
    a.s = v;
    n->attrs[k] = a;
    return *this;
  }
  OpCase& attr(const std::string& k, std::vector<int64_t> v) {
    Attribute a;
    a.kind = Attribute::Kind::kInts;
    a.ints = std::move(v);
    n->attrs[k] = a;
    return *this;
  }
  OpCase& attr(const std::string& k, std::vector<float> v) {
    Attribute a;
    a.kind = Attribute::Kind::kFloats;
    a.floats = std::move(v);
    n->attrs[k] = a;
    return *this;
  }
  OpCase& attr(const std::string& k, std::vector<std::string> v) {
    Attribute a;
    a.kind = Attribute::Kind::kStrings;
    a.strings = std::move(v);
    n->attrs[k] = a;
    return *this;
  }
  // `want[i]`: whether output i is requested.
  std::vector<Tensor> run(std::vector<bool> want = {true}) {
    n->outputs.clear();
    for (size_t i = 0; i < want.size(); ++i)
      n->outputs.push_back(want[i] ? g.add_value("out" + std::to_string(i)) : nullptr);
    KernelContext ctx{*n, {}, {}};
    for (size_t i = 0; i < in.size(); ++i) ctx.inputs.push_back(present[i] ? &in[i] : nullptr);
    ctx.outputs.resize(n->outputs.size());
    EXPECT_TRUE(n->def && n->def->reference);
    n->def->reference(ctx);
    return ctx.outputs;
  }
  Tensor run1() { return run({true})[0]; }
};

std::vector<double> values(const Tensor& t) {
  std::vector<double> v(size_t(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[size_t(i)] = t.get_double(i);
  return v;
}

void expect_near(const Tensor& t, const std::vector<double>& want, double tol = 1e-5) {
  ASSERT_EQ(t.numel(), int64_t(want.size()));
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(t.get_double(int64_t(i)), want[i], tol) << "at " << i;
}

double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

}  // namespace

// ---------------------------------------------------------------- Resize

TEST(AdvancedResize, NearestUpsampleRepeats) {
  auto y = OpCase("Resize", 19).input(f32({1, 1, 2, 2}, {1, 2, 3, 4})).none()
               .input(f32({4}, {1, 1, 2, 3})).attr("mode", "nearest").run1();
  EXPECT_EQ(y.shape(), (Shape{1, 1, 4, 6}));
  expect_near(y, {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4});
}

TEST(AdvancedResize, LinearAlignCornersAndSizes) {
  // (1, 3) -> (1, 5) with align_corners: exact midpoints.
  auto y = OpCase("Resize", 19).input(f32({1, 3}, {0, 2, 4})).none().none().input(i64({2}, {1, 5}))
               .attr("mode", "linear").attr("coordinate_transformation_mode", "align_corners").run1();
  EXPECT_EQ(y.shape(), (Shape{1, 5}));
  expect_near(y, {0, 1, 2, 3, 4});
}

TEST(AdvancedResize, HalfPixelLinearDownsample) {
  // 7 -> floor(7 * 0.5) = 3 outputs at x = (j + 0.5) * 2 - 0.5 = 0.5, 2.5, 4.5.
  auto y = OpCase("Resize", 13).input(iota_f32({1, 7}, 0, 10)).input(Tensor(DType::kFloat32, {0}))
               .input(f32({2}, {1, 0.5f})).attr("mode", "linear").run1();
  EXPECT_EQ(y.shape(), (Shape{1, 3}));
  expect_near(y, {5, 25, 45});
}

TEST(AdvancedResize, IntegerOutputRoundsHalfToEven) {
  // align_corners, 2 -> 4: x = 0, 1/3, 2/3, 1 -> 0, 3.33, 6.67, 10 -> 0, 3, 7, 10.
  auto y = OpCase("Resize", 19).input(tensor<int32_t>({2}, {0, 10})).none().input(f32({1}, {2.0f}))
               .attr("mode", "linear").attr("coordinate_transformation_mode", "align_corners").run1();
  ASSERT_EQ(y.dtype(), DType::kInt32);
  expect_near(y, {0, 3, 7, 10});
  // int8 saturates rather than wrapping: at x = 2.33 the cubic overshoots 127.
  auto u = OpCase("Resize", 19).input(tensor<int8_t>({4}, {-128, -128, 127, 127})).none().input(f32({1}, {3.0f}))
               .attr("mode", "cubic").run1();
  ASSERT_EQ(u.shape(), (Shape{12}));
  EXPECT_EQ(u.get_double(7), 127);
  EXPECT_EQ(u.get_double(8), 127);
  EXPECT_EQ(u.get_double(0), -128);
}

TEST(AdvancedResize, CubicKeepsConstantsAndAxes) {
  // Cubic weights sum to 1: a constant input stays constant; axes resize only axis 1.
  Tensor x(DType::kFloat32, {3, 5});
  std::fill(x.data<float>(), x.data<float>() + 15, 7.0f);
  auto y = OpCase("Resize", 19).input(x).none().input(f32({1}, {1.5f})).attr("axes", std::vector<int64_t>{1})
               .attr("mode", "cubic").attr("exclude_outside", int64_t(1)).run1();
  EXPECT_EQ(y.shape(), (Shape{3, 7}));
  for (double v : values(y)) EXPECT_NEAR(v, 7.0, 1e-5);
}

TEST(AdvancedResize, TfCropAndResizeExtrapolates) {
  // roi [0.5, 1.5] of a 3-element axis, 3 outputs: x = 1, 2, 3 -> last is outside.
  auto y = OpCase("Resize", 19).input(f32({3}, {10, 20, 30})).input(f32({2}, {0.5f, 1.5f})).none()
               .input(i64({1}, {3})).attr("mode", "linear").attr("coordinate_transformation_mode", "tf_crop_and_resize")
               .attr("extrapolation_value", -1.0).run1();
  expect_near(y, {20, 30, -1});
}

TEST(AdvancedResize, KeepAspectRatioNotLarger) {
  // sizes (1, 3) on (2, 4): scale = min(1/2, 3/4) = 0.5 for both axes -> (1, 2).
  auto y = OpCase("Resize", 19).input(iota_f32({1, 1, 2, 4}, 1)).none().none().input(i64({2}, {1, 3}))
               .attr("axes", std::vector<int64_t>{2, 3}).attr("keep_aspect_ratio_policy", "not_larger")
               .attr("mode", "nearest").run1();
  EXPECT_EQ(y.shape(), (Shape{1, 1, 1, 2}));
  // half_pixel, scale 0.5: x = 0.5, 2.5 -> round_prefer_floor -> 0, 2 (row 0.5 -> 0).
  expect_near(y, {1, 3});
}

TEST(AdvancedResize, EmptyAndErrors) {
  auto y = OpCase("Resize", 19).input(Tensor(DType::kFloat32, {0, 1, 2, 2})).none()
               .input(f32({4}, {1, 1, 2, 2})).attr("mode", "linear").run1();
  EXPECT_EQ(y.shape(), (Shape{0, 1, 4, 4}));
  EXPECT_THROW(OpCase("Resize", 19).input(f32({2}, {1, 2})).none().input(f32({1}, {2})).input(i64({1}, {4})).run1(),
               Error);
  EXPECT_THROW(OpCase("Resize", 19).input(f32({2}, {1, 2})).none().input(f32({2}, {2, 2})).run1(), Error);
  EXPECT_THROW(OpCase("Resize", 19).input(f32({2}, {1, 2})).none().input(f32({1}, {2})).attr("mode", "bogus").run1(),
               Error);
}

TEST(AdvancedResize, UpsampleAttributeAndInputForms) {
  auto a = OpCase("Upsample", 7).input(f32({1, 2}, {1, 2})).attr("scales", std::vector<float>{2, 2}).run1();
  EXPECT_EQ(a.shape(), (Shape{2, 4}));
  expect_near(a, {1, 1, 2, 2, 1, 1, 2, 2});
  // Linear is asymmetric: x = j / 2 -> 1, 1.5, 2, 2 (edge clamp).
  auto b = OpCase("Upsample", 9).input(f32({1, 2}, {1, 2})).input(f32({2}, {1, 2})).attr("mode", "linear").run1();
  expect_near(b, {1, 1.5, 2, 2});
}

// ---------------------------------------------------------------- GridSample / AffineGrid

TEST(AdvancedGridSample, IdentityGridReproducesInput) {
  // align_corners=1: normalized -1..1 maps exactly onto pixel centers.
  const int64_t H = 3, W = 5;
  std::vector<float> g;
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x) {
      g.push_back(-1 + 2 * float(x) / float(W - 1));
      g.push_back(-1 + 2 * float(y) / float(H - 1));
    }
  Tensor x = iota_f32({1, 2, H, W}, 1);
  for (const char* mode : {"linear", "nearest", "cubic"}) {
    auto y = OpCase("GridSample", 20).input(x).input(f32({1, H, W, 2}, g)).attr("align_corners", int64_t(1))
                 .attr("mode", mode).run1();
    EXPECT_EQ(y.shape(), (Shape{1, 2, H, W}));
    expect_near(y, values(x), 1e-5);
  }
}

TEST(AdvancedGridSample, PaddingModes) {
  // 1x1x1x3 input [1, 2, 3]; normalized x = -1.5 (align_corners=0 -> pixel -1.25) and 0.5 (-> 1.75).
  Tensor x = f32({1, 1, 1, 3}, {1, 2, 3});
  Tensor grid = f32({1, 1, 2, 2}, {-1.5f, 0, 0.5f, 0});
  auto zeros = OpCase("GridSample", 20).input(x).input(grid).run1();
  // pixel 1.75 -> 0.25 * 2 + 0.75 * 3 = 2.75; -1.25 has both taps outside -> 0.
  expect_near(zeros, {0, 2.75});
  auto border = OpCase("GridSample", 20).input(x).input(grid).attr("padding_mode", "border").run1();
  expect_near(border, {1, 2.75});
  // reflection about -0.5: -1.25 -> 0.25 -> 0.75 * 1 + 0.25 * 2.
  auto refl = OpCase("GridSample", 20).input(x).input(grid).attr("padding_mode", "reflection").run1();
  expect_near(refl, {1.25, 2.75});
  // opset-16 mode names.
  auto old = OpCase("GridSample", 16).input(x).input(grid).attr("mode", "bilinear").run1();
  expect_near(old, {0, 2.75});
}

TEST(AdvancedGridSample, VolumetricNearestAndErrors) {
  Tensor x = iota_f32({1, 1, 2, 2, 2});
  // (x, y, z) = (1, -1, 1) with align_corners=1 -> voxel (z=1, y=0, x=1) = 5.
  auto y = OpCase("GridSample", 22).input(x).input(f32({1, 1, 1, 1, 3}, {1, -1, 1})).attr("mode", "nearest")
               .attr("align_corners", int64_t(1)).run1();
  EXPECT_EQ(y.shape(), (Shape{1, 1, 1, 1, 1}));
  expect_near(y, {5});
  auto e = OpCase("GridSample", 22).input(x).input(Tensor(DType::kFloat32, {1, 0, 2, 2, 3})).run1();
  EXPECT_EQ(e.shape(), (Shape{1, 1, 0, 2, 2}));
  EXPECT_THROW(OpCase("GridSample", 22).input(x).input(f32({1, 1, 2}, {0, 0})).run1(), Error);
}

TEST(AdvancedAffineGrid, IdentityThetaGivesBaseGrid) {
  Tensor theta = f32({1, 2, 3}, {1, 0, 0, 0, 1, 0});
  auto g0 = OpCase("AffineGrid", 20).input(theta).input(i64({4}, {1, 1, 2, 3})).run1();
  EXPECT_EQ(g0.shape(), (Shape{1, 2, 3, 2}));
  const double a = 2.0 / 3, b = 0.5;  // x centers -2/3, 0, 2/3; y centers -0.5, 0.5
  expect_near(g0, {-a, -b, 0, -b, a, -b, -a, b, 0, b, a, b});
  auto g1 = OpCase("AffineGrid", 20).input(theta).input(i64({4}, {1, 1, 2, 3})).attr("align_corners", int64_t(1)).run1();
  expect_near(g1, {-1, -1, 0, -1, 1, -1, -1, 1, 0, 1, 1, 1});
  // 3-D: a translation by (0.25, 0, 0).
  Tensor t3 = f32({1, 3, 4}, {1, 0, 0, 0.25f, 0, 1, 0, 0, 0, 0, 1, 0});
  auto g3 = OpCase("AffineGrid", 20).input(t3).input(i64({5}, {1, 1, 1, 1, 1})).run1();
  EXPECT_EQ(g3.shape(), (Shape{1, 1, 1, 1, 3}));
  expect_near(g3, {0.25, 0, 0});
  EXPECT_THROW(OpCase("AffineGrid", 20).input(theta).input(i64({5}, {1, 1, 2, 2, 2})).run1(), Error);
}

// ---------------------------------------------------------------- Attention

TEST(AdvancedAttention, MatchesDirectSoftmaxFormula) {
  // One query over three keys (prime), head size 2, value size 1.
  const std::vector<float> q = {0.3f, -0.7f}, k = {1, 0, 0.5f, 2, -1, 1}, v = {2, -3, 5};
  auto y = OpCase("Attention", 23).input(f32({1, 1, 1, 2}, q)).input(f32({1, 1, 3, 2}, k))
               .input(f32({1, 1, 3, 1}, v)).run1();
  double s[3], m = -1e9, sum = 0, want = 0;
  for (int j = 0; j < 3; ++j) {
    s[j] = (q[0] * k[2 * j] + q[1] * k[2 * j + 1]) / std::sqrt(2.0);
    m = std::max(m, s[j]);
  }
  for (double& e : s) sum += (e = std::exp(e - m));
  for (int j = 0; j < 3; ++j) want += s[j] / sum * v[j];
  EXPECT_EQ(y.shape(), (Shape{1, 1, 1, 1}));
  expect_near(y, {want});
}

TEST(AdvancedAttention, CausalMaskAndBoolMask) {
  // Causal: query 0 only sees key 0, so Y[0] = V[0].
  Tensor q = iota_f32({1, 1, 2, 3}, 0.1f, 0.2f), k = iota_f32({1, 1, 2, 3}, -0.3f, 0.1f);
  Tensor v = f32({1, 1, 2, 2}, {1, 2, 3, 4});
  auto y = OpCase("Attention", 23).input(q).input(k).input(v).attr("is_causal", int64_t(1)).run1();
  EXPECT_NEAR(y.get_double(0), 1, 1e-6);
  EXPECT_NEAR(y.get_double(1), 2, 1e-6);
  // A boolean mask broadcast over queries that only lets key 1 through.
  auto z = OpCase("Attention", 23).input(q).input(k).input(v).input(tensor<bool>({2}, {false, true})).run1();
  expect_near(z, {3, 4, 3, 4});
  // A float mask shorter than the keys: the missing tail counts as masked.
  auto w = OpCase("Attention", 23).input(q).input(k).input(v).input(f32({1, 1}, {0})).run1();
  expect_near(w, {1, 2, 1, 2});
}

TEST(AdvancedAttention, GroupedHeads3DWithCache) {
  // 3-D input, 2 query heads sharing 1 KV head (head size 1), past of length 1.
  Tensor q = f32({1, 1, 2}, {0.5f, 0.5f}), k = f32({1, 1, 1}, {2}), v = f32({1, 1, 1}, {10});
  Tensor pk = f32({1, 1, 1, 1}, {-1}), pv = f32({1, 1, 1, 1}, {4});
  auto outs = OpCase("Attention", 23).input(q).input(k).input(v).none().input(pk).input(pv)
                  .attr("q_num_heads", int64_t(2)).attr("kv_num_heads", int64_t(1))
                  .attr("qk_matmul_output_mode", int64_t(3)).run({true, true, true, true});
  EXPECT_EQ(outs[0].shape(), (Shape{1, 1, 2}));
  EXPECT_EQ(outs[1].shape(), (Shape{1, 1, 2, 1}));
  expect_near(outs[1], {-1, 2});
  expect_near(outs[2], {4, 10});
  // scores 0.5 * (-1), 0.5 * 2 -> softmax.
  const double p1 = 1 / (1 + std::exp(-1.5)), p0 = 1 - p1;
  expect_near(outs[0], {p0 * 4 + p1 * 10, p0 * 4 + p1 * 10});
  EXPECT_EQ(outs[3].shape(), (Shape{1, 2, 1, 2}));
  expect_near(outs[3], {p0, p1, p0, p1});
}

TEST(AdvancedAttention, SoftcapScaleEmptyAndErrors) {
  Tensor q = f32({1, 1, 1, 1}, {3}), k = f32({1, 1, 2, 1}, {1, -1}), v = f32({1, 1, 2, 1}, {1, 0});
  auto y = OpCase("Attention", 23).input(q).input(k).input(v).attr("scale", 2.0).attr("softcap", 1.0).run1();
  const double a = std::tanh(6.0), b = std::tanh(-6.0);
  expect_near(y, {std::exp(a) / (std::exp(a) + std::exp(b))});
  auto e = OpCase("Attention", 23).input(Tensor(DType::kFloat32, {1, 1, 0, 1})).input(k).input(v).run1();
  EXPECT_EQ(e.shape(), (Shape{1, 1, 0, 1}));
  EXPECT_THROW(OpCase("Attention", 23).input(q).input(f32({1, 1, 2, 2}, {1, 2, 3, 4})).input(v).run1(), Error);
  EXPECT_THROW(OpCase("Attention", 23).input(f32({1, 1, 3}, {1, 2, 3})).input(f32({1, 1, 3}, {1, 2, 3}))
                   .input(f32({1, 1, 3}, {1, 2, 3})).run1(),
               Error);  // 3-D without head counts
}

// ---------------------------------------------------------------- RotaryEmbedding

TEST(AdvancedRotary, QuarterTurnAndPassThrough) {
  // cos = 0, sin = 1 rotates (x1, x2) -> (-x2, x1).
  Tensor x = f32({1, 1, 1, 6}, {1, 2, 3, 4, 5, 6});
  Tensor c = f32({2, 1}, {1, 0}), s = f32({2, 1}, {0, 1});
  auto y = OpCase("RotaryEmbedding", 23).input(x).input(c).input(s).input(i64({1, 1}, {1}))
               .attr("rotary_embedding_dim", int64_t(2)).run1();
  expect_near(y, {-2, 1, 3, 4, 5, 6});
  // Full rotation, halves: pairs (1,4), (2,5), (3,6) without position ids.
  Tensor c3 = f32({1, 1, 3}, {0, 0, 0}), s3 = f32({1, 1, 3}, {1, 1, 1});
  auto z = OpCase("RotaryEmbedding", 23).input(x).input(c3).input(s3).run1();
  expect_near(z, {-4, -5, -6, 1, 2, 3});
  // Interleaved on a 3-D input with 2 heads of size 2.
  Tensor x3 = f32({1, 1, 4}, {1, 2, 3, 4});
  auto w = OpCase("RotaryEmbedding", 23).input(x3).input(f32({1, 1, 1}, {0})).input(f32({1, 1, 1}, {1}))
               .attr("num_heads", int64_t(2)).attr("interleaved", int64_t(1)).run1();
  expect_near(w, {-2, 1, -4, 3});
  EXPECT_THROW(OpCase("RotaryEmbedding", 23).input(x).input(c).input(s).input(i64({1, 1}, {2}))
                   .attr("rotary_embedding_dim", int64_t(2)).run1(),
               Error);
}

// ---------------------------------------------------------------- NonMaxSuppression

TEST(AdvancedNms, SuppressesOverlapsPerClass) {
  // Boxes [y1, x1, y2, x2]: 0 and 1 overlap with IoU 0.81 / 1.0; box 2 is apart.
  Tensor boxes = f32({1, 3, 4}, {0, 0, 1, 1, 0, 0.1f, 1, 1.1f, 0, 10, 1, 11});
  Tensor scores = f32({1, 2, 3}, {0.9f, 0.95f, 0.5f, 0.1f, 0.2f, 0.3f});
  auto y = OpCase("NonMaxSuppression", 11).input(boxes).input(scores).input(i64({1}, {3}))
               .input(f32({1}, {0.5f})).input(f32({1}, {0.15f})).run1();
  EXPECT_EQ(y.shape(), (Shape{4, 3}));
  // class 0: 1 (0.95), 0 suppressed, 2; class 1: 2 (0.3), 1 (0.2); 0.1 is below the threshold.
  expect_near(y, {0, 0, 1, 0, 0, 2, 0, 1, 2, 0, 1, 1});
  auto none = OpCase("NonMaxSuppression", 11).input(boxes).input(scores).run1();
  EXPECT_EQ(none.shape(), (Shape{0, 3}));
  // Center format: (cx, cy, w, h); max one box per class.
  Tensor cboxes = f32({1, 2, 4}, {0.5f, 0.5f, 1, 1, 0.5f, 0.6f, 1, 1});
  auto c = OpCase("NonMaxSuppression", 11).input(cboxes).input(f32({1, 1, 2}, {0.4f, 0.6f})).input(i64({1}, {1}))
               .attr("center_point_box", int64_t(1)).run1();
  expect_near(c, {0, 0, 1});
  EXPECT_THROW(OpCase("NonMaxSuppression", 11).input(f32({1, 3}, {0, 0, 1})).input(scores).run1(), Error);
}

// ---------------------------------------------------------------- DFT / STFT

TEST(AdvancedDft, ImpulseConstantAndRoundTrip) {
  // A prime length: impulse -> all ones; constant -> N at bin 0.
  Tensor imp = f32({1, 5, 1}, {1, 0, 0, 0, 0});
  auto y = OpCase("DFT", 20).input(imp).run1();
  EXPECT_EQ(y.shape(), (Shape{1, 5, 2}));
  expect_near(y, {1, 0, 1, 0, 1, 0, 1, 0, 1, 0});
  auto c = OpCase("DFT", 17).input(f32({5, 1}, {2, 2, 2, 2, 2})).attr("axis", int64_t(0)).attr("onesided", int64_t(1)).run1();
  EXPECT_EQ(c.shape(), (Shape{3, 2}));
  expect_near(c, {10, 0, 0, 0, 0, 0});
  // x[m] = cos(2 pi m / 7) has bins 1 and 6 equal to 7/2, the rest 0.
  std::vector<float> cosv;
  for (int m = 0; m < 7; ++m) cosv.push_back(float(std::cos(2 * M_PI * m / 7)));
  auto f = OpCase("DFT", 20).input(f32({7, 1}, cosv)).none().input(i64({}, {0})).run1();
  expect_near(f, {0, 0, 3.5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3.5, 0});
}

TEST(AdvancedDft, InverseAndIrfft) {
  Tensor x = f32({1, 4, 1}, {1, 2, 3, 4});
  auto fwd = OpCase("DFT", 20).input(x).run1();
  expect_near(fwd, {10, 0, -2, 2, -2, 0, -2, -2});
  auto back = OpCase("DFT", 20).input(fwd).attr("inverse", int64_t(1)).run1();
  expect_near(back, {1, 0, 2, 0, 3, 0, 4, 0});
  auto half = OpCase("DFT", 20).input(x).attr("onesided", int64_t(1)).run1();
  EXPECT_EQ(half.shape(), (Shape{1, 3, 2}));
  auto real = OpCase("DFT", 20).input(half).attr("inverse", int64_t(1)).attr("onesided", int64_t(1)).run1();
  EXPECT_EQ(real.shape(), (Shape{1, 4, 1}));
  expect_near(real, {1, 2, 3, 4});
  // dft_length pads with zeros: length 6 of [1, 1] -> bin 3 = 1 - 1 = 0.
  auto pad = OpCase("DFT", 20).input(f32({2, 1}, {1, 1})).input(i64({}, {6})).input(i64({}, {0})).run1();
  EXPECT_EQ(pad.shape(), (Shape{6, 2}));
  EXPECT_NEAR(pad.get_double(0), 2, 1e-6);
  EXPECT_NEAR(pad.get_double(6), 0, 1e-6);
  EXPECT_THROW(OpCase("DFT", 20).input(x).none().input(i64({}, {-1})).run1(), Error);
  EXPECT_THROW(OpCase("DFT", 20).input(f32({2, 3}, {1, 2, 3, 4, 5, 6})).run1(), Error);
}

TEST(AdvancedStft, FramesOfConstantSignal) {
  // 11 samples of 1, frames of 4 every 3 -> 3 frames; DC bin = sum of the window.
  Tensor sig(DType::kFloat32, {1, 11, 1});
  std::fill(sig.data<float>(), sig.data<float>() + 11, 1.0f);
  auto y = OpCase("STFT", 17).input(sig).input(i64({}, {3})).input(f32({4}, {0, 1, 1, 0})).run1();
  EXPECT_EQ(y.shape(), (Shape{1, 3, 3, 2}));
  for (int f = 0; f < 3; ++f) {
    EXPECT_NEAR(y.get_double(f * 6), 2, 1e-6);
    // bin 2 (Nyquist): 0 - 1 + 1 - 0 = 0; bin 1: -i*1 + -1*1 -> (-1, -1).
    EXPECT_NEAR(y.get_double(f * 6 + 2), -1, 1e-6);
    EXPECT_NEAR(y.get_double(f * 6 + 3), -1, 1e-6);
    EXPECT_NEAR(y.get_double(f * 6 + 4), 0, 1e-6);
  }
  auto full = OpCase("STFT", 17).input(sig).input(i64({}, {5})).none().input(i64({}, {5}))
                  .attr("onesided", int64_t(0)).run1();
  EXPECT_EQ(full.shape(), (Shape{1, 2, 5, 2}));
  EXPECT_NEAR(full.get_double(0), 5, 1e-6);
  EXPECT_THROW(OpCase("STFT", 17).input(sig).input(i64({}, {0})).none().input(i64({}, {4})).run1(), Error);
}

// ---------------------------------------------------------------- windows, mel

TEST(AdvancedWindow, KnownValues) {
  auto h = OpCase("HannWindow", 17).input(tensor<int32_t>({}, {4})).run1();
  expect_near(h, {0, 0.5, 1, 0.5});
  auto hs = OpCase("HannWindow", 17).input(tensor<int64_t>({}, {5})).attr("periodic", int64_t(0)).run1();
  expect_near(hs, {0, 0.5, 1, 0.5, 0});
  auto m = OpCase("HammingWindow", 17).input(tensor<int32_t>({}, {3})).attr("periodic", int64_t(0))
               .attr("output_datatype", int64_t(11)).run1();
  ASSERT_EQ(m.dtype(), DType::kFloat64);
  expect_near(m, {4.0 / 46, 1, 4.0 / 46}, 1e-12);
  auto b = OpCase("BlackmanWindow", 17).input(tensor<int32_t>({}, {4})).run1();
  expect_near(b, {0, 0.34, 1, 0.34});
  auto e = OpCase("BlackmanWindow", 17).input(tensor<int32_t>({}, {0})).run1();
  EXPECT_EQ(e.shape(), (Shape{0}));
  EXPECT_THROW(OpCase("HannWindow", 17).input(f32({}, {4})).run1(), Error);
}

TEST(AdvancedMel, TriangularFilters) {
  auto w = OpCase("MelWeightMatrix", 17).input(tensor<int32_t>({}, {8})).input(tensor<int32_t>({}, {16}))
               .input(tensor<int32_t>({}, {8192})).input(f32({}, {0})).input(f32({}, {4096})).run1();
  ASSERT_EQ(w.shape(), (Shape{9, 8}));
  // Every filter is a triangle: values in [0, 1] with a peak of exactly 1.
  for (int c = 0; c < 8; ++c) {
    double peak = 0;
    for (int r = 0; r < 9; ++r) {
      const double v = w.get_double(r * 8 + c);
      EXPECT_GE(v, 0);
      EXPECT_LE(v, 1);
      peak = std::max(peak, v);
    }
    EXPECT_EQ(peak, 1.0) << "filter " << c;
  }
  EXPECT_THROW(OpCase("MelWeightMatrix", 17).input(tensor<int32_t>({}, {8})).input(tensor<int32_t>({}, {16}))
                   .input(tensor<int32_t>({}, {8192})).input(f32({}, {10})).input(f32({}, {5})).run1(),
               Error);
}

// ---------------------------------------------------------------- RNN / GRU / LSTM

TEST(AdvancedRnn, SingleStepAndBidirectional) {
  // h = tanh(0.5*1 + 0.5*2 + 0.1 + 0.2) for one step.
  auto y = OpCase("RNN", 22).input(f32({1, 1, 2}, {1, 2})).input(f32({1, 1, 2}, {0.5f, 0.5f}))
               .input(f32({1, 1, 1}, {0})).input(f32({1, 2}, {0.1f, 0.2f})).attr("hidden_size", int64_t(1))
               .run({false, true})[1];
  expect_near(y, {std::tanh(1.8)});
  // Bidirectional, 3 steps (prime), identity recurrence R=1, W=1, Relu: forward
  // prefix sums and reverse suffix sums of x = 1, 2, 3.
  auto outs = OpCase("RNN", 22).input(f32({3, 1, 1}, {1, 2, 3})).input(f32({2, 1, 1}, {1, 1}))
                  .input(f32({2, 1, 1}, {1, 1})).attr("direction", "bidirectional")
                  .attr("activations", std::vector<std::string>{"Relu", "Relu"}).run({true, true});
  EXPECT_EQ(outs[0].shape(), (Shape{3, 2, 1, 1}));
  expect_near(outs[0], {1, 6, 3, 5, 6, 3});
  expect_near(outs[1], {6, 6});
  // sequence_lens 2 of 3 for the second batch entry: its third output is 0.
  auto s = OpCase("RNN", 22).input(f32({3, 2, 1}, {1, 1, 2, 2, 3, 3})).input(f32({1, 1, 1}, {1}))
               .input(f32({1, 1, 1}, {1})).none().input(tensor<int32_t>({2}, {3, 2}))
               .attr("activations", std::vector<std::string>{"Relu"}).run({true, true});
  expect_near(s[0], {1, 1, 3, 3, 6, 0});
  expect_near(s[1], {6, 3});
  EXPECT_THROW(OpCase("RNN", 22).input(f32({1, 1, 2}, {1, 2})).input(f32({1, 1, 3}, {1, 2, 3}))
                   .input(f32({1, 1, 1}, {0})).run1(),
               Error);
}

TEST(AdvancedRnn, GruAndLstmWithZeroWeights) {
  // GRU with zero weights: z = r = 0.5, candidate tanh(0) = 0 -> h = 0.5 * h0.
  auto g = OpCase("GRU", 22).input(f32({1, 1, 1}, {3})).input(Tensor::zeros(DType::kFloat32, {1, 3, 1}))
               .input(Tensor::zeros(DType::kFloat32, {1, 3, 1})).none().none().input(f32({1, 1, 1}, {0.8f}))
               .run({false, true})[1];
  expect_near(g, {0.4});
  // LSTM with zero weights: i = f = o = 0.5, c~ = 0 -> C = 0.5 * C0, H = 0.5 * tanh(C).
  auto l = OpCase("LSTM", 22).input(f32({1, 1, 1}, {3})).input(Tensor::zeros(DType::kFloat32, {1, 4, 1}))
               .input(Tensor::zeros(DType::kFloat32, {1, 4, 1})).none().none().input(f32({1, 1, 1}, {0}))
               .input(f32({1, 1, 1}, {2})).run({true, true, true});
  expect_near(l[2], {1});
  expect_near(l[1], {0.5 * std::tanh(1.0)});
  // Peepholes: input gate sees P_i * C0 = 1 * 2.
  auto p = OpCase("LSTM", 22).input(f32({1, 1, 1}, {3})).input(Tensor::zeros(DType::kFloat32, {1, 4, 1}))
               .input(Tensor::zeros(DType::kFloat32, {1, 4, 1})).none().none().none().input(f32({1, 1, 1}, {2}))
               .input(f32({1, 3}, {1, 0, 0})).run({false, false, true});
  expect_near(p[2], {0.5 * 2 + sigmoid(2) * 0});
  // Batch-major layout puts batch first in Y.
  auto bl = OpCase("GRU", 22).input(f32({2, 1, 1}, {1, 1})).input(Tensor::zeros(DType::kFloat32, {1, 3, 1}))
                .input(Tensor::zeros(DType::kFloat32, {1, 3, 1})).attr("layout", int64_t(1)).run({true, true});
  EXPECT_EQ(bl[0].shape(), (Shape{2, 1, 1, 1}));
  EXPECT_EQ(bl[1].shape(), (Shape{2, 1, 1}));
  EXPECT_THROW(OpCase("LSTM", 22).input(f32({1, 1, 1}, {3})).input(Tensor::zeros(DType::kFloat32, {1, 3, 1}))
                   .input(Tensor::zeros(DType::kFloat32, {1, 4, 1})).run1(),
               Error);
}

// ---------------------------------------------------------------- shape inference

TEST(AdvancedInfer, ResizeAndAttentionShapes) {
  Graph g;
  Node* n = g.add_node("Resize", "r");
  n->opset = 19;
  Value* x = g.add_value("x");
  x->dtype = DType::kFloat32;
  x->shape = SymShape{Dim::sym("N"), Dim::known(3), Dim::known(5), Dim::known(4)};
  Value* s = g.add_value("s");
  s->data = f32({4}, {1, 1, 2, 0.5f});
  n->inputs = {x, nullptr, s};
  InferContext ctx{*n, {x, nullptr, s}, {}};
  ctx.outputs.resize(1);
  find_op("Resize")->infer(ctx);
  ASSERT_TRUE(ctx.outputs[0].shape);
  EXPECT_EQ(sym_shape_str(*ctx.outputs[0].shape), "[N,3,10,2]");

  Node* a = g.add_node("Attention", "a");
  Value* q = g.add_value("q");
  q->dtype = DType::kFloat16;
  q->shape = SymShape{Dim::sym("B"), Dim::sym("S"), Dim::known(12)};
  Value* k = g.add_value("k");
  k->dtype = DType::kFloat16;
  k->shape = SymShape{Dim::sym("B"), Dim::sym("T"), Dim::known(6)};
  Value* v = g.add_value("v");
  v->dtype = DType::kFloat16;
  v->shape = SymShape{Dim::sym("B"), Dim::sym("T"), Dim::known(10)};
  Attribute hq, hk;
  hq.i = 4;
  hk.i = 2;
  a->attrs["q_num_heads"] = hq;
  a->attrs["kv_num_heads"] = hk;
  InferContext actx{*a, {q, k, v}, {}};
  actx.outputs.resize(3);
  find_op("Attention")->infer(actx);
  EXPECT_EQ(actx.outputs[0].dtype, DType::kFloat16);
  EXPECT_EQ(sym_shape_str(*actx.outputs[0].shape), "[B,S,20]");
  EXPECT_EQ(sym_shape_str(*actx.outputs[1].shape), "[B,2,T,3]");
}
