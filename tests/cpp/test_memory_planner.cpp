#include <gtest/gtest.h>

#include <random>

#include "runtime/memory_planner.h"

using namespace deepep;

TEST(MemoryPlanner, ChainReusesTwoBuffers) {
  // a -> b -> c -> d, each 1 KiB: only two are ever live together.
  std::vector<BufferRequest> r = {{1024, 0, 1}, {1024, 1, 2}, {1024, 2, 3}, {1024, 3, 4}};
  MemoryPlan p = plan_memory(r);
  EXPECT_EQ(check_plan(r, p), "");
  EXPECT_EQ(p.naive_bytes, 4096u);
  EXPECT_EQ(p.lower_bound_bytes, 2048u);
  EXPECT_EQ(p.arena_bytes, 2048u);
}

TEST(MemoryPlanner, EmptyAndZeroSized) {
  EXPECT_EQ(plan_memory({}).arena_bytes, 0u);
  std::vector<BufferRequest> r = {{0, 0, 3}, {100, 1, 2}};
  MemoryPlan p = plan_memory(r);
  EXPECT_EQ(check_plan(r, p), "");
  EXPECT_EQ(p.arena_bytes, 128u);
}

TEST(MemoryPlanner, RandomGraphsNeverOverlapAndStayNearTheLowerBound) {
  std::mt19937 rng(7);
  double worst = 0;
  for (int trial = 0; trial < 200; ++trial) {
    const int steps = 5 + int(rng() % 60);
    std::vector<BufferRequest> r;
    for (int s = 0; s < steps; ++s) {
      // Mostly short-lived activations, some long skip connections, like CNNs and transformers.
      const int life = (rng() % 5 == 0) ? 1 + int(rng() % 12) : 1 + int(rng() % 2);
      r.push_back({uint64_t(1 + rng() % 100000), s, std::min(steps, s + life)});
    }
    MemoryPlan p = plan_memory(r);
    ASSERT_EQ(check_plan(r, p), "") << "trial " << trial;
    ASSERT_GE(p.arena_bytes, p.lower_bound_bytes);
    ASSERT_LE(p.arena_bytes, p.naive_bytes);
    worst = std::max(worst, double(p.arena_bytes) / double(p.lower_bound_bytes));
  }
  EXPECT_LT(worst, 2.0) << "greedy-by-size should stay within 2x of the bound on these";
}

TEST(MemoryPlanner, CheckerCatchesAClash) {
  std::vector<BufferRequest> r = {{256, 0, 2}, {256, 1, 3}};
  MemoryPlan p = plan_memory(r);
  p.offsets = {0, 128};
  EXPECT_NE(check_plan(r, p), "");
}
