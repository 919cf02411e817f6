// Large graph outputs stream to the host in blocks of rows while they are
// made (src/runtime/cuda_output_blocks.h): every block must land where it
// belongs, in every precision, in the eager run and in graph replays whose
// copies are re-pointed at a new result buffer each run, and a result the
// caller still holds must never be overwritten.
#include "cuda_test_util.h"
#include "runtime/cuda_output_blocks.h"

using namespace deepep;
using namespace deepep::cuda_test;

namespace {
Tensor as_float(const Tensor& t) {
  if (t.dtype() != DType::kFloat16) return t;
  Tensor r(DType::kFloat32, t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) r.data<float>()[i] = half_bits_to_float(t.data<uint16_t>()[i]);
  return r;
}

struct Case {
  const char* name;
  std::string text;
  std::vector<std::pair<std::string, Tensor>> consts;
  std::vector<Shape> inputs;
};

// Runs `c` six times on one session with alternating inputs, holding every
// result, then checks them all against the CPU reference.
void check_streamed(const Case& c, CudaOptions o, double tol) {
  SCOPED_TRACE(std::string(c.name) + (o.fp16 ? " fp16" : " fp32") + (o.fp16_outputs ? " fp16-outputs" : ""));
  Graphed g = make(c.text, c.consts);
  std::vector<std::vector<Tensor>> in(2);
  for (size_t k = 0; k < 2; ++k)
    for (size_t i = 0; i < c.inputs.size(); ++i) in[k].push_back(rnd(c.inputs[i], uint32_t(900 + 10 * k + i)));
  std::vector<std::vector<Tensor>> want;
  for (const auto& x : in) {
    std::vector<Tensor> cpu_in = x;
    if (o.fp16)
      for (Tensor& t : cpu_in) t = through_half(t);
    want.push_back(run_cpu(*g.g, cpu_in));
  }
  o.poison = true;
  auto session = cuda_session(cuda_load(*g.g, o));
  std::vector<std::vector<Tensor>> got;
  // Run 1 eager, 2 captures, 3-4 re-point the copies at new pooled buffers,
  // 5-6 find every pooled buffer held: buffers of their own.
  for (int r = 0; r < 6; ++r) got.push_back(session->run(in[size_t(r % 2)]));
  for (int r = 0; r < 6; ++r) {
    ASSERT_EQ(got[size_t(r)].size(), want[0].size());
    for (size_t i = 0; i < want[0].size(); ++i) {
      std::string why;
      const double e = rel_err(as_float(got[size_t(r)][i]), want[size_t(r % 2)][i], &why);
      EXPECT_LE(e, tol) << "run " << r << " output " << i << " " << why;
    }
  }
  got.clear();  // back in the pool: reused
  const std::vector<Tensor> again = session->run(in[1]);
  std::string why;
  EXPECT_LE(rel_err(as_float(again[0]), want[1][0], &why), tol) << why;
}

std::vector<Case> cases() {
  std::vector<Case> cs;
  // 36.7 MB of float32: four blocks, the last one shorter (3055 rows = 3 x 768 + 751), odd row length.
  cs.push_back({"FusedMatMul",
                "graph main(%a: float32[5,611,96], %w: float32[96,3001], %bias: float32[3001]) {\n"
                "  %y = deepep.FusedMatMul<activation=\"Relu\">(%a, %w, %bias)\n  %s = Relu(%a)\n"
                "  return %y, %s\n}",
                {{"w", through_half(rnd({96, 3001}, 901))}, {"bias", through_half(rnd({3001}, 902))}},
                {{5, 611, 96}}});
  // The output is a view (Flatten) of the MatMul's bytes; B transposed in Gemm.
  cs.push_back({"Gemm through a view",
                "graph main(%a: float32[2600,64], %w: float32[2051,64]) {\n"
                "  %m = Gemm<transB=1>(%a, %w)\n  %y = Flatten<axis=1>(%m)\n  return %y\n}",
                {{"w", through_half(rnd({2051, 64}, 903))}},
                {{2600, 64}}});
  cs.push_back({"LayerNormalization",
                "graph main(%x: float32[3001,1531], %g: float32[1531], %b: float32[1531]) {\n"
                "  %y = LayerNormalization<axis=-1, epsilon=1e-5>(%x, %g, %b)\n  return %y\n}",
                {{"g", rnd({1531}, 904)}, {"b", rnd({1531}, 905)}},
                {{3001, 1531}}});
  return cs;
}
}  // namespace

TEST(CudaRuntime, LargeOutputsStreamInBlocks) {
  REQUIRE_GPU();
  for (const Case& c : cases()) {
    CudaOptions strict;
    strict.strict_fp32 = true;
    check_streamed(c, strict, 1e-5);
    CudaOptions half;
    half.fp16 = true;  // float16 on the device, converted back to float32 block by block
    check_streamed(c, half, 5e-3);
    half.fp16_outputs = true;  // float16 results: no conversion
    check_streamed(c, half, 5e-3);
  }
}

// The wave plan: whole batch items when there are several, blocks of 64 rows inside one sequence, none for
// outputs too small to be worth it; a forced count is honoured exactly (odd boundaries, for the tests).
TEST(CudaRuntime, RowWavesPlan) {
  using W = std::vector<std::pair<int64_t, int64_t>>;
  const uint64_t mb = uint64_t(1) << 20;
  EXPECT_TRUE(cuda::row_waves(512, 1, 51 * mb, 0).empty());  // gpt2 b1 s512: waves of 192 rows cost more than they hide
  EXPECT_EQ(cuda::row_waves(2048, 1, 201 * mb, 0), (W{{0, 512}, {512, 512}, {1024, 512}, {1536, 512}}));
  W b8;
  for (int64_t i = 0; i < 8; ++i) b8.emplace_back(i * 512, 512);
  EXPECT_EQ(cuda::row_waves(4096, 8, 411 * mb, 0), b8);  // gpt2 b8: one sequence a wave
  EXPECT_EQ(cuda::row_waves(4096, 8, 40 * mb, 0), (W{{0, 2048}, {2048, 2048}}));
  EXPECT_TRUE(cuda::row_waves(512, 1, 20 * mb, 0).empty());
  EXPECT_TRUE(cuda::row_waves(100, 1, 400 * mb, 0).empty());  // too few rows
  EXPECT_EQ(cuda::row_waves(128, 1, 1, 3), (W{{0, 43}, {43, 43}, {86, 42}}));
  EXPECT_EQ(cuda::row_waves(192, 3, 1, 2), (W{{0, 128}, {128, 64}}));
  EXPECT_EQ(cuda::row_waves(160, 5, 1, 8), (W{{0, 32}, {32, 32}, {64, 32}, {96, 32}, {128, 32}}));
  EXPECT_TRUE(cuda::row_waves(100, 3, 400 * mb, 0).empty());  // rows do not split into items
  EXPECT_TRUE(cuda::row_waves(0, 1, 400 * mb, 4).empty());
}
