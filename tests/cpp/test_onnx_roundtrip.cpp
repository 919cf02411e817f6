#include <gtest/gtest.h>

#include <cstring>

#include "frontend/onnx_loader.h"
#include "frontend/onnx_writer.h"
#include "ir/op_registry.h"

using namespace deepep;

namespace {
std::unique_ptr<Graph> small_graph() {
  auto g = std::make_unique<Graph>();
  Value* x = g->add_value("x");
  x->dtype = DType::kFloat32;
  x->shape = SymShape{Dim::sym("batch"), Dim::known(3)};
  g->inputs.push_back(x);
  Value* b = g->add_value("b");
  Tensor bt(DType::kFloat32, {3});
  for (int i = 0; i < 3; ++i) bt.data<float>()[i] = float(i) + 0.5f;
  b->data = bt;
  b->dtype = DType::kFloat32;
  b->shape = to_sym_shape({3});
  Node* relu = g->add_node("Relu", "relu");
  Value* r = g->add_value("r");
  relu->def = find_op("Relu");
  relu->inputs = {x};
  relu->outputs = {r};
  Node* add = g->add_node("Add", "add");
  Value* y = g->add_value("y");
  add->def = find_op("Add");
  add->inputs = {r, b};
  add->outputs = {y};
  add->attrs["note"] = Attribute{Attribute::Kind::kString, 0, 0, "kept", {}, {}, {}, {}, {}};
  g->outputs.push_back(y);
  return g;
}
}  // namespace

TEST(OnnxWriter, RoundTripKeepsGraphTextAndWeights) {
  auto g = small_graph();
  infer_shapes(*g);
  std::string bytes = write_onnx_bytes(*g, {});
  OnnxModel m = load_onnx_bytes(bytes, ".", "roundtrip");
  EXPECT_EQ(m.graph->to_text(), g->to_text());
  const Value* b = m.graph->find("b");
  ASSERT_TRUE(b && b->data);
  EXPECT_EQ(std::memcmp(b->data->raw(), g->find("b")->data->raw(), 12), 0);
}

TEST(OnnxWriter, ExternalWeightsAreReferencedNotInlined) {
  auto g = small_graph();
  OnnxWriteOptions o;
  o.place_weight = [](const Value& v) { return std::make_pair(std::string("elsewhere.bin"), int64_t(128)); };
  std::string bytes = write_onnx_bytes(*g, o);
  EXPECT_EQ(bytes.find(std::string("\0\0\0\x3f", 4)), std::string::npos);  // 0.5f not inline
  EXPECT_THROW(load_onnx_bytes(bytes, "/nonexistent", "ext"), Error);  // file is missing
}

TEST(OnnxLoader, RejectsGarbage) {
  EXPECT_THROW(load_onnx_bytes("definitely not a protobuf \xff\xff\xff", ".", "garbage"), Error);
  EXPECT_THROW(load_onnx_bytes("", ".", "empty"), Error);
  auto g = small_graph();
  std::string bytes = write_onnx_bytes(*g, {});
  EXPECT_THROW(load_onnx_bytes(bytes.substr(0, bytes.size() / 2), ".", "truncated"), Error);
}
