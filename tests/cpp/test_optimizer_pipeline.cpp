// The pass manager: levels, fixed points, the verifier after each pass, the
// fusion report, and that optimizing keeps a graph's outputs numerically equal.
#include <nlohmann/json.hpp>
#include <random>

#include "deepep/error.h"
#include "ir/graph_edit.h"
#include "optimizer_test_util.h"
#include "runtime/executor.h"

using namespace deepep;

namespace {

// Folding, CSE (of nodes and of constants) and DCE all have work here; every
// op has a kernel in this tree, so Executor runs it before and after.
const char* kMixed = R"(graph main(%x: float32[2,3]) {
    %c1: float32[3] = const[1, -2, 3]
    %c2: float32[3] = const[0.5, 0.5, -4]
    %c3: float32[3] = const[1, -2, 3]
    %k: float32[3] = Add(%c1, %c2)
    %a: float32[2,3] = Add(%x, %k)
    %r1: float32[2,3] = Relu(%a)
    %r2: float32[2,3] = Relu(%a)
    %b: float32[2,3] = Add(%x, %c3)
    %dead: float32[2,3] = Relu(%b)
    %s: float32[2,3] = Add(%r1, %r2)
    %y: float32[2,3] = Add(%s, %c1)
    return %y, %r1
  })";

std::vector<Tensor> run(const Graph& g, const Tensor& x) {
  Executor ex;
  return ex.run_graph(g, {x}, nullptr);
}

// Fails the graph on purpose: a node reading a value nothing defines.
class Breaker : public Pass {
 public:
  const char* name() const override { return "breaker"; }
  int level() const override { return 1; }
  bool run(Graph& g, PassContext&) override {
    Value* ghost = g.add_value(g.unique_name("ghost"));
    Value* out = g.add_value(g.unique_name("out"));
    insert_node_before(g, nullptr, "Relu", {ghost}, {out});
    return true;
  }
};

// Claims a change every time: the pass manager must stop anyway.
class Restless : public Pass {
 public:
  const char* name() const override { return "restless"; }
  int level() const override { return 1; }
  bool run(Graph&, PassContext& ctx) override {
    ctx.count("claims");
    return true;
  }
};

}  // namespace

TEST(OptimizerPipeline, KeepsOutputsNumericallyEqual) {
  auto before = parse_graph_text(kMixed);
  auto after = parse_graph_text(kMixed);
  OptimizeOptions o;
  o.verify = true;
  FusionReport r = optimize(*after, o);
  EXPECT_EQ(after->to_text(), optest::canon(R"(graph main(%x: float32[2,3]) {
      %c1: float32[3] = const[1, -2, 3]
      %k: float32[3] = const[1.5, -1.5, -1]
      %a: float32[2,3] = Add(%x, %k)
      %r1: float32[2,3] = Relu(%a)
      %s: float32[2,3] = Add(%r1, %r1)
      %y: float32[2,3] = Add(%s, %c1)
      return %y, %r1
    })"));
  EXPECT_EQ(r.nodes_before, 8);
  EXPECT_EQ(r.nodes_after, 4);

  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-3, 3);
  for (int trial = 0; trial < 4; ++trial) {
    Tensor x(DType::kFloat32, {2, 3});
    for (int i = 0; i < 6; ++i) x.data<float>()[i] = dist(rng);
    auto want = run(*before, x), got = run(*after, x);
    ASSERT_EQ(want.size(), got.size());
    for (size_t o = 0; o < want.size(); ++o)
      for (int i = 0; i < 6; ++i) EXPECT_EQ(got[o].data<float>()[i], want[o].data<float>()[i]) << o << "," << i;
  }
}

TEST(OptimizerPipeline, LevelsGateThePasses) {
  auto g = parse_graph_text(kMixed);
  const std::string text = g->to_text();
  OptimizeOptions o;
  o.level = 0;
  FusionReport r0 = optimize(*g, o);
  EXPECT_EQ(g->to_text(), text);
  EXPECT_EQ(r0.nodes_after, r0.nodes_before);
  for (const auto& p : r0.passes) EXPECT_EQ(p.runs, 0) << p.name;

  o.level = 1;
  FusionReport r1 = optimize(*g, o);
  for (const auto& p : r1.passes) {
    if (p.level > 1) EXPECT_EQ(p.runs, 0) << p.name;
    else EXPECT_GT(p.runs, 0) << p.name;
  }
  EXPECT_TRUE(r1.fixed_point);
  EXPECT_EQ(r1.rounds.size(), 1u);
}

TEST(OptimizerPipeline, TheVerifierNamesThePassThatBrokeTheGraph) {
  auto g = parse_graph_text(kMixed);
  std::vector<std::unique_ptr<Pass>> passes;
  passes.push_back(make_dead_code_elimination());  // removes 2 of the 8 nodes
  passes.push_back(std::make_unique<Breaker>());
  OptimizeOptions o;
  o.level = 1;
  o.verify = true;
  try {
    optimize_with(*g, passes, o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "optimizer: pass 'breaker' left an invalid graph: graph 'main': node #6 Relu reads %ghost "
              "(input 0), which is not defined before it");
  }
  // An invalid input graph is reported before any pass runs.
  auto h = parse_graph_text(kMixed);
  h->outputs.push_back(h->add_value("nowhere"));
  EXPECT_THROW(optimize(*h, o), Error);
}

TEST(OptimizerPipeline, StopsAtTheIterationCap) {
  auto g = parse_graph_text(kMixed);
  std::vector<std::unique_ptr<Pass>> passes;
  passes.push_back(std::make_unique<Restless>());
  OptimizeOptions o;
  o.level = 2;
  o.max_iterations = 3;
  FusionReport r = optimize_with(*g, passes, o);
  EXPECT_FALSE(r.fixed_point);
  EXPECT_EQ(r.rounds, (std::vector<int>{3, 3}));
  EXPECT_EQ(r.passes[0].runs, 6);
  EXPECT_EQ(r.passes[0].counters.at("claims"), 6);
}

TEST(OptimizerPipeline, ReportAsJson) {
  auto g = parse_graph_text(kMixed);
  FusionReport r = optimize(*g);
  auto j = nlohmann::json::parse(r.to_json());
  EXPECT_EQ(j["level"], 2);
  EXPECT_EQ(j["precision"], "float32");
  EXPECT_EQ(j["nodes_before"], 8);
  EXPECT_EQ(j["nodes_after"], 4);
  EXPECT_EQ(j["fixed_point"], true);
  ASSERT_EQ(j["passes"].size(), default_pipeline().size());
  EXPECT_EQ(j["passes"][0]["name"], "shape_folding");
  // Passes by name: their indices move as passes are added.
  auto pass = [&](const std::string& name) {
    for (const auto& p : j["passes"])
      if (p["name"] == name) return p;
    ADD_FAILURE() << "no pass " << name;
    return nlohmann::json::object();
  };
  const auto cse = pass("common_subexpression_elimination");
  EXPECT_EQ(cse["counters"]["nodes_merged"], 1);
  EXPECT_EQ(cse["counters"]["constants_merged"], 1);
  EXPECT_EQ(pass("constant_folding")["counters"]["folded.Add"], 1);
  EXPECT_EQ(pass("dead_code_elimination")["counters"]["nodes_removed"], 2);  // %dead and %b
  for (const auto& p : j["passes"]) {
    EXPECT_TRUE(p.contains("runs") && p.contains("changes") && p.contains("ms") && p.contains("level"));
  }
  // Without timings the report is reproducible.
  EXPECT_EQ(nlohmann::json::parse(r.to_json(-1, false))["passes"][0].contains("ms"), false);
  auto h = parse_graph_text(kMixed);
  EXPECT_EQ(optimize(*h).to_json(2, false), r.to_json(2, false));
}

// The report's fused_ops: the source ops inside the final graph's fused nodes,
// through nested fusions (decomposed GELU -> Gelu -> FusedMatMul epilogue).
TEST(Pipeline, FusedOpsCountSourceOpsThroughNestedFusions) {
  auto g = parse_graph_text(R"(graph main(%x: float32[4,3]) {
      %w: float32[3,2] = const[1, 2, 3, 4, 5, 6]
      %b: float32[2] = const[0.5, -0.5]
      %half: float32[] = const[0.5]
      %one: float32[] = const[1]
      %rs2: float32[] = const[0.70710677]
      %m: float32[4,2] = MatMul(%x, %w)
      %a: float32[4,2] = Add(%m, %b)
      %d: float32[4,2] = Mul(%a, %rs2)
      %e: float32[4,2] = Erf(%d)
      %p: float32[4,2] = Add(%e, %one)
      %q: float32[4,2] = Mul(%a, %p)
      %y: float32[4,2] = Mul(%q, %half)
      return %y
    })");
  for (const auto& n : g->nodes()) n->opset = 18;
  OptimizeOptions o;
  o.level = 2;
  o.verify = true;
  const FusionReport r = optimize(*g, o);
  ASSERT_EQ(g->nodes().size(), 1u) << g->to_text();
  EXPECT_EQ(g->nodes()[0]->op_type, "FusedMatMul");
  EXPECT_EQ(r.fused_nodes, 1);
  const std::map<std::string, int64_t> want = {{"Add", 2}, {"Erf", 1}, {"MatMul", 1}, {"Mul", 3}};
  EXPECT_EQ(r.fused_ops, want);
  const auto j = nlohmann::json::parse(r.to_json());
  EXPECT_EQ(j["fused_ops"]["Mul"], 3);
  EXPECT_EQ(j["fused_nodes"], 1);
}
