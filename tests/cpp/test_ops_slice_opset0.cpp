// Slice in a graph whose nodes carry no opset (graph text, Node::opset 0):
// with more than one input it is the input form (starts, ends, axes, steps),
// as every other op reads opset 0 as "current". Shape inference and the CPU
// reference used to take 0 for "< 10" and return X unsliced, disagreeing with
// the CUDA kernel (tests/cuda SliceOfGraphTextSlicesAtEveryOpset).
#include <gtest/gtest.h>

#include "ir/graph_text_parser.h"
#include "runtime/executor.h"

using namespace deepep;

TEST(TensorOps, SliceWithoutOpsetUsesItsInputs) {
  auto g = parse_graph_text(
      "graph main(%x: float32[9,11,4]) {\n"
      "  %s: int64[2] = const[-1, 1]\n  %e: int64[2] = const[-10, 100]\n  %a: int64[2] = const[0, 1]\n"
      "  %st: int64[2] = const[-2, 3]\n  %y = Slice(%x, %s, %e, %a, %st)\n  return %y\n}");
  for (auto& n : g->nodes()) ASSERT_EQ(n->opset, 0);
  Tensor x(DType::kFloat32, {9, 11, 4});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = float(i);
  Executor ex;
  const std::vector<Tensor> y = ex.run_graph(*g, {x}, nullptr);
  ASSERT_EQ(y.size(), 1u);
  ASSERT_EQ(y[0].shape(), (Shape{5, 4, 4}));
  for (int64_t a = 0; a < 5; ++a)
    for (int64_t b = 0; b < 4; ++b)
      for (int64_t c = 0; c < 4; ++c)
        EXPECT_EQ(y[0].data<float>()[(a * 4 + b) * 4 + c], float(((8 - 2 * a) * 11 + 1 + 3 * b) * 4 + c));
  // The attribute form (one input) still works without an opset.
  auto g9 = parse_graph_text(
      "graph main(%x: float32[9,11,4]) {\n  %y = Slice<starts=[1, -3], ends=[100, -1], axes=[2, 0]>(%x)\n  return %y\n}");
  const std::vector<Tensor> y9 = ex.run_graph(*g9, {x}, nullptr);
  ASSERT_EQ(y9[0].shape(), (Shape{2, 11, 3}));
  EXPECT_EQ(y9[0].data<float>()[0], float((6 * 11) * 4 + 1));
}
