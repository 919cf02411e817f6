#include <gtest/gtest.h>

#include <cmath>
#include <limits>

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

TEST(Float4E2M1, AllCodesAndRounding) {
  const float mags[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
  for (int c = 0; c < 16; ++c) {
    const float v = f4e2m1_to_float(uint8_t(c));
    EXPECT_EQ(v, c < 8 ? mags[c] : -mags[c - 8]) << c;
    EXPECT_EQ(std::signbit(v), c >= 8) << c;
    EXPECT_EQ(float_to_f4e2m1(v), c) << c;  // every code round-trips, -0 included
  }
  // Ties go to the even code: 0.25 -> 0, 0.75 -> 1.0 (code 2), 1.25 -> 1.0, 1.75 -> 2,
  // 2.5 -> 2, 3.5 -> 4, 5 -> 4; just past a tie rounds away.
  const float in[] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f, 0.2500001f, 4.9999f, 5.0001f};
  const int want[] = {0, 2, 2, 4, 4, 6, 6, 1, 6, 7};
  for (int i = 0; i < 10; ++i) EXPECT_EQ(float_to_f4e2m1(in[i]), want[i]) << in[i];
  EXPECT_EQ(float_to_f4e2m1(-0.1f), 0x8);  // rounds to -0
  // Always saturates: beyond 6 and infinities give +-6.
  EXPECT_EQ(float_to_f4e2m1(6.9f), 0x7);
  EXPECT_EQ(float_to_f4e2m1(3e38f), 0x7);
  EXPECT_EQ(float_to_f4e2m1(-INFINITY), 0xF);
  // NaN has no code; ml_dtypes gives +NaN -> 0x8 and -NaN -> 0x0.
  EXPECT_EQ(float_to_f4e2m1(std::numeric_limits<float>::quiet_NaN()), 0x8);
  EXPECT_EQ(float_to_f4e2m1(-std::numeric_limits<float>::quiet_NaN()), 0x0);
}

TEST(Float8E8M0, CodesAndRoundModes) {
  EXPECT_EQ(e8m0_to_float(127), 1.0f);
  EXPECT_EQ(e8m0_to_float(0), std::ldexp(1.0f, -127));
  EXPECT_EQ(e8m0_to_float(254), std::ldexp(1.0f, 127));
  EXPECT_TRUE(std::isnan(e8m0_to_float(255)));
  // Powers of two are exact in every mode.
  for (auto m : {E8M0Round::Up, E8M0Round::Down, E8M0Round::Nearest}) {
    EXPECT_EQ(float_to_e8m0(1.0f, m, true), 127);
    EXPECT_EQ(float_to_e8m0(0.125f, m, true), 124);
    EXPECT_EQ(float_to_e8m0(NAN, m, true), 255);
    EXPECT_EQ(float_to_e8m0(INFINITY, m, true), 255);  // as the ONNX reference
    EXPECT_EQ(float_to_e8m0(0.0f, m, false), 0);
  }
  // The ONNX test data: 0.124 -> 0.125, 1.1 -> 2 (round up).
  EXPECT_EQ(float_to_e8m0(0.124f, E8M0Round::Up, true), 124);
  EXPECT_EQ(float_to_e8m0(1.1f, E8M0Round::Up, true), 128);
  EXPECT_EQ(float_to_e8m0(1.9f, E8M0Round::Down, true), 127);
  // Nearest: below 1.5 * 2^e down, from 1.5 (the tie) up.
  EXPECT_EQ(float_to_e8m0(1.49f, E8M0Round::Nearest, true), 127);
  EXPECT_EQ(float_to_e8m0(1.5f, E8M0Round::Nearest, true), 128);
  EXPECT_EQ(float_to_e8m0(-3.0f, E8M0Round::Nearest, true), 129);  // sign ignored
  // Rounding up past 2^127: saturate keeps 0xFE, otherwise NaN.
  const float big = std::ldexp(1.5f, 127);
  EXPECT_EQ(float_to_e8m0(big, E8M0Round::Up, true), 254);
  EXPECT_EQ(float_to_e8m0(big, E8M0Round::Up, false), 255);
  EXPECT_EQ(float_to_e8m0(big, E8M0Round::Nearest, false), 255);
  EXPECT_EQ(float_to_e8m0(big, E8M0Round::Down, false), 254);
  // Float32 subnormals: exponent field 0; round up (any fraction) gives code 1.
  EXPECT_EQ(float_to_e8m0(std::ldexp(1.0f, -140), E8M0Round::Up, true), 1);
  EXPECT_EQ(float_to_e8m0(std::ldexp(1.0f, -140), E8M0Round::Down, true), 0);
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
