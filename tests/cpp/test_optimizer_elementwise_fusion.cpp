// Elementwise fusion: which chains become one deepep.FusedElementwise node
// (before/after IR text), which must not (reductions, other op kinds, float64,
// values read before the root), and the kernel against the unfused chain on
// random data (odd sizes, broadcasting, empty tensors, 16-bit types).
#include <cmath>
#include <cstring>
#include <random>

#include "deepep/error.h"
#include "ir/graph_edit.h"
#include "ops/fused_elementwise.h"
#include "optimizer/cost_model.h"
#include "optimizer_test_util.h"
#include "runtime/executor.h"

using namespace deepep;

namespace {

const std::vector<std::unique_ptr<Pass> (*)()> kFuse = {make_elementwise_fusion};

int count_op(const Graph& g, const std::string& op) {
  int n = 0;
  for (const auto& node : g.nodes()) n += node->op_type == op;
  return n;
}

// Random tensor of dtype dt (float types, or bool) and shape s.
Tensor random_tensor(DType dt, const Shape& s, std::mt19937& rng, float lo = -3, float hi = 3) {
  Tensor t(dt, s);
  std::uniform_real_distribution<float> d(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const float v = d(rng);
    switch (dt) {
      case DType::kFloat32: t.data<float>()[i] = v; break;
      case DType::kFloat16: t.data<float16>()[i] = float16(v); break;
      case DType::kBFloat16: t.data<bfloat16>()[i] = bfloat16(v); break;
      case DType::kBool: t.data<bool>()[i] = v > 0; break;
      default: ADD_FAILURE() << "dtype";
    }
  }
  return t;
}

// Runs `text` unfused and fused (elementwise_fusion only) on the same random
// inputs, whose concrete shapes are `shapes`; the outputs must agree within
// `rtol` relative to each output's largest magnitude (0: bit for bit).
// Returns the number of FusedElementwise nodes made.
int check_fused_matches(const std::string& text, const std::vector<Shape>& shapes, double rtol, int seed = 1,
                        float lo = -3, float hi = 3) {
  auto before = parse_graph_text(text);
  auto after = parse_graph_text(text);
  OptimizeOptions o;
  o.level = 3;
  o.verify = true;
  std::vector<std::unique_ptr<Pass>> passes;
  passes.push_back(make_elementwise_fusion());
  optimize_with(*after, passes, o);
  std::mt19937 rng{uint32_t(seed)};
  std::vector<Tensor> ins;
  EXPECT_EQ(before->inputs.size(), shapes.size());
  for (size_t i = 0; i < before->inputs.size(); ++i) ins.push_back(random_tensor(before->inputs[i]->dtype, shapes[i], rng, lo, hi));
  Executor e1, e2;
  auto want = e1.run_graph(*before, ins, nullptr);
  auto got = e2.run_graph(*after, ins, nullptr);
  EXPECT_EQ(want.size(), got.size());
  for (size_t k = 0; k < want.size() && k < got.size(); ++k) {
    EXPECT_EQ(got[k].dtype(), want[k].dtype()) << k;
    EXPECT_EQ(got[k].shape(), want[k].shape()) << k;
    if (got[k].shape() != want[k].shape() || got[k].dtype() != want[k].dtype()) continue;
    double scale = 0;
    for (int64_t i = 0; i < want[k].numel(); ++i) scale = std::max(scale, std::fabs(want[k].get_double(i)));
    for (int64_t i = 0; i < want[k].numel(); ++i) {
      const double w = want[k].get_double(i), g = got[k].get_double(i);
      if (std::isnan(w)) {
        EXPECT_TRUE(std::isnan(g)) << "output " << k << " element " << i;
      } else if (rtol == 0) {
        EXPECT_EQ(g, w) << "output " << k << " element " << i;
      } else {
        EXPECT_NEAR(g, w, rtol * std::max(scale, 1e-30)) << "output " << k << " element " << i;
      }
    }
  }
  return count_op(*after, "FusedElementwise");
}

}  // namespace

// ---- rewrites ----------------------------------------------------------------

TEST(ElementwiseFusion, ChainBecomesOneNode) {
  EXPECT_REWRITE(kFuse, R"(graph main(%x: float32[n,4]) {
      %b: float32[4] = const[1, 2, 3, 4]
      %h: float32[] = const[0.5]
      %a: float32[n,4] = Add(%x, %b)
      %r: float32[n,4] = Relu(%a)
      %y: float32[n,4] = Mul(%r, %h)
      return %y
    })",
                 R"(graph main(%x: float32[n,4]) {
      %b: float32[4] = const[1, 2, 3, 4]
      %y: float32[n,4] = deepep.FusedElementwise<args=[0,1,2,3,-1], consts=[0.5], ops=["Add","Relu","Mul"], out_dtypes=[1], outputs=[4]>(%x, %b)
      return %y
    })");
}

TEST(ElementwiseFusion, GeluDagReadsItsInputOnce) {
  // GPT-2's gelu_new as exported: x feeds three members.
  EXPECT_REWRITE(kFuse, R"(graph main(%x: float32[b,s,8]) {
      %three: float32[] = const[3]
      %k0: float32[] = const[0.044715]
      %k1: float32[] = const[0.7978846]
      %half: float32[] = const[0.5]
      %one: float32[] = const[1]
      %p: float32[b,s,8] = Pow(%x, %three)
      %m: float32[b,s,8] = Mul(%p, %k0)
      %i: float32[b,s,8] = Add(%x, %m)
      %t0: float32[b,s,8] = Mul(%i, %k1)
      %t: float32[b,s,8] = Tanh(%t0)
      %h: float32[b,s,8] = Mul(%x, %half)
      %u: float32[b,s,8] = Add(%t, %one)
      %y: float32[b,s,8] = Mul(%h, %u)
      return %y
    })",
                 R"(graph main(%x: float32[b,s,8]) {
      %y: float32[b,s,8] = deepep.FusedElementwise<args=[0,-1,1,-2,0,2,3,-3,4,0,-4,5,-5,6,7], consts=[3.0, 0.044715, 0.7978846, 0.5, 1.0], ops=["Pow","Mul","Add","Mul","Tanh","Mul","Add","Mul"], out_dtypes=[1], outputs=[8]>(%x)
      return %y
    })");
}

TEST(ElementwiseFusion, IntermediateReadLaterIsMaterialized) {
  // %a is also read by the MatMul after the root: the fused node writes it too.
  EXPECT_REWRITE(kFuse, R"(graph main(%x: float32[4,4], %w: float32[4,4]) {
      %a: float32[4,4] = Add(%x, %x)
      %r: float32[4,4] = Relu(%a)
      %y: float32[4,4] = Sigmoid(%r)
      %z: float32[4,4] = MatMul(%a, %w)
      return %y, %z
    })",
                 R"(graph main(%x: float32[4,4], %w: float32[4,4]) {
      %y: float32[4,4], %a: float32[4,4] = deepep.FusedElementwise<args=[0,0,1,2], consts=floats[], ops=["Add","Relu","Sigmoid"], out_dtypes=[1,1], outputs=[3,1]>(%x)
      %z: float32[4,4] = MatMul(%a, %w)
      return %y, %z
    })");
  // A graph output is read "after everything": materialized as well.
  EXPECT_REWRITE(kFuse, R"(graph main(%x: float32[4]) {
      %a: float32[4] = Exp(%x)
      %y: float32[4] = Neg(%a)
      return %y, %a
    })",
                 R"(graph main(%x: float32[4]) {
      %y: float32[4], %a: float32[4] = deepep.FusedElementwise<args=[0,1], consts=floats[], ops=["Exp","Neg"], out_dtypes=[1,1], outputs=[2,1]>(%x)
      return %y, %a
    })");
}

TEST(ElementwiseFusion, CheapIntermediateReadEarlierIsRecomputed) {
  // %t is read by a MatMul placed before the root, so the fused node cannot
  // write it; it is one multiply of an input the group reads anyway: recompute.
  EXPECT_REWRITE(kFuse, R"(graph main(%x: float32[8,8], %w: float32[8,8]) {
      %two: float32[] = const[2]
      %t: float32[8,8] = Mul(%x, %two)
      %z: float32[8,8] = MatMul(%t, %w)
      %a: float32[8,8] = Add(%x, %t)
      %y: float32[8,8] = Relu(%a)
      return %y, %z
    })",
                 R"(graph main(%x: float32[8,8], %w: float32[8,8]) {
      %two: float32[] = const[2]
      %t: float32[8,8] = Mul(%x, %two)
      %z: float32[8,8] = MatMul(%t, %w)
      %y: float32[8,8] = deepep.FusedElementwise<args=[0,-1,0,1,2], consts=[2.0], ops=["Mul","Add","Relu"], out_dtypes=[1], outputs=[3]>(%x)
      return %y, %z
    })");
}

TEST(ElementwiseFusion, ExpensiveBroadcastValuesAreNotRecomputed) {
  // BERT's extended mask: (1 - m) * min on [b,1,1,s], added to two layers'
  // scores [b,h,s,s]. Sub and Mul fuse; recomputing them per score element
  // would cost more than it saves, so each Add reads the mask.
  EXPECT_REWRITE(kFuse, R"(graph main(%m: float32[b,1,1,s], %s1: float32[b,4,s,s], %s2: float32[b,4,s,s]) {
      %one: float32[] = const[1]
      %min: float32[] = const[-3.4028235e+38]
      %d: float32[b,1,1,s] = Sub(%one, %m)
      %k: float32[b,1,1,s] = Mul(%d, %min)
      %a1: float32[b,4,s,s] = Add(%s1, %k)
      %y1: float32[b,4,s,s] = Softmax(%a1)
      %a2: float32[b,4,s,s] = Add(%s2, %k)
      %y2: float32[b,4,s,s] = Softmax(%a2)
      return %y1, %y2
    })",
                 R"(graph main(%m: float32[b,1,1,s], %s1: float32[b,4,s,s], %s2: float32[b,4,s,s]) {
      %k: float32[b,1,1,s] = deepep.FusedElementwise<args=[-1,0,1,-2], consts=[1.0, -3.4028235e+38], ops=["Sub","Mul"], out_dtypes=[1], outputs=[2]>(%m)
      %a1: float32[b,4,s,s] = Add(%s1, %k)
      %y1: float32[b,4,s,s] = Softmax(%a1)
      %a2: float32[b,4,s,s] = Add(%s2, %k)
      %y2: float32[b,4,s,s] = Softmax(%a2)
      return %y1, %y2
    })");
}

TEST(ElementwiseFusion, WhereCastAndClip) {
  // A bool mask input, a float16 value cast to float32 on the way in, Clip
  // with constant bounds, and a cast back to float16 at the end.
  EXPECT_REWRITE(kFuse, R"(graph main(%c: bool[3,5], %x: float16[3,5], %y: float32[5]) {
      %lo: float32[] = const[-1]
      %hi: float32[] = const[2]
      %xf: float32[3,5] = Cast<to=1>(%x)
      %w: float32[3,5] = Where(%c, %xf, %y)
      %k: float32[3,5] = Clip(%w, %lo, %hi)
      %o: float16[3,5] = Cast<to=10>(%k)
      return %o
    })",
                 R"(graph main(%c: bool[3,5], %x: float16[3,5], %y: float32[5]) {
      %o: float16[3,5] = deepep.FusedElementwise<args=[1,0,2,3,-1,-2,4], consts=[-1.0, 2.0], ops=["Where","Clip","ToFloat16"], out_dtypes=[10], outputs=[5]>(%x, %c, %y)
      return %o
    })");
}

TEST(ElementwiseFusion, UnknownDimsFuseButMaterializeOnlyWhenProvablyFull) {
  // Shape inference often loses a dimension ("?") behind a Reshape. The rank
  // is enough to fuse; a materialized output must provably have the root's
  // shape: %a depends on %x, and the only other input [8] broadcasts into
  // [b,?,8], so %a is as large as the root.
  EXPECT_REWRITE(kFuse, R"(graph main(%x: float32[b,?,8], %w: float32[8,8]) {
      %bias: float32[8] = const[1, 2, 3, 4, 5, 6, 7, 8]
      %a: float32[b,?,8] = Exp(%x)
      %y: float32[b,?,8] = Add(%a, %bias)
      %z: float32[b,?,8] = MatMul(%a, %w)
      return %y, %z
    })",
                 R"(graph main(%x: float32[b,?,8], %w: float32[8,8]) {
      %bias: float32[8] = const[1, 2, 3, 4, 5, 6, 7, 8]
      %y: float32[b,?,8], %a: float32[b,?,8] = deepep.FusedElementwise<args=[0,2,1], consts=floats[], ops=["Exp","Add"], out_dtypes=[1,1], outputs=[3,2]>(%x, %bias)
      %z: float32[b,?,8] = MatMul(%a, %w)
      return %y, %z
    })");
  // Here the other input %h has an unknown dim of its own: %a may be smaller
  // than the root (broadcast along it), so it is not written by the kernel.
  const char* unproven = R"(graph main(%x: float32[b,?,8], %h: float32[b,?,8], %w: float32[8,8]) {
      %a: float32[b,?,8] = Exp(%x)
      %y: float32[b,?,8] = Add(%a, %h)
      %z: float32[b,?,8] = MatMul(%a, %w)
      return %y, %z
    })";
  EXPECT_UNCHANGED(kFuse, unproven);
}

// ---- must not ----------------------------------------------------------------

TEST(ElementwiseFusion, NeverAcrossAReduction) {
  // Add+Relu fuse and Mul+Sigmoid fuse, but the ReduceSum between them stays.
  EXPECT_REWRITE(kFuse, R"(graph main(%x: float32[4,6]) {
      %ax: int64[1] = const[1]
      %two: float32[] = const[2]
      %a: float32[4,6] = Add(%x, %x)
      %r: float32[4,6] = Relu(%a)
      %s: float32[4,1] = ReduceSum(%r, %ax)
      %m: float32[4,1] = Mul(%s, %two)
      %y: float32[4,1] = Sigmoid(%m)
      return %y
    })",
                 R"(graph main(%x: float32[4,6]) {
      %ax: int64[1] = const[1]
      %r: float32[4,6] = deepep.FusedElementwise<args=[0,0,1], consts=floats[], ops=["Add","Relu"], out_dtypes=[1], outputs=[2]>(%x)
      %s: float32[4,1] = ReduceSum(%r, %ax)
      %y: float32[4,1] = deepep.FusedElementwise<args=[0,-1,1], consts=[2.0], ops=["Mul","Sigmoid"], out_dtypes=[1], outputs=[2]>(%s)
      return %y
    })");
  // Single elementwise ops between non-elementwise ones gain nothing.
  EXPECT_UNCHANGED(kFuse, R"(graph main(%x: float32[4,6], %w: float32[6,6]) {
      %ax: int64[1] = const[1]
      %e: float32[4,6] = Exp(%x)
      %s: float32[4,1] = ReduceSum(%e, %ax)
      %l: float32[4,1] = Log(%s)
      %m: float32[4,6] = MatMul(%x, %w)
      %y: float32[4,6] = Softmax(%m)
      %z: float32[4,6] = Relu(%y)
      return %l, %z
    })");
}

TEST(ElementwiseFusion, NeverAcrossOtherKindsOrTypes) {
  // Transpose (injective) splits the chain; float64 and integer math are not fused.
  EXPECT_UNCHANGED(kFuse, R"(graph main(%x: float32[4,6], %d: float64[3], %i: int64[3]) {
      %e: float32[4,6] = Exp(%x)
      %t: float32[6,4] = Transpose<perm=[1,0]>(%e)
      %y: float32[6,4] = Neg(%t)
      %d1: float64[3] = Exp(%d)
      %d2: float64[3] = Neg(%d1)
      %i1: int64[3] = Add(%i, %i)
      %i2: int64[3] = Mul(%i1, %i)
      return %y, %d2, %i2
    })");
  // Unknown shapes cannot be costed or checked: left alone.
  EXPECT_UNCHANGED(kFuse, R"(graph main(%x: float32[*]) {
      %e: float32[*] = Exp(%x)
      %y: float32[*] = Neg(%e)
      return %y
    })");
  // Pow with a computed exponent of another type.
  EXPECT_UNCHANGED(kFuse, R"(graph main(%x: float32[4], %p: int64[4]) {
      %e: float32[4] = Pow(%x, %p)
      %y: float32[4] = Neg(%e)
      return %y
    })");
}

TEST(ElementwiseFusion, NoCycleThroughAnEarlierReader) {
  // %a is read by a MatMul whose result the chain needs again: fusing %a into
  // the root would make the fused node both feed and read the MatMul.
  const char* text = R"(graph main(%x: float32[4,4], %w: float32[4,4]) {
      %a: float32[4,4] = Exp(%x)
      %z: float32[4,4] = MatMul(%a, %w)
      %b: float32[4,4] = Add(%a, %z)
      %y: float32[4,4] = Tanh(%b)
      return %y
    })";
  const std::string out = optest::run_passes(kFuse, text);
  auto g = parse_graph_text(out);
  verify(*g);
  EXPECT_EQ(count_op(*g, "MatMul"), 1);
  EXPECT_EQ(check_fused_matches(text, {{4, 4}, {4, 4}}, 0), 1);
}

TEST(ElementwiseFusion, CapsBoundInputsPerNode) {
  // A sum of ten different inputs: no fused node reads more than the cap.
  std::string text = "graph main(";
  for (int i = 0; i < 10; ++i) text += (i ? ", " : "") + std::string("%x") + std::to_string(i) + ": float32[5,7]";
  text += ") {\n";
  std::string acc = "%x0";
  for (int i = 1; i < 10; ++i) {
    text += "  %s" + std::to_string(i) + ": float32[5,7] = Add(" + acc + ", %x" + std::to_string(i) + ")\n";
    acc = "%s" + std::to_string(i);
  }
  text += "  return " + acc + "\n}\n";
  auto g = parse_graph_text(optest::run_passes(kFuse, text));
  const opt::ElementwiseCostModel model;
  int fusedn = 0;
  for (const auto& n : g->nodes())
    if (n->op_type == "FusedElementwise") {
      ++fusedn;
      EXPECT_LE(int(n->inputs.size()), model.max_inputs);
    }
  EXPECT_GE(fusedn, 1);
  std::vector<Shape> shapes(10, Shape{5, 7});
  check_fused_matches(text, shapes, 1e-6);
}

TEST(ElementwiseFusion, SecondRunChangesNothing) {
  const char* text = R"(graph main(%x: float32[n,4]) {
      %b: float32[4] = const[1, 2, 3, 4]
      %a: float32[n,4] = Add(%x, %b)
      %r: float32[n,4] = Relu(%a)
      return %r
    })";
  const std::string once = optest::run_passes(kFuse, text);
  EXPECT_EQ(optest::run_passes(kFuse, once), once);
  FusionReport r;
  optest::run_passes(kFuse, text, &r);
  EXPECT_EQ(r.passes[0].counters.at("groups"), 1);
  EXPECT_EQ(r.passes[0].counters.at("nodes_fused"), 2);
}

// ---- the kernel against the unfused chain ------------------------------------

TEST(FusedElementwiseKernel, Float32ChainsMatchBitForBit) {
  // Every instruction, each in a chain, float32: the same formulas in the
  // same order give the same bits.
  const char* unary[] = {"Neg", "Abs", "Reciprocal", "Relu", "Sigmoid", "Tanh", "Erf", "Exp", "Floor",
                         "Ceil", "Sin", "Cos", "Softplus", "Softsign", "HardSwish"};
  for (const char* op : unary) {
    const std::string text = std::string(R"(graph main(%x: float32[3,37], %b: float32[37]) {
        %a: float32[3,37] = Add(%x, %b)
        %u: float32[3,37] = )") + op + R"((%a)
        %y: float32[3,37] = Mul(%u, %x)
        return %y
      })";
    SCOPED_TRACE(op);
    EXPECT_EQ(check_fused_matches(text, {{3, 37}, {37}}, 0), 1);
  }
  // Log and Sqrt on positive values; Pow with constant exponents of the
  // base's type and of another type.
  EXPECT_EQ(check_fused_matches(R"(graph main(%x: float32[5,11]) {
      %two: float32[] = const[2]
      %three: int64[] = const[3]
      %half: float32[] = const[0.5]
      %l: float32[5,11] = Log(%x)
      %s: float32[5,11] = Sqrt(%x)
      %p: float32[5,11] = Pow(%x, %half)
      %q: float32[5,11] = Pow(%l, %three)
      %a: float32[5,11] = Add(%l, %s)
      %b: float32[5,11] = Sub(%a, %p)
      %c: float32[5,11] = Div(%b, %q)
      %d: float32[5,11] = Pow(%c, %two)
      %e: float32[5,11] = Max(%d, %s)
      %f: float32[5,11] = Min(%e, %l)
      return %f
    })",
                                {{5, 11}}, 0, 3, 0.01f, 5.0f),
            1);
  // Activations with attributes, Gelu both ways, Clip in its opset-6 form.
  EXPECT_EQ(check_fused_matches(R"(graph main(%x: float32[2,3,5]) {
      %l: float32[2,3,5] = LeakyRelu<alpha=0.1>(%x)
      %e: float32[2,3,5] = Elu<alpha=0.7>(%l)
      %h: float32[2,3,5] = HardSigmoid<alpha=0.3, beta=0.4>(%e)
      %g: float32[2,3,5] = Gelu(%h)
      %t: float32[2,3,5] = Gelu<approximate="tanh">(%g)
      %s: float32[2,3,5] = Add(%t, %x)
      %c: float32[2,3,5] = Clip<min=-0.5, max=0.8>(%s)
      return %c
    })",
                                {{2, 3, 5}}, 0),
            1);
}

TEST(FusedElementwiseKernel, BroadcastingOddSizesAndEmpty) {
  const char* text = R"(graph main(%x: float32[a,1,c], %y: float32[1,b,1], %z: float32[c], %m: bool[a,b,1]) {
      %s: float32[a,b,c] = Add(%x, %y)
      %t: float32[a,b,c] = Mul(%s, %z)
      %e: float32[a,b,c] = Sigmoid(%t)
      %w: float32[a,b,c] = Where(%m, %e, %x)
      %y2: float32[a,b,c] = Sub(%w, %y)
      return %y2
    })";
  // Sizes around the tile (1024) and prime sizes.
  const std::vector<std::array<int64_t, 3>> sizes = {{1, 1, 1}, {3, 5, 7}, {2, 31, 37}, {7, 13, 11}, {1, 1025, 1},
                                                    {2, 1, 1031}, {0, 3, 4}, {3, 0, 4}, {3, 4, 0}};
  for (auto [a, b, c] : sizes) {
    SCOPED_TRACE(std::to_string(a) + "x" + std::to_string(b) + "x" + std::to_string(c));
    EXPECT_EQ(check_fused_matches(text, {{a, 1, c}, {1, b, 1}, {c}, {a, b, 1}}, 0, int(a * 100 + b * 10 + c)), 1);
  }
  // Big enough to run tiles on several threads.
  check_fused_matches(text, {{64, 1, 301}, {1, 97, 1}, {301}, {64, 97, 1}}, 0, 5);
}

TEST(FusedElementwiseKernel, SixteenBitTypesComputeInFloat) {
  // float16 and bfloat16 chains: the fused kernel keeps intermediates in
  // float32, the unfused chain rounds each to 16 bits: they agree to within
  // a few roundings of the type.
  for (const char* t : {"float16", "bfloat16"}) {
    const std::string T = t;
    const std::string text = "graph main(%x: " + T + "[7,9], %b: " + T + "[9]) {\n"
                             "  %k: " + T + "[] = const[0.5]\n"
                             "  %a: " + T + "[7,9] = Add(%x, %b)\n"
                             "  %m: " + T + "[7,9] = Mul(%a, %k)\n"
                             "  %e: " + T + "[7,9] = Tanh(%m)\n"
                             "  %y: " + T + "[7,9] = Sub(%e, %x)\n"
                             "  return %y\n}\n";
    SCOPED_TRACE(t);
    EXPECT_EQ(check_fused_matches(text, {{7, 9}, {9}}, T == "float16" ? 4e-3 : 3e-2), 1);
  }
}

TEST(FusedElementwiseKernel, BadProgramsAreNamedErrors) {
  auto g = parse_graph_text(R"(graph main(%x: float32[3]) {
      %y: float32[3] = deepep.FusedElementwise<args=[0,5], consts=floats[], ops=["Add"], out_dtypes=[1], outputs=[1]>(%x)
      return %y
    })");
  Tensor x(DType::kFloat32, {3});
  for (int i = 0; i < 3; ++i) x.data<float>()[i] = float(i);
  Executor ex;
  try {
    ex.run_graph(*g, {x}, nullptr);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("reads register 5"), std::string::npos) << e.what();
  }
  auto h = parse_graph_text(R"(graph main(%x: float32[3]) {
      %y: float32[3] = deepep.FusedElementwise<args=[0], consts=floats[], ops=["Frobnicate"], out_dtypes=[1], outputs=[1]>(%x)
      return %y
    })");
  try {
    ex.run_graph(*h, {x}, nullptr);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown instruction 'Frobnicate'"), std::string::npos) << e.what();
  }
  auto k = parse_graph_text(R"(graph main(%x: float32[3]) {
      %y: float32[3] = deepep.FusedElementwise<args=[0,-3], consts=[1.0], ops=["Add"], out_dtypes=[7], outputs=[1]>(%x)
      return %y
    })");
  EXPECT_THROW(ex.run_graph(*k, {x}, nullptr), Error);
  Tensor d(DType::kFloat64, {3});
  auto ok = parse_graph_text(R"(graph main(%x: float64[3]) {
      %y: float32[3] = deepep.FusedElementwise<args=[0,0], consts=floats[], ops=["Add"], out_dtypes=[1], outputs=[1]>(%x)
      return %y
    })");
  EXPECT_THROW(ex.run_graph(*ok, {d}, nullptr), Error);
}

TEST(FusedElementwiseKernel, ProgramRoundTripsThroughAttributes) {
  fused::EwProgram p;
  p.num_inputs = 2;
  p.code = {{fused::EwOp::kAdd, {0, 1, 0}}, {fused::EwOp::kClip, {2, -1, -2}}};
  p.consts = {-1.0f, 1.0f};
  p.outputs = {3, 2};
  p.out_dtypes = {DType::kFloat16, DType::kFloat32};
  Node n;
  n.op_type = "FusedElementwise";
  n.domain = kDeepepDomain;
  Value a, b, y, z;
  n.inputs = {&a, &b};
  n.outputs = {&y, &z};
  p.to_node(n);
  const fused::EwProgram q = fused::EwProgram::from_node(n);
  EXPECT_EQ(q.str(), "r2 = Add(r0, r1); r3 = Clip(r2, c0, c1) -> r3 r2");
  EXPECT_EQ(q.out_dtypes, p.out_dtypes);
  EXPECT_EQ(q.consts, p.consts);
}
