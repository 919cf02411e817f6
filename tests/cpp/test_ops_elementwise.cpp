// Elementwise ops: reference kernels against hand-computed (or independently
// computed, in double) values; broadcasting, odd sizes, empty tensors, dtypes,
// error cases, and shape inference.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "deepep/half.h"
#include "ir/dtype_dispatch.h"
#include "ir/graph.h"
#include "ir/op_registry.h"

using namespace deepep;

namespace {

template <class T>
Tensor make(DType dt, Shape shape, const std::vector<T>& vals) {
  Tensor t(dt, shape);
  EXPECT_EQ(int64_t(vals.size()), t.numel());
  for (size_t i = 0; i < vals.size(); ++i) t.data<T>()[i] = vals[i];
  return t;
}
Tensor f32(Shape s, const std::vector<float>& v) { return make<float>(DType::kFloat32, s, v); }
Tensor f64(Shape s, const std::vector<double>& v) { return make<double>(DType::kFloat64, s, v); }
Tensor i32(Shape s, const std::vector<int32_t>& v) { return make<int32_t>(DType::kInt32, s, v); }
Tensor i64(Shape s, const std::vector<int64_t>& v) { return make<int64_t>(DType::kInt64, s, v); }
Tensor i8(Shape s, const std::vector<int8_t>& v) { return make<int8_t>(DType::kInt8, s, v); }
Tensor u8(Shape s, const std::vector<uint8_t>& v) { return make<uint8_t>(DType::kUInt8, s, v); }
Tensor bools(Shape s, const std::vector<bool>& v) {
  Tensor t(DType::kBool, s);
  for (size_t i = 0; i < v.size(); ++i) t.data<bool>()[i] = v[i];
  return t;
}

Attribute ai(int64_t v) { Attribute a; a.kind = Attribute::Kind::kInt; a.i = v; return a; }
Attribute af(float v) { Attribute a; a.kind = Attribute::Kind::kFloat; a.f = v; return a; }
Attribute as(std::string v) { Attribute a; a.kind = Attribute::Kind::kString; a.s = std::move(v); return a; }

Value g_dummy_value;

// Runs op's reference kernel. `ins` entries that are undefined are omitted optional inputs.
std::vector<Tensor> run(const std::string& op, const std::vector<Tensor>& ins,
                        AttrMap attrs = {}, int n_out = 1, int opset = 22) {
  Node node;
  node.op_type = op;
  node.name = "n";
  node.opset = opset;
  node.attrs = std::move(attrs);
  node.outputs.assign(size_t(n_out), &g_dummy_value);
  const OpDef* def = find_op(op);
  EXPECT_NE(def, nullptr) << op;
  KernelContext ctx{node, {}, {}};
  for (const auto& t : ins) ctx.inputs.push_back(t.defined() ? &t : nullptr);
  ctx.outputs.resize(size_t(n_out));
  def->reference(ctx);
  return ctx.outputs;
}
Tensor run1(const std::string& op, const std::vector<Tensor>& ins, AttrMap attrs = {},
            int opset = 22) {
  return run(op, ins, std::move(attrs), 1, opset)[0];
}

template <class T>
std::vector<T> vals(const Tensor& t) {
  return std::vector<T>(t.data<T>(), t.data<T>() + t.numel());
}
std::vector<double> dvals(const Tensor& t) {
  std::vector<double> v;
  for (int64_t i = 0; i < t.numel(); ++i) v.push_back(t.get_double(i));
  return v;
}

void expect_near_all(const std::vector<double>& got, const std::vector<double>& want, double rtol,
                     const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(got[i])) << what << " [" << i << "]";
      continue;
    }
    EXPECT_NEAR(got[i], want[i], rtol * std::fabs(want[i]) + 1e-6) << what << " [" << i << "]";
  }
}

}  // namespace

// ---------------------------------------------------------------- unary math

TEST(ElementwiseUnary, FloatFunctionsMatchDouble) {
  struct Case {
    const char* op;
    std::function<double(double)> f;
    std::vector<double> x;  // 7 values in the op's domain
  };
  const std::vector<double> any = {-2.5, -1.0, -0.3, 0.0, 0.7, 1.9, 3.1};
  const std::vector<double> pos = {0.1, 0.5, 1.0, 1.7, 2.9, 7.3, 11.0};
  const std::vector<double> unit = {-0.9, -0.5, -0.1, 0.0, 0.3, 0.6, 0.95};
  const std::vector<double> ge1 = {1.0, 1.2, 1.5, 2.0, 3.7, 9.0, 20.0};
  const std::vector<Case> cases = {
      {"Exp", [](double v) { return std::exp(v); }, any},
      {"Log", [](double v) { return std::log(v); }, pos},
      {"Sqrt", [](double v) { return std::sqrt(v); }, pos},
      {"Reciprocal", [](double v) { return 1.0 / v; }, pos},
      {"Sin", [](double v) { return std::sin(v); }, any},
      {"Cos", [](double v) { return std::cos(v); }, any},
      {"Tan", [](double v) { return std::tan(v); }, unit},
      {"Asin", [](double v) { return std::asin(v); }, unit},
      {"Acos", [](double v) { return std::acos(v); }, unit},
      {"Atan", [](double v) { return std::atan(v); }, any},
      {"Sinh", [](double v) { return std::sinh(v); }, any},
      {"Cosh", [](double v) { return std::cosh(v); }, any},
      {"Asinh", [](double v) { return std::asinh(v); }, any},
      {"Acosh", [](double v) { return std::acosh(v); }, ge1},
      {"Atanh", [](double v) { return std::atanh(v); }, unit},
      {"Tanh", [](double v) { return std::tanh(v); }, any},
      {"Erf", [](double v) { return std::erf(v); }, any},
      {"Ceil", [](double v) { return std::ceil(v); }, any},
      {"Floor", [](double v) { return std::floor(v); }, any},
      {"Abs", [](double v) { return std::fabs(v); }, any},
      {"Neg", [](double v) { return -v; }, any},
      {"Sign", [](double v) { return v > 0 ? 1.0 : v < 0 ? -1.0 : 0.0; }, any},
      {"Sigmoid", [](double v) { return 1 / (1 + std::exp(-v)); }, any},
      {"Softplus", [](double v) { return std::log(1 + std::exp(v)); }, any},
      {"Softsign", [](double v) { return v / (1 + std::fabs(v)); }, any},
      {"Mish", [](double v) { return v * std::tanh(std::log(1 + std::exp(v))); }, any},
      {"HardSwish", [](double v) { return v * std::max(0.0, std::min(1.0, v / 6 + 0.5)); }, any},
      {"Relu", [](double v) { return v > 0 ? v : 0; }, any},
  };
  for (const auto& c : cases) {
    std::vector<double> want;
    for (double v : c.x) want.push_back(c.f(v));
    std::vector<float> xf(c.x.begin(), c.x.end());
    expect_near_all(dvals(run1(c.op, {f32({7}, xf)})), want, 1e-5, std::string(c.op) + " f32");
    expect_near_all(dvals(run1(c.op, {f64({7}, c.x)})), want, 1e-12, std::string(c.op) + " f64");
    std::vector<float16> xh(c.x.begin(), c.x.end());
    Tensor h = run1(c.op, {make<float16>(DType::kFloat16, {7, 1}, xh)});
    EXPECT_EQ(h.dtype(), DType::kFloat16);
    EXPECT_EQ(h.shape(), (Shape{7, 1}));
    std::vector<double> want_h;  // the f16-rounded input through f, then rounded to f16
    for (float16 v : xh) want_h.push_back(c.f(float(v)));
    expect_near_all(dvals(h), want_h, 2e-3, std::string(c.op) + " f16");
  }
}

TEST(ElementwiseUnary, RoundHalvesToEven) {
  Tensor y = run1("Round", {f32({9}, {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 2.4f, -2.6f, 7.0f})});
  EXPECT_EQ(vals<float>(y), (std::vector<float>{0, 2, 2, -0.0f, -2, -2, 2, -3, 7}));
  Tensor b = run1("Round", {make<bfloat16>(DType::kBFloat16, {2}, {bfloat16(2.5f), bfloat16(3.5f)})});
  EXPECT_EQ(float(b.data<bfloat16>()[0]), 2.0f);
  EXPECT_EQ(float(b.data<bfloat16>()[1]), 4.0f);
}

TEST(ElementwiseUnary, IntegersAbsNegSignWrap) {
  const int8_t mn = std::numeric_limits<int8_t>::min();
  EXPECT_EQ(vals<int8_t>(run1("Abs", {i8({5}, {-3, 0, 7, mn, -127})})), (std::vector<int8_t>{3, 0, 7, mn, 127}));
  EXPECT_EQ(vals<int8_t>(run1("Neg", {i8({5}, {-3, 0, 7, mn, 127})})), (std::vector<int8_t>{3, 0, -7, mn, -127}));
  EXPECT_EQ(vals<int64_t>(run1("Sign", {i64({3}, {-9, 0, 4})})), (std::vector<int64_t>{-1, 0, 1}));
  EXPECT_EQ(vals<uint8_t>(run1("Abs", {u8({2}, {200, 1})})), (std::vector<uint8_t>{200, 1}));
  EXPECT_THROW(run1("Neg", {u8({1}, {1})}), Error);
  EXPECT_THROW(run1("Exp", {i32({1}, {1})}), Error);
  EXPECT_EQ(vals<int32_t>(run1("Relu", {i32({3}, {-5, 0, 5})})), (std::vector<int32_t>{0, 0, 5}));
}

TEST(ElementwiseUnary, PredicatesAndNegations) {
  const float inf = INFINITY, nan = NAN;
  Tensor x = f32({5}, {1.0f, nan, inf, -inf, 0.0f});
  EXPECT_EQ(vals<bool>(run1("IsNaN", {x})), (std::vector<bool>{false, true, false, false, false}));
  EXPECT_EQ(vals<bool>(run1("IsInf", {x})), (std::vector<bool>{false, false, true, true, false}));
  EXPECT_EQ(vals<bool>(run1("IsInf", {x}, {{"detect_negative", ai(0)}})),
            (std::vector<bool>{false, false, true, false, false}));
  EXPECT_EQ(vals<bool>(run1("IsInf", {x}, {{"detect_positive", ai(0)}})),
            (std::vector<bool>{false, false, false, true, false}));
  Tensor h = make<float16>(DType::kFloat16, {2}, {float16(nan), float16(70000.0f)});  // overflows to inf
  EXPECT_EQ(vals<bool>(run1("IsNaN", {h})), (std::vector<bool>{true, false}));
  EXPECT_EQ(vals<bool>(run1("IsInf", {h})), (std::vector<bool>{false, true}));
  Tensor f8 = make<uint8_t>(DType::kFloat8E4M3FN, {2}, {0x7f, 0x38});  // NaN, 1.0
  EXPECT_EQ(vals<bool>(run1("IsNaN", {f8})), (std::vector<bool>{true, false}));
  EXPECT_EQ(vals<bool>(run1("Not", {bools({3}, {true, false, true})})), (std::vector<bool>{false, true, false}));
  EXPECT_THROW(run1("Not", {f32({1}, {1})}), Error);
  EXPECT_EQ(vals<uint8_t>(run1("BitwiseNot", {u8({3}, {0, 0x0f, 0xff})})), (std::vector<uint8_t>{0xff, 0xf0, 0}));
  EXPECT_EQ(vals<int32_t>(run1("BitwiseNot", {i32({2}, {0, -1})})), (std::vector<int32_t>{-1, 0}));
  EXPECT_THROW(run1("BitwiseNot", {f32({1}, {1})}), Error);
}

TEST(ElementwiseUnary, EmptyTensors) {
  for (const char* op : {"Exp", "Abs", "Relu", "Sigmoid", "Gelu", "Round", "IsNaN", "Clip", "Identity"}) {
    Tensor y = run1(op, {f32({0, 3}, {})});
    EXPECT_EQ(y.shape(), (Shape{0, 3})) << op;
  }
  EXPECT_EQ(run1("Add", {f32({0, 3}, {}), f32({1, 3}, {1, 2, 3})}).shape(), (Shape{0, 3}));
  EXPECT_EQ(run1("Cast", {f32({0}, {})}, {{"to", ai(7)}}).shape(), (Shape{0}));
  EXPECT_EQ(run1("Where", {bools({0, 1}, {}), f32({1}, {1}), f32({2}, {1, 2})}).shape(), (Shape{0, 2}));
}

// ---------------------------------------------------------------- activations

TEST(ElementwiseActivation, AttributesAndDefaults) {
  const std::vector<double> x = {-3.0, -1.0, -0.25, 0.0, 0.4, 1.0, 2.5};
  std::vector<float> xf(x.begin(), x.end());
  auto check = [&](const char* op, AttrMap attrs, std::function<double(double)> f) {
    std::vector<double> want;
    for (double v : x) want.push_back(f(v));
    expect_near_all(dvals(run1(op, {f32({7}, xf)}, attrs)), want, 1e-5, op);
  };
  check("LeakyRelu", {}, [](double v) { return v < 0 ? 0.01 * v : v; });
  check("LeakyRelu", {{"alpha", af(0.3f)}}, [](double v) { return v < 0 ? 0.3 * v : v; });
  check("Elu", {}, [](double v) { return v < 0 ? std::exp(v) - 1 : v; });
  check("Elu", {{"alpha", af(2.0f)}}, [](double v) { return v < 0 ? 2 * (std::exp(v) - 1) : v; });
  const double sa = 1.6732632423543772, sg = 1.0507009873554805;
  check("Selu", {}, [&](double v) { return v <= 0 ? sg * sa * (std::exp(v) - 1) : sg * v; });
  check("Selu", {{"alpha", af(2.0f)}, {"gamma", af(3.0f)}},
        [](double v) { return v <= 0 ? 3 * (2 * std::exp(v) - 2) : 3 * v; });
  check("Celu", {{"alpha", af(2.0f)}}, [](double v) { return v > 0 ? v : 2 * (std::exp(v / 2) - 1); });
  check("HardSigmoid", {}, [](double v) { return std::max(0.0, std::min(1.0, 0.2 * v + 0.5)); });
  check("HardSigmoid", {{"alpha", af(0.5f)}, {"beta", af(0.6f)}},
        [](double v) { return std::max(0.0, std::min(1.0, 0.5 * v + 0.6)); });
  check("ThresholdedRelu", {}, [](double v) { return v > 1.0 ? v : 0; });
  check("ThresholdedRelu", {{"alpha", af(0.3f)}}, [](double v) { return v > 0.3 ? v : 0; });
  check("Shrink", {}, [](double v) { return v < -0.5 ? v : v > 0.5 ? v : 0; });
  check("Shrink", {{"lambd", af(1.0f)}, {"bias", af(0.5f)}},
        [](double v) { return v < -1 ? v + 0.5 : v > 1 ? v - 0.5 : 0; });
  check("Swish", {}, [](double v) { return v / (1 + std::exp(-v)); });
  check("Swish", {{"alpha", af(1.702f)}}, [](double v) { return v / (1 + std::exp(-1.702 * v)); });
  check("Gelu", {}, [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); });
  check("Gelu", {{"approximate", as("tanh")}}, [](double v) {
    return 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
  });
  EXPECT_THROW(run1("Gelu", {f32({1}, {1})}, {{"approximate", as("erf")}}), Error);
  // Large inputs must not overflow.
  Tensor big = run1("Softplus", {f32({2}, {100.0f, -100.0f})});
  EXPECT_FLOAT_EQ(big.data<float>()[0], 100.0f);
  EXPECT_NEAR(big.data<float>()[1], 0.0f, 1e-30);
  EXPECT_FLOAT_EQ(run1("Sigmoid", {f32({1}, {-100.0f})}).data<float>()[0], float(1 / (1 + std::exp(100.0))));
  // Shrink on integers truncates toward zero.
  EXPECT_EQ(vals<int32_t>(run1("Shrink", {i32({3}, {-3, 0, 3})}, {{"lambd", af(1.5f)}, {"bias", af(1.5f)}})),
            (std::vector<int32_t>{-1, 0, 1}));
}

TEST(ElementwiseActivation, PReluBroadcastsSlope) {
  // X [2,3,1], slope [3,1] (per channel).
  Tensor x = f32({2, 3, 1}, {-1, 2, -3, 4, -5, -6});
  Tensor s = f32({3, 1}, {0.1f, 0.2f, 0.3f});
  expect_near_all(dvals(run1("PRelu", {x, s})), {-0.1, 2, -0.9, 4, -1.0, -1.8}, 1e-6, "PRelu");
  EXPECT_EQ(vals<int64_t>(run1("PRelu", {i64({3}, {-4, 0, 4}), i64({1}, {3})})), (std::vector<int64_t>{-12, 0, 4}));
  // The slope must broadcast to X, not the other way round.
  EXPECT_THROW(run1("PRelu", {f32({3}, {1, 2, 3}), f32({2, 3}, {1, 2, 3, 4, 5, 6})}), Error);
  EXPECT_THROW(run1("PRelu", {f32({3}, {1, 2, 3}), f64({1}, {1})}), Error);
}

// ---------------------------------------------------------------- binary

TEST(ElementwiseBinary, BroadcastingMatchesManualLoops) {
  // a [2,1,3], b [4,1] -> [2,4,3]
  std::vector<float> av = {1, 2, 3, 4, 5, 6}, bv = {10, 20, 30, 40};
  Tensor a = f32({2, 1, 3}, av), b = f32({4, 1}, bv);
  const std::map<std::string, std::function<double(double, double)>> ops = {
      {"Add", [](double x, double y) { return x + y; }},
      {"Sub", [](double x, double y) { return x - y; }},
      {"Mul", [](double x, double y) { return x * y; }},
      {"Div", [](double x, double y) { return x / y; }},
      {"Pow", [](double x, double y) { return std::pow(x, y / 10); }},
  };
  for (const auto& [op, f] : ops) {
    Tensor bb = op == "Pow" ? f32({4, 1}, {1, 2, 3, 4}) : b;
    Tensor y = run1(op, {a, bb});
    ASSERT_EQ(y.shape(), (Shape{2, 4, 3})) << op;
    std::vector<double> want;
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 4; ++j)
        for (int k = 0; k < 3; ++k) want.push_back(f(av[i * 3 + k], op == "Pow" ? (j + 1) * 10.0 : bv[j]));
    expect_near_all(dvals(y), want, 1e-6, op);
  }
  EXPECT_THROW(run1("Add", {f32({2, 3}, {1, 2, 3, 4, 5, 6}), f32({4}, {1, 2, 3, 4})}), Error);
  EXPECT_THROW(run1("Add", {f32({1}, {1}), f64({1}, {1})}), Error);
  // Scalar right operand and float16.
  Tensor h = run1("Mul", {make<float16>(DType::kFloat16, {3}, {float16(1.5f), float16(-2.0f), float16(3.0f)}),
                          make<float16>(DType::kFloat16, {}, {float16(2.0f)})});
  EXPECT_EQ(dvals(h), (std::vector<double>{3, -4, 6}));
}

TEST(ElementwiseBinary, IntegerArithmeticWrapsAndTruncates) {
  EXPECT_EQ(vals<int8_t>(run1("Add", {i8({2}, {100, -100}), i8({2}, {100, -100})})), (std::vector<int8_t>{-56, 56}));
  Tensor u16 = make<uint16_t>(DType::kUInt16, {1}, {65535});
  EXPECT_EQ(vals<uint16_t>(run1("Mul", {u16, u16})), (std::vector<uint16_t>{1}));
  EXPECT_EQ(vals<uint8_t>(run1("Sub", {u8({1}, {3}), u8({1}, {5})})), (std::vector<uint8_t>{254}));
  EXPECT_EQ(vals<int32_t>(run1("Div", {i32({5}, {7, -7, 7, -7, 5}), i32({5}, {2, 2, -2, -2, 0})})),
            (std::vector<int32_t>{3, -3, -3, 3, 0}));
  const int32_t mn = std::numeric_limits<int32_t>::min();
  EXPECT_EQ(vals<int32_t>(run1("Div", {i32({1}, {mn}), i32({1}, {-1})})), (std::vector<int32_t>{mn}));
}

TEST(ElementwiseBinary, ModSignRules) {
  Tensor a = i32({6}, {-7, 7, -7, 7, 5, 3}), b = i32({6}, {3, -3, -3, 3, 0, 5});
  EXPECT_EQ(vals<int32_t>(run1("Mod", {a, b})), (std::vector<int32_t>{2, -2, -1, 1, 0, 3}));
  EXPECT_EQ(vals<int32_t>(run1("Mod", {a, b}, {{"fmod", ai(1)}})), (std::vector<int32_t>{-1, 1, -1, 1, 0, 3}));
  Tensor y = run1("Mod", {f32({3}, {-7.5f, 7.5f, 4.0f}), f32({3}, {2.0f, -2.0f, 1.5f})}, {{"fmod", ai(1)}});
  EXPECT_EQ(vals<float>(y), (std::vector<float>{-1.5f, 1.5f, 1.0f}));
  EXPECT_EQ(vals<uint8_t>(run1("Mod", {u8({2}, {250, 7}), u8({2}, {7, 250})})), (std::vector<uint8_t>{5, 7}));
}

TEST(ElementwiseBinary, PowMixedTypes) {
  // float base, integer exponent: the base's type.
  Tensor y = run1("Pow", {f32({3}, {2.0f, -3.0f, 0.5f}), i64({3}, {3, 2, -1})});
  EXPECT_EQ(y.dtype(), DType::kFloat32);
  EXPECT_EQ(vals<float>(y), (std::vector<float>{8, 9, 2}));
  // integer base, float exponent: truncated.
  Tensor z = run1("Pow", {i32({3}, {2, 9, 5}), f32({3}, {0.5f, 0.5f, 2.0f})});
  EXPECT_EQ(z.dtype(), DType::kInt32);
  EXPECT_EQ(vals<int32_t>(z), (std::vector<int32_t>{1, 3, 25}));
  // integer ** integer exactly, including 3^39 in int64 (beyond double's 53 bits).
  Tensor w = run1("Pow", {i64({4}, {3, -2, 1, 2}), i64({4}, {39, 3, -5, -1})});
  EXPECT_EQ(vals<int64_t>(w), (std::vector<int64_t>{4052555153018976267LL, -8, 1, 0}));
  Tensor d = run1("Pow", {f64({2}, {2.0, 4.0}), f32({1}, {0.5f})});
  expect_near_all(dvals(d), {std::sqrt(2.0), 2.0}, 1e-15, "Pow f64^f32");
}

TEST(ElementwiseBinary, BitwiseAndShifts) {
  Tensor a = u8({4}, {0b1100, 0b1010, 0xff, 1}), b = u8({4}, {0b1010, 0b0110, 0x0f, 8});
  EXPECT_EQ(vals<uint8_t>(run1("BitwiseAnd", {a, b})), (std::vector<uint8_t>{0b1000, 0b0010, 0x0f, 0}));
  EXPECT_EQ(vals<uint8_t>(run1("BitwiseOr", {a, b})), (std::vector<uint8_t>{0b1110, 0b1110, 0xff, 9}));
  EXPECT_EQ(vals<uint8_t>(run1("BitwiseXor", {a, b})), (std::vector<uint8_t>{0b0110, 0b1100, 0xf0, 9}));
  Tensor x = u8({4}, {16, 4, 1, 255}), s = u8({4}, {1, 2, 7, 8});
  EXPECT_EQ(vals<uint8_t>(run1("BitShift", {x, s}, {{"direction", as("LEFT")}})),
            (std::vector<uint8_t>{32, 16, 128, 0}));
  EXPECT_EQ(vals<uint8_t>(run1("BitShift", {x, s}, {{"direction", as("RIGHT")}})),
            (std::vector<uint8_t>{8, 1, 0, 0}));
  Tensor big = make<uint64_t>(DType::kUInt64, {1}, {1});
  Tensor sh = make<uint64_t>(DType::kUInt64, {2}, {63, 64});
  EXPECT_EQ(vals<uint64_t>(run1("BitShift", {big, sh}, {{"direction", as("LEFT")}})),
            (std::vector<uint64_t>{uint64_t(1) << 63, 0}));
  EXPECT_THROW(run1("BitShift", {x, s}, {{"direction", as("UP")}}), Error);
  EXPECT_THROW(run1("BitwiseAnd", {f32({1}, {1}), f32({1}, {1})}), Error);
}

// ---------------------------------------------------------------- comparisons, logic

TEST(ElementwiseCompare, BroadcastNaNAndIntegers) {
  Tensor a = f32({2, 1}, {1.0f, NAN}), b = f32({3}, {0.0f, 1.0f, 2.0f});
  EXPECT_EQ(vals<bool>(run1("Equal", {a, b})), (std::vector<bool>{false, true, false, false, false, false}));
  EXPECT_EQ(vals<bool>(run1("Less", {a, b})), (std::vector<bool>{false, false, true, false, false, false}));
  EXPECT_EQ(vals<bool>(run1("Greater", {a, b})), (std::vector<bool>{true, false, false, false, false, false}));
  EXPECT_EQ(vals<bool>(run1("LessOrEqual", {a, b})), (std::vector<bool>{false, true, true, false, false, false}));
  EXPECT_EQ(vals<bool>(run1("GreaterOrEqual", {a, b})),
            (std::vector<bool>{true, true, false, false, false, false}));
  // uint64 values beyond int64 and double precision compare exactly.
  Tensor u = make<uint64_t>(DType::kUInt64, {2}, {18446744073709551615ULL, 9007199254740993ULL});
  Tensor v = make<uint64_t>(DType::kUInt64, {2}, {18446744073709551614ULL, 9007199254740992ULL});
  EXPECT_EQ(vals<bool>(run1("Greater", {u, v})), (std::vector<bool>{true, true}));
  EXPECT_EQ(vals<bool>(run1("Equal", {bools({2}, {true, false}), bools({1}, {true})})),
            (std::vector<bool>{true, false}));
  EXPECT_THROW(run1("Less", {i32({1}, {1}), i64({1}, {1})}), Error);
}

TEST(ElementwiseLogical, AndOrXorBroadcast) {
  Tensor a = bools({2, 2}, {true, true, false, false}), b = bools({2}, {true, false});
  EXPECT_EQ(vals<bool>(run1("And", {a, b})), (std::vector<bool>{true, false, false, false}));
  EXPECT_EQ(vals<bool>(run1("Or", {a, b})), (std::vector<bool>{true, true, true, false}));
  EXPECT_EQ(vals<bool>(run1("Xor", {a, b})), (std::vector<bool>{false, true, true, false}));
  EXPECT_THROW(run1("And", {a, u8({2}, {1, 0})}), Error);
}

// ---------------------------------------------------------------- variadic

TEST(ElementwiseVariadic, MaxMinSumMean) {
  Tensor a = f32({3}, {1, 5, -2}), b = f32({2, 1}, {0, 4}), c = f32({}, {3});
  // Broadcast to [2,3].
  EXPECT_EQ(vals<float>(run1("Max", {a, b, c})), (std::vector<float>{3, 5, 3, 4, 5, 4}));
  EXPECT_EQ(vals<float>(run1("Min", {a, b, c})), (std::vector<float>{0, 0, -2, 1, 3, -2}));
  EXPECT_EQ(vals<float>(run1("Sum", {a, b, c})), (std::vector<float>{4, 8, 1, 8, 12, 5}));
  expect_near_all(dvals(run1("Mean", {a, b, c})), {4 / 3., 8 / 3., 1 / 3., 8 / 3., 4, 5 / 3.}, 1e-6, "Mean");
  EXPECT_EQ(vals<float>(run1("Sum", {a})), (std::vector<float>{1, 5, -2}));
  // NaN propagates through Max/Min whichever side it is on.
  Tensor n = run1("Max", {f32({2}, {NAN, 1}), f32({2}, {1, NAN})});
  EXPECT_TRUE(std::isnan(n.data<float>()[0]) && std::isnan(n.data<float>()[1]));
  EXPECT_EQ(vals<uint32_t>(run1("Min", {make<uint32_t>(DType::kUInt32, {2}, {4000000000u, 7}),
                                        make<uint32_t>(DType::kUInt32, {2}, {3, 4000000000u})})),
            (std::vector<uint32_t>{3, 7}));
  EXPECT_THROW(run1("Max", {a, f64({1}, {1})}), Error);
  EXPECT_THROW(run1("Sum", {i32({1}, {1})}), Error);
  EXPECT_THROW(run1("Sum", {f32({2}, {1, 2}), f32({3}, {1, 2, 3})}), Error);
}

// ---------------------------------------------------------------- Where, Clip

TEST(ElementwiseWhere, ThreeWayBroadcast) {
  Tensor c = bools({2, 1}, {true, false});
  Tensor x = i64({3}, {1, 2, 3});
  Tensor y = i64({}, {-1});
  Tensor out = run1("Where", {c, x, y});
  EXPECT_EQ(out.shape(), (Shape{2, 3}));
  EXPECT_EQ(vals<int64_t>(out), (std::vector<int64_t>{1, 2, 3, -1, -1, -1}));
  Tensor h = run1("Where", {bools({2}, {false, true}), make<float16>(DType::kFloat16, {2}, {float16(1.0f), float16(2.0f)}),
                            make<float16>(DType::kFloat16, {1}, {float16(9.0f)})});
  EXPECT_EQ(dvals(h), (std::vector<double>{9, 2}));
  EXPECT_THROW(run1("Where", {u8({1}, {1}), x, y}), Error);
  EXPECT_THROW(run1("Where", {c, x, f32({1}, {1})}), Error);
}

TEST(ElementwiseClip, AttributeAndInputForms) {
  Tensor x = f32({5}, {-3, -1, 0.5f, 2, NAN});
  // Clip-6: attributes.
  Tensor a = run1("Clip", {x}, {{"min", af(-1.5f)}, {"max", af(1.0f)}}, 6);
  EXPECT_EQ(vals<float>(a).size(), 5u);
  EXPECT_EQ(std::vector<float>(a.data<float>(), a.data<float>() + 4), (std::vector<float>{-1.5f, -1, 0.5f, 1}));
  EXPECT_TRUE(std::isnan(a.data<float>()[4]));
  // Clip-13: optional inputs; only max given.
  Tensor b = run1("Clip", {x, Tensor(), f32({}, {0})}, {}, 13);
  EXPECT_EQ(std::vector<float>(b.data<float>(), b.data<float>() + 4), (std::vector<float>{-3, -1, 0, 0}));
  // min > max: everything becomes max.
  Tensor c = run1("Clip", {f32({3}, {-5, 0, 5}), f32({}, {2}), f32({}, {1})}, {}, 13);
  EXPECT_EQ(vals<float>(c), (std::vector<float>{1, 1, 1}));
  EXPECT_EQ(vals<int8_t>(run1("Clip", {i8({4}, {-128, -5, 5, 127}), i8({}, {-6}), i8({}, {6})}, {}, 13)),
            (std::vector<int8_t>{-6, -5, 5, 6}));
  EXPECT_EQ(vals<uint64_t>(run1("Clip", {make<uint64_t>(DType::kUInt64, {2}, {1, 18446744073709551615ULL}),
                                         make<uint64_t>(DType::kUInt64, {}, {2})},
                                {}, 13)),
            (std::vector<uint64_t>{2, 18446744073709551615ULL}));
  EXPECT_THROW(run1("Clip", {x, f64({}, {0})}, {}, 13), Error);
  EXPECT_THROW(run1("Clip", {x, f32({2}, {0, 1})}, {}, 13), Error);
}

// ---------------------------------------------------------------- casts

TEST(ElementwiseCast, NumericConversions) {
  Tensor x = f32({7}, {-2.7f, 2.7f, NAN, INFINITY, -1e20f, 300.0f, 0.0f});
  EXPECT_EQ(vals<int32_t>(run1("Cast", {x}, {{"to", ai(6)}})),
            (std::vector<int32_t>{-2, 2, 0, INT32_MAX, INT32_MIN, 300, 0}));
  EXPECT_EQ(vals<uint8_t>(run1("Cast", {x}, {{"to", ai(2)}})), (std::vector<uint8_t>{0, 2, 0, 255, 0, 255, 0}));
  EXPECT_EQ(vals<bool>(run1("Cast", {x}, {{"to", ai(9)}})),
            (std::vector<bool>{true, true, true, true, true, true, false}));
  EXPECT_EQ(vals<float>(run1("Cast", {bools({2}, {true, false})}, {{"to", ai(1)}})), (std::vector<float>{1, 0}));
  // Integer to integer wraps like numpy.
  EXPECT_EQ(vals<int8_t>(run1("Cast", {i32({3}, {200, -129, 5})}, {{"to", ai(3)}})), (std::vector<int8_t>{-56, 127, 5}));
  EXPECT_EQ(vals<int64_t>(run1("Cast", {make<uint64_t>(DType::kUInt64, {1}, {18446744073709551615ULL})}, {{"to", ai(7)}})),
            (std::vector<int64_t>{-1}));
  // Rounding to float16 and bfloat16 (nearest even).
  Tensor h = run1("Cast", {f64({3}, {1.0 + 1.0 / 2048, 65520.0, 0.1})}, {{"to", ai(10)}});
  EXPECT_EQ(h.dtype(), DType::kFloat16);
  EXPECT_EQ(h.data<float16>()[0].bits, 0x3c00);
  EXPECT_EQ(h.data<float16>()[1].bits, 0x7c00);
  EXPECT_EQ(h.data<float16>()[2].bits, 0x2e66);
  Tensor bf = run1("Cast", {f32({1}, {3.14159f})}, {{"to", ai(16)}});
  EXPECT_EQ(bf.data<bfloat16>()[0].bits, 0x4049);
  Tensor back = run1("Cast", {bf}, {{"to", ai(11)}});
  EXPECT_EQ(back.data<double>()[0], 3.140625);
  EXPECT_THROW(run1("Cast", {x}, {{"to", ai(8)}}), Error);  // string
  EXPECT_THROW(run1("Cast", {x}), Error);                   // no 'to'
}

TEST(ElementwiseCast, Float8SaturateAndNaN) {
  Tensor x = f32({5}, {1.0f, 3.3f, -500.0f, 0.0013f, INFINITY});
  // Codes from ml_dtypes (1.0 -> 0x38, 3.3 -> 0x45 (3.25), smallest subnormal 0x01).
  Tensor s = run1("Cast", {x}, {{"to", ai(17)}});
  EXPECT_EQ(s.dtype(), DType::kFloat8E4M3FN);
  EXPECT_EQ(vals<uint8_t>(s), (std::vector<uint8_t>{0x38, 0x45, 0xfe, 0x01, 0x7e}));
  Tensor ns = run1("Cast", {x}, {{"to", ai(17)}, {"saturate", ai(0)}});
  EXPECT_EQ(ns.data<uint8_t>()[2] & 0x7f, 0x7f);  // NaN
  EXPECT_EQ(ns.data<uint8_t>()[4] & 0x7f, 0x7f);
  // 464 is the tie between 448 (even) and overflow: it rounds to 448; just above overflows.
  Tensor tie = run1("Cast", {f32({2}, {-464.0f, 464.1f})}, {{"to", ai(17)}, {"saturate", ai(0)}});
  EXPECT_EQ(tie.data<uint8_t>()[0], 0xfe);
  EXPECT_EQ(tie.data<uint8_t>()[1], 0x7f);
  // E5M2 keeps infinity when not saturating: 3.3 -> 0x43 (3.5), 1000 -> 0x64 (1024).
  Tensor e5 = run1("Cast", {f32({3}, {3.3f, 1000.0f, INFINITY})}, {{"to", ai(19)}, {"saturate", ai(0)}});
  EXPECT_EQ(vals<uint8_t>(e5), (std::vector<uint8_t>{0x43, 0x64, 0x7c}));
  // float8 back to float is exact; FNUZ NaN is 0x80.
  Tensor f = run1("Cast", {make<uint8_t>(DType::kFloat8E4M3FNUZ, {3}, {0x80, 0x40, 0x00})}, {{"to", ai(1)}});
  EXPECT_TRUE(std::isnan(f.data<float>()[0]));
  EXPECT_EQ(f.data<float>()[1], 1.0f);  // bias 8
  EXPECT_EQ(f.data<float>()[2], 0.0f);
  // CastLike takes the target from its second input.
  Tensor like = run1("CastLike", {f32({2}, {1.0f, 1e6f}), make<uint8_t>(DType::kFloat8E5M2FNUZ, {0}, {})});
  EXPECT_EQ(like.dtype(), DType::kFloat8E5M2FNUZ);
  EXPECT_EQ(f8_to_float(like.data<uint8_t>()[1], F8Kind::E5M2FNUZ), 57344.0f);
}

TEST(ElementwiseCast, SubByteIntegers) {
  // Held one per byte, zero-extended: int4 -3 is 13. Casts keep the low bits (the
  // ONNX test data: -9 -> int4 7, 8 -> -8); floats truncate first; NaN/inf give 0.
  Tensor x = f32({10}, {-9, 8, -2.7f, 2.7f, 15, NAN, INFINITY, -0.5f, 1e10f, -1});
  Tensor q = run1("Cast", {x}, {{"to", ai(22)}});
  EXPECT_EQ(q.dtype(), DType::kInt4);
  EXPECT_EQ(vals<uint8_t>(q), (std::vector<uint8_t>{7, 8, 14, 2, 15, 0, 0, 0, 0, 15}));
  EXPECT_EQ(vals<uint8_t>(run1("Cast", {x}, {{"to", ai(21)}})),  // uint4: same codes
            (std::vector<uint8_t>{7, 8, 14, 2, 15, 0, 0, 0, 0, 15}));
  EXPECT_EQ(vals<uint8_t>(run1("Cast", {x}, {{"to", ai(26)}})),  // int2
            (std::vector<uint8_t>{3, 0, 2, 2, 3, 0, 0, 0, 0, 3}));
  EXPECT_EQ(vals<uint8_t>(run1("Cast", {x}, {{"to", ai(25)}})),  // uint2
            (std::vector<uint8_t>{3, 0, 2, 2, 3, 0, 0, 0, 0, 3}));
  // float16 and float64 sources, integers (wrapping) and bool.
  Tensor h = make<float16>(DType::kFloat16, {3}, {float16(-3.0f), float16(7.5f), float16(-8.0f)});
  EXPECT_EQ(vals<uint8_t>(run1("Cast", {h}, {{"to", ai(22)}})), (std::vector<uint8_t>{13, 7, 8}));
  EXPECT_EQ(vals<uint8_t>(run1("Cast", {f64({2}, {4294967299.0, -17.0})}, {{"to", ai(21)}})),
            (std::vector<uint8_t>{3, 15}));
  EXPECT_EQ(vals<uint8_t>(run1("Cast", {i32({4}, {-3, 300, 16, -1})}, {{"to", ai(22)}})),
            (std::vector<uint8_t>{13, 12, 0, 15}));
  EXPECT_EQ(vals<uint8_t>(run1("Cast", {make<uint64_t>(DType::kUInt64, {1}, {~uint64_t(0)})}, {{"to", ai(25)}})),
            (std::vector<uint8_t>{3}));
  EXPECT_EQ(vals<uint8_t>(run1("Cast", {bools({2}, {true, false})}, {{"to", ai(26)}})), (std::vector<uint8_t>{1, 0}));
  // Back out: int4/int2 sign-extend, uint4/uint2 do not.
  Tensor i4 = make<uint8_t>(DType::kInt4, {4}, {7, 8, 13, 0});
  EXPECT_EQ(vals<float>(run1("Cast", {i4}, {{"to", ai(1)}})), (std::vector<float>{7, -8, -3, 0}));
  EXPECT_EQ(vals<int8_t>(run1("Cast", {i4}, {{"to", ai(3)}})), (std::vector<int8_t>{7, -8, -3, 0}));
  EXPECT_EQ(vals<uint8_t>(run1("Cast", {i4}, {{"to", ai(2)}})), (std::vector<uint8_t>{7, 248, 253, 0}));
  EXPECT_EQ(vals<int64_t>(run1("Cast", {make<uint8_t>(DType::kUInt4, {2}, {15, 8})}, {{"to", ai(7)}})),
            (std::vector<int64_t>{15, 8}));
  EXPECT_EQ(vals<int32_t>(run1("Cast", {make<uint8_t>(DType::kInt2, {4}, {0, 1, 2, 3})}, {{"to", ai(6)}})),
            (std::vector<int32_t>{0, 1, -2, -1}));
  Tensor u2h = run1("Cast", {make<uint8_t>(DType::kUInt2, {2}, {3, 2})}, {{"to", ai(10)}});
  EXPECT_EQ(float(u2h.data<float16>()[0]), 3.0f);
  EXPECT_EQ(vals<bool>(run1("Cast", {i4}, {{"to", ai(9)}})), (std::vector<bool>{true, true, true, false}));
  // Between sub-byte types: int4 -3 -> uint4 13 -> int2 1 (low bits).
  Tensor u4 = run1("Cast", {i4}, {{"to", ai(21)}});
  EXPECT_EQ(vals<uint8_t>(u4), (std::vector<uint8_t>{7, 8, 13, 0}));
  EXPECT_EQ(vals<uint8_t>(run1("Cast", {u4}, {{"to", ai(26)}})), (std::vector<uint8_t>{3, 0, 1, 0}));
  // CastLike with a sub-byte target.
  Tensor like = run1("CastLike", {f32({2}, {-1, 3}), make<uint8_t>(DType::kInt2, {0}, {})});
  EXPECT_EQ(like.dtype(), DType::kInt2);
  EXPECT_EQ(vals<uint8_t>(like), (std::vector<uint8_t>{3, 3}));
}

TEST(ElementwiseCast, Float4E2M1AndE8M0) {
  // float4: nearest even, saturating, NaN as ml_dtypes (the ONNX test data's codes).
  Tensor x = f32({10}, {0.48f, 0.25f, 1.05f, -3.5f, -8, 9, INFINITY, NAN, 0.01f, -0.0f});
  Tensor f4 = run1("Cast", {x}, {{"to", ai(23)}});
  EXPECT_EQ(f4.dtype(), DType::kFloat4E2M1);
  EXPECT_EQ(vals<uint8_t>(f4), (std::vector<uint8_t>{1, 0, 2, 14, 15, 7, 7, 8, 0, 8}));
  EXPECT_EQ(vals<float>(run1("Cast", {f4}, {{"to", ai(1)}})),
            (std::vector<float>{0.5f, 0, 1, -4, -6, 6, 6, -0.0f, 0, -0.0f}));
  Tensor f4h = run1("Cast", {make<float16>(DType::kFloat16, {2}, {float16(2.5f), float16(-1.25f)})}, {{"to", ai(23)}});
  EXPECT_EQ(vals<uint8_t>(f4h), (std::vector<uint8_t>{4, 10}));
  EXPECT_EQ(vals<uint8_t>(run1("Cast", {i64({3}, {3, -5, 100})}, {{"to", ai(23)}})), (std::vector<uint8_t>{5, 14, 7}));
  // float64 goes through float32 like ml_dtypes: just past the 0.25 tie becomes the tie (-> 0).
  EXPECT_EQ(run1("Cast", {f64({1}, {0.25 + 1e-12})}, {{"to", ai(23)}}).data<uint8_t>()[0], 0);
  // float4 -> int4 goes through the value: -6 -> int4 -6 (code 10); 1.5 truncates to 1.
  Tensor f4i = run1("Cast", {make<uint8_t>(DType::kFloat4E2M1, {2}, {15, 3})}, {{"to", ai(22)}});
  EXPECT_EQ(vals<uint8_t>(f4i), (std::vector<uint8_t>{10, 1}));
  // e8m0: round_mode up by default (the ONNX test data), down, nearest; saturate.
  Tensor e = f32({6}, {0, 0.124f, 1.1f, 1.5f, 8, NAN});
  EXPECT_EQ(vals<uint8_t>(run1("Cast", {e}, {{"to", ai(24)}})), (std::vector<uint8_t>{0, 124, 128, 128, 130, 255}));
  EXPECT_EQ(vals<uint8_t>(run1("Cast", {e}, {{"to", ai(24)}, {"round_mode", as("down")}})),
            (std::vector<uint8_t>{0, 123, 127, 127, 130, 255}));
  EXPECT_EQ(vals<uint8_t>(run1("Cast", {e}, {{"to", ai(24)}, {"round_mode", as("nearest")}})),
            (std::vector<uint8_t>{0, 124, 127, 128, 130, 255}));
  Tensor big = f32({1}, {3e38f});
  EXPECT_EQ(run1("Cast", {big}, {{"to", ai(24)}}).data<uint8_t>()[0], 254);
  EXPECT_EQ(run1("Cast", {big}, {{"to", ai(24)}, {"saturate", ai(0)}}).data<uint8_t>()[0], 255);
  EXPECT_THROW(run1("Cast", {e}, {{"to", ai(24)}, {"round_mode", as("sideways")}}), Error);
  // e8m0 out: 2^(code-127), 255 NaN; to float16 underflows/overflows like any float.
  Tensor ec = make<uint8_t>(DType::kFloat8E8M0, {4}, {0, 124, 142, 255});
  Tensor ef = run1("Cast", {ec}, {{"to", ai(1)}});
  EXPECT_EQ(ef.data<float>()[0], std::ldexp(1.0f, -127));
  EXPECT_EQ(ef.data<float>()[1], 0.125f);
  EXPECT_EQ(ef.data<float>()[2], 32768.0f);
  EXPECT_TRUE(std::isnan(ef.data<float>()[3]));
  Tensor eh = run1("Cast", {ec}, {{"to", ai(10)}});
  EXPECT_EQ(eh.data<float16>()[0].bits, 0);
  EXPECT_EQ(float(eh.data<float16>()[2]), 32768.0f);
  // float16 source and CastLike with the round_mode attribute.
  Tensor like = run1("CastLike", {make<float16>(DType::kFloat16, {2}, {float16(1.1f), float16(3.0f)}), ec},
                     {{"round_mode", as("down")}});
  EXPECT_EQ(like.dtype(), DType::kFloat8E8M0);
  EXPECT_EQ(vals<uint8_t>(like), (std::vector<uint8_t>{127, 128}));
  // float8 -> e8m0 -> float4 all go through float.
  Tensor chain = run1("Cast", {run1("Cast", {f32({1}, {5.0f})}, {{"to", ai(17)}})}, {{"to", ai(24)}});
  EXPECT_EQ(chain.data<uint8_t>()[0], 130);  // 5 rounds up to 8
  EXPECT_EQ(run1("Cast", {chain}, {{"to", ai(23)}}).data<uint8_t>()[0], 7);  // 8 saturates to 6
}

TEST(ElementwiseCast, BitCastReinterprets) {
  Tensor y = run1("BitCast", {f32({2}, {1.0f, -2.0f})}, {{"to", ai(6)}});
  EXPECT_EQ(y.dtype(), DType::kInt32);
  EXPECT_EQ(vals<int32_t>(y), (std::vector<int32_t>{0x3f800000, int32_t(0xc0000000u)}));
  Tensor z = run1("BitCast", {i8({2}, {-1, 5})}, {{"to", ai(2)}});
  EXPECT_EQ(vals<uint8_t>(z), (std::vector<uint8_t>{255, 5}));
  EXPECT_THROW(run1("BitCast", {f32({1}, {1})}, {{"to", ai(7)}}), Error);
  // 4-bit types reinterpret as each other only (int4 -3 is code 13 = uint4 13).
  Tensor u4 = run1("BitCast", {make<uint8_t>(DType::kInt4, {2}, {13, 7})}, {{"to", ai(21)}});
  EXPECT_EQ(u4.dtype(), DType::kUInt4);
  EXPECT_EQ(vals<uint8_t>(u4), (std::vector<uint8_t>{13, 7}));
  EXPECT_THROW(run1("BitCast", {make<uint8_t>(DType::kInt4, {1}, {1})}, {{"to", ai(2)}}), Error);
  EXPECT_THROW(run1("BitCast", {make<uint8_t>(DType::kInt2, {1}, {1})}, {{"to", ai(21)}}), Error);
}

// ---------------------------------------------------------------- Identity, Dropout

TEST(ElementwiseDropout, InferenceAndSeededTraining) {
  Tensor x = f32({7}, {1, 2, 3, 4, 5, 6, 7});
  EXPECT_EQ(vals<float>(run1("Identity", {x})), vals<float>(x));
  // Owned storage is shared; a caller's buffer (no owner) is copied.
  EXPECT_EQ(run1("Identity", {x}).raw(), x.raw());
  float buf[2] = {1, 2};
  Tensor ext = Tensor::wrap(DType::kFloat32, {2}, buf, nullptr);
  Tensor id = run1("Identity", {ext});
  EXPECT_NE(id.raw(), static_cast<void*>(buf));
  EXPECT_EQ(vals<float>(id), (std::vector<float>{1, 2}));
  EXPECT_NE(run1("BitCast", {ext}, {{"to", ai(6)}}).raw(), static_cast<void*>(buf));
  auto outs = run("Dropout", {x}, {}, 2, 13);
  EXPECT_EQ(vals<float>(outs[0]), vals<float>(x));
  EXPECT_EQ(vals<bool>(outs[1]), std::vector<bool>(7, true));
  // Dropout-7: ratio attribute, mask of the data type.
  auto old = run("Dropout", {x}, {{"ratio", af(0.3f)}}, 2, 7);
  EXPECT_EQ(old[1].dtype(), DType::kFloat32);
  EXPECT_EQ(vals<float>(old[1]), std::vector<float>(7, 1.0f));
  // Training with seed 0 draws numpy.random.seed(0); uniform(size=7) =
  // .549 .715 .603 .545 .424 .646 .438: with ratio .5, elements 4 and 6 drop.
  auto tr = run("Dropout", {x, f32({}, {0.5f}), bools({}, {true})}, {{"seed", ai(0)}}, 2, 13);
  EXPECT_EQ(vals<float>(tr[0]), (std::vector<float>{2, 4, 6, 8, 0, 12, 0}));
  EXPECT_EQ(vals<bool>(tr[1]), (std::vector<bool>{true, true, true, true, false, true, false}));
  // training_mode false, and ratio 0, are the identity.
  EXPECT_EQ(vals<float>(run1("Dropout", {x, f32({}, {0.5f}), bools({}, {false})}, {}, 13)), vals<float>(x));
  EXPECT_EQ(vals<float>(run1("Dropout", {x, f32({}, {0.0f}), bools({}, {true})}, {}, 13)), vals<float>(x));
  EXPECT_THROW(run1("Dropout", {x, f32({}, {1.0f}), bools({}, {true})}, {}, 13), Error);
}

// ---------------------------------------------------------------- shape inference

TEST(ElementwiseInfer, DtypesAndShapes) {
  auto infer = [](const std::string& op, std::vector<Value*> ins, AttrMap attrs = {},
                  int n_out = 1) {
    Node node;
    node.op_type = op;
    node.opset = 22;
    node.attrs = std::move(attrs);
    InferContext ctx{node, {}, {}};
    for (Value* v : ins) ctx.inputs.push_back(v);
    ctx.outputs.resize(size_t(n_out));
    find_op(op)->infer(ctx);
    return ctx.outputs;
  };
  Value a, b, c;
  a.dtype = DType::kFloat32;
  a.shape = SymShape{Dim::sym("batch"), Dim::known(1), Dim::known(3)};
  b.dtype = DType::kFloat32;
  b.shape = SymShape{Dim::known(5), Dim::known(1)};
  c.dtype = DType::kBool;
  c.shape = SymShape{};
  auto add = infer("Add", {&a, &b});
  EXPECT_EQ(add[0].dtype, DType::kFloat32);
  EXPECT_EQ(sym_shape_str(*add[0].shape), sym_shape_str({Dim::sym("batch"), Dim::known(5), Dim::known(3)}));
  EXPECT_EQ(infer("Less", {&a, &b})[0].dtype, DType::kBool);
  EXPECT_EQ(infer("Cast", {&a}, {{"to", ai(7)}})[0].dtype, DType::kInt64);
  EXPECT_EQ(infer("CastLike", {&a, &c})[0].dtype, DType::kBool);
  EXPECT_EQ(infer("IsNaN", {&a})[0].dtype, DType::kBool);
  auto w = infer("Where", {&c, &b, &a});
  EXPECT_EQ(w[0].dtype, DType::kFloat32);
  EXPECT_EQ(w[0].shape->size(), 3u);
  auto d = infer("Dropout", {&a}, {}, 2);
  EXPECT_EQ(d[1].dtype, DType::kBool);
  EXPECT_EQ(sym_shape_str(*d[1].shape), sym_shape_str(*a.shape));
  Value unknown;
  unknown.dtype = DType::kFloat32;
  EXPECT_FALSE(infer("Mul", {&a, &unknown})[0].shape.has_value());
}
