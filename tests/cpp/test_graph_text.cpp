// The IR text form reads back to the same graph (printing the parsed graph
// gives the same text), for every construct the printer writes.
#include <gtest/gtest.h>

#include <cmath>

#include "deepep/error.h"
#include "ir/graph_text_parser.h"
#include "ir/op_registry.h"

using namespace deepep;

namespace {
std::string round_trip(const std::string& text) { return parse_graph_text(text)->to_text(); }
}  // namespace

TEST(GraphText, RoundTripsEveryConstruct) {
  const std::string text = R"(graph main(%x: float32[batch,4], %"onnx::in 1": int64[*], %m: bool[?,"a b"]) {
  %w: float32[4] = const[1, -2.5, 1e-07, 3.4028235e+38]
  %i: int64[2] = const[-9223372036854775808, 7]
  %b: bool[2] = const[true, false]
  %h: float16[3] = const[0.5, 65504, -inf]
  %s: float64[] = const[0.1]
  %e: float32[0,3] = const[]
  %y: float32[batch,4] = Add(%x, %w)
  %/a/b.c-d: float32[batch,4], _ = deepep.Fused<alpha=1.0, axes=[0,-1], empty=[], f=floats[], mode="say \"hi\"\n", names=["a","b"], nothing=strings[], scales=[0.5,2.0], t=tensor<int64[2]>[3, 4]>(%y, _, %"onnx::in 1")
  %o: float32[*] = If<else_branch=graph else_body() {
    %k: float32[1] = const[2]
    %r: float32[batch,4] = Add(%/a/b.c-d, %k)
    return %r
  }, then_branch=graph then_body() {
    return %y
  }>(%m)
  return %o, %y
}
)";
  EXPECT_EQ(round_trip(text), text);
  // And once more through the printer: a fixed point.
  EXPECT_EQ(round_trip(round_trip(text)), text);
}

TEST(GraphText, ParsesStructureNotJustText) {
  auto g = parse_graph_text(R"(
    graph main(%x: float32[2]) {   # comments and free layout are fine
      %c: float32[2] = const[1.5]   # one value fills the tensor
      %y = Relu(%x)
      %z: float32[2] = Add(%y, %c)
      return %z
    })");
  ASSERT_EQ(g->nodes().size(), 2u);
  const Node& relu = *g->nodes()[0];
  EXPECT_EQ(relu.def, find_op("Relu"));
  EXPECT_EQ(relu.outputs[0]->producer, &relu);
  EXPECT_EQ(relu.outputs[0]->dtype, DType::kUndefined);
  EXPECT_FALSE(relu.outputs[0]->shape.has_value());
  const Value* c = g->find("c");
  ASSERT_TRUE(c && c->data);
  EXPECT_EQ(c->data->data<float>()[1], 1.5f);
  EXPECT_EQ(g->nodes()[1]->inputs[1], c);
  EXPECT_EQ(g->outputs[0], g->nodes()[1]->outputs[0]);
  // An op this build lacks parses without a def (rewrite tests use such ops).
  auto h = parse_graph_text("graph g(%x: float32[1]) { %y: float32[1] = NoSuchOp(%x) return %y }");
  EXPECT_EQ(h->nodes()[0]->def, nullptr);
}

TEST(GraphText, SubgraphsCaptureOnlyEarlierValues) {
  auto g = parse_graph_text(R"(graph main(%c: bool[]) {
      %a: float32[1] = const[1]
      %y: float32[1] = If<then_branch=graph t() { return %a }, else_branch=graph e() { return %a }>(%c)
      return %y
    })");
  const Graph& body = *g->nodes()[0]->attrs.at("then_branch").graphs[0];
  EXPECT_EQ(body.parent(), g.get());
  EXPECT_EQ(body.outputs[0], g->find("a"));
  // A node's own output is not visible inside its subgraphs.
  EXPECT_THROW(parse_graph_text(R"(graph main(%c: bool[]) {
      %y: float32[1] = If<then_branch=graph t() { return %y }>(%c)
      return %y })"),
               Error);
}

TEST(GraphText, LargeConstantsPrintADigest) {
  Graph g;
  Value* w = g.add_value("w");
  w->data = Tensor::zeros(DType::kFloat32, {100});
  w->dtype = DType::kFloat32;
  w->shape = to_sym_shape({100});
  g.outputs.push_back(w);
  const std::string text = g.to_text();
  EXPECT_NE(text.find("%w: float32[100] = const<"), std::string::npos) << text;
  try {
    parse_graph_text(text);
    FAIL() << "parsed a digest";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("digest"), std::string::npos) << e.what();
  }
}

TEST(GraphText, ErrorsNameLineAndColumn) {
  auto message = [](const std::string& text) {
    try {
      parse_graph_text(text);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message("graph g() {\n  %y = Relu(%x)\n  return %y\n}"),
            "graph text 2:15: value %x is used before it is defined");
  EXPECT_EQ(message("graph g(%x: float32[1]) {\n  %x = Relu(%x)\n  return %x\n}"),
            "graph text 2:3: value %x is defined twice");
  EXPECT_EQ(message("graph g(%x: floot32[1]) { return %x }"), "graph text 1:20: unknown dtype 'floot32'");
  EXPECT_EQ(message("graph g() {\n  %w: float32[3] = const[1, 2]\n  return %w\n}"),
            "graph text 2:25: constant of shape [3] needs 3 values (or one to fill it), got 2");
  EXPECT_EQ(message("graph g() { %w: int64[1] = const[1.5] return %w }"),
            "graph text 1:38: integer constant given '1.5'");
  EXPECT_EQ(message("graph g() { return }  extra"), "graph text 1:23: unexpected text after the graph");
}
