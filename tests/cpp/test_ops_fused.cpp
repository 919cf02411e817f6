// The deepep-domain fused kernels against the unfused ONNX chains they
// replace, on random data: odd and prime sizes, sizes big enough to thread,
// broadcasting residuals/masks/skips, every epilogue activation, every
// attention layout and mask mode; and their errors for bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "deepep/error.h"
#include "ir/graph_text_parser.h"
#include "runtime/executor.h"

using namespace deepep;

namespace {

Tensor rnd(const Shape& s, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  Tensor t(DType::kFloat32, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

Tensor bools(const Shape& s, uint32_t seed) {
  std::mt19937 rng(seed);
  Tensor t(DType::kBool, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<bool>()[i] = (rng() % 4) != 0;
  return t;
}

std::vector<Tensor> run_text(const std::string& text, const std::vector<Tensor>& in) {
  auto g = parse_graph_text(text);
  Executor ex;
  return ex.run_graph(*g, in, nullptr);
}

// max |got - want| / max |want|
double rel_err(const Tensor& got, const Tensor& want) {
  EXPECT_EQ(got.shape(), want.shape());
  if (got.shape() != want.shape()) return 1e9;
  double scale = 1e-30, err = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    scale = std::max(scale, std::fabs(want.get_double(i)));
    const double d = std::fabs(got.get_double(i) - want.get_double(i));
    if (std::isnan(got.get_double(i)) != std::isnan(want.get_double(i))) return 1e9;
    if (!std::isnan(d)) err = std::max(err, d);
  }
  return err / scale;
}

void expect_same(const std::string& fused, const std::string& chain, const std::vector<Tensor>& in,
                 double tol = 1e-5) {
  auto a = run_text(fused, in);
  auto b = run_text(chain, in);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_LE(rel_err(a[i], b[i]), tol) << "output " << i << "\n" << fused;
}

std::string shape_text(const Shape& s) {
  std::string r = "float32[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
  return r + "]";
}

struct ActCase {
  const char* name;    // the epilogue's activation
  const char* params;  // its activation_params ("" none)
  const char* chain;   // chain lines computing %act from %pre
};
const ActCase kActs[] = {
    {"", "", "%act = Identity(%pre)"},
    {"Relu", "", "%act = Relu(%pre)"},
    {"LeakyRelu", "[0.125]", "%act = LeakyRelu<alpha=0.125>(%pre)"},
    {"Sigmoid", "", "%act = Sigmoid(%pre)"},
    {"Tanh", "", "%act = Tanh(%pre)"},
    {"SiLU", "", "%sg = Sigmoid(%pre)\n %act = Mul(%pre, %sg)"},
    {"Gelu", "", "%act = Gelu(%pre)"},
    {"GeluTanh", "", "%act = Gelu<approximate=\"tanh\">(%pre)"},
    {"Clip", "[-0.25,0.5]", "%lo: float32[] = const[-0.25]\n %hi: float32[] = const[0.5]\n %act = Clip(%pre, %lo, %hi)"},
    {"HardSigmoid", "[0.3,0.4]", "%act = HardSigmoid<alpha=0.3, beta=0.4>(%pre)"},
    {"HardSwish", "", "%act = HardSwish(%pre)"},
};

std::string epilogue_attrs(const ActCase& a, bool res_first) {
  std::string s;
  if (*a.name) s += std::string("activation=\"") + a.name + "\"";
  if (*a.params) s += std::string(", activation_params=") + a.params;
  if (res_first) s += std::string(s.empty() ? "" : ", ") + "residual_before_activation=1";
  return s.empty() ? "" : "<" + s + ">";
}

}  // namespace

TEST(FusedMatMul, EveryActivationAndResidualMatchesTheChain) {
  // Sizes: small (one thread) and big enough for the threaded strips, both ways.
  const std::vector<std::array<int64_t, 4>> sizes = {{2, 5, 7, 13}, {3, 67, 129, 71}, {1, 9, 130, 1030}};
  uint32_t seed = 1;
  for (const auto& [B, M, K, N] : sizes)
    for (const ActCase& a : kActs)
      for (int res = 0; res < 3; ++res) {  // none, after the activation, before it
        const Shape as{B, M, K}, ws{K, N}, bs{N}, rs{M, N};  // residual broadcasts over the batch
        const std::string ins = "%a: " + shape_text(as) + ", %w: " + shape_text(ws) + ", %b: " + shape_text(bs) +
                                ", %r: " + shape_text(rs);
        const std::string fused = "graph main(" + ins + ") {\n %y = deepep.FusedMatMul" +
                                  epilogue_attrs(a, res == 2) + "(%a, %w, %b" + (res ? ", %r" : "") +
                                  ")\n return %y\n}";
        std::string chain = "graph main(" + ins + ") {\n %m = MatMul(%a, %w)\n %mb = Add(%b, %m)\n";
        if (res == 2) chain += " %pre = Add(%mb, %r)\n";
        else chain += " %pre = Identity(%mb)\n";
        chain += std::string(" ") + a.chain + "\n";
        chain += res == 1 ? " %y = Add(%r, %act)\n" : " %y = Identity(%act)\n";
        chain += " return %y\n}";
        SCOPED_TRACE(std::string(a.name) + " residual " + std::to_string(res) + " M " + std::to_string(M));
        expect_same(fused, chain, {rnd(as, seed), rnd(ws, seed + 1), rnd(bs, seed + 2), rnd(rs, seed + 3)});
        ++seed;
      }
}

TEST(FusedMatMul, TransposedWeightAlphaNoBiasAndVectorA) {
  // Gemm-style: trans_b, alpha, a [1, N] bias.
  expect_same(R"(graph main(%a: float32[37,29], %w: float32[41,29], %b: float32[1,41]) {
      %y = deepep.FusedMatMul<trans_b=1, alpha=0.5, activation="Tanh">(%a, %w, %b)
      return %y
    })",
              R"(graph main(%a: float32[37,29], %w: float32[41,29], %b: float32[1,41]) {
      %g = Gemm<transB=1, alpha=0.5>(%a, %w, %b)
      %y = Tanh(%g)
      return %y
    })",
              {rnd({37, 29}, 5), rnd({41, 29}, 6), rnd({1, 41}, 7)});
  // No bias, a residual only; a 1-D A.
  expect_same(R"(graph main(%a: float32[11], %w: float32[11,6], %r: float32[6]) {
      %y = deepep.FusedMatMul(%a, %w, _, %r)
      return %y
    })",
              R"(graph main(%a: float32[11], %w: float32[11,6], %r: float32[6]) {
      %m = MatMul(%a, %w)
      %y = Add(%m, %r)
      return %y
    })",
              {rnd({11}, 8), rnd({11, 6}, 9), rnd({6}, 10)});
}

TEST(FusedMatMul, BadInputsAreErrors) {
  const char* g = R"(graph main(%a: float32[2,3], %w: float32[4,5], %r: float32[3,5]) {
      %y = deepep.FusedMatMul(%a, %w, _, %r)
      return %y
    })";
  EXPECT_THROW(run_text(g, {rnd({2, 3}, 1), rnd({4, 5}, 2), rnd({3, 5}, 3)}), Error);  // K mismatch
  EXPECT_THROW(run_text(g, {rnd({2, 4}, 1), rnd({4, 5}, 2), rnd({3, 5}, 3)}), Error);  // residual enlarges
  EXPECT_THROW(run_text(R"(graph main(%a: float32[2,4], %w: float32[4,5]) {
      %y = deepep.FusedMatMul<activation="Swishy">(%a, %w)
      return %y
    })",
                        {rnd({2, 4}, 1), rnd({4, 5}, 2)}),
               Error);
}

TEST(FusedConv, ActivationsResidualAndGroupsMatchTheChain) {
  struct ConvCase {
    Shape x, w;
    std::string attrs;
  };
  const ConvCase cases[] = {
      {{2, 5, 11, 9}, {7, 5, 3, 3}, "pads=[1,1,1,1]"},
      {{1, 6, 13, 13}, {6, 1, 3, 3}, "group=6, pads=[1,1,1,1], strides=[2,2]"},  // depthwise
      {{2, 16, 19, 17}, {33, 16, 1, 1}, ""},                                      // pointwise, threaded epilogue
      {{1, 3, 40, 37}, {64, 3, 7, 7}, "pads=[3,3,3,3], strides=[2,2]"},
  };
  uint32_t seed = 100;
  for (const ConvCase& c : cases)
    for (const ActCase* a : {&kActs[0], &kActs[1], &kActs[8], &kActs[5], &kActs[10]})
      for (int res = 0; res < 3; ++res) {
        // The output shape, for the residual input.
        auto probe = parse_graph_text("graph main(%x: " + shape_text(c.x) + ", %w: " + shape_text(c.w) +
                                      ") {\n %y = Conv<" + (c.attrs.empty() ? "group=1" : c.attrs) +
                                      ">(%x, %w)\n return %y\n}");
        Executor ex;
        const Shape ys = ex.run_graph(*probe, {rnd(c.x, 1), rnd(c.w, 2)}, nullptr)[0].shape();
        const std::string ins = "%x: " + shape_text(c.x) + ", %w: " + shape_text(c.w) + ", %b: float32[" +
                                std::to_string(c.w[0]) + "], %r: " + shape_text(ys);
        std::string attrs = c.attrs;
        std::string ep = epilogue_attrs(*a, res == 2);
        if (!ep.empty()) attrs += (attrs.empty() ? "" : ", ") + ep.substr(1, ep.size() - 2);
        const std::string fused = "graph main(" + ins + ") {\n %y = deepep.FusedConv" +
                                  (attrs.empty() ? "" : "<" + attrs + ">") + "(%x, %w, %b" +
                                  (res ? ", %r" : "") + ")\n return %y\n}";
        std::string chain = "graph main(" + ins + ") {\n %c = Conv" + (c.attrs.empty() ? "" : "<" + c.attrs + ">") +
                            "(%x, %w, %b)\n";
        chain += res == 2 ? " %pre = Add(%c, %r)\n" : " %pre = Identity(%c)\n";
        chain += std::string(" ") + a->chain + "\n";
        chain += res == 1 ? " %y = Add(%act, %r)\n" : " %y = Identity(%act)\n";
        chain += " return %y\n}";
        SCOPED_TRACE(fused);
        expect_same(fused, chain, {rnd(c.x, seed), rnd(c.w, seed + 1), rnd({c.w[0]}, seed + 2), rnd(ys, seed + 3)});
        ++seed;
      }
}

TEST(FusedConv, ResidualOfAnotherShapeIsAnError) {
  EXPECT_THROW(run_text(R"(graph main(%x: float32[1,2,5,5], %w: float32[3,2,3,3], %r: float32[1,3,1,1]) {
      %y = deepep.FusedConv(%x, %w, _, %r)
      return %y
    })",
                        {rnd({1, 2, 5, 5}, 1), rnd({3, 2, 3, 3}, 2), rnd({1, 3, 1, 1}, 3)}),
               Error);
}

TEST(PointwiseDepthwiseConv, MatchesTheConvChain) {
  // NCHW (the reference; the CPU kernel takes channels_last = 1, tested in
  // test_kernels_cpu_pointwise_depthwise.cpp against this reference).
  struct Case {
    Shape x;
    int64_t E, K;
    std::string dw;  // the depthwise conv's geometry
  };
  const Case cases[] = {{{2, 5, 11, 9}, 13, 3, "pads=[1,1,1,1]"},
                        {{1, 3, 12, 10}, 16, 3, "strides=[2,2], pads=[1,0,0,1]"},
                        {{1, 4, 9, 9}, 7, 5, "dilations=[2,1], pads=[4,2,4,2]"}};
  uint32_t seed = 600;
  for (const Case& c : cases)
    for (const ActCase* a1 : {&kActs[0], &kActs[8], &kActs[10]})
      for (const ActCase* a2 : {&kActs[0], &kActs[1], &kActs[3]}) {
        const Shape w1{c.E, c.x[1], 1, 1}, w2{c.E, 1, c.K, c.K};
        const std::string ins = "%x: " + shape_text(c.x) + ", %w1: " + shape_text(w1) + ", %b1: float32[" +
                                std::to_string(c.E) + "], %w2: " + shape_text(w2) + ", %b2: float32[" +
                                std::to_string(c.E) + "]";
        const std::string dw = c.dw + ", group=" + std::to_string(c.E);
        std::string attrs = dw;
        const std::string ep1 = epilogue_attrs(*a1, false), ep2 = epilogue_attrs(*a2, false);
        if (!ep2.empty()) attrs += ", " + ep2.substr(1, ep2.size() - 2);
        if (!ep1.empty()) {
          std::string p = ep1.substr(1, ep1.size() - 2);
          for (size_t at = p.find("activation"); at != std::string::npos; at = p.find("activation", at + 20))
            p.insert(at, "pointwise_");
          attrs += ", " + p;
        }
        const std::string fused = "graph main(" + ins + ") {\n %y = deepep.PointwiseDepthwiseConv<" + attrs +
                                  ">(%x, %w1, %b1, %w2, %b2)\n return %y\n}";
        std::string chain = "graph main(" + ins + ") {\n %pre = Conv(%x, %w1, %b1)\n " + a1->chain + "\n";
        chain += " %e = Identity(%act)\n %pre2 = Conv<" + dw + ">(%e, %w2, %b2)\n ";
        std::string act2 = a2->chain;
        for (const char* from : {"%pre", "%act", "%sg", "%lo", "%hi"})
          for (size_t at = act2.find(from); at != std::string::npos; at = act2.find(from, at + 3))
            act2.insert(at + std::string(from).size(), "2");
        chain += act2 + "\n return %act2\n}";
        SCOPED_TRACE(fused);
        expect_same(fused, chain,
                    {rnd(c.x, seed), rnd(w1, seed + 1), rnd({c.E}, seed + 2), rnd(w2, seed + 3), rnd({c.E}, seed + 4)});
        seed += 5;
      }
}

TEST(SkipLayerNorm, MatchesAddThenLayerNorm) {
  struct Case {
    Shape x, skip, gamma;
    int64_t axis;
  };
  const Case cases[] = {
      {{2, 5, 24}, {2, 5, 24}, {24}, -1},
      {{3, 7, 33}, {1, 7, 33}, {33}, -1},  // position-embedding-like skip
      {{3, 7, 33}, {33}, {1, 33}, -1},     // a bias-like skip
      {{2, 6, 5, 4}, {5, 4}, {5, 4}, -2},  // two normalized dims
      {{64, 130, 96}, {64, 130, 96}, {96}, -1},  // threaded
  };
  uint32_t seed = 300;
  for (const Case& c : cases)
    for (int with_beta = 0; with_beta < 2; ++with_beta)
      for (int with_sum = 0; with_sum < 2; ++with_sum) {
        const std::string ins = "%x: " + shape_text(c.x) + ", %s: " + shape_text(c.skip) + ", %g: " +
                                shape_text(c.gamma) + ", %b: " + shape_text(c.gamma);
        const std::string attrs = "<axis=" + std::to_string(c.axis) + ", epsilon=0.001>";
        const std::string outs = with_sum ? "%y, %sum" : "%y";
        const std::string fused = "graph main(" + ins + ") {\n " + outs + " = deepep.SkipLayerNorm" + attrs +
                                  "(%x, %s, %g" + (with_beta ? ", %b" : "") + ")\n return " + outs + "\n}";
        const std::string chain = "graph main(" + ins + ") {\n %sum = Add(%x, %s)\n %y = LayerNormalization" + attrs +
                                  "(%sum, %g" + (with_beta ? ", %b" : "") + ")\n return " + outs + "\n}";
        SCOPED_TRACE(fused);
        expect_same(fused, chain,
                    {rnd(c.x, seed, -2, 3), rnd(c.skip, seed + 1), rnd(c.gamma, seed + 2), rnd(c.gamma, seed + 3)});
        ++seed;
      }
}

TEST(SkipLayerNorm, GeneralBroadcastsMatchTheChain) {
  // Skips that are no repeated block of X, and X smaller than the sum.
  const std::vector<std::array<Shape, 2>> cases = {
      {Shape{2, 3, 4}, Shape{2, 1, 4}}, {Shape{2, 3, 4}, Shape{3, 1}}, {Shape{1, 3, 4}, Shape{2, 3, 4}},
      {Shape{2, 1, 4}, Shape{1, 3, 1}}};
  uint32_t seed = 40;
  for (const auto& [xs, ss] : cases) {
    const std::string ins = "%x: " + shape_text(xs) + ", %s: " + shape_text(ss) + ", %g: float32[4]";
    expect_same("graph main(" + ins + ") {\n %y, %sum = deepep.SkipLayerNorm(%x, %s, %g)\n return %y, %sum\n}",
                "graph main(" + ins + ") {\n %sum = Add(%x, %s)\n %y = LayerNormalization(%sum, %g)\n return %y, %sum\n}",
                {rnd(xs, seed), rnd(ss, seed + 1), rnd({4}, seed + 2)});
    seed += 3;
  }
}

TEST(SkipLayerNorm, BadInputsAreErrors) {
  // Shapes that do not broadcast; gamma over more than the normalized dims.
  EXPECT_THROW(run_text(R"(graph main(%x: float32[2,3,4], %s: float32[2,2,4], %g: float32[4]) {
      %y = deepep.SkipLayerNorm(%x, %s, %g)
      return %y
    })",
                        {rnd({2, 3, 4}, 1), rnd({2, 2, 4}, 2), rnd({4}, 3)}),
               Error);
  EXPECT_THROW(run_text(R"(graph main(%x: float32[2,3,4], %s: float32[2,3,4], %g: float32[3,4]) {
      %y = deepep.SkipLayerNorm(%x, %s, %g)
      return %y
    })",
                        {rnd({2, 3, 4}, 1), rnd({2, 3, 4}, 2), rnd({3, 4}, 3)}),
               Error);
}

namespace {

// The exported attention chain on 3-D inputs, with a mask line ("" none).
std::string attention_chain(int64_t heads, int64_t d, int64_t dv, const std::string& ins, const std::string& mask,
                            const std::string& scale_op, bool packed, const std::string& sizes) {
  std::string s = "graph main(" + ins + ") {\n";
  s += " %sq: int64[4] = const[0, 0, " + std::to_string(heads) + ", " + std::to_string(d) + "]\n";
  s += " %sv: int64[4] = const[0, 0, " + std::to_string(heads) + ", " + std::to_string(dv) + "]\n";
  s += " %so: int64[3] = const[0, 0, " + std::to_string(heads * dv) + "]\n";
  s += " %c: float32[] = const[" + std::string(scale_op == "Div" ? "2.5" : "0.4") + "]\n";
  if (packed) {
    s += " %sizes: int64[3] = const" + sizes + "\n";
    s += " %q, %k, %v = Split<axis=2>(%qkv, %sizes)\n";
  }
  s += " %qr = Reshape(%q, %sq)\n %qh = Transpose<perm=[0,2,1,3]>(%qr)\n";
  s += " %kr = Reshape(%k, %sq)\n %kt = Transpose<perm=[0,2,3,1]>(%kr)\n";
  s += " %vr = Reshape(%v, %sv)\n %vh = Transpose<perm=[0,2,1,3]>(%vr)\n";
  s += " %mm = MatMul(%qh, %kt)\n %sc = " + scale_op + "(%mm, %c)\n";
  s += mask.empty() ? " %ms = Identity(%sc)\n" : " " + mask + "\n";
  s += " %p = Softmax<axis=-1>(%ms)\n %o = MatMul(%p, %vh)\n";
  s += " %ot = Transpose<perm=[0,2,1,3]>(%o)\n %y = Reshape(%ot, %so)\n return %y\n}";
  return s;
}

}  // namespace

TEST(Attention, ThreeDimensionalLayoutsAndMasksMatchTheChain) {
  uint32_t seed = 500;
  struct Case {
    int64_t B, Sq, Sk, H, D, Dv;
  };
  for (const Case& c : {Case{2, 5, 7, 3, 4, 5}, Case{1, 70, 70, 2, 8, 8}, Case{3, 1, 9, 1, 6, 3}}) {
    const std::string q = shape_text({c.B, c.Sq, c.H * c.D}), k = shape_text({c.B, c.Sk, c.H * c.D}),
                      v = shape_text({c.B, c.Sk, c.H * c.Dv});
    const Tensor tq = rnd({c.B, c.Sq, c.H * c.D}, seed), tk = rnd({c.B, c.Sk, c.H * c.D}, seed + 1),
                 tv = rnd({c.B, c.Sk, c.H * c.Dv}, seed + 2);
    const Shape add_mask{c.B, 1, 1, c.Sk}, bool_mask{c.Sq, c.Sk};
    struct M {
      std::string type, chain_line, attrs;
      Tensor t;
    };
    const M masks[] = {
        {"", "", "", Tensor()},
        {"float32" + shape_text(add_mask).substr(7), "%ms = Add(%sc, %mask)", "", rnd(add_mask, seed + 3, -3, 0)},
        {"bool" + shape_text(bool_mask).substr(7), "%ms = Where(%mask, %sc, %fill)",
         ", mask_mode=\"keep\", mask_fill=-100.0", bools(bool_mask, seed + 4)},
        {"bool" + shape_text(bool_mask).substr(7), "%ms = Where(%mask, %fill, %sc)",
         ", mask_mode=\"drop\", mask_fill=-100.0", bools(bool_mask, seed + 5)},
    };
    for (const M& m : masks)
      for (const std::string op : {"Div", "Mul"}) {
        std::string ins = "%q: " + q + ", %k: " + k + ", %v: " + v;
        if (!m.type.empty()) ins += ", %mask: " + m.type;
        std::string chain = attention_chain(c.H, c.D, c.Dv, ins, m.chain_line, op, false, "");
        if (m.chain_line.find("%fill") != std::string::npos)
          chain.insert(chain.find("{\n") + 2, " %fill: float32[] = const[-100]\n");
        const std::string scale = op == "Div" ? "0.4" : "0.4";
        const std::string fused = "graph main(" + ins + ") {\n %y = deepep.Attention<num_heads=" +
                                  std::to_string(c.H) + ", scale=" + scale + m.attrs + ">(%q, %k, %v" +
                                  (m.type.empty() ? "" : ", %mask") + ")\n return %y\n}";
        std::vector<Tensor> in{tq, tk, tv};
        if (!m.type.empty()) in.push_back(m.t);
        SCOPED_TRACE(fused);
        expect_same(fused, chain, in, 1e-5);
      }
    seed += 10;
  }
}

TEST(Attention, PackedQKVMatchesSplitChain) {
  const int64_t B = 2, S = 6, H = 3, D = 4;
  const std::string ins = "%qkv: " + shape_text({B, S, 3 * H * D});
  const std::string chain = attention_chain(H, D, D, ins, "", "Mul", true, "[12, 12, 12]");
  const std::string fused = "graph main(" + ins +
                            ") {\n %y = deepep.Attention<num_heads=3, scale=0.4, qkv_hidden_sizes=[12,12,12]>(%qkv)\n "
                            "return %y\n}";
  expect_same(fused, chain, {rnd({B, S, 3 * H * D}, 9)});
}

TEST(Attention, FourDimensionalLayoutsMatchTheChain) {
  const Shape qs{2, 3, 5, 4}, ks{2, 3, 7, 4}, kts{2, 3, 4, 7}, vs{2, 3, 7, 6};
  const Tensor q = rnd(qs, 1), k = rnd(ks, 2), kt = rnd(kts, 3), v = rnd(vs, 4), mask = rnd({5, 7}, 5, -2, 0);
  expect_same(R"(graph main(%q: float32[2,3,5,4], %k: float32[2,3,7,4], %v: float32[2,3,7,6], %m: float32[5,7]) {
      %y = deepep.Attention<scale=0.3>(%q, %k, %v, %m)
      return %y
    })",
              R"(graph main(%q: float32[2,3,5,4], %k: float32[2,3,7,4], %v: float32[2,3,7,6], %m: float32[5,7]) {
      %c: float32[] = const[0.3]
      %kt = Transpose<perm=[0,1,3,2]>(%k)
      %s = MatMul(%q, %kt)
      %ss = Mul(%c, %s)
      %sm = Add(%m, %ss)
      %p = Softmax<axis=3>(%sm)
      %y = MatMul(%p, %v)
      return %y
    })",
              {q, k, v, mask});
  expect_same(R"(graph main(%q: float32[2,3,5,4], %k: float32[2,3,4,7], %v: float32[2,3,7,6]) {
      %y = deepep.Attention<scale=1.0, k_transposed=1>(%q, %k, %v)
      return %y
    })",
              R"(graph main(%q: float32[2,3,5,4], %k: float32[2,3,4,7], %v: float32[2,3,7,6]) {
      %s = MatMul(%q, %k)
      %p = Softmax<axis=-1>(%s)
      %y = MatMul(%p, %v)
      return %y
    })",
              {q, kt, v});
}

TEST(Attention, MaskThatDoesNotBroadcastIsAnError) {
  const char* g = R"(graph main(%q: float32[2,3,5,4], %k: float32[2,3,7,4], %v: float32[2,3,7,6], %m: float32[2,5,7]) {
      %y = deepep.Attention<scale=0.5>(%q, %k, %v, %m)
      return %y
    })";
  EXPECT_THROW(run_text(g, {rnd({2, 3, 5, 4}, 1), rnd({2, 3, 7, 4}, 2), rnd({2, 3, 7, 6}, 3), rnd({2, 5, 7}, 4)}),
               Error);
  // A boolean mask under mask_mode "add".
  EXPECT_THROW(run_text(R"(graph main(%q: float32[1,1,2,2], %k: float32[1,1,2,2], %v: float32[1,1,2,2], %m: bool[2,2]) {
      %y = deepep.Attention<scale=0.5>(%q, %k, %v, %m)
      return %y
    })",
                        {rnd({1, 1, 2, 2}, 1), rnd({1, 1, 2, 2}, 2), rnd({1, 1, 2, 2}, 3), bools({2, 2}, 4)}),
               Error);
  // Negative packed sizes that still sum to the packed width: refused by name, not computed with.
  try {
    run_text(R"(graph main(%qkv: float32[1,2,8]) {
      %y = deepep.Attention<num_heads=1, scale=0.5, qkv_hidden_sizes=[-4,-4,16]>(%qkv)
      return %y
    })",
             {rnd({1, 2, 8}, 5)});
    ADD_FAILURE() << "negative qkv_hidden_sizes were accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("qkv_hidden_sizes must not be negative"), std::string::npos) << e.what();
  }
}
