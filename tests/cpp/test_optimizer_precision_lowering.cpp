// Precision lowering: float32 computation and weights to float16/bfloat16
// with float32 inputs and outputs kept (before/after IR text), what must stay
// float32 (Softmax, LayerNorm and the Add before it, reductions, ops not on
// the list), minimal shared Casts, saturating weight conversion, and that the
// lowered graphs compute the float32 results within 16-bit accuracy.
#include <cmath>
#include <random>

#include "ir/graph_edit.h"
#include "optimizer_test_util.h"
#include "runtime/executor.h"

using namespace deepep;

namespace {

std::string lower(const std::string& text, Precision p, FusionReport* report = nullptr) {
  auto g = parse_graph_text(text);
  std::vector<std::unique_ptr<Pass>> passes;
  passes.push_back(make_precision_lowering());
  OptimizeOptions o;
  o.level = 3;
  o.precision = p;
  o.verify = true;
  FusionReport r = optimize_with(*g, passes, o);
  if (report) *report = r;
  return g->to_text();
}

#define EXPECT_LOWERED(P, BEFORE, AFTER) EXPECT_EQ(lower(BEFORE, P), ::deepep::optest::canon(AFTER))

Tensor random_input(const Value* v, const Shape& s, std::mt19937& rng) {
  Tensor t(v->dtype, s);
  if (v->dtype == DType::kBool) {
    std::bernoulli_distribution d(0.5);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<bool>()[i] = d(rng);
    return t;
  }
  if (v->dtype == DType::kInt64) {
    std::uniform_int_distribution<int64_t> d(0, 1);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<int64_t>()[i] = d(rng);
    return t;
  }
  std::uniform_real_distribution<float> d(-2, 2);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

// Max abs error / max abs reference of each output of `text` lowered to p,
// against the float32 graph, on random inputs of the given shapes.
std::vector<double> lowered_errors(const std::string& text, Precision p, const std::vector<Shape>& shapes) {
  auto ref = parse_graph_text(text);
  auto low = parse_graph_text(lower(text, p));
  for (Graph* g : {ref.get(), low.get()})  // the text form has no opsets: run as opset 18
    for (const auto& n : g->nodes()) n->opset = 18;
  std::mt19937 rng(11);
  std::vector<Tensor> ins;
  for (size_t i = 0; i < ref->inputs.size(); ++i) ins.push_back(random_input(ref->inputs[i], shapes[i], rng));
  Executor e1, e2;
  auto want = e1.run_graph(*ref, ins, nullptr);
  auto got = e2.run_graph(*low, ins, nullptr);
  std::vector<double> errs;
  for (size_t k = 0; k < want.size(); ++k) {
    EXPECT_EQ(got[k].dtype(), DType::kFloat32) << "output " << k << " must stay float32";
    EXPECT_EQ(got[k].shape(), want[k].shape());
    double scale = 1e-30, err = 0;
    for (int64_t i = 0; i < want[k].numel(); ++i) {
      scale = std::max(scale, std::fabs(want[k].get_double(i)));
      err = std::max(err, std::fabs(got[k].get_double(i) - want[k].get_double(i)));
    }
    errs.push_back(err / scale);
  }
  return errs;
}

const char* kMlp = R"(graph main(%x: float32[n,3]) {
    %w: float32[3,2] = const[1, 2, 3, 4, 5, 6]
    %b: float32[2] = const[0.5, -0.5]
    %m: float32[n,2] = MatMul(%x, %w)
    %a: float32[n,2] = Add(%m, %b)
    %y: float32[n,2] = Relu(%a)
    return %y
  })";

}  // namespace

TEST(PrecisionLowering, WeightsAndComputationMoveWithFloat32InputsAndOutputs) {
  EXPECT_LOWERED(Precision::kFloat16, kMlp, R"(graph main(%x: float32[n,3]) {
      %w_fp16: float16[3,2] = const[1, 2, 3, 4, 5, 6]
      %b_fp16: float16[2] = const[0.5, -0.5]
      %x_fp16: float16[n,3] = Cast<to=10>(%x)
      %m_fp16: float16[n,2] = MatMul(%x_fp16, %w_fp16)
      %a_fp16: float16[n,2] = Add(%m_fp16, %b_fp16)
      %y_fp16: float16[n,2] = Relu(%a_fp16)
      %y: float32[n,2] = Cast<to=1>(%y_fp16)
      return %y
    })");
  EXPECT_LOWERED(Precision::kBFloat16, kMlp, R"(graph main(%x: float32[n,3]) {
      %w_bf16: bfloat16[3,2] = const[1, 2, 3, 4, 5, 6]
      %b_bf16: bfloat16[2] = const[0.5, -0.5]
      %x_bf16: bfloat16[n,3] = Cast<to=16>(%x)
      %m_bf16: bfloat16[n,2] = MatMul(%x_bf16, %w_bf16)
      %a_bf16: bfloat16[n,2] = Add(%m_bf16, %b_bf16)
      %y_bf16: bfloat16[n,2] = Relu(%a_bf16)
      %y: float32[n,2] = Cast<to=1>(%y_bf16)
      return %y
    })");
}

TEST(PrecisionLowering, Float32AndTf32ChangeNothing) {
  EXPECT_EQ(lower(kMlp, Precision::kFloat32), optest::canon(kMlp));
  EXPECT_EQ(lower(kMlp, Precision::kInt8), optest::canon(kMlp));
}

TEST(PrecisionLowering, LayerNormAndTheResidualAddStayFloat32) {
  EXPECT_LOWERED(Precision::kFloat16, R"(graph main(%x: float32[n,2], %h: float32[n,2]) {
      %w: float32[2,2] = const[1, 2, 3, 4]
      %s: float32[2] = const[1, 1]
      %z: float32[2] = const[0, 0]
      %m: float32[n,2] = MatMul(%x, %w)
      %r: float32[n,2] = Add(%m, %h)
      %y: float32[n,2] = LayerNormalization<axis=-1>(%r, %s, %z)
      return %y
    })",
                 R"(graph main(%x: float32[n,2], %h: float32[n,2]) {
      %s: float32[2] = const[1, 1]
      %z: float32[2] = const[0, 0]
      %w_fp16: float16[2,2] = const[1, 2, 3, 4]
      %x_fp16: float16[n,2] = Cast<to=10>(%x)
      %m_fp16: float16[n,2] = MatMul(%x_fp16, %w_fp16)
      %m: float32[n,2] = Cast<to=1>(%m_fp16)
      %r: float32[n,2] = Add(%m, %h)
      %y: float32[n,2] = LayerNormalization<axis=-1>(%r, %s, %z)
      return %y
    })");
}

TEST(PrecisionLowering, SoftmaxAndItsScoresStayFloat32) {
  // The Div feeding Softmax stays float32 too; the Softmax output is cast
  // once for the lowered Mul that reads it twice.
  EXPECT_LOWERED(Precision::kFloat16, R"(graph main(%q: float32[n,4], %k: float32[4,4]) {
      %d: float32[] = const[2]
      %sc: float32[n,4] = MatMul(%q, %k)
      %sd: float32[n,4] = Div(%sc, %d)
      %p: float32[n,4] = Softmax<axis=-1>(%sd)
      %y: float32[n,4] = Mul(%p, %p)
      return %y
    })",
                 R"(graph main(%q: float32[n,4], %k: float32[4,4]) {
      %d: float32[] = const[2]
      %q_fp16: float16[n,4] = Cast<to=10>(%q)
      %k_fp16: float16[4,4] = Cast<to=10>(%k)
      %sc_fp16: float16[n,4] = MatMul(%q_fp16, %k_fp16)
      %sc: float32[n,4] = Cast<to=1>(%sc_fp16)
      %sd: float32[n,4] = Div(%sc, %d)
      %p: float32[n,4] = Softmax<axis=-1>(%sd)
      %p_fp16: float16[n,4] = Cast<to=10>(%p)
      %y_fp16: float16[n,4] = Mul(%p_fp16, %p_fp16)
      %y: float32[n,4] = Cast<to=1>(%y_fp16)
      return %y
    })");
}

TEST(PrecisionLowering, ReductionsAndOpsWithoutKernelsStayFloat32) {
  // ReduceMean and CumSum (not on the lowering list) keep float32; Exp stays
  // float32 for float16 (it overflows past 11) but lowers for bfloat16.
  const char* text = R"(graph main(%x: float32[n,4]) {
      %ax: int64[1] = const[1]
      %e: float32[n,4] = Exp(%x)
      %r: float32[n,1] = ReduceMean(%e, %ax)
      %c: float32[n,4] = CumSum(%x, %ax)
      %y: float32[n,4] = Mul(%c, %r)
      return %y
    })";
  EXPECT_LOWERED(Precision::kFloat16, text, R"(graph main(%x: float32[n,4]) {
      %ax: int64[1] = const[1]
      %e: float32[n,4] = Exp(%x)
      %r: float32[n,1] = ReduceMean(%e, %ax)
      %c: float32[n,4] = CumSum(%x, %ax)
      %c_fp16: float16[n,4] = Cast<to=10>(%c)
      %r_fp16: float16[n,1] = Cast<to=10>(%r)
      %y_fp16: float16[n,4] = Mul(%c_fp16, %r_fp16)
      %y: float32[n,4] = Cast<to=1>(%y_fp16)
      return %y
    })");
  EXPECT_LOWERED(Precision::kBFloat16, text, R"(graph main(%x: float32[n,4]) {
      %ax: int64[1] = const[1]
      %x_bf16: bfloat16[n,4] = Cast<to=16>(%x)
      %e_bf16: bfloat16[n,4] = Exp(%x_bf16)
      %e: float32[n,4] = Cast<to=1>(%e_bf16)
      %r: float32[n,1] = ReduceMean(%e, %ax)
      %c: float32[n,4] = CumSum(%x, %ax)
      %c_bf16: bfloat16[n,4] = Cast<to=16>(%c)
      %r_bf16: bfloat16[n,1] = Cast<to=16>(%r)
      %y_bf16: bfloat16[n,4] = Mul(%c_bf16, %r_bf16)
      %y: float32[n,4] = Cast<to=1>(%y_bf16)
      return %y
    })");
}

TEST(PrecisionLowering, HandWrittenSoftmaxKeepsXMinusMaxFloat32) {
  // x - max(x) before Exp: x may be 10000 + small, far beyond 16-bit
  // precision, while the difference is small. The Sub stays float32; Exp
  // lowers for bfloat16 only, and the Div after the reduction lowers.
  const char* text = R"(graph main(%x: float32[n,4]) {
      %ax: int64[1] = const[1]
      %m: float32[n,1] = ReduceMax(%x, %ax)
      %d: float32[n,4] = Sub(%x, %m)
      %e: float32[n,4] = Exp(%d)
      %s: float32[n,1] = ReduceSum(%e, %ax)
      %y: float32[n,4] = Div(%e, %s)
      return %y
    })";
  EXPECT_LOWERED(Precision::kFloat16, text, R"(graph main(%x: float32[n,4]) {
      %ax: int64[1] = const[1]
      %m: float32[n,1] = ReduceMax(%x, %ax)
      %d: float32[n,4] = Sub(%x, %m)
      %e: float32[n,4] = Exp(%d)
      %s: float32[n,1] = ReduceSum(%e, %ax)
      %e_fp16: float16[n,4] = Cast<to=10>(%e)
      %s_fp16: float16[n,1] = Cast<to=10>(%s)
      %y_fp16: float16[n,4] = Div(%e_fp16, %s_fp16)
      %y: float32[n,4] = Cast<to=1>(%y_fp16)
      return %y
    })");
  EXPECT_LOWERED(Precision::kBFloat16, text, R"(graph main(%x: float32[n,4]) {
      %ax: int64[1] = const[1]
      %m: float32[n,1] = ReduceMax(%x, %ax)
      %d: float32[n,4] = Sub(%x, %m)
      %d_bf16: bfloat16[n,4] = Cast<to=16>(%d)
      %e_bf16: bfloat16[n,4] = Exp(%d_bf16)
      %e: float32[n,4] = Cast<to=1>(%e_bf16)
      %s: float32[n,1] = ReduceSum(%e, %ax)
      %s_bf16: bfloat16[n,1] = Cast<to=16>(%s)
      %y_bf16: bfloat16[n,4] = Div(%e_bf16, %s_bf16)
      %y: float32[n,4] = Cast<to=1>(%y_bf16)
      return %y
    })");
  // Decided again on the lowered graph (where Exp reads a Cast of %d), the same.
  const std::string once = lower(text, Precision::kBFloat16);
  EXPECT_EQ(lower(once, Precision::kBFloat16), once);
}

TEST(PrecisionLowering, IntegerCastsAreRetargetedWhenAllReadersLower) {
  EXPECT_LOWERED(Precision::kFloat16, R"(graph main(%m: int64[n,4], %x: float32[n,4]) {
      %one: float32[] = const[1]
      %mf: float32[n,4] = Cast<to=1>(%m)
      %d: float32[n,4] = Sub(%one, %mf)
      %y: float32[n,4] = Mul(%d, %x)
      return %y
    })",
                 R"(graph main(%m: int64[n,4], %x: float32[n,4]) {
      %one_fp16: float16[] = const[1]
      %mf_fp16: float16[n,4] = Cast<to=10>(%m)
      %d_fp16: float16[n,4] = Sub(%one_fp16, %mf_fp16)
      %x_fp16: float16[n,4] = Cast<to=10>(%x)
      %y_fp16: float16[n,4] = Mul(%d_fp16, %x_fp16)
      %y: float32[n,4] = Cast<to=1>(%y_fp16)
      return %y
    })");
  // Read by a reduction: a large integer must not lose bits on the way.
  const char* kept = R"(graph main(%m: int64[n,4]) {
      %ax: int64[1] = const[1]
      %mf: float32[n,4] = Cast<to=1>(%m)
      %y: float32[n,1] = ReduceSum(%mf, %ax)
      return %y
    })";
  EXPECT_EQ(lower(kept, Precision::kFloat16), optest::canon(kept));
}

TEST(PrecisionLowering, GraphOutputsReadInsideKeepTheirNameAndOneCast) {
  // %a is an output and read by two lowered nodes: one Cast back, shared.
  EXPECT_LOWERED(Precision::kFloat16, R"(graph main(%x: float32[3]) {
      %a: float32[3] = Relu(%x)
      %b: float32[3] = Neg(%a)
      %c: float32[3] = Add(%a, %b)
      return %c, %a
    })",
                 R"(graph main(%x: float32[3]) {
      %x_fp16: float16[3] = Cast<to=10>(%x)
      %a_fp16: float16[3] = Relu(%x_fp16)
      %a: float32[3] = Cast<to=1>(%a_fp16)
      %b_fp16: float16[3] = Neg(%a_fp16)
      %c_fp16: float16[3] = Add(%a_fp16, %b_fp16)
      %c: float32[3] = Cast<to=1>(%c_fp16)
      return %c, %a
    })");
}

TEST(PrecisionLowering, ShapeReadersNeedNoCastBack) {
  // Shape reads no data: it takes the lowered value instead of a float32 copy.
  EXPECT_LOWERED(Precision::kFloat16, R"(graph main(%x: float32[n,4]) {
      %a: float32[n,4] = Relu(%x)
      %s: int64[2] = Shape(%a)
      %b: float32[n,4] = Neg(%a)
      return %b, %s
    })",
                 R"(graph main(%x: float32[n,4]) {
      %x_fp16: float16[n,4] = Cast<to=10>(%x)
      %a_fp16: float16[n,4] = Relu(%x_fp16)
      %s: int64[2] = Shape(%a_fp16)
      %b_fp16: float16[n,4] = Neg(%a_fp16)
      %b: float32[n,4] = Cast<to=1>(%b_fp16)
      return %b, %s
    })");
}

TEST(PrecisionLowering, LoopBodiesLowerInsideAndKeepTheirInterface) {
  // The body reads %d of the enclosing graph; its inputs and outputs (the
  // loop-carried values) stay float32. (%d and %p have the same value index
  // in their graphs: the Casts of both must not look alike to CSE; %p's
  // unknown rank keeps them out of elementwise fusion.)
  const char* text = R"(graph main(%n: int64[], %c: bool[], %d: float32[3], %x: float32[3]) {
      %xs: float32[3], %ys: float32[*] = Loop<body=graph body(%i: int64[], %ci: bool[], %p: float32[*]) {
        %co: bool[] = Identity(%ci)
        %q: float32[3] = Add(%p, %d)
        %r: float32[3] = Identity(%p)
        return %co, %q, %r
      }>(%n, %c, %x)
      return %xs, %ys
    })";
  EXPECT_LOWERED(Precision::kFloat16, text, R"(graph main(%n: int64[], %c: bool[], %d: float32[3], %x: float32[3]) {
      %xs: float32[3], %ys: float32[*] = Loop<body=graph body(%i: int64[], %ci: bool[], %p: float32[*]) {
        %co: bool[] = Identity(%ci)
        %p_fp16: float16[*] = Cast<to=10>(%p)
        %d_fp16: float16[3] = Cast<to=10>(%d)
        %q_fp16: float16[3] = Add(%p_fp16, %d_fp16)
        %q: float32[3] = Cast<to=1>(%q_fp16)
        %r_fp16: float16[3] = Identity(%p_fp16)
        %r: float32[3] = Cast<to=1>(%r_fp16)
        return %co, %q, %r
      }>(%n, %c, %x)
      return %xs, %ys
    })");
  // The whole level-3 pipeline keeps the body's two reads apart and runs it right.
  auto g = parse_graph_text(text);
  for (const auto& n : g->nodes()) n->opset = 18;
  OptimizeOptions o;
  o.level = 3;
  o.precision = Precision::kFloat16;
  o.verify = true;
  const FusionReport r = optimize(*g, o);
  std::string ran;
  for (const auto& p : r.passes)
    if (p.changes) ran += p.name + " ";
  Tensor n(DType::kInt64, {}), c(DType::kBool, {}), x(DType::kFloat32, {3}), d(DType::kFloat32, {3});
  *n.data<int64_t>() = 2;
  *c.data<bool>() = true;
  for (int i = 0; i < 3; ++i) x.data<float>()[i] = float(i), d.data<float>()[i] = 10.0f * float(i + 1);
  Executor ex;
  auto out = ex.run_graph(*g, {n, c, d, x}, nullptr);
  ASSERT_EQ(out.size(), 2u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(out[0].data<float>()[i], float(i) + 20.0f * float(i + 1)) << ran << g->to_text();
}

TEST(PrecisionLowering, WeightsSaturateInsteadOfOverflowing) {
  // float32's lowest as a mask value: -inf would turn 0 * mask into NaN.
  auto g = parse_graph_text(lower(R"(graph main(%x: float32[3]) {
      %big: float32[3] = const[-3.4028235e+38, 1e+05, 0.1]
      %y: float32[3] = Mul(%x, %big)
      return %y
    })",
                                  Precision::kFloat16));
  const Value* big = g->find("big_fp16");
  ASSERT_NE(big, nullptr);
  ASSERT_TRUE(big->data);
  EXPECT_EQ(big->data->dtype(), DType::kFloat16);
  EXPECT_EQ(big->data->get_double(0), -65504.0);
  EXPECT_EQ(big->data->get_double(1), 65504.0);
  EXPECT_NEAR(big->data->get_double(2), 0.1, 1e-4);
  auto h = parse_graph_text(lower(R"(graph main(%x: float32[2]) {
      %big: float32[2] = const[-3.4028235e+38, inf]
      %y: float32[2] = Mul(%x, %big)
      return %y
    })",
                                  Precision::kBFloat16));
  const Value* hb = h->find("big_bf16");
  ASSERT_TRUE(hb && hb->data);
  EXPECT_TRUE(std::isfinite(hb->data->get_double(0)));
  EXPECT_LT(hb->data->get_double(0), -3.3e38);
  EXPECT_TRUE(std::isinf(hb->data->get_double(1)));  // a real infinity stays one
}

TEST(PrecisionLowering, SecondRunChangesNothing) {
  const char* text = R"(graph main(%x: float32[n,2], %h: float32[n,2], %m: int64[n,2]) {
      %w: float32[2,2] = const[1, 2, 3, 4]
      %s: float32[2] = const[1, 1]
      %z: float32[2] = const[0, 0]
      %mf: float32[n,2] = Cast<to=1>(%m)
      %mm: float32[n,2] = MatMul(%x, %w)
      %q: float32[n,2] = Mul(%mm, %mf)
      %r: float32[n,2] = Add(%q, %h)
      %y: float32[n,2] = LayerNormalization<axis=-1>(%r, %s, %z)
      %p: float32[n,2] = Softmax(%y)
      %o: float32[n,2] = Sigmoid(%p)
      return %o, %y
    })";
  for (Precision p : {Precision::kFloat16, Precision::kBFloat16}) {
    const std::string once = lower(text, p);
    FusionReport r;
    EXPECT_EQ(lower(once, p, &r), once);
    EXPECT_EQ(r.passes[0].changes, 0);
  }
  FusionReport r;
  lower(text, Precision::kFloat16, &r);
  const auto& c = r.passes[0].counters;
  EXPECT_EQ(c.at("lowered"), 4);  // Cast, MatMul, Mul, Sigmoid
  EXPECT_EQ(c.at("constants_converted"), 1);
  // In: x (for MatMul), p (for Sigmoid); back: q (for the Add), o (an output).
  EXPECT_EQ(c.at("casts"), 4);
  EXPECT_EQ(c.at("kept_float32"), 3);  // Add, LayerNorm, Softmax
}

TEST(PrecisionLowering, LoweredGraphsMatchFloat32) {
  // Every op family on the lowering list, run in float16 and bfloat16 against
  // float32: each kernel must take the type and stay within its accuracy.
  const char* text = R"(graph main(%x: float32[1,4,5,5], %i: int64[2], %m: bool[2,3]) {
      %cw: float32[2,4,1,1] = const[0.5, -0.25, 0.125, 1, -1, 0.75, 0.5, -0.5]
      %cb: float32[2] = const[0.1, -0.2]
      %c: float32[1,2,5,5] = Conv(%x, %cw, %cb)
      %tw: float32[2,2,1,1] = const[1, 0.5, -0.5, 1]
      %ct: float32[1,2,5,5] = ConvTranspose(%c, %tw)
      %p: float32[1,2,4,4] = MaxPool<kernel_shape=[2,2]>(%ct)
      %a: float32[1,2,3,3] = AveragePool<kernel_shape=[2,2]>(%p)
      %sh: int64[2] = const[2, 9]
      %r: float32[2,9] = Reshape(%a, %sh)
      %t: float32[9,2] = Transpose<perm=[1,0]>(%r)
      %g: float32[2,2] = Gather<axis=0>(%t, %i)
      %mw: float32[2,3] = const[1, -1, 0.5, 0.25, 2, -0.5]
      %gb: float32[3] = const[0.1, 0.2, 0.3]
      %mm: float32[2,3] = MatMul(%g, %mw)
      %gm: float32[2,3] = Gemm(%g, %mw, %gb)
      %cc: float32[4,3] = Concat<axis=0>(%mm, %gm)
      %s1: float32[2,3], %s2: float32[2,3] = Split<axis=0, num_outputs=2>(%cc)
      %st: int64[1] = const[1]
      %en: int64[1] = const[3]
      %ax: int64[1] = const[1]
      %sl: float32[2,2] = Slice(%s1, %st, %en, %ax)
      %es: int64[3] = const[2, 2, 2]
      %ex: float32[2,2,2] = Expand(%sl, %es)
      %rp: int64[3] = const[1, 2, 1]
      %ti: float32[2,4,2] = Tile(%ex, %rp)
      %pd: int64[6] = const[0, 0, 1, 0, 0, 0]
      %pv: float32[] = const[0.5]
      %pa: float32[2,4,3] = Pad(%ti, %pd, %pv)
      %fl: float32[2,12] = Flatten(%pa)
      %u0: int64[1] = const[0]
      %us: float32[1,2,12] = Unsqueeze(%fl, %u0)
      %sq: float32[2,12] = Squeeze(%us, %u0)
      %e1: float32[2,12] = Sigmoid(%sq)
      %e2: float32[2,12] = Tanh(%e1)
      %e3: float32[2,12] = Erf(%e2)
      %e4: float32[2,12] = Gelu(%e3)
      %e5: float32[2,12] = LeakyRelu(%e4)
      %e6: float32[2,12] = HardSwish(%e5)
      %e7: float32[2,12] = Softplus(%e6)
      %e8: float32[2,12] = Sqrt(%e7)
      %e9: float32[2,12] = Log(%e8)
      %cl: float32[] = const[-0.5]
      %ch: float32[] = const[0.5]
      %e10: float32[2,12] = Clip(%e9, %cl, %ch)
      %two: float32[] = const[2]
      %e11: float32[2,12] = Pow(%e10, %two)
      %e12: float32[2,12] = Max(%e11, %e1)
      %e13: float32[2,12] = Sum(%e12, %e2, %e3)
      %w: float32[2,3] = Where(%m, %s2, %s1)
      return %e13, %w
    })";
  for (Precision p : {Precision::kFloat16, Precision::kBFloat16}) {
    SCOPED_TRACE(precision_name(p));
    const auto errs = lowered_errors(text, p, {{1, 4, 5, 5}, {2}, {2, 3}});
    for (double e : errs) EXPECT_LT(e, p == Precision::kFloat16 ? 1e-2 : 3e-2);
    // Everything was lowered: only the input and output Casts are float32 nodes.
    auto g = parse_graph_text(lower(text, p));
    for (const auto& n : g->nodes()) {
      if (n->op_type == "Cast") continue;
      for (const Value* v : n->outputs) EXPECT_NE(v->dtype, DType::kFloat32) << n->op_type;
    }
  }
}

// The GEMM fused op is lowered (16-bit weights, float32 accumulation inside
// its kernel); SkipLayerNorm, a norm, stays float32 with Casts around it.
TEST(PrecisionLowering, FusedMatMulLowersSkipLayerNormStays) {
  const char* text = R"(graph main(%x: float32[n,3], %r: float32[n,2]) {
      %w: float32[3,2] = const[1, 2, 3, 4, 5, 6]
      %b: float32[2] = const[0.5, -0.5]
      %g: float32[2] = const[1, 2]
      %m: float32[n,2] = deepep.FusedMatMul<activation="Relu">(%x, %w, %b)
      %y: float32[n,2] = deepep.SkipLayerNorm<epsilon=1e-5>(%m, %r, %g)
      return %y
    })";
  const std::string low = lower(text, Precision::kFloat16);
  EXPECT_NE(low.find("%w_fp16: float16[3,2]"), std::string::npos) << low;
  EXPECT_NE(low.find("float16[n,2] = deepep.FusedMatMul"), std::string::npos) << low;
  EXPECT_NE(low.find("%y: float32[n,2] = deepep.SkipLayerNorm"), std::string::npos) << low;
  for (Precision p : {Precision::kFloat16, Precision::kBFloat16})
    for (double e : lowered_errors(text, p, {{5, 3}, {5, 2}})) EXPECT_LT(e, 1e-2);
}
