// Every GPU kernel against the CPU reference on random data: odd sizes,
// broadcasting, empty tensors, fp32 (strict and TF32) and fp16. Skipped
// without a GPU. Runs poison the arena first, so an element a kernel leaves
// unwritten shows up as NaN.
#include "cuda_test_util.h"

#include <algorithm>
#include <array>
#include <cstdlib>

#include "kernels/cuda/gpu_kernels.h"

using namespace deepep;
using namespace deepep::cuda_test;

namespace {
std::string graph(const std::string& inputs, const std::string& body, const std::string& outs = "%y") {
  return "graph main(" + inputs + ") {\n" + body + "\n  return " + outs + "\n}";
}
}  // namespace

TEST(CudaBuild, KernelTableCoversTheModelZoo) {
  // Holds without a GPU: the table is host data.
  for (const char* op : {"MatMul", "Gemm", "deepep.FusedMatMul", "deepep.FusedConv", "Conv", "deepep.SkipLayerNorm",
                         "deepep.Attention", "LayerNormalization", "Softmax", "Gather", "Add", "Cast", "Transpose",
                         "Concat", "Slice", "Reshape", "MaxPool", "GlobalAveragePool"}) {
    const std::string s(op);
    const auto dot = s.find('.');
    const std::string dom = dot == std::string::npos ? "" : s.substr(0, dot);
    const std::string name = dot == std::string::npos ? s : s.substr(dot + 1);
    EXPECT_NE(cuda::find_gpu_kernel(dom, name), nullptr) << op;
  }
  EXPECT_EQ(cuda::find_gpu_kernel("", "NonZero"), nullptr);
}

TEST(CudaBuild, NoGpuIsAClearError) {
  if (have_gpu()) GTEST_SKIP() << "a GPU is present";
  auto g = parse_graph_text(graph("%x: float32[2]", "  %y = Relu(%x)"));
  try {
    cuda_load(*g, {});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is not available"), std::string::npos) << e.what();
  }
}

TEST(CudaRuntime, MissingKernelIsALoadErrorNamingTheNode) {
  REQUIRE_GPU();
  auto g = parse_graph_text(graph("%x: float32[5]", "  %n = NonZero(%x)\n  %y = Relu(%x)", "%y, %n"));
  try {
    cuda_load(*g, {});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("NonZero"), std::string::npos) << e.what();
  }
}

TEST(CudaRuntime, GatherIndexOutOfRangeNamesTheNode) {
  REQUIRE_GPU();
  auto c = make(graph("%w: float32[10,3], %i: int64[4]", "  %y = Gather<axis=0>(%w, %i)"), {{"w", rnd({10, 3}, 1)}});
  Tensor idx = ints({4}, 2, 0, 9);
  idx.data<int64_t>()[2] = 10;
  try {
    run_gpu(*c.g, {idx});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Gather"), std::string::npos) << e.what();
  }
}

TEST(CudaKernels, BinaryBroadcast) {
  REQUIRE_GPU();
  for (const char* op : {"Add", "Sub", "Mul", "Div", "Max", "Min", "Pow"}) {
    for (auto [as, bs] : std::vector<std::pair<Shape, Shape>>{{{3, 1, 5}, {7, 5}}, {{37}, {37}}, {{2, 3}, {}},
                                                               {{0, 4}, {4}}, {{1, 129}, {65, 1}}}) {
      auto sh = [](const Shape& s) { return "float32" + shape_str(s); };
      auto c = make(graph("%a: " + sh(as) + ", %b: " + sh(bs), std::string("  %y = ") + op + "(%a, %b)"));
      const bool pw = std::string(op) == "Pow";
      c.inputs = {rnd(as, 3, pw ? 0.1f : -2.f, 2.f), rnd(bs, 4, pw ? -2.f : 0.2f, 2.f)};
      SCOPED_TRACE(std::string(op) + shape_str(as) + shape_str(bs));
      expect_match(c, 1e-6);
    }
    // Same shapes: the 16-byte kernel (float32 n % 4 == 0; float16 n % 8 == 0), and n = 36 (float16: scalar).
    for (const Shape& s : std::vector<Shape>{{6, 40}, {2, 2}, {36}, {3, 1000}}) {
      auto c = make(graph("%a: float32" + shape_str(s) + ", %b: float32" + shape_str(s),
                          std::string("  %y = ") + op + "(%a, %b)"));
      const bool pw = std::string(op) == "Pow";
      c.inputs = {rnd(s, 5, pw ? 0.1f : -2.f, 2.f), rnd(s, 6, pw ? -2.f : 0.2f, 2.f)};
      SCOPED_TRACE(std::string(op) + " same shape " + shape_str(s));
      expect_match(c, 1e-6);
      expect_match(c, 2e-3, {.fp16 = true});
    }
  }
}

TEST(CudaKernels, IntegerAndCompareOps) {
  REQUIRE_GPU();
  auto c = make(graph("%a: int64[4,7], %b: int64[7]", "  %s = Add(%a, %b)\n  %d = Mul(%s, %a)\n  %y = Less(%d, %b)",
                      "%d, %y"));
  c.inputs = {ints({4, 7}, 5, -1000, 1000), ints({7}, 6, -50, 50)};
  expect_match(c, 0);
  auto w = make(graph("%c: bool[3,1], %a: float32[3,4], %b: float32[4]", "  %y = Where(%c, %a, %b)"));
  w.inputs = {bools({3, 1}, 7), rnd({3, 4}, 8), rnd({4}, 9)};
  expect_match(w, 0);
}

TEST(CudaKernels, Unary) {
  REQUIRE_GPU();
  for (const char* op : {"Relu", "Sigmoid", "Tanh", "Exp", "Erf", "Gelu", "Neg", "Abs", "Floor", "Ceil", "Sin", "Cos",
                         "LeakyRelu<alpha=0.3>", "Elu", "HardSigmoid", "HardSwish", "Softplus", "Sign", "Reciprocal"}) {
    auto c = make(graph("%x: float32[3,333]", std::string("  %y = ") + op + "(%x)"));
    c.inputs = {rnd({3, 333}, 10, -4.f, 4.f)};
    SCOPED_TRACE(op);
    expect_match(c, 2e-6);
  }
  auto s = make(graph("%x: float32[1001]", "  %y = Sqrt(%x)\n  %z = Log(%y)", "%z"));
  s.inputs = {rnd({1001}, 11, 0.01f, 9.f)};
  expect_match(s, 2e-6);
  auto cl = make(graph("%x: float32[77]", "  %lo: float32[] = const[-0.5]\n  %hi: float32[] = const[0.25]\n  %y = Clip(%x, %lo, %hi)"));
  cl.inputs = {rnd({77}, 12)};
  expect_match(cl, 0);
}

TEST(CudaKernels, Cast) {
  REQUIRE_GPU();
  auto c = make(graph("%x: int64[5,3]", "  %f = Cast<to=1>(%x)\n  %h = Cast<to=10>(%f)\n  %i = Cast<to=7>(%h)\n  %b = Cast<to=9>(%x)",
                      "%f, %h, %i, %b"));
  c.inputs = {ints({5, 3}, 13, -300, 300)};
  expect_match(c, 0);
}

TEST(CudaKernels, LayoutOps) {
  REQUIRE_GPU();
  auto t = make(graph("%x: float32[2,3,5,7]", "  %y = Transpose<perm=[2,0,3,1]>(%x)"));
  t.inputs = {rnd({2, 3, 5, 7}, 14)};
  expect_match(t, 0);
  auto cc = make(graph("%a: float32[2,3,5], %b: float32[2,1,5], %c: float32[2,4,5]", "  %y = Concat<axis=1>(%a, %b, %c)"));
  cc.inputs = {rnd({2, 3, 5}, 15), rnd({2, 1, 5}, 16), rnd({2, 4, 5}, 17)};
  expect_match(cc, 0);
  auto sl = make(graph("%x: float32[9,11,4]",
                       "  %s: int64[2] = const[-1, 1]\n  %e: int64[2] = const[-10, 100]\n  %a: int64[2] = const[0, 1]\n"
                       "  %st: int64[2] = const[-2, 3]\n  %y = Slice(%x, %s, %e, %a, %st)"));
  sl.inputs = {rnd({9, 11, 4}, 18)};
  expect_match(sl, 0);
  auto ex = make(graph("%x: float32[3,1]", "  %s: int64[3] = const[2, 3, 6]\n  %y = Expand(%x, %s)"));
  ex.inputs = {rnd({3, 1}, 19)};
  expect_match(ex, 0);
  // Views alias their input; a kernel after them reads the right bytes.
  auto v = make(graph("%x: float32[4,6]", "  %s: int64[3] = const[2, 2, 6]\n  %r = Reshape(%x, %s)\n"
                                          "  %a: int64[1] = const[0]\n  %u = Unsqueeze(%r, %a)\n  %y = Relu(%u)", "%y, %u"));
  v.inputs = {rnd({4, 6}, 20)};
  expect_match(v, 0);
}

TEST(CudaKernels, Gather) {
  REQUIRE_GPU();
  auto e = make(graph("%w: float32[50,24], %i: int64[3,7]", "  %y = Gather<axis=0>(%w, %i)"), {{"w", rnd({50, 24}, 21)}});
  e.inputs = {ints({3, 7}, 22, -50, 49)};
  expect_match(e, 0);                      // rows of 96 bytes: 16-byte vectors
  expect_match(e, 1e-3, {true, false});   // float16 rows of 48 bytes
  auto a1 = make(graph("%x: float32[4,9,5]", "  %i: int64[] = const[3]\n  %y = Gather<axis=1>(%x, %i)"));
  a1.inputs = {rnd({4, 9, 5}, 23)};
  expect_match(a1, 0);
}

TEST(CudaKernels, SoftmaxAndNorms) {
  REQUIRE_GPU();
  for (int64_t cols : {1, 7, 64, 768, 1000, 3001}) {
    auto s = make(graph("%x: float32[5," + std::to_string(cols) + "]", "  %y = Softmax<axis=-1>(%x)\n  %z = LogSoftmax(%x)", "%y, %z"));
    s.inputs = {rnd({5, cols}, 24, -6.f, 6.f)};
    SCOPED_TRACE(cols);
    expect_match(s, 1e-5);
    auto ln = make(graph("%x: float32[3,5," + std::to_string(cols) + "], %g: float32[" + std::to_string(cols) +
                             "], %b: float32[" + std::to_string(cols) + "]",
                         "  %y = LayerNormalization<axis=-1, epsilon=1e-5>(%x, %g, %b)"));
    ln.inputs = {rnd({3, 5, cols}, 25, -3.f, 5.f), rnd({cols}, 26), rnd({cols}, 27)};
    expect_match(ln, 1e-5);
    expect_match(ln, 5e-3, {true, false});
  }
  // SkipLayerNorm: full + full, full + trailing block (position embeddings), the sum output.
  const int64_t d = 96;
  for (auto [xs, ss] : std::vector<std::pair<Shape, Shape>>{{{2, 7, d}, {2, 7, d}}, {{2, 7, d}, {1, 7, d}}, {{1, 7, d}, {3, 7, d}}, {{4, d}, {d}}}) {
    Shape ys = xs.size() >= ss.size() && shape_numel(xs) >= shape_numel(ss) ? xs : ss;
    auto sh = [](const Shape& s) { return "float32" + shape_str(s); };
    auto c = make(graph("%x: " + sh(xs) + ", %s: " + sh(ss) + ", %g: float32[96], %b: float32[96]",
                        "  %y, %sum = deepep.SkipLayerNorm<epsilon=1e-12>(%x, %s, %g, %b)", "%y, %sum"));
    c.inputs = {rnd(xs, 28), rnd(ss, 29), rnd({d}, 30), rnd({d}, 31)};
    SCOPED_TRACE(shape_str(xs) + shape_str(ss));
    expect_match(c, 1e-5);
    expect_match(c, 5e-3, {true, false});
  }
}

TEST(CudaKernels, Attention) {
  REQUIRE_GPU();
  // Packed QKV with an additive mask [B, 1, 1, S] (BERT).
  for (int64_t s : {1, 13, 128}) {
    const int64_t B = 2, H = 3, D = 16, N = H * D;
    auto c = make(graph("%q: float32[" + std::to_string(B) + "," + std::to_string(s) + "," + std::to_string(3 * N) +
                            "], %m: float32[2,1,1," + std::to_string(s) + "]",
                        "  %y = deepep.Attention<num_heads=3, qkv_hidden_sizes=[48,48,48], scale=0.25>(%q, _, _, %m)"));
    Tensor m = rnd({2, 1, 1, s}, 32);
    for (int64_t i = 0; i < m.numel(); ++i) m.data<float>()[i] = m.data<float>()[i] > 0.5f ? -10000.f : 0.f;
    c.inputs = {rnd({B, s, 3 * N}, 33), m};
    SCOPED_TRACE(s);
    expect_match(c, 1e-5);
    expect_match(c, 5e-3, {true, false});  // float16 on tensor cores (mma.sync, the default)
    setenv("DEEPEP_CUDA_ATTENTION", "tiled", 1);
    expect_match(c, 5e-3, {true, false});  // float16: the tiled kernel
    unsetenv("DEEPEP_CUDA_ATTENTION");
  }
  // Tensor-core attention at BERT-base's head size (64), 70 rows: two query tiles, a partial key tile.
  {
    auto c = make(graph("%q: float32[2,70,384], %m: float32[2,1,70,70]",
                        "  %y = deepep.Attention<num_heads=2, qkv_hidden_sizes=[128,128,128], scale=0.125>(%q, _, _, %m)"));
    Tensor m = rnd({2, 1, 70, 70}, 74);
    for (int64_t i = 0; i < m.numel(); ++i) m.data<float>()[i] = m.data<float>()[i] > 0.3f ? -10000.f : 0.f;
    c.inputs = {rnd({2, 70, 384}, 75), m};
    expect_match(c, 5e-3, {true, false});
    setenv("DEEPEP_CUDA_ATTENTION", "tiled", 1);
    expect_match(c, 5e-3, {true, false});
    unsetenv("DEEPEP_CUDA_ATTENTION");
  }
  // Tensor-core kernel shapes: 4-warp blocks (4 x 12 heads x 4 tiles of 64 rows >= the SMs), head size 128
  // (1-warp blocks, 3 key tiles), and K/V of another length with Dv != D and a boolean keep-mask.
  for (auto [B, S, H, D] : std::vector<std::array<int64_t, 4>>{{4, 200, 12, 64}, {1, 150, 2, 128}}) {
    const std::string n = std::to_string(H * D);
    auto c = make(graph("%q: float32[" + std::to_string(B) + "," + std::to_string(S) + "," + std::to_string(3 * H * D) +
                            "], %m: float32[" + std::to_string(B) + ",1,1," + std::to_string(S) + "]",
                        "  %y = deepep.Attention<num_heads=" + std::to_string(H) + ", qkv_hidden_sizes=[" + n + "," + n +
                            "," + n + "], scale=0.125>(%q, _, _, %m)"));
    Tensor m = rnd({B, 1, 1, S}, 76);
    for (int64_t i = 0; i < m.numel(); ++i) m.data<float>()[i] = m.data<float>()[i] > 0.7f ? -10000.f : 0.f;
    c.inputs = {rnd({B, S, 3 * H * D}, 77), m};
    SCOPED_TRACE(D);
    expect_match(c, 5e-3, {true, false});
  }
  {
    auto c = make(graph("%q: float32[2,5,64], %k: float32[2,77,64], %v: float32[2,77,128], %m: bool[1,1,5,77]",
                        "  %y = deepep.Attention<num_heads=4, scale=0.3, mask_mode=\"keep\", mask_fill=-3.4028235e+38>(%q, %k, %v, %m)"));
    c.inputs = {rnd({2, 5, 64}, 78), rnd({2, 77, 64}, 79), rnd({2, 77, 128}, 80), bools({1, 1, 5, 77}, 81)};
    expect_match(c, 5e-3, {true, false});
  }
  // A constant causal keep-mask (GPT-2's tril buffer), aligned to the last key (Sk >= Sq): the tensor-core
  // kernel skips tiles past the diagonal and reads no mask. Then the same mask with one bit flipped.
  for (auto [sq, sk] : std::vector<std::pair<int64_t, int64_t>>{{150, 150}, {70, 150}, {1, 65}, {300, 300}}) {
    for (int flip = 0; flip < 2; ++flip) {
      Tensor m(DType::kBool, {1, 1, sq, sk});
      for (int64_t q = 0; q < sq; ++q)
        for (int64_t k = 0; k < sk; ++k) m.data<uint8_t>()[q * sk + k] = k <= q + sk - sq;
      if (flip) m.data<uint8_t>()[(sq - 1) * sk] = 0;  // not causal any more: the mask is read
      const std::string dims = "[1,1," + std::to_string(sq) + "," + std::to_string(sk) + "]";
      auto c = make(graph("%q: float32[2," + std::to_string(sq) + ",128], %k: float32[2," + std::to_string(sk) +
                              ",128], %v: float32[2," + std::to_string(sk) + ",128], %m: bool" + dims,
                          "  %y = deepep.Attention<num_heads=2, scale=0.125, mask_mode=\"keep\", mask_fill=-3.4028235e+38>(%q, %k, %v, %m)"),
                    {{"m", m}});
      c.inputs = {rnd({2, sq, 128}, 82), rnd({2, sk, 128}, 83), rnd({2, sk, 128}, 84)};
      SCOPED_TRACE(std::to_string(sq) + "x" + std::to_string(sk) + (flip ? " flipped" : ""));
      expect_match(c, 5e-3, {true, false});
    }
  }
  // Grids larger than the GPU (no key split), 12 heads of 64 like the zoo's models: BERT's key mask, a
  // constant causal mask (partial last tiles), none (4-D).
  {
    auto c = make(graph("%q: float32[12,200,2304], %m: float32[12,1,1,200]",
                        "  %y = deepep.Attention<num_heads=12, qkv_hidden_sizes=[768,768,768], scale=0.125>(%q, _, _, %m)"));
    Tensor m = rnd({12, 1, 1, 200}, 85);
    for (int64_t i = 0; i < m.numel(); ++i) m.data<float>()[i] = m.data<float>()[i] > 0.6f ? -10000.f : 0.f;
    c.inputs = {rnd({12, 200, 2304}, 86), m};
    expect_match(c, 5e-3, {true, false});
  }
  {
    const int64_t s = 300;
    Tensor m(DType::kBool, {1, 1, s, s});
    for (int64_t q = 0; q < s; ++q)
      for (int64_t k = 0; k < s; ++k) m.data<uint8_t>()[q * s + k] = k <= q;
    auto c = make(graph("%q: float32[6,300,768], %k: float32[6,300,768], %v: float32[6,300,768], %m: bool[1,1,300,300]",
                        "  %y = deepep.Attention<num_heads=12, scale=0.125, mask_mode=\"keep\", mask_fill=-3.4028235e+38>(%q, %k, %v, %m)"),
                  {{"m", m}});
    c.inputs = {rnd({6, s, 768}, 87), rnd({6, s, 768}, 88), rnd({6, s, 768}, 89)};
    expect_match(c, 5e-3, {true, false});
  }
  {
    auto c = make(graph("%q: float32[8,12,150,64], %k: float32[8,12,150,64], %v: float32[8,12,150,64]",
                        "  %y = deepep.Attention<scale=0.125>(%q, %k, %v)"));
    c.inputs = {rnd({8, 12, 150, 64}, 90), rnd({8, 12, 150, 64}, 91), rnd({8, 12, 150, 64}, 92)};
    expect_match(c, 5e-3, {true, false});
  }
  {  // A negative scale leaves the tensor-core kernel (its unmasked scores stay unscaled until the exponent,
     // which needs scale > 0) for the tiled one.
    auto c = make(graph("%q: float32[2,4,70,64], %k: float32[2,4,70,64], %v: float32[2,4,70,64]",
                        "  %y = deepep.Attention<scale=-0.125>(%q, %k, %v)"));
    c.inputs = {rnd({2, 4, 70, 64}, 93), rnd({2, 4, 70, 64}, 94), rnd({2, 4, 70, 64}, 95)};
    expect_match(c, 5e-3, {true, false});
  }
  // 3-D separate Q, K, V with different lengths and a causal boolean keep-mask (GPT-2).
  auto k = make(graph("%q: float32[2,5,32], %k: float32[2,9,32], %v: float32[2,9,24], %m: bool[1,1,5,9]",
                      "  %y = deepep.Attention<num_heads=4, scale=0.3, mask_mode=\"keep\", mask_fill=-3.4028235e+38>(%q, %k, %v, %m)"));
  k.inputs = {rnd({2, 5, 32}, 34), rnd({2, 9, 32}, 35), rnd({2, 9, 24}, 36), bools({1, 1, 5, 9}, 37)};
  expect_match(k, 1e-5);
  // 4-D with K transposed.
  auto f = make(graph("%q: float32[2,3,6,8], %k: float32[2,3,8,10], %v: float32[2,3,10,5]",
                      "  %y = deepep.Attention<scale=0.35, k_transposed=1>(%q, %k, %v)"));
  f.inputs = {rnd({2, 3, 6, 8}, 38), rnd({2, 3, 8, 10}, 39), rnd({2, 3, 10, 5}, 40)};
  expect_match(f, 1e-5);
}

TEST(CudaKernels, MatMulShapes) {
  REQUIRE_GPU();
  struct C {
    Shape a, b;
  };
  for (const C& c : std::vector<C>{{{37, 29}, {29, 41}}, {{3, 5, 29}, {29, 17}}, {{4, 6, 8}, {4, 8, 3}}, {{6, 8}, {5, 8, 3}},
                                   {{2, 1, 6, 8}, {1, 3, 8, 5}}, {{8}, {8, 5}}, {{4, 8}, {8}}, {{0, 8}, {8, 5}}, {{3, 0}, {0, 4}}}) {
    auto sh = [](const Shape& s) { return "float32" + shape_str(s); };
    auto g = make(graph("%a: " + sh(c.a) + ", %b: " + sh(c.b), "  %y = MatMul(%a, %b)"));
    g.inputs = {rnd(c.a, 41), rnd(c.b, 42)};
    SCOPED_TRACE(shape_str(c.a) + " x " + shape_str(c.b));
    expect_match(g, 1e-5);
  }
}

TEST(CudaKernels, GemmAndFusedMatMul) {
  REQUIRE_GPU();
  auto g = make(graph("%a: float32[7,13], %b: float32[11,13], %c: float32[11]", "  %y = Gemm<transB=1, alpha=0.5>(%a, %b, %c)"),
                {{"b", rnd({11, 13}, 43)}, {"c", rnd({11}, 44)}});
  g.inputs = {rnd({7, 13}, 45)};
  expect_match(g, 1e-5);
  auto ga = make(graph("%a: float32[13,7], %b: float32[13,11], %c: float32[7,11]", "  %y = Gemm<transA=1>(%a, %b, %c)"));
  ga.inputs = {rnd({13, 7}, 46), rnd({13, 11}, 47), rnd({7, 11}, 48)};
  expect_match(ga, 1e-5);
  for (const char* act : {"", "Relu", "Gelu", "GeluTanh", "Tanh", "Sigmoid", "SiLU", "LeakyRelu", "Clip", "HardSwish"}) {
    for (int res = 0; res < 3; ++res) {
      for (int tb = 0; tb < 2; ++tb) {
        std::string attrs = "trans_b=" + std::to_string(tb);
        if (*act) attrs += std::string(", activation=\"") + act + "\"";
        if (std::string(act) == "LeakyRelu") attrs += ", activation_params=[0.1]";
        if (std::string(act) == "Clip") attrs += ", activation_params=[-0.5, 0.5]";
        if (res == 2) attrs += ", residual_before_activation=1";
        const Shape bs = tb ? Shape{19, 33} : Shape{33, 19};
        auto c = make(graph("%a: float32[2,5,33], %w: float32" + shape_str(bs) + ", %bias: float32[19], %r: float32[5,19]",
                            "  %y = deepep.FusedMatMul<" + attrs + ">(%a, %w, %bias" + (res ? ", %r" : "") + ")"),
                      {{"w", rnd(bs, 49)}, {"bias", rnd({19}, 50)}});
        c.inputs = {rnd({2, 5, 33}, 51), rnd({5, 19}, 52)};
        if (!res) c.inputs.pop_back();
        if (!res) c.g->inputs.pop_back();
        SCOPED_TRACE(attrs);
        expect_match(c, 1e-5);
      }
    }
  }
}

TEST(CudaKernels, Tf32AndFp16Gemm) {
  REQUIRE_GPU();
  auto c = make(graph("%a: float32[64,256], %w: float32[256,96], %bias: float32[96]",
                      "  %y = deepep.FusedMatMul<activation=\"Gelu\">(%a, %w, %bias)"),
                {{"w", rnd({256, 96}, 53)}, {"bias", rnd({96}, 54)}});
  c.inputs = {rnd({64, 256}, 55)};
  expect_match(c, 2e-3, {false, false});  // TF32: 10-bit mantissa operands
  // Float16: ReLU and both GELUs run in cuBLASLt's epilogue (erf GELU as the tanh form, within float16's step).
  for (const char* act : {"Relu", "Gelu", "GeluTanh"}) {
    auto h = make(graph("%a: float32[64,256], %w: float32[256,96], %bias: float32[96]",
                        std::string("  %y = deepep.FusedMatMul<activation=\"") + act + "\">(%a, %w, %bias)"),
                  {{"w", through_half(rnd({256, 96}, 56))}, {"bias", through_half(rnd({96}, 57))}});
    h.inputs = {rnd({64, 256}, 58, -3.f, 3.f)};
    SCOPED_TRACE(act);
    expect_match(h, 5e-3, {true, false});
  }
  // Float16 with an odd row length and >= 2^20 outputs (GPT-2's logits): Y^T = B^T A^T, then a transpose.
  for (int tb = 0; tb < 2; ++tb) {
    const Shape ws = tb ? Shape{16385, 96} : Shape{96, 16385};
    auto l = make(graph("%a: float32[2,32,96], %w: float32" + shape_str(ws),
                        std::string("  %y = deepep.FusedMatMul<trans_b=") + (tb ? "1" : "0") + ">(%a, %w)"),
                  {{"w", through_half(rnd(ws, 59))}});
    l.inputs = {rnd({2, 32, 96}, 60)};
    SCOPED_TRACE(tb);
    expect_match(l, 5e-3, {true, false});
  }
}

TEST(CudaKernels, ConvAndPooling) {
  REQUIRE_GPU();
  struct C {
    Shape x, w;
    std::string attrs;
  };
  for (const C& c : std::vector<C>{{{2, 3, 11, 13}, {8, 3, 3, 3}, "pads=[1,1,1,1]"},
                                   {{1, 4, 9, 9}, {6, 2, 3, 3}, "group=2, strides=[2,2]"},
                                   {{1, 8, 10, 7}, {8, 1, 3, 3}, "group=8, pads=[1,1,1,1], dilations=[2,1]"},
                                   {{2, 5, 17}, {4, 5, 3}, "pads=[2,2], strides=[2]"},
                                   {{1, 16, 7, 7}, {32, 16, 1, 1}, ""}}) {
    auto sh = [](const Shape& s) { return "float32" + shape_str(s); };
    auto g = make(graph("%x: " + sh(c.x) + ", %w: " + sh(c.w) + ", %b: float32[" + std::to_string(c.w[0]) + "]",
                        "  %y = Conv" + (c.attrs.empty() ? std::string() : "<" + c.attrs + ">") + "(%x, %w, %b)"),
                  {{"w", rnd(c.w, 59)}, {"b", rnd({c.w[0]}, 60)}});
    g.inputs = {rnd(c.x, 61)};
    SCOPED_TRACE(shape_str(c.x) + " " + c.attrs);
    expect_match(g, 1e-5);
  }
  auto f = make(graph("%x: float32[2,8,9,9], %w: float32[8,8,3,3], %b: float32[8], %r: float32[2,8,9,9]",
                      "  %y = deepep.FusedConv<pads=[1,1,1,1], activation=\"Relu\">(%x, %w, %b, %r)"),
                {{"w", rnd({8, 8, 3, 3}, 62)}, {"b", rnd({8}, 63)}});
  f.inputs = {rnd({2, 8, 9, 9}, 64), rnd({2, 8, 9, 9}, 65)};
  expect_match(f, 1e-5);
  expect_match(f, 5e-3, {true, false});
  auto p = make(graph("%x: float32[2,3,13,11]",
                      "  %m = MaxPool<kernel_shape=[3,3], strides=[2,2], pads=[1,1,1,1]>(%x)\n"
                      "  %a = AveragePool<kernel_shape=[2,3], strides=[1,2]>(%x)\n"
                      "  %c = AveragePool<kernel_shape=[3,3], pads=[1,1,1,1], count_include_pad=1>(%x)\n"
                      "  %g = GlobalAveragePool(%x)\n  %h = GlobalMaxPool(%x)",
                      "%m, %a, %c, %g, %h"));
  p.inputs = {rnd({2, 3, 13, 11}, 66)};
  expect_match(p, 1e-6);
}

TEST(CudaKernels, Fp16Elementwise) {
  REQUIRE_GPU();
  // A mask chain with a constant float16 cannot hold stays float32 in fp16 mode
  // (1 - mask) * -3.4e38 must not turn into 0 * -inf = NaN.
  auto c = make(graph("%m: int64[2,9], %x: float32[2,9]",
                      "  %f = Cast<to=1>(%m)\n  %one: float32[] = const[1]\n  %big: float32[] = const[-3.4028235e+38]\n"
                      "  %s = Sub(%one, %f)\n  %y = Mul(%s, %big)\n  %z = Add(%x, %y)",
                      "%y, %z"));
  c.inputs = {ints({2, 9}, 67, 0, 1), rnd({2, 9}, 68)};
  expect_match(c, 1e-3, {true, false});
}

TEST(CudaRuntime, LargeOutputsSurviveLaterRuns) {
  REQUIRE_GPU();
  // Outputs of 4 MB and more come back in pooled pinned buffers: one the
  // caller still holds must not be overwritten by a later run.
  auto g = parse_graph_text(graph("%x: float32[1100,1000]", "  %y = Neg(%x)\n  %z = Relu(%x)", "%y, %z"));
  auto model = cuda_load(*g, {});
  auto session = cuda_session(model);
  const Tensor a = rnd({1100, 1000}, 70), b = rnd({1100, 1000}, 71);
  auto check = [](const std::vector<Tensor>& r, const Tensor& x, const char* what) {
    ASSERT_EQ(r.size(), 2u) << what;
    for (int64_t i = 0; i < x.numel(); i += 997) {
      ASSERT_EQ(r[0].data<float>()[i], -x.data<float>()[i]) << what << " element " << i;
      ASSERT_EQ(r[1].data<float>()[i], std::max(0.f, x.data<float>()[i])) << what << " element " << i;
    }
  };
  std::vector<Tensor> ra = session->run({a});
  std::vector<Tensor> rb = session->run({b});  // graph replay
  std::vector<Tensor> rc = session->run({a});
  std::vector<Tensor> rd = session->run({b});  // every pooled buffer held: a buffer of its own
  check(ra, a, "first");
  check(rb, b, "second");
  check(rc, a, "third");
  check(rd, b, "fourth");
  ra.clear(), rb.clear(), rc.clear(), rd.clear();
  for (int i = 0; i < 4; ++i)  // buffers back in the pool, reused
    check(session->run({i % 2 ? a : b}), i % 2 ? a : b, "reused");
}

TEST(CudaRuntime, ShapeSignaturesAndMemoryReport) {
  REQUIRE_GPU();
  auto c = make(graph("%x: float32[batch,5], %w: float32[5,3]", "  %m = MatMul(%x, %w)\n  %y = Sigmoid(%m)"),
                {{"w", rnd({5, 3}, 72)}});
  CudaOptions o;
  o.strict_fp32 = true;
  auto model = cuda_load(*c.g, o);
  auto session = cuda_session(model);
  for (int64_t b : {3, 7, 1, 3, 7}) {
    const Tensor x = rnd({b, 5}, uint32_t(73 + b));
    const std::vector<Tensor> want = run_cpu(*c.g, {x});
    const std::vector<Tensor> got = session->run({x});
    std::string why;
    EXPECT_LE(rel_err(got[0], want[0], &why), 1e-6) << "batch " << b << " " << why;
    const MemoryReport r = session->memory_report();
    EXPECT_GT(r.planned_bytes, 0u);
    EXPECT_EQ(r.weights_bytes, 256u);  // 15 floats, one aligned slot
  }
}

// Regression: graph text leaves Node::opset 0 (unknown). Slice's shape
// inference and CPU reference took 0 for "< 10" (attribute form: no slicing,
// Y = X's shape) while the GPU kernel read the starts/ends/axes/steps inputs,
// so it walked X with the sliced strides over the unsliced shape: it read
// past X (arena poison, other buffers) and the eager run and the graph replay
// disagreed. Checked here against hand-computed values, not only the reference.
TEST(CudaKernels, SliceOfGraphTextSlicesAtEveryOpset) {
  REQUIRE_GPU();
  const std::string body =
      "  %s: int64[2] = const[-1, 1]\n  %e: int64[2] = const[-10, 100]\n  %a: int64[2] = const[0, 1]\n"
      "  %st: int64[2] = const[-2, 3]\n  %y = Slice(%x, %s, %e, %a, %st)";
  const Tensor x = rnd({9, 11, 4}, 18);
  for (int opset : {0, 10, 13, 18}) {
    SCOPED_TRACE(opset);
    auto sl = make(graph("%x: float32[9,11,4]", body));
    for (auto& n : sl.g->nodes()) n->opset = opset;
    sl.inputs = {x};
    const std::vector<Tensor> got = run_gpu(*sl.g, sl.inputs);
    ASSERT_EQ(got.size(), 1u);
    ASSERT_EQ(got[0].shape(), (Shape{5, 4, 4}));
    for (int64_t a = 0; a < 5; ++a)
      for (int64_t b = 0; b < 4; ++b)
        for (int64_t c = 0; c < 4; ++c)
          ASSERT_EQ(got[0].data<float>()[(a * 4 + b) * 4 + c], x.data<float>()[((8 - 2 * a) * 11 + 1 + 3 * b) * 4 + c])
              << a << "," << b << "," << c;
    expect_match(sl, 0);
  }
  // Opset 9: attributes, one input.
  auto at = make(graph("%x: float32[9,11,4]", "  %y = Slice<starts=[1, -3], ends=[100, -1], axes=[2, 0]>(%x)"));
  for (auto& n : at.g->nodes()) n->opset = 9;
  at.inputs = {x};
  expect_match(at, 0);
  // A large output (over the 4 MiB direct-copy threshold) walked backwards on two axes.
  auto big = make(graph("%x: float32[37,129,301]",
                        "  %s: int64[2] = const[-1, 300]\n  %e: int64[2] = const[-1000, -1000]\n"
                        "  %a: int64[2] = const[0, 2]\n  %st: int64[2] = const[-1, -1]\n  %y = Slice(%x, %s, %e, %a, %st)"));
  big.inputs = {rnd({37, 129, 301}, 19)};
  expect_match(big, 0);
}

// DEEPEP_CUDA_CONV (default find,fuse): algorithms timed by cuDNN,
// bias/ReLU/residual inside cudnnConvolutionBiasActivationForward (identity:
// IMPLICIT_PRECOMP_GEMM); "none": cuDNN's heuristic and the epilogue pass.
TEST(CudaKernels, ConvFusedInCudnnAndTimedAlgorithms) {
  REQUIRE_GPU();
  for (const char* opt : {"none", "find", "fuse", "find,fuse"}) {
    SCOPED_TRACE(opt);
    setenv("DEEPEP_CUDA_CONV", opt, 1);
    auto c = make(graph("%x: float32[2,6,11,13], %w: float32[8,6,3,3], %b: float32[8]",
                        "  %y = Conv<pads=[1,1,1,1], strides=[2,1]>(%x, %w, %b)"),
                  {{"w", rnd({8, 6, 3, 3}, 70)}, {"b", rnd({8}, 71)}});
    c.inputs = {rnd({2, 6, 11, 13}, 72)};
    expect_match(c, 1e-5);
    expect_match(c, 5e-3, {true, false});
    for (const char* attrs : {"activation=\"Relu\", residual_before_activation=1", "activation=\"Relu\"",
                              "residual_before_activation=1"}) {
      SCOPED_TRACE(attrs);
      auto f = make(graph("%x: float32[2,8,9,9], %w: float32[16,8,3,3], %b: float32[16], %r: float32[2,16,9,9]",
                          std::string("  %y = deepep.FusedConv<pads=[1,1,1,1], ") + attrs + ">(%x, %w, %b, %r)"),
                    {{"w", rnd({16, 8, 3, 3}, 73)}, {"b", rnd({16}, 74)}});
      f.inputs = {rnd({2, 8, 9, 9}, 75), rnd({2, 16, 9, 9}, 76)};
      expect_match(f, 1e-5);
      expect_match(f, 5e-3, {true, false});
    }
    auto r = make(graph("%x: float32[3,16,7,7], %w: float32[32,16,1,1], %b: float32[32]",
                        "  %y = deepep.FusedConv<activation=\"Relu\">(%x, %w, %b)"),
                  {{"w", rnd({32, 16, 1, 1}, 77)}, {"b", rnd({32}, 78)}});
    r.inputs = {rnd({3, 16, 7, 7}, 79)};
    expect_match(r, 1e-5);
    expect_match(r, 5e-3, {true, false});
  }
  unsetenv("DEEPEP_CUDA_CONV");
}

// The fused GEMM epilogue (GELU, residual) through the 16-byte vector path
// (columns a multiple of 8) and the scalar 2-D path (DEEPEP_CUDA_EPILOGUE=scalar).
TEST(CudaKernels, EpilogueVectorAndScalarPaths) {
  REQUIRE_GPU();
  for (const char* mode : {"", "scalar"}) {
    SCOPED_TRACE(mode);
    setenv("DEEPEP_CUDA_EPILOGUE", mode, 1);
    for (int64_t n : {64, 72, 36, 37}) {  // 36: vectors cross rows (per-element column bias); 37: scalar path
      const std::string ns = std::to_string(n);
      auto f = make(graph("%x: float32[2,5,48], %w: float32[48," + ns + "], %b: float32[" + ns + "], %r: float32[2,5," + ns + "]",
                          "  %y = deepep.FusedMatMul<activation=\"Gelu\">(%x, %w, %b, %r)"),
                    {{"w", rnd({48, n}, 80)}, {"b", rnd({n}, 81)}});
      f.inputs = {rnd({2, 5, 48}, 82), rnd({2, 5, n}, 83)};
      SCOPED_TRACE(n);
      expect_match(f, 1e-5);
      expect_match(f, 5e-3, {true, false});
    }
    // Conv epilogue (bias by row = n * C + c): 9x9 and 7x7 outputs (vectors
    // cross rows; 2*16*81 is no multiple of 8 in fp16: scalar), 14x14.
    for (int64_t hw : {9, 7, 14}) {
      const std::string h = std::to_string(hw);
      auto c = make(graph("%x: float32[2,8," + h + "," + h + "], %w: float32[16,8,3,3], %b: float32[16], %r: float32[2,16," + h + "," + h + "]",
                          "  %y = deepep.FusedConv<pads=[1,1,1,1], activation=\"Relu\">(%x, %w, %b, %r)\n"
                          "  %z = deepep.FusedConv<pads=[1,1,1,1], activation=\"Relu\", residual_before_activation=1>(%x, %w, %b, %r)",
                          "%y, %z"),
                    {{"w", rnd({16, 8, 3, 3}, 84)}, {"b", rnd({16}, 85)}});
      c.inputs = {rnd({2, 8, hw, hw}, 86), rnd({2, 16, hw, hw}, 87)};
      SCOPED_TRACE(hw);
      expect_match(c, 1e-5);
      expect_match(c, 5e-3, {true, false});
    }
    // MaxPool through the 32-bit index kernel at ResNet's stem geometry (small batch).
    auto mp = make(graph("%x: float32[2,5,112,112]", "  %y = MaxPool<kernel_shape=[3,3], strides=[2,2], pads=[1,1,1,1]>(%x)"));
    mp.inputs = {rnd({2, 5, 112, 112}, 88)};
    expect_match(mp, 0);
  }
  unsetenv("DEEPEP_CUDA_EPILOGUE");
}
