#include <gtest/gtest.h>

#include <cmath>

#include "deepep/half.h"
#include "ir/graph.h"
#include "ir/op_registry.h"

using namespace deepep;

TEST(Half, RoundTripsAndRoundsToNearestEven) {
  for (float f : {0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f, 0.333333f}) {
    float r = float16(f);
    EXPECT_NEAR(r, f, std::fabs(f) * 1e-3 + 1e-7) << f;
  }
  EXPECT_TRUE(std::isinf(float(float16(65520.0f))));
  EXPECT_TRUE(std::isnan(float(float16(NAN))));
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties go to even (1.0).
  EXPECT_EQ(float16(1.0f + 1.0f / 2048).bits, float16(1.0f).bits);
  EXPECT_EQ(float(bfloat16(1.0f)), 1.0f);
  EXPECT_NEAR(float(bfloat16(3.14159f)), 3.14159f, 0.02f);
}

TEST(Float8, KnownCodes) {
  EXPECT_EQ(f8_to_float(0x7e, F8Kind::E4M3FN), 448.0f);
  EXPECT_TRUE(std::isnan(f8_to_float(0x7f, F8Kind::E4M3FN)));
  EXPECT_EQ(float_to_f8(448.0f, F8Kind::E4M3FN, true), 0x7e);
  EXPECT_EQ(float_to_f8(1e6f, F8Kind::E4M3FN, true), 0x7e);
  EXPECT_EQ(float_to_f8(1e6f, F8Kind::E4M3FN, false), 0x7f);
  EXPECT_EQ(float_to_f8(1e6f, F8Kind::E5M2, false), 0x7c);
  EXPECT_EQ(f8_to_float(float_to_f8(-1.5f, F8Kind::E5M2FNUZ, true), F8Kind::E5M2FNUZ), -1.5f);
}

TEST(Graph, TextForm) {
  Graph g;
  Value* x = g.add_value("x");
  x->dtype = DType::kFloat32;
  x->shape = SymShape{Dim::sym("batch"), Dim::known(4)};
  g.inputs.push_back(x);
  Node* n = g.add_node("Relu", "r");
  Value* y = g.add_value("y");
  n->inputs = {x};
  n->outputs = {y};
  y->producer = n;
  g.outputs.push_back(y);
  EXPECT_EQ(g.to_text(),
            "graph main(%x: float32[batch,4]) {\n  %y: undefined[*] = Relu(%x)\n  return %y\n}\n");
}

TEST(OpRegistry, EveryOpHasAReferenceKernel) {
  ASSERT_FALSE(all_ops().empty());
  for (const auto& [name, def] : all_ops()) EXPECT_TRUE(bool(def.reference)) << name;
}
