// Reference kernels of the reduction family against hand-computed or
// independently computed (naive loops) values.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <optional>

#include "ir/dtype_dispatch.h"
#include "ir/graph.h"
#include "ir/op_registry.h"

using namespace deepep;

namespace {

Attribute ai(int64_t v) {
  Attribute a;
  a.kind = Attribute::Kind::kInt;
  a.i = v;
  return a;
}
Attribute af(float v) {
  Attribute a;
  a.kind = Attribute::Kind::kFloat;
  a.f = v;
  return a;
}
Attribute aints(std::vector<int64_t> v) {
  Attribute a;
  a.kind = Attribute::Kind::kInts;
  a.ints = std::move(v);
  return a;
}
Attribute astr(std::string s) {
  Attribute a;
  a.kind = Attribute::Kind::kString;
  a.s = std::move(s);
  return a;
}

template <class T>
Tensor tensor(Shape s, std::vector<T> v) {
  Tensor t(dtype_of<T>(), s);
  EXPECT_EQ(size_t(t.numel()), v.size());
  for (size_t i = 0; i < v.size(); ++i) t.data<T>()[i] = v[i];
  return t;
}
Tensor f32(Shape s, std::vector<float> v) { return tensor<float>(std::move(s), std::move(v)); }
Tensor i64(Shape s, std::vector<int64_t> v) { return tensor<int64_t>(std::move(s), std::move(v)); }
// Deterministic, irregular data: sin-based values in [-2, 2].
Tensor wave(Shape s, double phase = 0) {
  Tensor t(DType::kFloat32, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = float(2 * std::sin(0.7 * double(i) + phase));
  return t;
}
template <class T>
std::vector<T> values(const Tensor& t) {
  return std::vector<T>(t.data<T>(), t.data<T>() + t.numel());
}

using Attrs = AttrMap;
using In = std::vector<std::optional<Tensor>>;

// Runs `op`'s reference kernel on one node; returns its outputs.
std::vector<Tensor> run(const std::string& op, In in, Attrs attrs = {}, int n_out = 1, int opset = 21) {
  Node n;
  n.op_type = op;
  n.name = "t";
  n.opset = opset;
  n.attrs = std::move(attrs);
  std::vector<std::unique_ptr<Value>> vals;
  auto value = [&] {
    vals.push_back(std::make_unique<Value>());
    return vals.back().get();
  };
  for (auto& t : in) n.inputs.push_back(t ? value() : nullptr);
  for (int i = 0; i < n_out; ++i) n.outputs.push_back(value());
  const OpDef* def = find_op(op);
  EXPECT_NE(def, nullptr) << op;
  KernelContext ctx{n, {}, {}};
  for (auto& t : in) ctx.inputs.push_back(t ? &*t : nullptr);
  ctx.outputs.resize(size_t(n_out));
  def->reference(ctx);
  return ctx.outputs;
}

void expect_near(const Tensor& t, const std::vector<double>& want, double tol = 1e-5) {
  ASSERT_EQ(size_t(t.numel()), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const double got = t.get_double(int64_t(i));
    if (std::isinf(want[i])) EXPECT_EQ(got, want[i]) << "at " << i;
    else EXPECT_NEAR(got, want[i], tol * (1 + std::fabs(want[i]))) << "at " << i;
  }
}

}  // namespace

// ---------------------------------------------------------------- Reduce*

TEST(ReductionReduce, EveryKindOnAHandExample) {
  const Tensor x = f32({2, 2}, {1, -2, 3, 4});
  const double e = std::exp(1.0);
  const std::map<std::string, std::vector<double>> want = {
      {"ReduceSum", {-1, 7}},
      {"ReduceMean", {-0.5, 3.5}},
      {"ReduceMax", {1, 4}},
      {"ReduceMin", {-2, 3}},
      {"ReduceProd", {-2, 12}},
      {"ReduceL1", {3, 7}},
      {"ReduceL2", {std::sqrt(5.0), 5}},
      {"ReduceSumSquare", {5, 25}},
      {"ReduceLogSumExp", {std::log(e + std::exp(-2.0)), std::log(std::pow(e, 3) + std::pow(e, 4))}},
  };
  for (const auto& [op, w] : want) {
    auto y = run(op, {x, i64({1}, {1})}, {{"keepdims", ai(1)}}, 1, 18);
    EXPECT_EQ(y[0].shape(), (Shape{2, 1})) << op;
    expect_near(y[0], w);
  }
  auto ls = run("ReduceLogSum", {f32({2, 3}, {1, 2, 3, 4, 5, 6})}, {{"axes", aints({0})}, {"keepdims", ai(0)}}, 1, 13);
  EXPECT_EQ(ls[0].shape(), (Shape{3}));
  expect_near(ls[0], {std::log(5.0), std::log(7.0), std::log(9.0)});
}

TEST(ReductionReduce, PrimeShapesAgainstNaiveLoops) {
  const Tensor x = wave({3, 5, 7});
  const float* p = x.data<float>();
  // Axes [0, 2] of [3, 5, 7], given as an input (opset 13) and as an attribute (opset 11).
  std::vector<double> sum(5, 0.0), mx(5, -INFINITY);
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 5; ++b)
      for (int c = 0; c < 7; ++c) {
        sum[b] += p[(a * 5 + b) * 7 + c];
        mx[b] = std::max(mx[b], double(p[(a * 5 + b) * 7 + c]));
      }
  auto y = run("ReduceSum", {x, i64({2}, {0, -1})}, {{"keepdims", ai(0)}}, 1, 13);
  EXPECT_EQ(y[0].shape(), (Shape{5}));
  expect_near(y[0], sum);
  y = run("ReduceMax", {x}, {{"axes", aints({2, 0})}}, 1, 11);
  EXPECT_EQ(y[0].shape(), (Shape{1, 5, 1}));
  expect_near(y[0], mx);
  // No axes: everything.
  y = run("ReduceMean", {x}, {{"keepdims", ai(0)}}, 1, 18);
  EXPECT_EQ(y[0].shape(), Shape{});
  double total = 0;
  for (double s : sum) total += s;
  expect_near(y[0], {total / 105});
}

TEST(ReductionReduce, EmptyInputsAndEmptyAxes) {
  const Tensor e(DType::kFloat32, {2, 0, 4});
  const std::map<std::string, double> ident = {{"ReduceSum", 0},      {"ReduceProd", 1},        {"ReduceMax", -INFINITY},
                                               {"ReduceMin", INFINITY}, {"ReduceLogSum", -INFINITY}, {"ReduceSumSquare", 0},
                                               {"ReduceL2", 0}};
  for (const auto& [op, v] : ident) {
    auto y = run(op, {e, i64({1}, {1})}, {}, 1, 18);
    EXPECT_EQ(y[0].shape(), (Shape{2, 1, 4})) << op;
    expect_near(y[0], std::vector<double>(8, v));
  }
  // Reducing a non-empty axis of an empty tensor gives an empty result.
  auto y = run("ReduceSum", {e, i64({1}, {2})}, {}, 1, 13);
  EXPECT_EQ(y[0].shape(), (Shape{2, 0, 1}));
  // Empty axes input: all axes, or nothing with noop_with_empty_axes (the square still applies).
  const Tensor x = f32({3}, {1, -2, 3});
  y = run("ReduceSumSquare", {x, i64({0}, {})}, {{"keepdims", ai(0)}}, 1, 18);
  expect_near(y[0], {14});
  y = run("ReduceSumSquare", {x, i64({0}, {})}, {{"noop_with_empty_axes", ai(1)}}, 1, 18);
  EXPECT_EQ(y[0].shape(), (Shape{3}));
  expect_near(y[0], {1, 4, 9});
}

TEST(ReductionReduce, IntegerAndBoolTypes) {
  auto y = run("ReduceSum", {tensor<int32_t>({2, 3}, {1, 2, 3, 4, 5, 6}), i64({1}, {1})}, {{"keepdims", ai(0)}}, 1, 13);
  EXPECT_EQ(y[0].dtype(), DType::kInt32);
  EXPECT_EQ(values<int32_t>(y[0]), (std::vector<int32_t>{6, 15}));
  y = run("ReduceMean", {tensor<int64_t>({4}, {1, 2, 3, 5})}, {{"keepdims", ai(0)}}, 1, 18);
  EXPECT_EQ(values<int64_t>(y[0]), (std::vector<int64_t>{2}));  // 11 / 4 truncated
  y = run("ReduceMin", {tensor<uint8_t>({3}, {7, 200, 9})}, {}, 1, 18);
  EXPECT_EQ(values<uint8_t>(y[0]), (std::vector<uint8_t>{7}));
  const Tensor b = tensor<bool>({2, 2}, {true, false, true, true});
  y = run("ReduceMax", {b, i64({1}, {1})}, {{"keepdims", ai(0)}}, 1, 20);
  EXPECT_EQ(values<bool>(y[0]), (std::vector<bool>{true, true}));
  y = run("ReduceMin", {b, i64({1}, {1})}, {{"keepdims", ai(0)}}, 1, 20);
  EXPECT_EQ(values<bool>(y[0]), (std::vector<bool>{false, true}));
  y = run("ReduceSum", {tensor<float16>({3}, {float16(1.5f), float16(2.0f), float16(-0.25f)})}, {}, 1, 18);
  EXPECT_EQ(float(y[0].data<float16>()[0]), 3.25f);
}

TEST(ReductionReduce, BadAxisThrowsAndInferenceUsesConstantAxes) {
  EXPECT_THROW(run("ReduceSum", {f32({2, 2}, {1, 2, 3, 4}), i64({1}, {2})}, {}, 1, 13), Error);
  EXPECT_THROW(run("ReduceProd", {f32({2}, {1, 2})}, {{"axes", aints({-3})}}, 1, 11), Error);
  Graph g;
  Value* x = g.add_value("x");
  x->dtype = DType::kFloat32;
  x->shape = SymShape{Dim::sym("n"), Dim::known(3), Dim::known(5)};
  Value* axes = g.add_value("axes");
  axes->dtype = DType::kInt64;
  axes->data = i64({1}, {-1});
  Node n;
  n.op_type = "ReduceL2";
  n.opset = 18;
  n.attrs["keepdims"] = ai(0);
  InferContext ctx{n, {x, axes}, {}};
  ctx.outputs.resize(1);
  find_op("ReduceL2")->infer(ctx);
  EXPECT_EQ(ctx.outputs[0].dtype, DType::kFloat32);
  ASSERT_TRUE(ctx.outputs[0].shape);
  EXPECT_EQ(sym_shape_str(*ctx.outputs[0].shape), sym_shape_str({Dim::sym("n"), Dim::known(3)}));
}

// ---------------------------------------------------------------- ArgMax / ArgMin

TEST(ReductionArg, TiesLastIndexAndErrors) {
  const Tensor x = f32({2, 3}, {1, 5, 5, 0, -1, 0});
  auto y = run("ArgMax", {x}, {{"axis", ai(1)}});
  EXPECT_EQ(y[0].shape(), (Shape{2, 1}));
  EXPECT_EQ(values<int64_t>(y[0]), (std::vector<int64_t>{1, 0}));
  y = run("ArgMax", {x}, {{"axis", ai(-1)}, {"select_last_index", ai(1)}, {"keepdims", ai(0)}});
  EXPECT_EQ(values<int64_t>(y[0]), (std::vector<int64_t>{2, 2}));
  y = run("ArgMin", {x}, {{"keepdims", ai(0)}});  // axis 0
  EXPECT_EQ(values<int64_t>(y[0]), (std::vector<int64_t>{1, 1, 1}));
  y = run("ArgMin", {tensor<int32_t>({5}, {4, 2, 7, 2, 9})}, {{"select_last_index", ai(1)}});
  EXPECT_EQ(values<int64_t>(y[0]), (std::vector<int64_t>{3}));
  EXPECT_THROW(run("ArgMax", {Tensor(DType::kFloat32, {2, 0})}, {{"axis", ai(1)}}), Error);
  EXPECT_EQ(run("ArgMax", {Tensor(DType::kFloat32, {0, 3})}, {{"axis", ai(1)}})[0].shape(), (Shape{0, 1}));
  EXPECT_THROW(run("ArgMax", {x}, {{"axis", ai(2)}}), Error);
}

// ---------------------------------------------------------------- Softmax family

TEST(ReductionSoftmax, AxisSemanticsByOpset) {
  const Tensor x = f32({2, 3}, {1, 2, 3, 1000, 1000, 1001});
  auto sm = [](std::vector<double> v) {
    double m = *std::max_element(v.begin(), v.end()), s = 0;
    for (double& a : v) s += (a = std::exp(a - m));
    for (double& a : v) a /= s;
    return v;
  };
  auto r0 = sm({1, 2, 3}), r1 = sm({0, 0, 1});
  expect_near(run("Softmax", {x}, {}, 1, 13)[0], {r0[0], r0[1], r0[2], r1[0], r1[1], r1[2]});
  auto y = run("LogSoftmax", {x}, {}, 1, 13)[0];
  expect_near(y, {std::log(r0[0]), std::log(r0[1]), std::log(r0[2]), std::log(r1[0]), std::log(r1[1]), std::log(r1[2])});
  // [2, 2, 3] with axis 1: opset 13 normalizes over the 2 entries of dim 1,
  // opset 11 over the 6 entries of each coerced row.
  const Tensor z = wave({2, 2, 3});
  const float* p = z.data<float>();
  auto a13 = run("Softmax", {z}, {{"axis", ai(1)}}, 1, 13)[0];
  auto a11 = run("Softmax", {z}, {{"axis", ai(1)}}, 1, 11)[0];
  for (int n = 0; n < 2; ++n) {
    auto row = sm(std::vector<double>(p + n * 6, p + n * 6 + 6));
    for (int k = 0; k < 6; ++k) EXPECT_NEAR(a11.data<float>()[n * 6 + k], row[size_t(k)], 1e-6);
    for (int c = 0; c < 3; ++c) {
      auto col = sm({p[n * 6 + c], p[n * 6 + 3 + c]});
      EXPECT_NEAR(a13.data<float>()[n * 6 + c], col[0], 1e-6);
      EXPECT_NEAR(a13.data<float>()[n * 6 + 3 + c], col[1], 1e-6);
    }
  }
  EXPECT_EQ(run("Softmax", {Tensor(DType::kFloat32, {0, 3})}, {}, 1, 13)[0].shape(), (Shape{0, 3}));
  EXPECT_THROW(run("Softmax", {x}, {{"axis", ai(2)}}, 1, 13), Error);
  EXPECT_THROW(run("Softmax", {i64({2}, {1, 2})}, {}, 1, 13), Error);
}

TEST(ReductionSoftmax, HardmaxFirstMaximum) {
  auto y = run("Hardmax", {f32({2, 3}, {3, 1, 3, -1, 0, -2})}, {}, 1, 13)[0];
  expect_near(y, {1, 0, 0, 0, 1, 0});
  y = run("Hardmax", {f32({2, 3}, {3, 1, 3, -1, 0, -2})}, {{"axis", ai(0)}}, 1, 11)[0];  // one row of 6
  expect_near(y, {1, 0, 0, 0, 0, 0});
}

// ---------------------------------------------------------------- Layer / RMS norm

TEST(ReductionLayerNorm, MatchesNaiveWithBroadcastScale) {
  const Tensor x = wave({3, 7});
  const Tensor w = wave({7}, 1.0), b = f32({1}, {0.5f});
  auto y = run("LayerNormalization", {x, w, b}, {{"epsilon", af(1e-3f)}}, 3, 17);
  auto r = run("RMSNormalization", {x, w}, {{"axis", ai(1)}}, 1, 23)[0];
  EXPECT_EQ(y[1].shape(), (Shape{3, 1}));
  EXPECT_EQ(y[2].dtype(), DType::kFloat32);
  const float* p = x.data<float>();
  for (int i = 0; i < 3; ++i) {
    double m = 0, v = 0, sq = 0;
    for (int k = 0; k < 7; ++k) m += p[i * 7 + k], sq += double(p[i * 7 + k]) * p[i * 7 + k];
    m /= 7;
    for (int k = 0; k < 7; ++k) v += (p[i * 7 + k] - m) * (p[i * 7 + k] - m);
    const double inv = 1 / std::sqrt(v / 7 + 1e-3), rinv = 1 / std::sqrt(sq / 7 + 1e-5);
    EXPECT_NEAR(y[1].data<float>()[i], m, 1e-6);
    EXPECT_NEAR(y[2].data<float>()[i], inv, 1e-5 * inv);
    for (int k = 0; k < 7; ++k) {
      EXPECT_NEAR(y[0].data<float>()[i * 7 + k], (p[i * 7 + k] - m) * inv * w.data<float>()[k] + 0.5, 1e-5);
      EXPECT_NEAR(r.data<float>()[i * 7 + k], p[i * 7 + k] * rinv * w.data<float>()[k], 1e-5);
    }
  }
  // axis 0 normalizes everything; empty rows are fine; a mismatched scale is an error.
  auto all = run("LayerNormalization", {f32({2, 2}, {1, 2, 3, 4}), f32({2, 2}, {1, 1, 1, 1}), std::nullopt},
                 {{"axis", ai(0)}, {"epsilon", af(0)}}, 1, 17)[0];
  const double s = std::sqrt(1.25);
  expect_near(all, {-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s});
  EXPECT_EQ(run("LayerNormalization", {Tensor(DType::kFloat32, {0, 4}), f32({4}, {1, 1, 1, 1})}, {}, 1, 17)[0].shape(),
            (Shape{0, 4}));
  EXPECT_THROW(run("LayerNormalization", {x, f32({3}, {1, 1, 1})}, {}, 1, 17), Error);
}

// ---------------------------------------------------------------- Batch / Instance / Group / MVN

TEST(ReductionBatchNorm, InferenceAndTraining) {
  const Tensor x = wave({2, 3, 5});
  const Tensor s = f32({3}, {1, 2, -1}), b = f32({3}, {0, 1, 2}), m = f32({3}, {0.5f, -1, 0}),
               v = f32({3}, {1, 4, 0.25f});
  auto y = run("BatchNormalization", {x, s, b, m, v}, {{"epsilon", af(0)}}, 1, 15)[0];
  const float* p = x.data<float>();
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 3; ++c)
      for (int k = 0; k < 5; ++k) {
        const int i = (n * 3 + c) * 5 + k;
        const double want = (p[i] - m.data<float>()[c]) / std::sqrt(v.data<float>()[c]) * s.data<float>()[c] + b.data<float>()[c];
        EXPECT_NEAR(y.data<float>()[i], want, 1e-5);
      }
  auto t = run("BatchNormalization", {x, s, b, m, v}, {{"training_mode", ai(1)}, {"momentum", af(0.75f)}}, 3, 15);
  for (int c = 0; c < 3; ++c) {
    double bm = 0, bv = 0;
    for (int n = 0; n < 2; ++n)
      for (int k = 0; k < 5; ++k) bm += p[(n * 3 + c) * 5 + k];
    bm /= 10;
    for (int n = 0; n < 2; ++n)
      for (int k = 0; k < 5; ++k) bv += std::pow(p[(n * 3 + c) * 5 + k] - bm, 2);
    bv /= 10;
    EXPECT_NEAR(t[1].data<float>()[c], 0.75 * m.data<float>()[c] + 0.25 * bm, 1e-5);
    EXPECT_NEAR(t[2].data<float>()[c], 0.75 * v.data<float>()[c] + 0.25 * bv, 1e-5);
    const int i = (1 * 3 + c) * 5 + 2;
    EXPECT_NEAR(t[0].data<float>()[i], (p[i] - bm) / std::sqrt(bv + 1e-5) * s.data<float>()[c] + b.data<float>()[c], 1e-4);
  }
  EXPECT_THROW(run("BatchNormalization", {x, f32({2}, {1, 1}), b, m, v}, {}, 1, 15), Error);
}

TEST(ReductionInstanceGroupNorm, GroupsAndOpsets) {
  const Tensor x = wave({2, 4, 3});
  const float* p = x.data<float>();
  // Group g of sample n covers channels [2g, 2g + 2): 6 values.
  auto group_stats = [&](int n, int g) {
    double m = 0, v = 0;
    for (int k = 0; k < 6; ++k) m += p[n * 12 + g * 6 + k];
    m /= 6;
    for (int k = 0; k < 6; ++k) v += std::pow(p[n * 12 + g * 6 + k] - m, 2);
    return std::pair<double, double>{m, v / 6};
  };
  const Tensor sc = f32({4}, {1, 2, 3, 4}), bc = f32({4}, {0, 0, 1, 1});
  auto y21 = run("GroupNormalization", {x, sc, bc}, {{"num_groups", ai(2)}}, 1, 21)[0];
  auto y18 = run("GroupNormalization", {x, f32({2}, {2, -1}), f32({2}, {0.5f, 0})}, {{"num_groups", ai(2)}}, 1, 18)[0];
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 4; ++c)
      for (int k = 0; k < 3; ++k) {
        const int i = n * 12 + c * 3 + k;
        auto [m, v] = group_stats(n, c / 2);
        const double z = (p[i] - m) / std::sqrt(v + 1e-5);
        EXPECT_NEAR(y21.data<float>()[i], z * sc.data<float>()[c] + bc.data<float>()[c], 1e-4);
        EXPECT_NEAR(y18.data<float>()[i], c / 2 == 0 ? z * 2 + 0.5 : -z, 1e-4);
      }
  EXPECT_THROW(run("GroupNormalization", {x, sc, bc}, {{"num_groups", ai(3)}}, 1, 21), Error);
  // Instance norm = group norm with one channel per group.
  auto in = run("InstanceNormalization", {x, sc, bc}, {{"epsilon", af(1e-3f)}}, 1, 6)[0];
  auto gn = run("GroupNormalization", {x, sc, bc}, {{"num_groups", ai(4)}, {"epsilon", af(1e-3f)}}, 1, 21)[0];
  for (int i = 0; i < 24; ++i) EXPECT_NEAR(in.data<float>()[i], gn.data<float>()[i], 1e-5);
  // MVN over axes [0, 2]: per channel.
  auto mvn = run("MeanVarianceNormalization", {x}, {{"axes", aints({0, 2})}}, 1, 13)[0];
  for (int c = 0; c < 4; ++c) {
    double m = 0, v = 0;
    for (int n = 0; n < 2; ++n)
      for (int k = 0; k < 3; ++k) m += p[n * 12 + c * 3 + k];
    m /= 6;
    for (int n = 0; n < 2; ++n)
      for (int k = 0; k < 3; ++k) v += std::pow(p[n * 12 + c * 3 + k] - m, 2);
    const int i = 12 + c * 3 + 1;
    EXPECT_NEAR(mvn.data<float>()[i], (p[i] - m) / (std::sqrt(v / 6) + 1e-9), 1e-4);
  }
}

// ---------------------------------------------------------------- LpNorm / LRN

TEST(ReductionLpNormLrn, Values) {
  auto y = run("LpNormalization", {f32({2, 2}, {3, -4, 0, 0})}, {}, 1, 13)[0];
  expect_near(y, {0.6, -0.8, 0, 0});
  y = run("LpNormalization", {f32({2, 2}, {3, -1, 1, 3})}, {{"p", ai(1)}, {"axis", ai(0)}}, 1, 13)[0];
  expect_near(y, {0.75, -0.25, 0.25, 0.75});
  EXPECT_THROW(run("LpNormalization", {f32({2}, {1, 2})}, {{"p", ai(3)}}, 1, 13), Error);
  // LRN size 4 on 5 channels: window [c - 1, c + 2].
  const Tensor x = wave({1, 5, 2});
  const float* p = x.data<float>();
  auto l = run("LRN", {x}, {{"size", ai(4)}, {"alpha", af(0.5f)}, {"beta", af(0.75f)}, {"bias", af(2)}}, 1, 13)[0];
  for (int c = 0; c < 5; ++c)
    for (int k = 0; k < 2; ++k) {
      double sq = 0;
      for (int j = std::max(0, c - 1); j <= std::min(4, c + 2); ++j) sq += double(p[j * 2 + k]) * p[j * 2 + k];
      EXPECT_NEAR(l.data<float>()[c * 2 + k], p[c * 2 + k] / std::pow(2 + 0.5 / 4 * sq, 0.75), 1e-5);
    }
  EXPECT_THROW(run("LRN", {x}, {}, 1, 13), Error);  // size is required
}

// ---------------------------------------------------------------- CumSum / CumProd

TEST(ReductionCumulative, FlagsAndTypes) {
  const Tensor x = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  expect_near(run("CumSum", {x, tensor<int32_t>({}, {1})})[0], {1, 3, 6, 4, 9, 15});
  expect_near(run("CumSum", {x, i64({}, {0})}, {{"exclusive", ai(1)}})[0], {0, 0, 0, 1, 2, 3});
  expect_near(run("CumSum", {x, i64({1}, {-1})}, {{"reverse", ai(1)}})[0], {6, 5, 3, 15, 11, 6});
  expect_near(run("CumProd", {x, i64({}, {1})}, {{"reverse", ai(1)}, {"exclusive", ai(1)}})[0], {6, 3, 1, 30, 6, 1});
  auto y = run("CumProd", {tensor<int32_t>({4}, {2, -3, 4, 5}), i64({}, {0})})[0];
  EXPECT_EQ(values<int32_t>(y), (std::vector<int32_t>{2, -6, -24, -120}));
  EXPECT_EQ(run("CumSum", {Tensor(DType::kFloat32, {0, 3}), i64({}, {1})})[0].shape(), (Shape{0, 3}));
  EXPECT_THROW(run("CumSum", {x, i64({}, {2})}), Error);
  EXPECT_THROW(run("CumSum", {x, i64({2}, {0, 1})}), Error);
}

// ---------------------------------------------------------------- TopK

TEST(ReductionTopK, OrderTiesAndK) {
  const Tensor x = f32({2, 5}, {3, 1, 3, 2, 3, 0, -1, 7, -1, 5});
  auto y = run("TopK", {x, i64({1}, {3})}, {}, 2, 11);
  EXPECT_EQ(y[0].shape(), (Shape{2, 3}));
  expect_near(y[0], {3, 3, 3, 7, 5, 0});
  EXPECT_EQ(values<int64_t>(y[1]), (std::vector<int64_t>{0, 2, 4, 2, 4, 0}));
  y = run("TopK", {x, i64({1}, {2})}, {{"largest", ai(0)}}, 2, 11);
  expect_near(y[0], {1, 2, -1, -1});
  EXPECT_EQ(values<int64_t>(y[1]), (std::vector<int64_t>{1, 3, 1, 3}));
  y = run("TopK", {x, i64({1}, {1})}, {{"axis", ai(0)}}, 2, 11);
  expect_near(y[0], {3, 1, 7, 2, 5});
  EXPECT_EQ(values<int64_t>(y[1]), (std::vector<int64_t>{0, 0, 1, 0, 1}));
  EXPECT_EQ(run("TopK", {x, i64({1}, {0})}, {}, 2, 11)[0].shape(), (Shape{2, 0}));
  EXPECT_THROW(run("TopK", {x, i64({1}, {6})}, {}, 2, 11), Error);
  auto u = run("TopK", {tensor<uint64_t>({3}, {5, 9, 1}), i64({1}, {2})}, {}, 2, 11);
  EXPECT_EQ(values<uint64_t>(u[0]), (std::vector<uint64_t>{9, 5}));
}

// ---------------------------------------------------------------- Losses

TEST(ReductionLosses, NllAndSoftmaxCrossEntropy) {
  // N = 2, C = 3, d = 2.
  const Tensor x = f32({2, 3, 2}, {-1, -2, -0.5f, -3, -4, -0.1f, -2, -1, -0.2f, -5, -3, -0.7f});
  const Tensor t = i64({2, 2}, {0, 2, 1, 1});
  const Tensor w = f32({3}, {1, 2, 0.5f});
  // x[n, c, d] is element (n * 3 + c) * 2 + d: the picked values are -1, -0.1, -0.2, -5.
  const double l00 = 1, l01 = 0.1, l10 = 0.2, l11 = 5;
  expect_near(run("NegativeLogLikelihoodLoss", {x, t}, {{"reduction", astr("none")}}, 1, 13)[0], {l00, l01, l10, l11});
  expect_near(run("NegativeLogLikelihoodLoss", {x, t}, {{"reduction", astr("sum")}}, 1, 13)[0], {l00 + l01 + l10 + l11});
  // Weighted mean: sum(w_t * l) / sum(w_t); target 1 ignored.
  auto y = run("NegativeLogLikelihoodLoss", {x, t, w}, {{"ignore_index", ai(1)}}, 1, 13)[0];
  EXPECT_EQ(y.shape(), Shape{});
  expect_near(y, {(1 * l00 + 0.5 * l01) / 1.5});
  EXPECT_THROW(run("NegativeLogLikelihoodLoss", {x, i64({2, 2}, {0, 3, 1, 1})}, {}, 1, 13), Error);
  EXPECT_THROW(run("NegativeLogLikelihoodLoss", {x, i64({2}, {0, 1})}, {}, 1, 13), Error);
  // SCE = NLL of log-softmax over C; log_prob is output 1.
  const Tensor s = f32({2, 3}, {1, 2, 3, 0, 0, 0});
  auto sce = run("SoftmaxCrossEntropyLoss", {s, i64({2}, {2, 0})}, {{"reduction", astr("none")}}, 2, 13);
  const double lse0 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)), lse1 = std::log(3.0);
  expect_near(sce[0], {lse0 - 3, lse1});
  expect_near(sce[1], {1 - lse0, 2 - lse0, 3 - lse0, -lse1, -lse1, -lse1});
  expect_near(run("SoftmaxCrossEntropyLoss", {s, i64({2}, {2, -1})}, {{"ignore_index", ai(-1)}}, 1, 13)[0], {lse0 - 3});
}

// ---------------------------------------------------------------- Det

TEST(ReductionDet, KnownDeterminants) {
  expect_near(run("Det", {f32({3, 3}, {2, -1, 0, 1, 3, 4, 0, 5, -2})})[0], {-54});
  auto y = run("Det", {f32({2, 2, 2}, {1, 2, 3, 4, 0, 1, 1, 0})})[0];
  EXPECT_EQ(y.shape(), (Shape{2}));
  expect_near(y, {-2, -1});
  expect_near(run("Det", {f32({2, 2}, {1, 2, 2, 4})})[0], {0});
  EXPECT_EQ(run("Det", {Tensor(DType::kFloat32, {0, 3, 3})})[0].shape(), (Shape{0}));
  EXPECT_THROW(run("Det", {f32({2, 3}, {1, 2, 3, 4, 5, 6})}), Error);
}

// ---------------------------------------------------------------- Einsum

TEST(ReductionEinsum, Equations) {
  const Tensor a = wave({3, 5}), b = wave({5, 2}, 0.3);
  auto mm = run("Einsum", {a, b}, {{"equation", astr("ij, jk -> ik")}}, 1, 12)[0];
  EXPECT_EQ(mm.shape(), (Shape{3, 2}));
  for (int i = 0; i < 3; ++i)
    for (int k = 0; k < 2; ++k) {
      double s = 0;
      for (int j = 0; j < 5; ++j) s += double(a.data<float>()[i * 5 + j]) * b.data<float>()[j * 2 + k];
      EXPECT_NEAR(mm.data<float>()[i * 2 + k], s, 1e-5);
    }
  const Tensor sq = f32({3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  expect_near(run("Einsum", {sq}, {{"equation", astr("ii")}}, 1, 12)[0], {15});
  expect_near(run("Einsum", {sq}, {{"equation", astr("ii->i")}}, 1, 12)[0], {1, 5, 9});
  expect_near(run("Einsum", {sq}, {{"equation", astr("ba")}}, 1, 12)[0], {1, 4, 7, 2, 5, 8, 3, 6, 9});  // implicit: "ab"
  // Ellipsis broadcasting [2, 1, 2] x [3, 2] -> [2, 3].
  auto e = run("Einsum", {f32({2, 1, 2}, {1, 2, 3, 4}), f32({3, 2}, {1, 0, 0, 1, 1, 1})},
               {{"equation", astr("...j,...j->...")}}, 1, 12)[0];
  EXPECT_EQ(e.shape(), (Shape{2, 3}));
  expect_near(e, {1, 2, 3, 3, 4, 7});
  auto ints = run("Einsum", {tensor<int64_t>({3}, {1, 2, 3}), tensor<int64_t>({2}, {10, 1})}, {{"equation", astr("i,j")}},
                  1, 12)[0];
  EXPECT_EQ(values<int64_t>(ints), (std::vector<int64_t>{10, 1, 20, 2, 30, 3}));
  expect_near(run("Einsum", {Tensor(DType::kFloat32, {0, 2})}, {{"equation", astr("ij->j")}}, 1, 12)[0], {0, 0});
  EXPECT_THROW(run("Einsum", {a, b}, {{"equation", astr("ij,jk->iz")}}, 1, 12), Error);
  EXPECT_THROW(run("Einsum", {a, a}, {{"equation", astr("ij,jk->ik")}}, 1, 12), Error);
  EXPECT_THROW(run("Einsum", {a}, {{"equation", astr("ijk->i")}}, 1, 12), Error);
}
