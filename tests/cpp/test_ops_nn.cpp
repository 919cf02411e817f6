// nn ops against independently computed values: naive direct loops for
// Conv/ConvTranspose/pools/GEMMs (odd and prime sizes, every attribute), hand
// values for quantization, and round trips (MaxPool -> MaxUnpool, im2col ->
// Col2Im, DeformConv with zero offsets == Conv).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "deepep/half.h"
#include "ir/graph.h"
#include "ir/op_registry.h"

using namespace deepep;

namespace {

// One node in a tiny graph; run() feeds inputs (undefined Tensor = omitted).
struct OpCase {
  Graph g;
  Node* node;
  explicit OpCase(const std::string& op, int n_out = 1) {
    node = g.add_node(op, "n");
    node->def = find_op(op);
    node->opset = 22;
    for (int i = 0; i < n_out; ++i) node->outputs.push_back(g.add_value("y" + std::to_string(i)));
  }
  OpCase& ints(const std::string& k, std::vector<int64_t> v) {
    Attribute a;
    a.kind = Attribute::Kind::kInts;
    a.ints = std::move(v);
    node->attrs[k] = a;
    return *this;
  }
  OpCase& i(const std::string& k, int64_t v) {
    Attribute a;
    a.kind = Attribute::Kind::kInt;
    a.i = v;
    node->attrs[k] = a;
    return *this;
  }
  OpCase& f(const std::string& k, float v) {
    Attribute a;
    a.kind = Attribute::Kind::kFloat;
    a.f = v;
    node->attrs[k] = a;
    return *this;
  }
  OpCase& s(const std::string& k, std::string v) {
    Attribute a;
    a.kind = Attribute::Kind::kString;
    a.s = std::move(v);
    node->attrs[k] = a;
    return *this;
  }
  std::vector<Tensor> run(const std::vector<Tensor>& in) {
    EXPECT_NE(node->def, nullptr) << node->op_type;
    KernelContext ctx{*node, {}, {}, nullptr};
    node->inputs.clear();
    for (size_t k = 0; k < in.size(); ++k) {
      ctx.inputs.push_back(in[k].defined() ? &in[k] : nullptr);
      Value* v = in[k].defined() ? g.add_value("x" + std::to_string(k) + "_" + std::to_string(g.values().size())) : nullptr;
      if (v) {
        v->dtype = in[k].dtype();
        v->shape = to_sym_shape(in[k].shape());
      }
      node->inputs.push_back(v);
    }
    ctx.outputs.resize(node->outputs.size());
    node->def->reference(ctx);
    return ctx.outputs;
  }
  // Shape inference on symbolic input shapes.
  InferContext::Out infer(const std::vector<std::pair<DType, SymShape>>& in, int out = 0) {
    node->inputs.clear();
    InferContext ctx{*node, {}, {}};
    for (size_t k = 0; k < in.size(); ++k) {
      Value* v = g.add_value("s" + std::to_string(k) + "_" + std::to_string(g.values().size()));
      v->dtype = in[k].first;
      v->shape = in[k].second;
      node->inputs.push_back(v);
      ctx.inputs.push_back(v);
    }
    ctx.outputs.resize(node->outputs.size());
    node->def->infer(ctx);
    return ctx.outputs[out];
  }
};

std::mt19937 rng(1234);

Tensor rand_f32(Shape s, float lo = -1.f, float hi = 1.f) {
  Tensor t(DType::kFloat32, std::move(s));
  std::uniform_real_distribution<float> d(lo, hi);
  for (int64_t k = 0; k < t.numel(); ++k) t.data<float>()[k] = d(rng);
  return t;
}

template <class T>
Tensor make(DType dt, Shape s, const std::vector<double>& v) {
  Tensor t(dt, std::move(s));
  EXPECT_EQ(int64_t(v.size()), t.numel());
  for (int64_t k = 0; k < t.numel(); ++k) t.data<T>()[k] = T(v[k]);
  return t;
}
Tensor f32(Shape s, const std::vector<double>& v) { return make<float>(DType::kFloat32, std::move(s), v); }
Tensor i64(Shape s, const std::vector<double>& v) { return make<int64_t>(DType::kInt64, std::move(s), v); }

template <class T = float>
std::vector<double> values(const Tensor& t) {
  std::vector<double> v;
  for (int64_t k = 0; k < t.numel(); ++k) v.push_back(double(t.data<T>()[k]));
  return v;
}

void expect_near(const Tensor& got, const std::vector<double>& want, double tol = 1e-4) {
  ASSERT_EQ(got.numel(), int64_t(want.size()));
  for (size_t k = 0; k < want.size(); ++k) {
    const double g = got.get_double(int64_t(k));
    ASSERT_NEAR(g, want[k], tol * (1 + std::fabs(want[k]))) << "at " << k;
  }
}

// ---- independent references -------------------------------------------------

// Direct convolution over 1-3 spatial dims (geometry given explicitly).
struct ConvRef {
  std::vector<int64_t> k, s, d, pb, out;
};
std::vector<double> conv_ref(const Tensor& x, const Tensor& w, const std::vector<double>& bias, int64_t group,
                             const ConvRef& r) {
  const Shape& xs = x.shape();
  const int nd = int(xs.size()) - 2;
  const int64_t N = xs[0], C = xs[1], M = w.dim(0), Cg = C / group, Mg = M / group;
  int64_t osz = 1, ksz = 1;
  for (int i = 0; i < nd; ++i) osz *= r.out[i], ksz *= r.k[i];
  std::vector<double> y(size_t(N * M * osz), 0.0);
  std::vector<int64_t> o(nd), kk(nd);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t oi = 0; oi < osz; ++oi) {
        int64_t rem = oi;
        for (int i = nd - 1; i >= 0; --i) o[i] = rem % r.out[i], rem /= r.out[i];
        double acc = bias.empty() ? 0.0 : bias[m];
        const int64_t gi = m / Mg;
        for (int64_t c = 0; c < Cg; ++c)
          for (int64_t ki = 0; ki < ksz; ++ki) {
            int64_t rk = ki;
            for (int i = nd - 1; i >= 0; --i) kk[i] = rk % r.k[i], rk /= r.k[i];
            int64_t xi = 0;
            bool inside = true;
            for (int i = 0; i < nd; ++i) {
              const int64_t p = o[i] * r.s[i] - r.pb[i] + kk[i] * r.d[i];
              inside = inside && p >= 0 && p < xs[i + 2];
              xi = xi * xs[i + 2] + p;
            }
            if (!inside) continue;
            acc += x.get_double((n * C + gi * Cg + c) * (x.numel() / (N * C)) + xi) *
                   w.get_double((m * Cg + c) * ksz + ki);
          }
        y[(n * M + m) * osz + oi] = acc;
      }
  return y;
}

std::vector<double> matmul_ref(const std::vector<double>& a, const std::vector<double>& b, int64_t M,
                               int64_t K, int64_t N, bool ta = false, bool tb = false) {
  std::vector<double> c(size_t(M * N), 0.0);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += (ta ? a[k * M + i] : a[i * K + k]) * (tb ? b[j * K + k] : b[k * N + j]);
      c[i * N + j] = acc;
    }
  return c;
}

}  // namespace

// ---- Gemm / MatMul ----------------------------------------------------------

TEST(NnGemm, AllTransposesAndBiasBroadcasts) {
  const int64_t M = 67, K = 131, N = 97;  // primes: partial register tiles on every edge
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      Tensor a = rand_f32(ta ? Shape{K, M} : Shape{M, K});
      Tensor b = rand_f32(tb ? Shape{N, K} : Shape{K, N});
      for (Shape cs : {Shape{}, Shape{N}, Shape{M, 1}, Shape{M, N}}) {
        Tensor c = rand_f32(cs);
        OpCase op("Gemm");
        op.i("transA", ta).i("transB", tb).f("alpha", 0.5f).f("beta", -2.f);
        Tensor y = op.run({a, b, c})[0];
        ASSERT_EQ(y.shape(), Shape({M, N}));
        auto want = matmul_ref(values(a), values(b), M, K, N, ta, tb);
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = 0; j < N; ++j) {
            const int64_t ci = cs.empty() ? 0 : cs.size() == 1 ? j : cs[1] == 1 ? i : i * N + j;
            want[i * N + j] = 0.5 * want[i * N + j] - 2.0 * c.data<float>()[ci];
          }
        expect_near(y, want, 1e-4);
      }
    }
}

TEST(NnGemm, LargeThreadedMatchesNaive) {
  // Big enough to take the threaded, multi-block (K > 256) path.
  const int64_t M = 203, K = 517, N = 301;
  Tensor a = rand_f32({M, K}), b = rand_f32({K, N});
  Tensor y = OpCase("Gemm").run({a, b})[0];
  const auto want = matmul_ref(values(a), values(b), M, K, N);
  expect_near(y, want, 1e-4);
}

TEST(NnGemm, OtherDtypesNoCAndErrors) {
  Tensor a = make<double>(DType::kFloat64, {2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = make<double>(DType::kFloat64, {3, 2}, {7, 8, 9, 10, 11, 12});
  Tensor y = OpCase("Gemm").f("alpha", 2.f).run({a, b})[0];
  EXPECT_EQ(y.dtype(), DType::kFloat64);
  expect_near(y, {2 * 58, 2 * 64, 2 * 139, 2 * 154});
  Tensor ai = make<int32_t>(DType::kInt32, {2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor bi = make<int32_t>(DType::kInt32, {3, 2}, {7, 8, 9, 10, 11, 12});
  Tensor ci = make<int32_t>(DType::kInt32, {1}, {-8});
  Tensor yi = OpCase("Gemm").run({ai, bi, ci})[0];
  EXPECT_EQ(values<int32_t>(yi), (std::vector<double>{50, 56, 131, 146}));
  Tensor ah = make<float16>(DType::kFloat16, {1, 3}, {0.5, 1, 2});
  Tensor bh = make<float16>(DType::kFloat16, {3, 1}, {2, 4, 8});
  expect_near(OpCase("Gemm").run({ah, bh})[0], {21});
  // Empty K: alpha*AB vanishes, only beta*C stays.
  Tensor y0 = OpCase("Gemm").run({rand_f32({3, 0}), rand_f32({0, 2}), f32({2}, {1, 2})})[0];
  expect_near(y0, {1, 2, 1, 2, 1, 2});
  EXPECT_THROW(OpCase("Gemm").run({rand_f32({2, 3}), rand_f32({4, 2})}), Error);
  EXPECT_THROW(OpCase("Gemm").run({rand_f32({2, 3}), rand_f32({3, 2}), rand_f32({3})}), Error);
  auto inf = OpCase("Gemm").i("transA", 1).infer({{DType::kFloat32, {Dim::known(5), Dim::sym("m")}},
                                                    {DType::kFloat32, {Dim::known(5), Dim::known(7)}}});
  EXPECT_EQ(sym_shape_str(*inf.shape), sym_shape_str({Dim::sym("m"), Dim::known(7)}));
}

TEST(NnMatMul, BatchedBroadcastAndVectors) {
  Tensor a = rand_f32({2, 1, 3, 5}), b = rand_f32({4, 5, 7});
  Tensor y = OpCase("MatMul").run({a, b})[0];
  ASSERT_EQ(y.shape(), Shape({2, 4, 3, 7}));
  const auto avals = values(a), bvals = values(b);
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 4; ++j) {
      std::vector<double> av(avals.begin() + i * 15, avals.begin() + (i + 1) * 15);
      std::vector<double> bv(bvals.begin() + j * 35, bvals.begin() + (j + 1) * 35);
      auto want = matmul_ref(av, bv, 3, 5, 7);
      for (int64_t k = 0; k < 21; ++k)
        ASSERT_NEAR(y.data<float>()[(i * 4 + j) * 21 + k], want[k], 1e-5);
    }
  // A batched, B shared: one folded GEMM.
  Tensor a3 = rand_f32({3, 11, 13}), b2 = rand_f32({13, 17});
  Tensor y3 = OpCase("MatMul").run({a3, b2})[0];
  expect_near(y3, matmul_ref(values(a3), values(b2), 33, 13, 17));
  // 1-D operands.
  Tensor v = f32({3}, {1, 2, 3}), m = f32({3, 2}, {1, 2, 3, 4, 5, 6});
  Tensor yv = OpCase("MatMul").run({v, m})[0];
  EXPECT_EQ(yv.shape(), Shape({2}));
  expect_near(yv, {22, 28});
  Tensor ym = OpCase("MatMul").run({f32({2, 3}, {1, 2, 3, 4, 5, 6}), v})[0];
  EXPECT_EQ(ym.shape(), Shape({2}));
  expect_near(ym, {14, 32});
  Tensor yd = OpCase("MatMul").run({v, v})[0];
  EXPECT_EQ(yd.shape(), Shape({}));
  expect_near(yd, {14});
}

TEST(NnMatMul, DtypesEmptyErrorsInference) {
  Tensor a = make<int64_t>(DType::kInt64, {2, 2}, {1, -2, 3, 4});
  Tensor b = make<int64_t>(DType::kInt64, {2, 2}, {5, 6, 7, -8});
  EXPECT_EQ(values<int64_t>(OpCase("MatMul").run({a, b})[0]), (std::vector<double>{-9, 22, 43, -14}));
  Tensor a8 = make<uint8_t>(DType::kUInt8, {1, 2}, {200, 100});
  Tensor b8 = make<uint8_t>(DType::kUInt8, {2, 1}, {1, 1});
  EXPECT_EQ(values<uint8_t>(OpCase("MatMul").run({a8, b8})[0]), (std::vector<double>{44}));  // wraps
  Tensor ab = make<bfloat16>(DType::kBFloat16, {1, 2}, {1.5, 2});
  Tensor bb = make<bfloat16>(DType::kBFloat16, {2, 1}, {2, 0.25});
  expect_near(OpCase("MatMul").run({ab, bb})[0], {3.5});
  Tensor e = OpCase("MatMul").run({rand_f32({0, 4}), rand_f32({4, 3})})[0];
  EXPECT_EQ(e.shape(), Shape({0, 3}));
  Tensor z = OpCase("MatMul").run({rand_f32({2, 0}), rand_f32({0, 3})})[0];
  expect_near(z, std::vector<double>(6, 0.0));
  EXPECT_THROW(OpCase("MatMul").run({rand_f32({2, 3}), rand_f32({2, 3})}), Error);
  EXPECT_THROW(OpCase("MatMul").run({rand_f32({2, 2, 3}), rand_f32({3, 3, 2})}), Error);
  auto inf = OpCase("MatMul").infer({{DType::kFloat32, {Dim::sym("b"), Dim::sym("s"), Dim::known(8)}},
                                      {DType::kFloat32, {Dim::known(8), Dim::known(4)}}});
  EXPECT_EQ(sym_shape_str(*inf.shape), "[b,s,4]");
}

TEST(NnMatMul, IntegerAndQLinear) {
  Tensor a = make<uint8_t>(DType::kUInt8, {2, 3}, {11, 7, 3, 10, 6, 2});
  Tensor b = make<int8_t>(DType::kInt8, {3, 2}, {1, -4, 2, 5, -3, 6});
  // per-row A zero points, scalar B zero point
  Tensor azp = make<uint8_t>(DType::kUInt8, {2}, {1, 2});
  Tensor bzp = make<int8_t>(DType::kInt8, {}, {-1});
  // A and B may differ in signedness; each zero point matches its operand.
  EXPECT_EQ(OpCase("MatMulInteger").run({a, b, azp, bzp})[0].data<int32_t>()[0], 10 * 2 + 6 * 3 + 2 * -2);
  EXPECT_THROW(OpCase("MatMulInteger").run({a, b, bzp, bzp}), Error);
  Tensor b8 = make<uint8_t>(DType::kUInt8, {3, 2}, {1, 4, 2, 5, 3, 6});
  Tensor bz8 = make<uint8_t>(DType::kUInt8, {}, {1});
  Tensor y = OpCase("MatMulInteger").run({a, b8, azp, bz8})[0];
  EXPECT_EQ(y.dtype(), DType::kInt32);
  // (a - [1;2]) x (b - 1)
  EXPECT_EQ(values<int32_t>(y), (std::vector<double>{10 * 0 + 6 * 1 + 2 * 2, 10 * 3 + 6 * 4 + 2 * 5,
                                                      8 * 0 + 4 * 1 + 0 * 2, 8 * 3 + 4 * 4 + 0}));
  // QLinearMatMul: y = round(acc * sa * sb / sy) + zy, saturated.
  Tensor qa = make<uint8_t>(DType::kUInt8, {1, 2}, {130, 120});
  Tensor qb = make<uint8_t>(DType::kUInt8, {2, 2}, {128, 138, 148, 98});
  Tensor sa = f32({}, {0.5}), sb = f32({}, {0.25}), sy = f32({}, {0.125});
  Tensor za = make<uint8_t>(DType::kUInt8, {}, {128});
  Tensor zb = make<uint8_t>(DType::kUInt8, {}, {128});
  Tensor zy = make<uint8_t>(DType::kUInt8, {}, {100});
  Tensor q = OpCase("QLinearMatMul").run({qa, sa, za, qb, sb, zb, sy, zy})[0];
  // acc = [2*0 + -8*20, 2*10 + -8*-30] = [-160, 260]; * 1 + 100 -> [-60 -> 0, 360 -> 255]
  EXPECT_EQ(values<uint8_t>(q), (std::vector<double>{0, 255}));
}

// ---- Conv family ------------------------------------------------------------

TEST(NnConv, TwoDAttributesAgainstDirectLoops) {
  struct Cfg {
    int64_t N, C, H, W, M, kh, kw, group;
    std::vector<int64_t> s, d, pads;
  };
  const std::vector<Cfg> cfgs = {
      {2, 3, 7, 9, 5, 3, 3, 1, {1, 1}, {1, 1}, {1, 1, 1, 1}},
      {1, 4, 11, 13, 6, 3, 2, 2, {2, 3}, {2, 1}, {0, 2, 1, 0}},  // groups, asym pads
      {1, 6, 9, 9, 6, 3, 3, 6, {2, 2}, {1, 1}, {1, 1, 1, 1}},    // depthwise
      {1, 3, 8, 8, 12, 3, 3, 3, {1, 1}, {1, 1}, {1, 1, 1, 1}},   // channel multiplier 4
      {3, 5, 6, 5, 7, 1, 1, 1, {1, 1}, {1, 1}, {0, 0, 0, 0}},    // pointwise, no im2col
      {1, 23, 37, 37, 5, 3, 3, 1, {1, 1}, {1, 1}, {1, 1, 1, 1}}, // im2col in several chunks
  };
  for (const Cfg& c : cfgs) {
    Tensor x = rand_f32({c.N, c.C, c.H, c.W}), w = rand_f32({c.M, c.C / c.group, c.kh, c.kw});
    Tensor b = rand_f32({c.M});
    OpCase op("Conv");
    op.ints("strides", c.s).ints("dilations", c.d).ints("pads", c.pads).i("group", c.group);
    Tensor y = op.run({x, w, b})[0];
    ConvRef r{{c.kh, c.kw}, c.s, c.d, {c.pads[0], c.pads[1]}, {}};
    for (int i = 0; i < 2; ++i) {
      const int64_t in = i ? c.W : c.H;
      r.out.push_back((in + c.pads[i] + c.pads[i + 2] - (r.k[i] - 1) * r.d[i] - 1) / r.s[i] + 1);
    }
    ASSERT_EQ(y.shape(), Shape({c.N, c.M, r.out[0], r.out[1]}));
    expect_near(y, conv_ref(x, w, values(b), c.group, r), 1e-4);
  }
}

TEST(NnConv, AutoPadOneAndThreeDims) {
  Tensor x = rand_f32({1, 2, 7, 8}), w = rand_f32({3, 2, 3, 4});
  for (const char* mode : {"SAME_UPPER", "SAME_LOWER", "VALID"}) {
    Tensor y = OpCase("Conv").s("auto_pad", mode).ints("strides", {2, 3}).run({x, w})[0];
    ConvRef r{{3, 4}, {2, 3}, {1, 1}, {0, 0}, {}};
    if (std::string(mode) == "VALID") {
      r.out = {3, 2};
    } else {
      r.out = {4, 3};
      // total pads: (4-1)*2+3-7 = 2, (3-1)*3+4-8 = 2
      r.pb = {1, 1};
    }
    ASSERT_EQ(y.shape(), Shape({1, 3, r.out[0], r.out[1]})) << mode;
    expect_near(y, conv_ref(x, w, {}, 1, r), 1e-4);
  }
  // SAME_LOWER puts the odd pad first: total 3 along W.
  Tensor x2 = rand_f32({1, 1, 4, 5}), w2 = rand_f32({1, 1, 1, 4});
  ConvRef rl{{1, 4}, {1, 1}, {1, 1}, {0, 2}, {4, 5}};
  expect_near(OpCase("Conv").s("auto_pad", "SAME_LOWER").run({x2, w2})[0], conv_ref(x2, w2, {}, 1, rl));
  ConvRef ru{{1, 4}, {1, 1}, {1, 1}, {0, 1}, {4, 5}};
  expect_near(OpCase("Conv").s("auto_pad", "SAME_UPPER").run({x2, w2})[0], conv_ref(x2, w2, {}, 1, ru));

  Tensor x1 = rand_f32({2, 3, 17}), w1 = rand_f32({4, 3, 5});
  Tensor y1 = OpCase("Conv").ints("pads", {2, 1}).ints("strides", {2}).ints("dilations", {2}).run({x1, w1})[0];
  ConvRef r1{{5}, {2}, {2}, {2}, {(17 + 3 - 8 - 1) / 2 + 1}};
  expect_near(y1, conv_ref(x1, w1, {}, 1, r1), 1e-4);

  Tensor x3 = rand_f32({1, 2, 5, 6, 7}), w3 = rand_f32({4, 1, 2, 3, 3});
  Tensor y3 = OpCase("Conv").i("group", 2).ints("pads", {1, 0, 1, 0, 1, 1}).run({x3, w3})[0];
  ConvRef r3{{2, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 0, 1}, {5, 5, 7}};
  ASSERT_EQ(y3.shape(), Shape({1, 4, 5, 5, 7}));
  expect_near(y3, conv_ref(x3, w3, {}, 2, r3), 1e-4);
}

TEST(NnConv, DtypesEmptyErrorsInference) {
  Tensor x = rand_f32({1, 2, 5, 5}), w = rand_f32({3, 2, 3, 3});
  ConvRef r{{3, 3}, {1, 1}, {1, 1}, {1, 1}, {5, 5}};
  const auto want = conv_ref(x, w, {}, 1, r);
  Tensor xd(DType::kFloat64, x.shape()), wd(DType::kFloat64, w.shape());
  Tensor xh(DType::kFloat16, x.shape()), wh(DType::kFloat16, w.shape());
  for (int64_t k = 0; k < x.numel(); ++k) xd.data<double>()[k] = x.data<float>()[k], xh.data<float16>()[k] = x.data<float>()[k];
  for (int64_t k = 0; k < w.numel(); ++k) wd.data<double>()[k] = w.data<float>()[k], wh.data<float16>()[k] = w.data<float>()[k];
  Tensor yd = OpCase("Conv").ints("pads", {1, 1, 1, 1}).run({xd, wd})[0];
  EXPECT_EQ(yd.dtype(), DType::kFloat64);
  expect_near(yd, want, 1e-9);
  Tensor yh = OpCase("Conv").ints("pads", {1, 1, 1, 1}).run({xh, wh})[0];
  EXPECT_EQ(yh.dtype(), DType::kFloat16);
  expect_near(yh, want, 2e-2);
  Tensor ye = OpCase("Conv").run({rand_f32({0, 2, 5, 5}), w})[0];
  EXPECT_EQ(ye.shape(), Shape({0, 3, 3, 3}));
  EXPECT_THROW(OpCase("Conv").run({rand_f32({1, 3, 5, 5}), w}), Error);           // channels
  EXPECT_THROW(OpCase("Conv").i("group", 2).run({x, rand_f32({3, 1, 3, 3})}), Error);  // 3 % 2
  EXPECT_THROW(OpCase("Conv").run({x, w, rand_f32({2})}), Error);                  // bias size
  auto inf = OpCase("Conv").ints("strides", {2, 2}).ints("pads", {1, 1, 1, 1}).infer(
      {{DType::kFloat32, {Dim::sym("n"), Dim::known(2), Dim::known(9), Dim::known(8)}},
       {DType::kFloat32, {Dim::known(4), Dim::known(2), Dim::known(3), Dim::known(3)}}});
  EXPECT_EQ(sym_shape_str(*inf.shape), "[n,4,5,4]");
}

TEST(NnConv, IntegerAndQLinear) {
  Tensor x = make<uint8_t>(DType::kUInt8, {1, 1, 3, 3}, {2, 3, 4, 5, 6, 7, 8, 9, 10});
  Tensor w = make<uint8_t>(DType::kUInt8, {2, 1, 2, 2}, {1, 1, 1, 1, 2, 0, 0, 2});
  Tensor xzp = make<uint8_t>(DType::kUInt8, {}, {1});
  Tensor wzp = make<uint8_t>(DType::kUInt8, {2}, {0, 1});  // per output channel
  Tensor y = OpCase("ConvInteger").run({x, w, xzp, wzp})[0];
  EXPECT_EQ(y.dtype(), DType::kInt32);
  // x - 1 = [1..9]; channel 0 sums 2x2 windows, channel 1 = x[i,j]*1 - x[i,j+1] - x[i+1,j] + x[i+1,j+1]
  EXPECT_EQ(values<int32_t>(y), (std::vector<double>{12, 16, 24, 28, 0, 0, 0, 0}));
  // QLinearConv with a 1x1 kernel: y = round((x - zx) * w * sx * sw / sy) + zy
  Tensor qx = make<uint8_t>(DType::kUInt8, {1, 1, 1, 3}, {10, 20, 250});
  Tensor qw = make<uint8_t>(DType::kUInt8, {1, 1, 1, 1}, {3});
  Tensor q = OpCase("QLinearConv").run({qx, f32({}, {0.5}), make<uint8_t>(DType::kUInt8, {}, {10}), qw,
                                         f32({1}, {0.5}), make<uint8_t>(DType::kUInt8, {1}, {0}),
                                         f32({}, {1.0}), make<uint8_t>(DType::kUInt8, {}, {5}),
                                         make<int32_t>(DType::kInt32, {1}, {2})})[0];
  // acc = (x-10)*3 + 2 = [2, 32, 722]; *0.25 + 5 = [5.5 -> 6 (half-even), 13, 185.5 -> 186]
  EXPECT_EQ(values<uint8_t>(q), (std::vector<double>{6, 13, 186}));
}

namespace {
// Direct transposed convolution (scatter) for 2-D.
std::vector<double> conv_transpose_ref(const Tensor& x, const Tensor& w, int64_t group, std::vector<int64_t> s,
                                       std::vector<int64_t> d, std::vector<int64_t> pb, Shape out) {
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const int64_t Mg = w.dim(1), KH = w.dim(2), KW = w.dim(3), Cg = C / group, M = Mg * group;
  std::vector<double> y(size_t(N * M * out[0] * out[1]), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t m = 0; m < Mg; ++m)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t ww = 0; ww < W; ++ww)
            for (int64_t i = 0; i < KH; ++i)
              for (int64_t j = 0; j < KW; ++j) {
                const int64_t oh = h * s[0] - pb[0] + i * d[0], ow = ww * s[1] - pb[1] + j * d[1];
                if (oh < 0 || oh >= out[0] || ow < 0 || ow >= out[1]) continue;
                const int64_t om = (c / Cg) * Mg + m;
                y[((n * M + om) * out[0] + oh) * out[1] + ow] +=
                    x.get_double(((n * C + c) * H + h) * W + ww) * w.get_double(((c * Mg + m) * KH + i) * KW + j);
              }
  return y;
}
}  // namespace

TEST(NnConvTranspose, StridesPadsGroupsOutputShape) {
  Tensor x = rand_f32({2, 4, 3, 5}), w = rand_f32({4, 3, 3, 2});
  {
    Tensor y = OpCase("ConvTranspose").ints("strides", {2, 3}).ints("pads", {1, 0, 0, 1}).ints(
        "output_padding", {1, 2}).ints("dilations", {1, 2}).i("group", 2).run({x, w})[0];
    // H: 2*2 + 1 + 3 - 1 = 7; W: 3*4 + 2 + 3 - 1 = 16
    ASSERT_EQ(y.shape(), Shape({2, 6, 7, 16}));
    expect_near(y, conv_transpose_ref(x, w, 2, {2, 3}, {1, 2}, {1, 0}, {7, 16}));
  }
  {
    Tensor b = rand_f32({3});
    Tensor y = OpCase("ConvTranspose").ints("strides", {2, 2}).ints("output_shape", {8, 12}).run(
        {x, rand_f32({4, 3, 3, 3}), b})[0];
    ASSERT_EQ(y.shape(), Shape({2, 3, 8, 12}));
  }
  {
    Tensor wq = rand_f32({4, 3, 3, 3});
    Tensor y = OpCase("ConvTranspose").ints("strides", {2, 2}).s("auto_pad", "SAME_UPPER").run({x, wq})[0];
    ASSERT_EQ(y.shape(), Shape({2, 3, 6, 10}));
    // total pad = 2*(in-1) + 3 - 2*in = 1 -> begin 0 (SAME_UPPER), end 1
    expect_near(y, conv_transpose_ref(x, wq, 1, {2, 2}, {1, 1}, {0, 0}, {6, 10}));
  }
  Tensor x1 = rand_f32({1, 2, 6}), w1 = rand_f32({2, 3, 4});
  Tensor y1 = OpCase("ConvTranspose").ints("strides", {3}).run({x1, w1})[0];
  ASSERT_EQ(y1.shape(), Shape({1, 3, 19}));
  EXPECT_THROW(OpCase("ConvTranspose").run({x, rand_f32({3, 3, 3, 3})}), Error);
}

// ---- pools ------------------------------------------------------------------

TEST(NnPool, MaxPoolIndicesCeilDilationsStorageOrder) {
  Tensor x = rand_f32({2, 3, 7, 6});
  OpCase op("MaxPool", 2);
  op.ints("kernel_shape", {3, 2}).ints("strides", {2, 2}).ints("pads", {1, 0, 1, 1}).ints("dilations", {1, 2})
      .i("ceil_mode", 1).i("storage_order", 1);
  auto out = op.run({x});
  // H: (7+2-3)/2+1 = 4 (ceil of 3+1); W: ceil((6+1-3)/2)+1 = 3
  ASSERT_EQ(out[0].shape(), Shape({2, 3, 4, 3}));
  for (int64_t p = 0; p < 6; ++p)
    for (int64_t oh = 0; oh < 4; ++oh)
      for (int64_t ow = 0; ow < 3; ++ow) {
        double best = -1e30;
        int64_t bi = -1;
        for (int64_t i = 0; i < 3; ++i)
          for (int64_t j = 0; j < 2; ++j) {
            const int64_t h = oh * 2 - 1 + i, w = ow * 2 + j * 2;
            if (h < 0 || h >= 7 || w < 0 || w >= 6) continue;
            const double v = x.data<float>()[(p * 7 + h) * 6 + w];
            if (v > best) best = v, bi = p * 42 + h + w * 7;  // column-major within the plane
          }
        const int64_t o = (p * 4 + oh) * 3 + ow;
        ASSERT_EQ(out[0].data<float>()[o], float(best));
        ASSERT_EQ(out[1].data<int64_t>()[o], bi);
      }
  Tensor xi = make<int8_t>(DType::kInt8, {1, 1, 1, 5}, {-5, 3, -7, 9, 1});
  Tensor yi = OpCase("MaxPool").ints("kernel_shape", {1, 2}).run({xi})[0];
  EXPECT_EQ(values<int8_t>(yi), (std::vector<double>{3, 3, 9, 9}));
  EXPECT_THROW(OpCase("MaxPool").run({x}), Error);  // no kernel_shape
  auto inf = OpCase("MaxPool", 2).ints("kernel_shape", {3, 3}).ints("strides", {2, 2}).infer(
      {{DType::kFloat32, {Dim::sym("n"), Dim::known(3), Dim::known(11), Dim::known(8)}}}, 1);
  EXPECT_EQ(inf.dtype, DType::kInt64);
  EXPECT_EQ(sym_shape_str(*inf.shape), "[n,3,5,3]");
}

TEST(NnPool, AverageLpAndGlobal) {
  Tensor x = f32({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  // 2x2 windows, stride 2, pads 1: corners see 1, 2 or 4 real values.
  Tensor a0 = OpCase("AveragePool").ints("kernel_shape", {2, 2}).ints("strides", {2, 2}).ints("pads", {1, 1, 1, 1})
                  .run({x})[0];
  expect_near(a0, {1, 2.5, 5.5, 7});
  Tensor a1 = OpCase("AveragePool").ints("kernel_shape", {2, 2}).ints("strides", {2, 2}).ints("pads", {1, 1, 1, 1})
                  .i("count_include_pad", 1).run({x})[0];
  expect_near(a1, {0.25, 5.0 / 4, 11.0 / 4, 28.0 / 4});
  Tensor ac = OpCase("AveragePool").ints("kernel_shape", {2, 2}).ints("strides", {2, 2}).i("ceil_mode", 1)
                  .run({x})[0];
  expect_near(ac, {3, 4.5, 7.5, 9});
  Tensor lp = OpCase("LpPool").ints("kernel_shape", {2, 2}).i("p", 3).run({x})[0];
  expect_near(lp, {std::cbrt(1 + 8 + 64 + 125.0), std::cbrt(8 + 27 + 125 + 216.0),
                   std::cbrt(64 + 125 + 343 + 512.0), std::cbrt(125 + 216 + 512 + 729.0)});
  Tensor g = rand_f32({2, 3, 4, 5, 3});
  Tensor ga = OpCase("GlobalAveragePool").run({g})[0];
  Tensor gm = OpCase("GlobalMaxPool").run({g})[0];
  Tensor gl = OpCase("GlobalLpPool").run({g})[0];
  ASSERT_EQ(ga.shape(), Shape({2, 3, 1, 1, 1}));
  for (int64_t p = 0; p < 6; ++p) {
    double s = 0, m = -1e30, q = 0;
    for (int64_t k = 0; k < 60; ++k) {
      const double v = g.data<float>()[p * 60 + k];
      s += v, m = std::max(m, v), q += v * v;
    }
    EXPECT_NEAR(ga.data<float>()[p], s / 60, 1e-5);
    EXPECT_EQ(gm.data<float>()[p], float(m));
    EXPECT_NEAR(gl.data<float>()[p], std::sqrt(q), 1e-5);
  }
  Tensor e = OpCase("AveragePool").ints("kernel_shape", {2}).run({rand_f32({0, 2, 5})})[0];
  EXPECT_EQ(e.shape(), Shape({0, 2, 4}));
  Tensor h = make<float16>(DType::kFloat16, {1, 1, 4}, {1, 2, 3, 4});
  Tensor ah = OpCase("AveragePool").ints("kernel_shape", {2}).ints("strides", {2}).s("auto_pad", "SAME_UPPER").run({h})[0];
  expect_near(ah, {1.5, 3.5});
}

TEST(NnPool, MaxUnpoolInvertsMaxPool) {
  Tensor x = rand_f32({1, 2, 4, 6});
  auto mp = OpCase("MaxPool", 2).ints("kernel_shape", {2, 2}).ints("strides", {2, 2}).run({x});
  Tensor y = OpCase("MaxUnpool").ints("kernel_shape", {2, 2}).ints("strides", {2, 2}).run({mp[0], mp[1]})[0];
  ASSERT_EQ(y.shape(), x.shape());
  for (int64_t k = 0; k < x.numel(); ++k) {
    const float v = y.data<float>()[k];
    ASSERT_TRUE(v == 0.f || v == x.data<float>()[k]);
  }
  for (int64_t k = 0; k < mp[1].numel(); ++k)
    ASSERT_EQ(y.data<float>()[mp[1].data<int64_t>()[k]], mp[0].data<float>()[k]);
  // A larger output_shape keeps the values at their natural coordinates.
  Tensor y2 = OpCase("MaxUnpool").ints("kernel_shape", {2, 2}).ints("strides", {2, 2})
                  .run({mp[0], mp[1], i64({4}, {1, 2, 5, 7})})[0];
  ASSERT_EQ(y2.shape(), Shape({1, 2, 5, 7}));
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t h = 0; h < 4; ++h)
      for (int64_t w = 0; w < 6; ++w)
        ASSERT_EQ(y2.data<float>()[(c * 5 + h) * 7 + w], y.data<float>()[(c * 4 + h) * 6 + w]);
  EXPECT_THROW(OpCase("MaxUnpool").ints("kernel_shape", {2, 2}).run({mp[0], i64({1, 2, 2, 3}, std::vector<double>(12, 999))}),
               Error);
}

// ---- quantization -----------------------------------------------------------

TEST(NnQuantize, PerTensorAxisBlockedAndFloat8) {
  Tensor x = f32({2, 4}, {0.5, 1.5, 2.5, -2.5, 300, -300, 7.49, 0});
  Tensor q = OpCase("QuantizeLinear").run({x, f32({}, {1}), make<uint8_t>(DType::kUInt8, {}, {10})})[0];
  EXPECT_EQ(q.dtype(), DType::kUInt8);
  // half to even, then + zero point, saturated
  EXPECT_EQ(values<uint8_t>(q), (std::vector<double>{10, 12, 12, 8, 255, 0, 17, 10}));
  Tensor qd = OpCase("QuantizeLinear").run({x, f32({}, {0.5})})[0];  // default uint8, zp 0
  EXPECT_EQ(values<uint8_t>(qd), (std::vector<double>{1, 3, 5, 0, 255, 0, 15, 0}));
  // per-axis (axis 1) int16
  Tensor qa = OpCase("QuantizeLinear").i("axis", 1).run(
      {x, f32({4}, {0.5, 1, 2, 4}), make<int16_t>(DType::kInt16, {4}, {0, 1, 2, 3})})[0];
  EXPECT_EQ(values<int16_t>(qa), (std::vector<double>{1, 3, 3, 2, 600, -299, 6, 3}));
  // blocked along axis 1 with block 3: scales [2, 2]
  Tensor qb = OpCase("QuantizeLinear").i("axis", 1).i("block_size", 3).run(
      {x, f32({2, 2}, {1, 2, 10, 100}), make<int8_t>(DType::kInt8, {2, 2}, {0, 0, 0, 0})})[0];
  EXPECT_EQ(values<int8_t>(qb), (std::vector<double>{0, 2, 2, -1, 30, -30, 1, 0}));
  Tensor dq = OpCase("DequantizeLinear").i("axis", 1).i("block_size", 3).run(
      {qb, f32({2, 2}, {1, 2, 10, 100}), make<int8_t>(DType::kInt8, {2, 2}, {0, 0, 0, 1})})[0];
  expect_near(dq, {0, 2, 2, -2, 300, -300, 10, -100});
  // float8: 448 saturates, 1e6 -> NaN code without saturate
  Tensor big = f32({3}, {1.0, 448.0, 1e6});
  Tensor q8 = OpCase("QuantizeLinear").i("output_dtype", int64_t(DType::kFloat8E4M3FN)).run({big, f32({}, {1})})[0];
  EXPECT_EQ(q8.dtype(), DType::kFloat8E4M3FN);
  EXPECT_EQ(values<uint8_t>(q8), (std::vector<double>{0x38, 0x7e, 0x7e}));
  Tensor q8n = OpCase("QuantizeLinear").i("output_dtype", int64_t(DType::kFloat8E4M3FN)).i("saturate", 0)
                   .run({big, f32({}, {1})})[0];
  EXPECT_EQ(q8n.data<uint8_t>()[2], 0x7f);
  Tensor d8 = OpCase("DequantizeLinear").run({q8, f32({}, {2})})[0];
  expect_near(d8, {2, 896, 896});
  // per-axis dequantize to float16 scale type, axis -1
  Tensor xi = make<uint8_t>(DType::kUInt8, {2, 2}, {10, 20, 30, 40});
  Tensor dh = OpCase("DequantizeLinear").i("axis", -1).run(
      {xi, make<float16>(DType::kFloat16, {2}, {0.5, 2}), make<uint8_t>(DType::kUInt8, {2}, {10, 0})})[0];
  EXPECT_EQ(dh.dtype(), DType::kFloat16);
  expect_near(dh, {0, 40, 10, 80});
  EXPECT_THROW(OpCase("DequantizeLinear").i("axis", 1).run({xi, f32({3}, {1, 1, 1})}), Error);
  EXPECT_THROW(OpCase("QuantizeLinear").i("axis", 1).i("block_size", 2).run({x, f32({2, 3}, {1, 1, 1, 1, 1, 1})}),
               Error);
  Tensor qe = OpCase("QuantizeLinear").run({rand_f32({0, 3}), f32({}, {1})})[0];
  EXPECT_EQ(qe.shape(), Shape({0, 3}));
}

TEST(NnQuantize, SubByteFloat4AndE8M0Scales) {
  // Sub-byte results are held one per byte, zero-extended (int4 -8 is code 8).
  // The ONNX test data: per-axis int4 with zero point 1, saturating to [-8, 7].
  Tensor x = f32({3, 4}, {0, 2.5, 4.8, 8.6, -30, -20, 6, 9, 12, 15, 16, 40});
  Tensor s = f32({3}, {2, 3, 4});
  Tensor q4 = OpCase("QuantizeLinear").i("axis", 0).run({x, s, make<uint8_t>(DType::kInt4, {3}, {1, 1, 1})})[0];
  EXPECT_EQ(q4.dtype(), DType::kInt4);
  EXPECT_EQ(values<uint8_t>(q4), (std::vector<double>{1, 2, 3, 5, 8, 10, 3, 4, 4, 5, 5, 7}));
  // uint4 [0, 15], int2 [-2, 1] (codes 2, 3 for -2, -1), uint2 [0, 3] via output_dtype.
  Tensor u4 = OpCase("QuantizeLinear").i("axis", 0).run({x, s, make<uint8_t>(DType::kUInt4, {3}, {0, 1, 2})})[0];
  EXPECT_EQ(values<uint8_t>(u4), (std::vector<double>{0, 1, 2, 4, 0, 0, 3, 4, 5, 6, 6, 12}));
  Tensor y = f32({6}, {-10, -1.5, -0.5, 0.5, 1.5, 10});
  Tensor i2 = OpCase("QuantizeLinear").i("output_dtype", int64_t(DType::kInt2)).run({y, f32({}, {1})})[0];
  EXPECT_EQ(i2.dtype(), DType::kInt2);
  EXPECT_EQ(values<uint8_t>(i2), (std::vector<double>{2, 2, 0, 0, 1, 1}));
  Tensor u2 = OpCase("QuantizeLinear").run({y, f32({}, {1}), make<uint8_t>(DType::kUInt2, {}, {1})})[0];
  EXPECT_EQ(values<uint8_t>(u2), (std::vector<double>{0, 0, 1, 1, 3, 3}));
  // Blocked int4 along axis 1, block 2: scales per pair of columns.
  Tensor qb = OpCase("QuantizeLinear").i("axis", 1).i("block_size", 2).run(
      {f32({1, 4}, {3, -3, 40, -40}), f32({1, 2}, {1, 10}), make<uint8_t>(DType::kInt4, {1, 2}, {0, 15})})[0];
  EXPECT_EQ(values<uint8_t>(qb), (std::vector<double>{3, 13, 3, 11}));  // 3, -3, 3, -5
  // Dequantize sign-extends int4/int2 codes and subtracts the zero point.
  Tensor d4 = OpCase("DequantizeLinear").run({make<uint8_t>(DType::kInt4, {5}, {0, 1, 7, 12, 8}), f32({}, {2}),
                                              make<uint8_t>(DType::kInt4, {1}, {1})})[0];
  expect_near(d4, {-2, 0, 12, -10, -18});
  Tensor du4 = OpCase("DequantizeLinear").run({make<uint8_t>(DType::kUInt4, {3}, {0, 8, 15}), f32({}, {0.5})})[0];
  expect_near(du4, {0, 4, 7.5});
  Tensor d2 = OpCase("DequantizeLinear").i("axis", 0).run(
      {make<uint8_t>(DType::kInt2, {2, 2}, {2, 1, 3, 0}), f32({2}, {1, 10}), make<uint8_t>(DType::kInt2, {2}, {0, 1})})[0];
  expect_near(d2, {-2, 1, -20, -10});
  Tensor blk = OpCase("DequantizeLinear").i("axis", 1).i("block_size", 2).run({qb, f32({1, 2}, {1, 10}),
      make<uint8_t>(DType::kInt4, {1, 2}, {0, 15})})[0];
  expect_near(blk, {3, -3, 40, -40});

  // float4 E2M1: nearest even, saturating to +-6 (the ONNX test data, axis 0).
  Tensor xf = f32({3, 4}, {0, 2.5, 4.8, 8.6, -30, -20, 6, 9, -0.0, -2.5, -4.8, -8.6});
  Tensor q = OpCase("QuantizeLinear").i("axis", 0).run({xf, s, make<uint8_t>(DType::kFloat4E2M1, {3}, {0, 0, 0})})[0];
  EXPECT_EQ(q.dtype(), DType::kFloat4E2M1);
  EXPECT_EQ(values<uint8_t>(q), (std::vector<double>{0, 2, 4, 6, 15, 15, 4, 5, 0, 9, 10, 12}));
  // Without a zero point the reference still adds 0: -0 comes out +0.
  Tensor qn = OpCase("QuantizeLinear").i("output_dtype", int64_t(DType::kFloat4E2M1)).run(
      {f32({3}, {-0.0, -0.1, 7}), f32({}, {1})})[0];
  EXPECT_EQ(values<uint8_t>(qn), (std::vector<double>{0, 8, 7}));
  // A zero point of 1.0 (code 2) shifts before rounding: 1 + 1 = 2, 2.4 + 1 = 3.4 -> 3.
  Tensor qz = OpCase("QuantizeLinear").run({f32({2}, {1, 2.4}), f32({}, {1}), make<uint8_t>(DType::kFloat4E2M1, {}, {2})})[0];
  EXPECT_EQ(values<uint8_t>(qz), (std::vector<double>{4, 5}));
  Tensor df = OpCase("DequantizeLinear").run({make<uint8_t>(DType::kFloat4E2M1, {5}, {0, 2, 10, 3, 14}), f32({}, {2}),
                                              make<uint8_t>(DType::kFloat4E2M1, {1}, {0})})[0];
  expect_near(df, {0, 2, -2, 3, -8});
  Tensor dfz = OpCase("DequantizeLinear").run({qz, f32({}, {1}), make<uint8_t>(DType::kFloat4E2M1, {}, {2})})[0];
  expect_near(dfz, {1, 2});  // (2 - 1) * 1, (3 - 1) * 1

  // float8 E8M0 scales (2^(c-127)): 128 is 2.0.
  Tensor e = make<uint8_t>(DType::kFloat8E8M0, {}, {128});
  Tensor qe = OpCase("QuantizeLinear").i("output_dtype", int64_t(DType::kInt4)).run({f32({3}, {1, 3, -16}), e})[0];
  EXPECT_EQ(values<uint8_t>(qe), (std::vector<double>{0, 2, 8}));  // 0.5 -> 0, 1.5 -> 2, -8
  Tensor de = OpCase("DequantizeLinear").i("output_dtype", int64_t(DType::kFloat32)).run({qe, e})[0];
  EXPECT_EQ(de.dtype(), DType::kFloat32);
  expect_near(de, {0, 4, -16});
  EXPECT_THROW(OpCase("DequantizeLinear").run({qe, e}), Error);  // e8m0 output needs output_dtype
  // Types without a quantized form.
  EXPECT_THROW(OpCase("QuantizeLinear").i("output_dtype", int64_t(DType::kFloat8E8M0)).run({y, f32({}, {1})}), Error);
  EXPECT_THROW(OpCase("DequantizeLinear").run({e, f32({}, {1})}), Error);
  // Inference takes the type from the zero point.
  EXPECT_EQ(OpCase("QuantizeLinear").infer({{DType::kFloat32, SymShape{Dim::known(2)}},
                                            {DType::kFloat32, SymShape{}},
                                            {DType::kUInt2, SymShape{}}}).dtype,
            DType::kUInt2);
}

TEST(NnQuantize, DynamicQuantizeLinear) {
  // The ONNX operator documentation's example.
  Tensor x = f32({6}, {0, 2, -3, -2.5, 1.34, 0.5});
  auto out = OpCase("DynamicQuantizeLinear", 3).run({x});
  EXPECT_NEAR(out[1].data<float>()[0], 5.0 / 255, 1e-7);
  EXPECT_EQ(out[2].data<uint8_t>()[0], 153);
  EXPECT_EQ(values<uint8_t>(out[0]), (std::vector<double>{153, 255, 0, 26, 221, 179}));
  EXPECT_THROW(OpCase("DynamicQuantizeLinear", 3).run({make<double>(DType::kFloat64, {1}, {1})}), Error);
}

// ---- Col2Im, RoiAlign, DeformConv ------------------------------------------

TEST(NnCol2Im, CountsBlockCoverage) {
  // Blocks of ones: each pixel receives the number of blocks covering it.
  const int64_t H = 5, W = 4;
  // block 2x3, strides 1x1, pads (1,0,0,1), dilation (2,1): blocks along H: (5+1-3)/1+1 = 4, W: (4+1-3)+1 = 3
  Tensor col(DType::kFloat32, {1, 2 * 6, 12});
  for (int64_t k = 0; k < col.numel(); ++k) col.data<float>()[k] = 1.f;
  Tensor y = OpCase("Col2Im").ints("pads", {1, 0, 0, 1}).ints("dilations", {2, 1})
                 .run({col, i64({2}, {H, W}), i64({2}, {2, 3})})[0];
  ASSERT_EQ(y.shape(), Shape({1, 2, H, W}));
  for (int64_t h = 0; h < H; ++h)
    for (int64_t w = 0; w < W; ++w) {
      int cnt = 0;
      for (int64_t bh = 0; bh < 4; ++bh)
        for (int64_t bw = 0; bw < 3; ++bw)
          for (int64_t i = 0; i < 2; ++i)
            for (int64_t j = 0; j < 3; ++j) cnt += (bh - 1 + 2 * i == h) && (bw + j == w);
      EXPECT_EQ(y.data<float>()[h * W + w], cnt) << h << "," << w;
      EXPECT_EQ(y.data<float>()[H * W + h * W + w], cnt);
    }
  EXPECT_THROW(OpCase("Col2Im").run({col, i64({2}, {H, W}), i64({2}, {5, 5})}), Error);  // 12 % 25
  EXPECT_THROW(OpCase("Col2Im").run({col, i64({2}, {H, W}), i64({2}, {2, 3})}), Error);  // 12 blocks != 4*2
}

TEST(NnRoiAlign, LinearImageGivesBinCenters) {
  // X = 10*h + w is linear, so every bilinear sample and every average of
  // symmetric samples equals the value at the bin center.
  Tensor x(DType::kFloat32, {1, 2, 8, 9});
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t h = 0; h < 8; ++h)
      for (int64_t w = 0; w < 9; ++w) x.data<float>()[(c * 8 + h) * 9 + w] = float(10 * h + w + 100 * c);
  Tensor rois = f32({2, 4}, {1, 1, 5, 4, 2.5, 0.5, 6.5, 6.5});  // x1 y1 x2 y2
  Tensor bi = i64({2}, {0, 0});
  Tensor y = OpCase("RoiAlign").i("output_height", 2).i("output_width", 3).i("sampling_ratio", 2)
                 .run({x, rois, bi})[0];  // half_pixel: coordinates shift by -0.5
  ASSERT_EQ(y.shape(), Shape({2, 2, 2, 3}));
  for (int64_t r = 0; r < 2; ++r)
    for (int64_t c = 0; c < 2; ++c)
      for (int64_t ph = 0; ph < 2; ++ph)
        for (int64_t pw = 0; pw < 3; ++pw) {
          const double x1 = rois.data<float>()[r * 4] - 0.5, y1 = rois.data<float>()[r * 4 + 1] - 0.5;
          const double bw = (rois.data<float>()[r * 4 + 2] - rois.data<float>()[r * 4]) / 3;
          const double bh = (rois.data<float>()[r * 4 + 3] - rois.data<float>()[r * 4 + 1]) / 2;
          const double cy = y1 + (ph + 0.5) * bh, cx = x1 + (pw + 0.5) * bw;
          EXPECT_NEAR(y.data<float>()[((r * 2 + c) * 2 + ph) * 3 + pw], 10 * cy + cx + 100 * c, 1e-4);
        }
  EXPECT_THROW(OpCase("RoiAlign").run({x, rois, i64({2}, {0, 1})}), Error);  // batch index 1 of 1
}

TEST(NnDeformConv, ZeroOffsetsEqualConvAndShiftsSample) {
  Tensor x = rand_f32({1, 4, 6, 7}), w = rand_f32({6, 2, 3, 2}), b = rand_f32({6});
  // output 4 x 6 with stride 1, no pads
  Tensor off(DType::kFloat32, {1, 2 * 3 * 2 * 2, 4, 6});
  for (int64_t k = 0; k < off.numel(); ++k) off.data<float>()[k] = 0.f;
  Tensor mask(DType::kFloat32, {1, 2 * 6, 4, 6});
  for (int64_t k = 0; k < mask.numel(); ++k) mask.data<float>()[k] = 1.f;
  Tensor yd = OpCase("DeformConv").i("group", 2).i("offset_group", 2).run({x, w, off, b, mask})[0];
  Tensor yc = OpCase("Conv").i("group", 2).run({x, w, b})[0];
  ASSERT_EQ(yd.shape(), yc.shape());
  expect_near(yd, values(yc), 1e-4);
  // Offsets of exactly +1 row shift the sampling; half a column interpolates.
  Tensor x1 = f32({1, 1, 3, 3}, {0, 1, 2, 3, 4, 5, 6, 7, 8});
  Tensor w1 = f32({1, 1, 1, 1}, {1});
  Tensor o1 = f32({1, 2, 3, 3}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5});
  Tensor y1 = OpCase("DeformConv").run({x1, w1, o1})[0];
  // sample (h+1, w+0.5): rows past the bottom read zeros
  expect_near(y1, {3.5, 4.5, 2.5, 6.5, 7.5, 4, 0, 0, 0});
  EXPECT_THROW(OpCase("DeformConv").run({x1, w1, f32({1, 2, 2, 2}, std::vector<double>(8, 0))}), Error);
}
