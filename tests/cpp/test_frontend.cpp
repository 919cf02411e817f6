// The ONNX frontend on hand-encoded ModelProto bytes (a tiny protobuf writer
// below, so the test needs neither onnx nor generated code): valid models load
// and run, malformed ones raise deepep::Error naming the model, every
// unsupported op is reported in one error, and a few thousand random byte
// mutations never crash the loader (fuzz, fixed seed).
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "frontend/onnx_loader.h"
#include "runtime/executor.h"

using namespace deepep;

namespace {

// --- protobuf wire format: enough to write ModelProto by hand.
struct Msg {
  std::string b;
  void varint(uint64_t v) {
    do {
      uint8_t c = v & 0x7f;
      v >>= 7;
      b.push_back(char(v ? c | 0x80 : c));
    } while (v);
  }
  Msg& num(int field, int64_t v) {
    varint(uint64_t(field) << 3);
    varint(uint64_t(v));
    return *this;
  }
  Msg& str(int field, const std::string& s) {
    varint(uint64_t(field) << 3 | 2);
    varint(s.size());
    b += s;
    return *this;
  }
  Msg& msg(int field, const Msg& m) { return str(field, m.b); }
};

// ValueInfoProto of a float tensor; dims < 0 are the symbol "N".
Msg value_info(const std::string& name, std::vector<int64_t> dims, int elem = 1) {
  Msg shape;
  for (int64_t d : dims) shape.msg(1, d >= 0 ? Msg().num(1, d) : Msg().str(2, "N"));
  Msg tensor;
  tensor.num(1, elem).msg(2, shape);
  return Msg().str(1, name).msg(2, Msg().msg(1, tensor));
}
Msg node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out,
         const std::string& name, const std::string& domain = "") {
  Msg n;
  for (const auto& i : in) n.str(1, i);
  for (const auto& o : out) n.str(2, o);
  n.str(3, name).str(4, op);
  if (!domain.empty()) n.str(7, domain);
  return n;
}
Msg graph_attr(const std::string& name, const Msg& g) { return Msg().str(1, name).msg(6, g).num(20, 5); }
Msg float_tensor(const std::string& name, std::vector<int64_t> dims, const std::vector<float>& v) {
  Msg t;
  for (int64_t d : dims) t.num(1, d);
  t.num(2, 1).str(8, name);
  t.str(9, std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
  return t;
}
std::string model(const Msg& graph, int64_t opset = 17) {
  Msg m;
  m.num(1, 8).msg(8, Msg().str(1, "").num(2, opset)).msg(7, graph);
  return m.b;
}

// y = Relu(x + b), x: float[N, 3], b an initializer.
std::string add_relu_model() {
  Msg g;
  g.msg(1, node("Add", {"x", "b"}, {"s"}, "add")).msg(1, node("Relu", {"s"}, {"y"}, "relu"));
  g.str(2, "main").msg(5, float_tensor("b", {3}, {-1, 0, 1}));
  g.msg(11, value_info("x", {-1, 3})).msg(12, value_info("y", {-1, 3}));
  return model(g);
}

// y = If(cond) then Relu(x) else Add(x, x).
std::string if_model() {
  Msg then_g, else_g, g;
  then_g.msg(1, node("Relu", {"x"}, {"t"}, "then_relu")).str(2, "then").msg(12, value_info("t", {2}));
  else_g.msg(1, node("Add", {"x", "x"}, {"e"}, "else_add")).str(2, "else").msg(12, value_info("e", {2}));
  Msg iff = node("If", {"cond"}, {"y"}, "if");
  iff.msg(5, graph_attr("then_branch", then_g)).msg(5, graph_attr("else_branch", else_g));
  g.msg(1, iff).str(2, "main");
  g.msg(11, value_info("cond", {}, 9)).msg(11, value_info("x", {2})).msg(12, value_info("y", {2}));
  return model(g);
}

std::string error_of(const std::string& bytes, const std::string& name = "m.onnx") {
  try {
    load_onnx_bytes(bytes, ".", name);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

Tensor floats(Shape s, std::vector<float> v) {
  Tensor t(DType::kFloat32, std::move(s));
  std::memcpy(t.raw(), v.data(), v.size() * sizeof(float));
  return t;
}

TEST(Frontend, HandBuiltModelLoadsAndRuns) {
  OnnxModel m = load_onnx_bytes(add_relu_model(), ".", "add_relu.onnx");
  ASSERT_EQ(m.graph->inputs.size(), 1u);
  EXPECT_EQ(m.opset, 17);
  EXPECT_EQ(sym_shape_str(*m.graph->inputs[0]->shape), "[N,3]");
  Executor ex;
  auto out = ex.run(*m.graph, {floats({2, 3}, {0.5f, 0.5f, -2, 2, -1, 1})});
  ASSERT_EQ(out.size(), 1u);
  std::vector<float> y(out[0].data<float>(), out[0].data<float>() + 6);
  EXPECT_EQ(y, (std::vector<float>{0, 0.5f, 0, 1, 0, 2}));
}

TEST(Frontend, SubgraphsReadEnclosingValues) {
  OnnxModel m = load_onnx_bytes(if_model(), ".", "if.onnx");
  Tensor cond(DType::kBool, {});
  for (bool c : {true, false}) {
    *cond.data<bool>() = c;
    Executor ex;
    auto out = ex.run(*m.graph, {cond, floats({2}, {-3, 4})});
    EXPECT_EQ(out[0].data<float>()[0], c ? 0.0f : -6.0f);
    EXPECT_EQ(out[0].data<float>()[1], c ? 4.0f : 8.0f);
  }
}

TEST(Frontend, NotAModelIsAnErrorNamingIt) {
  const std::string good = add_relu_model();
  for (const std::string& bytes :
       {std::string(), std::string("hello, this is a text file\n"), good.substr(0, good.size() / 2),
        std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11)}) {
    std::string msg = error_of(bytes, "weird.onnx");
    EXPECT_NE(msg.find("weird.onnx"), std::string::npos) << msg;
  }
}

TEST(Frontend, MissingFileAndDirectoryAreErrors) {
  try {
    load_onnx_file("/nonexistent/dir/model.onnx");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/model.onnx"), std::string::npos);
  }
  EXPECT_THROW(load_onnx_file("/"), Error);
}

TEST(Frontend, EveryUnsupportedOpIsReportedOnce) {
  Msg then_g, else_g, g;
  then_g.msg(1, node("MadeUpInside", {"x"}, {"t"}, "deep")).str(2, "then").msg(12, value_info("t", {2}));
  else_g.msg(1, node("Relu", {"x"}, {"e"}, "fine")).str(2, "else").msg(12, value_info("e", {2}));
  Msg iff = node("If", {"cond"}, {"y"}, "if");
  iff.msg(5, graph_attr("then_branch", then_g)).msg(5, graph_attr("else_branch", else_g));
  g.msg(1, node("Custom", {"x"}, {"a"}, "c1", "com.acme")).msg(1, node("Bogus", {"a"}, {"b"}, "c2"));
  g.msg(1, iff).str(2, "main");
  g.msg(11, value_info("cond", {}, 9)).msg(11, value_info("x", {2}));
  g.msg(12, value_info("y", {2})).msg(12, value_info("b", {2}));
  Msg m;
  m.num(1, 8).msg(8, Msg().str(1, "").num(2, 13)).msg(8, Msg().str(1, "com.acme").num(2, 2)).msg(7, g);
  std::string msg = error_of(m.b, "many.onnx");
  EXPECT_NE(msg.find("many.onnx"), std::string::npos) << msg;
  EXPECT_NE(msg.find("3 node(s)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("com.acme.Custom (node 'c1', opset 2)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Bogus (node 'c2', opset 13)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("MadeUpInside (node 'deep', opset 13)"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("fine"), std::string::npos) << msg;
}

TEST(Frontend, MalformedGraphsAreErrors) {
  Msg g;  // reads a value nothing produces
  g.msg(1, node("Relu", {"ghost"}, {"y"}, "r")).str(2, "g").msg(12, value_info("y", {1}));
  EXPECT_NE(error_of(model(g)).find("'ghost'"), std::string::npos);
  Msg h;  // raw data of the wrong size
  Msg t = float_tensor("w", {4}, {1, 2, 3});
  h.msg(1, node("Relu", {"w"}, {"y"}, "r")).str(2, "g").msg(5, t).msg(12, value_info("y", {4}));
  EXPECT_NE(error_of(model(h)).find("tensor 'w'"), std::string::npos);
}

// Random byte flips, truncations and insertions: each model loads or throws
// deepep::Error; anything else (another exception, a crash) fails the test.
TEST(Frontend, FuzzedModelsLoadOrRaiseDeepepErrors) {
  std::mt19937 rng(12345);
  int loaded = 0, rejected = 0;
  for (const std::string& base : {add_relu_model(), if_model()}) {
    for (int i = 0; i < 1500; ++i) {
      std::string b = base;
      const int edits = 1 + int(rng() % 3);
      for (int e = 0; e < edits; ++e) {
        const size_t pos = b.empty() ? 0 : rng() % b.size();
        switch (rng() % 4) {
          case 0:
            if (!b.empty()) b[pos] = char(b[pos] ^ char(1 + rng() % 255));
            break;
          case 1: b.resize(pos); break;
          case 2: b.insert(pos, std::string(1 + rng() % 8, char(rng()))); break;
          default:
            if (!b.empty()) b[pos] = char("\x00\x7f\x80\xff"[rng() % 4]);
        }
      }
      try {
        load_onnx_bytes(b, ".", "fuzz.onnx");
        ++loaded;
      } catch (const Error&) {
        ++rejected;
      } catch (const std::exception& e) {
        ADD_FAILURE() << "mutation " << i << " threw a non-deepep exception: " << e.what();
      }
    }
  }
  EXPECT_GT(rejected, 0);
  EXPECT_GT(loaded, 0);
}

TEST(Frontend, HugeDeclaredTensorsAreRejectedBeforeAllocating) {
  // Found by fuzz_onnx_loader: a few bytes of protobuf declaring a 2 GiB
  // initializer made the loader allocate it before noticing the data was
  // missing. Now the data is checked first, and dims whose product would
  // overflow are refused.
  auto with_init = [](const Msg& init) {
    Msg g;
    g.msg(1, node("Add", {"x", "b"}, {"y"}, "add")).str(2, "main").msg(5, init);
    g.msg(11, value_info("x", {3})).msg(12, value_info("y", {3}));
    return model(g);
  };
  const std::string big = error_of(with_init(float_tensor("b", {1 << 20, 1 << 9}, {1, 2, 3})));
  EXPECT_NE(big.find("12 bytes of raw data, expected 2147483648"), std::string::npos) << big;
  Msg typed;  // float_data (field 4) holding 1 value for 2^31
  typed.num(1, 1 << 20).num(1, 1 << 11).num(2, 1).str(8, "b").str(4, std::string(4, '\0'));
  const std::string t = error_of(with_init(typed));
  EXPECT_NE(t.find("holds 1 values, expected 2147483648"), std::string::npos) << t;
  const std::string wrap = error_of(with_init(float_tensor("b", {int64_t(1) << 40, int64_t(1) << 40}, {1})));
  EXPECT_NE(wrap.find("is too large"), std::string::npos) << wrap;
}

TEST(Frontend, NodesListingFewerOutputsThanTheOpDefinesDoNotCrash) {
  // Found by fuzz_onnx_loader: shape inference wrote output 0 of a node with
  // no outputs (past the end of a vector). Inference now ignores outputs a
  // node lacks, and a kernel producing one is an error naming the node.
  Msg g;
  g.msg(1, node("Relu", {"x"}, {}, "no_outputs")).msg(1, node("Neg", {"x"}, {"y"}, "neg")).str(2, "main");
  g.msg(11, value_info("x", {3})).msg(12, value_info("y", {3}));
  OnnxModel m = load_onnx_bytes(model(g), ".", "m.onnx");
  Executor ex;
  try {
    ex.run(*m.graph, {floats({3}, {1, 3, 2})});
    FAIL() << "a kernel writing an output its node lacks must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Relu 'no_outputs' has 0 output(s); its kernel produces output 0"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
