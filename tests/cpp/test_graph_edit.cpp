// Graph editing utilities and the verifier: uses (also through subgraphs),
// replacing uses while keeping output names, inserting in order, removing
// and pruning, and the verifier's precise complaints.
#include <gtest/gtest.h>

#include "deepep/error.h"
#include "ir/graph_edit.h"
#include "ir/graph_text_parser.h"

using namespace deepep;

namespace {
std::string canon(const std::string& text) { return parse_graph_text(text)->to_text(); }

std::string verify_error(const Graph& g) {
  try {
    verify(g);
  } catch (const Error& e) {
    return e.what();
  }
  return "ok";
}

Node* node(const Graph& g, size_t i) { return g.nodes()[i].get(); }
}  // namespace

TEST(GraphEdit, UsesCountSubgraphReadsAndOutputs) {
  auto g = parse_graph_text(R"(graph main(%x: float32[2], %c: bool[]) {
      %a: float32[2] = Relu(%x)
      %b: float32[2] = Add(%a, %a)
      %y: float32[2] = If<then_branch=graph t() { %r: float32[2] = Relu(%a) return %r },
                          else_branch=graph e() { return %x }>(%c)
      return %y, %b
    })");
  UseIndex uses(*g);
  const Value* a = g->find("a");
  ASSERT_EQ(uses.uses(a).size(), 3u);  // Add twice, If once (through its then-branch)
  EXPECT_EQ(uses.uses(a)[0].input, 0);
  EXPECT_EQ(uses.uses(a)[1].input, 1);
  EXPECT_EQ(uses.uses(a)[2].node, node(*g, 2));
  EXPECT_EQ(uses.uses(a)[2].input, -1);
  EXPECT_EQ(uses.sole_consumer(a), nullptr);
  EXPECT_EQ(uses.sole_consumer(g->find("c")), node(*g, 2));
  EXPECT_EQ(uses.sole_consumer(g->find("b")), nullptr);  // a graph output
  EXPECT_TRUE(uses.is_output(g->find("b")));
  EXPECT_EQ(uses_of(*g, g->find("x")).size(), 2u);
}

TEST(GraphEdit, ReplaceKeepsOutputNames) {
  auto g = parse_graph_text(R"(graph main(%x: float32[2]) {
      %t: float32[2] = Relu(%x)
      %y: float32[2] = Relu(%t)
      %z: float32[2] = Relu(%y)
      return %y, %z
    })");
  // %y is an output: %t takes its name, and what read %y now reads %t.
  ASSERT_TRUE(replace_all_uses(*g, g->find("y"), g->find("t")));
  remove_nodes(*g, {node(*g, 1)});
  verify(*g);
  EXPECT_EQ(g->to_text(), canon(R"(graph main(%x: float32[2]) {
      %y: float32[2] = Relu(%x)
      %z: float32[2] = Relu(%y)
      return %y, %z
    })"));
}

TEST(GraphEdit, ReplaceRefusesWhatWouldRenameAnInputOrAnotherOutput) {
  const std::string text = R"(graph main(%x: float32[2]) {
      %y: float32[2] = Relu(%x)
      %z: float32[2] = Relu(%x)
      return %y, %z
    })";
  auto g = parse_graph_text(text);
  EXPECT_FALSE(can_replace_all_uses(*g, g->find("y"), g->find("x")));
  EXPECT_FALSE(replace_all_uses(*g, g->find("y"), g->find("x")));
  EXPECT_FALSE(replace_all_uses(*g, g->find("y"), g->find("z")));
  EXPECT_EQ(g->to_text(), canon(text));
  // A non-output may be replaced by anything.
  EXPECT_TRUE(can_replace_all_uses(*g, g->find("x"), g->find("y")));
}

TEST(GraphEdit, ReplaceReachesIntoSubgraphs) {
  auto g = parse_graph_text(R"(graph main(%x: float32[2], %c: bool[]) {
      %a: float32[2] = Relu(%x)
      %b: float32[2] = Identity(%a)
      %y: float32[2] = If<then_branch=graph t() { %r: float32[2] = Relu(%b) return %r },
                          else_branch=graph e() { return %b }>(%c)
      return %y
    })");
  ASSERT_TRUE(replace_all_uses(*g, g->find("b"), g->find("a")));
  remove_nodes(*g, {node(*g, 1)});
  verify(*g);
  EXPECT_EQ(g->to_text(), canon(R"(graph main(%x: float32[2], %c: bool[]) {
      %a: float32[2] = Relu(%x)
      %y: float32[2] = If<then_branch=graph t() { %r: float32[2] = Relu(%a) return %r },
                          else_branch=graph e() { return %a }>(%c)
      return %y
    })"));
}

TEST(GraphEdit, InsertBeforeKeepsTopologicalOrder) {
  auto g = parse_graph_text(R"(graph main(%x: float32[2]) {
      %a: float32[2] = Relu(%x)
      %y: float32[2] = Relu(%a)
      return %y
    })");
  Value* b = new_value(*g, "a", DType::kFloat32, SymShape{Dim::known(2)});
  EXPECT_EQ(b->name, "a_1");
  Value* one = new_constant(*g, "one", Tensor::zeros(DType::kFloat32, {2}));
  insert_node_before(*g, node(*g, 1), "Add", {g->find("a"), one}, {b});
  node(*g, 2)->inputs[0] = b;
  verify(*g);
  EXPECT_EQ(g->to_text(), canon(R"(graph main(%x: float32[2]) {
      %one: float32[2] = const[0, 0]
      %a: float32[2] = Relu(%x)
      %a_1: float32[2] = Add(%a, %one)
      %y: float32[2] = Relu(%a_1)
      return %y
    })"));
  EXPECT_NE(node(*g, 1)->def, nullptr);  // Add is in the op table
  // Placed before its input's producer, the graph is no longer topological.
  Value* c = new_value(*g, "c", DType::kFloat32);
  insert_node_before(*g, node(*g, 0), "Relu", {b}, {c});
  EXPECT_EQ(verify_error(*g),
            "graph 'main': node #0 Relu reads %a_1 (input 0), which a later node produces (not topological)");
}

TEST(GraphEdit, RemoveNodesPrunesWhatNothingReads) {
  auto g = parse_graph_text(R"(graph main(%x: float32[2]) {
      %w: float32[2] = const[1, 2]
      %k: float32[2] = const[3, 4]
      %a: float32[2] = Add(%x, %w)
      %y: float32[2] = Relu(%x)
      return %y
    })");
  remove_nodes(*g, {node(*g, 0)});
  verify(*g);
  EXPECT_EQ(g->to_text(), canon(R"(graph main(%x: float32[2]) {
      %y: float32[2] = Relu(%x)
      return %y
    })"));
  EXPECT_EQ(g->values().size(), 2u);
  EXPECT_EQ(g->find("w"), nullptr);
}

TEST(GraphEdit, PruneKeepsConstantsThatOnlySubgraphsRead) {
  auto g = parse_graph_text(R"(graph main(%c: bool[]) {
      %k: float32[1] = const[3]
      %y: float32[1] = If<then_branch=graph t() { return %k }, else_branch=graph e() { return %k }>(%c)
      return %y
    })");
  EXPECT_EQ(prune_values(*g), 0);
  verify(*g);
}

TEST(Verifier, NamesWhatIsWrong) {
  auto g = parse_graph_text(R"(graph main(%x: float32[2]) {
      %a: float32[2] = Relu(%x)
      %y: float32[2] = Relu(%a)
      return %y
    })");
  EXPECT_EQ(verify_error(*g), "ok");
  // A read of a value nothing defines.
  Value* ghost = g->add_value("ghost");
  node(*g, 1)->inputs[0] = ghost;
  EXPECT_EQ(verify_error(*g), "graph 'main': node #1 Relu reads %ghost (input 0), which is not defined before it");
  node(*g, 1)->inputs[0] = g->find("a");
  // Two producers of one value.
  node(*g, 1)->outputs[0] = g->find("a");
  EXPECT_EQ(verify_error(*g),
            "graph 'main': node #1 Relu output 0 %a names another producer (node #0 Relu)");
  node(*g, 1)->outputs[0] = g->find("y");
  // A constant that a node also produces.
  g->find("a")->data = Tensor::zeros(DType::kFloat32, {2});
  EXPECT_EQ(verify_error(*g), "graph 'main': value %a is both a constant and produced by node #0 Relu");
  g->find("a")->data.reset();
  // A graph output nothing produces.
  g->outputs.push_back(ghost);
  EXPECT_EQ(verify_error(*g), "graph 'main': graph output %ghost is never defined");
  g->outputs.pop_back();
  // Stale ids after an edit without reindex.
  node(*g, 0)->id = 5;
  EXPECT_EQ(verify_error(*g), "graph 'main': Relu at position 0 has id 5 (call reindex)");
  g->reindex();
  EXPECT_EQ(verify_error(*g), "ok");
}

TEST(Verifier, SubgraphCapturesMustBeDefinedBeforeTheOwningNode) {
  auto g = parse_graph_text(R"(graph main(%x: float32[1], %c: bool[]) {
      %y: float32[1] = If<then_branch=graph t() { return %x }, else_branch=graph e() { return %x }>(%c)
      %late: float32[1] = Relu(%x)
      return %y
    })");
  EXPECT_EQ(verify_error(*g), "ok");
  Graph& body = *node(*g, 0)->attrs.at("then_branch").graphs[0];
  body.outputs[0] = g->find("late");
  EXPECT_EQ(verify_error(*g),
            "graph 'main': in subgraph 'then_branch' of node #0 If: graph 't': graph output %late is never defined");
}
