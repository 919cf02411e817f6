#include "optimizer_test_util.h"

using namespace deepep;

namespace {
const std::vector<std::unique_ptr<Pass> (*)()> kDce = {make_dead_code_elimination};
}

TEST(DeadCodeElimination, RemovesUnreachableNodesAndConstantsKeepsInputs) {
  EXPECT_REWRITE(kDce, R"(graph main(%x: float32[2], %unused: float32[2]) {
      %w: float32[2] = const[1, 2]
      %k: float32[2] = const[3, 4]
      %dead1: float32[2] = Add(%x, %w)
      %dead2: float32[2] = Relu(%dead1)
      %y: float32[2] = Add(%x, %k)
      return %y
    })",
                 R"(graph main(%x: float32[2], %unused: float32[2]) {
      %k: float32[2] = const[3, 4]
      %y: float32[2] = Add(%x, %k)
      return %y
    })");
}

TEST(DeadCodeElimination, KeepsWhatOnlyASubgraphReads) {
  EXPECT_UNCHANGED(kDce, R"(graph main(%x: float32[2], %c: bool[]) {
      %a: float32[2] = Relu(%x)
      %y: float32[2] = If<else_branch=graph e() { return %x }, then_branch=graph t() { return %a }>(%c)
      return %y
    })");
}

TEST(DeadCodeElimination, CleansSubgraphsToo) {
  EXPECT_REWRITE(kDce, R"(graph main(%x: float32[2], %c: bool[]) {
      %y: float32[2] = If<else_branch=graph e() { return %x },
                          then_branch=graph t() { %d: float32[2] = Relu(%x)  %r: float32[2] = Relu(%x) return %r }>(%c)
      return %y
    })",
                 R"(graph main(%x: float32[2], %c: bool[]) {
      %y: float32[2] = If<else_branch=graph e() { return %x },
                          then_branch=graph t() { %r: float32[2] = Relu(%x) return %r }>(%c)
      return %y
    })");
}

TEST(DeadCodeElimination, DropsOnlyOptionalUnusedOutputs) {
  // Dropout's mask is optional: dropped. Split's outputs are not: kept.
  EXPECT_REWRITE(kDce, R"(graph main(%x: float32[4]) {
      %y: float32[4], %mask: bool[4] = Dropout(%x)
      %a: float32[2], %b: float32[2] = Split(%y)
      return %a
    })",
                 R"(graph main(%x: float32[4]) {
      %y: float32[4] = Dropout(%x)
      %a: float32[2], %b: float32[2] = Split(%y)
      return %a
    })");
}

TEST(DeadCodeElimination, ReportsCounts) {
  FusionReport r;
  optest::run_passes(kDce, R"(graph main(%x: float32[2]) {
      %w: float32[2] = const[1, 2]
      %d: float32[2] = Add(%x, %w)
      %e: float32[2] = Relu(%d)
      return %x
    })",
                      &r);
  const PassReport* p = r.pass("dead_code_elimination");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->counters.at("nodes_removed"), 2);
  EXPECT_EQ(p->counters.at("values_pruned"), 3);  // %w, %d, %e
  EXPECT_EQ(r.nodes_before, 2);
  EXPECT_EQ(r.nodes_after, 0);
  EXPECT_EQ(p->changes, 1);
  EXPECT_EQ(p->runs, 2);  // the second round finds the fixed point
}
