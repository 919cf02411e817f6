// Control ops (If, Loop, Scan): graphs are built in the IR by hand and run
// through the Executor, so bodies really read enclosing values through the
// scope chain. Expected values are computed here with plain loops.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "frontend/onnx_loader.h"
#include "ir/graph.h"
#include "ir/op_registry.h"
#include "runtime/executor.h"

using namespace deepep;

namespace {

template <class T>
Tensor make(DType dt, Shape s, std::vector<T> v) {
  Tensor t(dt, std::move(s));
  EXPECT_EQ(size_t(t.numel()), v.size());
  if (!v.empty()) std::memcpy(t.raw(), v.data(), v.size() * sizeof(T));
  return t;
}
Tensor f32(Shape s, std::vector<float> v) { return make(DType::kFloat32, std::move(s), std::move(v)); }
Tensor i64(Shape s, std::vector<int64_t> v) { return make(DType::kInt64, std::move(s), std::move(v)); }
Tensor boolean(bool b, Shape s = {}) { return make<uint8_t>(DType::kBool, std::move(s), {uint8_t(b)}); }
template <class T>
std::vector<T> vals(const Tensor& t) {
  return std::vector<T>(t.data<T>(), t.data<T>() + t.numel());
}

Value* input(Graph& g, const std::string& name, DType dt, std::optional<SymShape> s = std::nullopt) {
  Value* v = g.add_value(name);
  v->dtype = dt;
  v->shape = std::move(s);
  g.inputs.push_back(v);
  return v;
}
Value* constant(Graph& g, const std::string& name, Tensor t) {
  Value* v = g.add_value(name);
  v->dtype = t.dtype();
  v->shape = to_sym_shape(t.shape());
  v->data = std::move(t);
  return v;
}
Node* node(Graph& g, const std::string& op, std::vector<Value*> ins, std::vector<std::string> outs,
           int opset = 17) {
  Node* n = g.add_node(op, op + "_" + std::to_string(g.nodes().size()));
  n->def = find_op(op);
  EXPECT_NE(n->def, nullptr) << op;
  n->opset = opset;
  n->inputs = std::move(ins);
  for (const auto& o : outs) {
    Value* v = g.add_value(o);
    v->producer = n;
    n->outputs.push_back(v);
  }
  return n;
}
Value* out(Node* n, int i = 0) { return n->outputs[i]; }
void set_graph(Node* n, const std::string& k, std::shared_ptr<Graph> g) {
  Attribute a;
  a.kind = Attribute::Kind::kGraph;
  a.graphs.push_back(std::move(g));
  n->attrs[k] = std::move(a);
}
void set_ints(Node* n, const std::string& k, std::vector<int64_t> v) {
  Attribute a;
  a.kind = Attribute::Kind::kInts;
  a.ints = std::move(v);
  n->attrs[k] = std::move(a);
}
void set_int(Node* n, const std::string& k, int64_t v) {
  Attribute a;
  a.kind = Attribute::Kind::kInt;
  a.i = v;
  n->attrs[k] = std::move(a);
}
// Runs `g` after shape inference, as the loader would.
std::vector<Tensor> run(Graph& g, std::vector<Tensor> in) {
  infer_shapes(g);
  Executor ex;
  return ex.run(g, in);
}
SymShape dims(std::initializer_list<int64_t> d) { return to_sym_shape(Shape(d)); }

// ---------------------------------------------------------------- If

// main(cond, x): If(cond) then Relu(x) else Add(x, x); both branches read x.
struct IfGraph {
  Graph g;
  IfGraph() {
    Value* cond = input(g, "cond", DType::kBool, SymShape{});
    Value* x = input(g, "x", DType::kFloat32, dims({5}));
    auto then_g = std::make_shared<Graph>(&g);
    then_g->outputs.push_back(out(node(*then_g, "Relu", {x}, {"t"})));
    auto else_g = std::make_shared<Graph>(&g);
    else_g->outputs.push_back(out(node(*else_g, "Add", {x, x}, {"e"})));
    Node* n = node(g, "If", {cond}, {"y"});
    set_graph(n, "then_branch", then_g);
    set_graph(n, "else_branch", else_g);
    g.outputs.push_back(out(n));
  }
};

TEST(ControlOps, IfRunsTheChosenBranchOnEnclosingValues) {
  IfGraph m;
  Tensor x = f32({5}, {-1, 2, -3, 4, 5});
  EXPECT_EQ(vals<float>(run(m.g, {boolean(true), x})[0]), (std::vector<float>{0, 2, 0, 4, 5}));
  EXPECT_EQ(vals<float>(run(m.g, {boolean(false), x})[0]), (std::vector<float>{-2, 4, -6, 8, 10}));
  // A one-element condition of shape [1] works too.
  EXPECT_EQ(vals<float>(run(m.g, {boolean(true, {1}), x})[0]), (std::vector<float>{0, 2, 0, 4, 5}));
}

TEST(ControlOps, IfBranchMayReturnAnEnclosingValueAndEmptyTensors) {
  Graph g;
  Value* cond = input(g, "cond", DType::kBool);
  Value* x = input(g, "x", DType::kFloat32);
  auto then_g = std::make_shared<Graph>(&g);
  then_g->outputs.push_back(x);  // the enclosing value itself
  auto else_g = std::make_shared<Graph>(&g);
  else_g->outputs.push_back(out(node(*else_g, "Relu", {x}, {"e"})));
  Node* n = node(g, "If", {cond}, {"y"});
  set_graph(n, "then_branch", then_g);
  set_graph(n, "else_branch", else_g);
  g.outputs.push_back(out(n));
  Tensor empty = f32({0, 3}, {});
  for (bool c : {true, false}) {
    auto r = run(g, {boolean(c), empty});
    EXPECT_EQ(r[0].shape(), (Shape{0, 3}));
  }
  Tensor xt = f32({2}, {-7, 7});
  auto r = run(g, {boolean(true), xt});
  EXPECT_EQ(vals<float>(r[0]), (std::vector<float>{-7, 7}));
  // The output has its own storage: whether it would alias x depends on the
  // data, and a memory plan measured on the other branch must stay valid.
  EXPECT_NE(r[0].raw(), xt.raw());
}

TEST(ControlOps, IfErrors) {
  IfGraph m;
  Tensor x = f32({5}, {1, 2, 3, 4, 5});
  try {
    run(m.g, {make<uint8_t>(DType::kBool, {2}, {1, 0}), x});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("If"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("one element"), std::string::npos) << e.what();
  }
  // A branch with the wrong number of outputs.
  Graph g;
  Value* cond = input(g, "cond", DType::kBool);
  auto then_g = std::make_shared<Graph>(&g);
  Value* c = constant(*then_g, "c", f32({1}, {1}));
  then_g->outputs = {c, c};
  Node* n = node(g, "If", {cond}, {"y"});
  set_graph(n, "then_branch", then_g);
  set_graph(n, "else_branch", then_g);
  g.outputs.push_back(out(n));
  EXPECT_THROW(run(g, {boolean(true)}), Error);
}

TEST(ControlOps, IfInfersMergedBranchShapes) {
  Graph g;
  Value* cond = input(g, "cond", DType::kBool, SymShape{});
  Value* a = input(g, "a", DType::kFloat16, dims({2, 3}));
  Value* b = input(g, "b", DType::kFloat16, SymShape{Dim::known(2), Dim::sym("n")});
  auto then_g = std::make_shared<Graph>(&g);
  then_g->outputs.push_back(out(node(*then_g, "Relu", {a}, {"t"})));
  auto else_g = std::make_shared<Graph>(&g);
  else_g->outputs.push_back(out(node(*else_g, "Relu", {b}, {"e"})));
  Node* n = node(g, "If", {cond}, {"y"});
  set_graph(n, "then_branch", then_g);
  set_graph(n, "else_branch", else_g);
  infer_shapes(g);
  EXPECT_EQ(out(n)->dtype, DType::kFloat16);
  ASSERT_TRUE(out(n)->shape);
  EXPECT_EQ(sym_shape_str(*out(n)->shape), "[2,?]");
  // A constant condition picks the branch's exact shape.
  Node* k = node(g, "If", {constant(g, "yes", boolean(false))}, {"z"});
  set_graph(k, "then_branch", then_g);
  set_graph(k, "else_branch", else_g);
  infer_shapes(g);
  EXPECT_EQ(sym_shape_str(*out(k)->shape), "[2,n]");
}

// ---------------------------------------------------------------- Loop

// main(M?, cond?, y0, x): Loop carries y += x (x read from the enclosing graph)
// and scans Relu(y) and the iteration number. `body_cond` is what the body
// returns as its condition: its input passthrough, or a constant.
struct LoopGraph {
  Graph g;
  Node* loop = nullptr;
  Value* body_y = nullptr;
  LoopGraph(bool has_m, bool has_cond, std::optional<bool> body_cond = std::nullopt) {
    Value* m = has_m ? input(g, "M", DType::kInt64, SymShape{}) : nullptr;
    Value* c = has_cond ? input(g, "cond", DType::kBool, SymShape{}) : nullptr;
    Value* y0 = input(g, "y0", DType::kFloat32, dims({3}));
    Value* x = input(g, "x", DType::kFloat32, dims({3}));
    auto body = std::make_shared<Graph>(&g);
    Value* i = input(*body, "i", DType::kInt64, SymShape{});
    Value* ci = input(*body, "c_in", DType::kBool, SymShape{});
    Value* y = input(*body, "y", DType::kFloat32, dims({3}));
    body_y = y;
    Value* y2 = out(node(*body, "Add", {y, x}, {"y2"}));
    Value* r = out(node(*body, "Relu", {y2}, {"r"}));
    Value* co = body_cond ? constant(*body, "c_out", boolean(*body_cond)) : ci;
    body->outputs = {co, y2, r, i};
    loop = node(g, "Loop", {m, c, y0}, {"y_final", "relus", "iters"});
    set_graph(loop, "body", body);
    g.outputs = loop->outputs;
  }
};

TEST(ControlOps, LoopCarriesValuesAndStacksScanOutputs) {
  LoopGraph m(true, true);
  std::vector<float> y{-4, 0.5f, 3}, x{1, -1, 0.25f};
  auto r = run(m.g, {i64({}, {5}), boolean(true), f32({3}, y), f32({3}, x)});
  std::vector<float> relus;
  for (int it = 0; it < 5; ++it)
    for (int j = 0; j < 3; ++j) {
      y[j] += x[j];
      relus.push_back(y[j] > 0 ? y[j] : 0);
    }
  EXPECT_EQ(vals<float>(r[0]), y);
  EXPECT_EQ(r[1].shape(), (Shape{5, 3}));
  EXPECT_EQ(vals<float>(r[1]), relus);
  EXPECT_EQ(r[2].dtype(), DType::kInt64);
  EXPECT_EQ(vals<int64_t>(r[2]), (std::vector<int64_t>{0, 1, 2, 3, 4}));
}

TEST(ControlOps, LoopWithZeroIterationsReturnsInitialValuesAndEmptyScans) {
  LoopGraph m(true, true);
  Tensor y0 = f32({3}, {1, 2, 3});
  auto r = run(m.g, {i64({}, {0}), boolean(true), y0, f32({3}, {1, 1, 1})});
  EXPECT_EQ(vals<float>(r[0]), (std::vector<float>{1, 2, 3}));
  EXPECT_NE(r[0].raw(), y0.raw());  // a copy, not the input itself
  EXPECT_EQ(r[1].shape(), (Shape{0, 3}));  // element shape from the body's static type
  EXPECT_EQ(r[2].shape(), (Shape{0}));
  // A false initial condition runs nothing either.
  r = run(m.g, {i64({1}, {7}), boolean(false), f32({3}, {1, 2, 3}), f32({3}, {1, 1, 1})});
  EXPECT_EQ(vals<float>(r[0]), (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(r[1].shape(), (Shape{0, 3}));
}

TEST(ControlOps, LoopConditionForms) {
  const std::vector<float> y0{0, 0, 0}, x{1, 2, 3};
  // (M, ""): a for loop; the body's (false) condition is ignored.
  {
    LoopGraph m(true, false, false);
    auto r = run(m.g, {i64({}, {4}), f32({3}, y0), f32({3}, x)});
    EXPECT_EQ(vals<float>(r[0]), (std::vector<float>{4, 8, 12}));
  }
  // ("", cond): a while loop that stops when the body says false.
  {
    LoopGraph m(false, true, false);
    auto r = run(m.g, {boolean(true), f32({3}, y0), f32({3}, x)});
    EXPECT_EQ(vals<float>(r[0]), (std::vector<float>{1, 2, 3}));
    EXPECT_EQ(r[1].shape(), (Shape{1, 3}));
  }
  // ("", ""): runs until the body's condition is false.
  {
    LoopGraph m(false, false, false);
    auto r = run(m.g, {f32({3}, y0), f32({3}, x)});
    EXPECT_EQ(vals<int64_t>(r[2]), (std::vector<int64_t>{0}));
  }
  // (M, cond) with a true body condition: M bounds it.
  {
    LoopGraph m(true, true, true);
    auto r = run(m.g, {i64({}, {3}), boolean(true), f32({3}, y0), f32({3}, x)});
    EXPECT_EQ(vals<int64_t>(r[2]), (std::vector<int64_t>{0, 1, 2}));
  }
}

TEST(ControlOps, LoopScanOutputWhoseShapeChangesIsAnError) {
  // y0 is [1]; y + x broadcasts it to [3], so the scanned y changes shape.
  Graph g;
  Value* m = input(g, "M", DType::kInt64);
  Value* y0 = input(g, "y0", DType::kFloat32);
  Value* x = input(g, "x", DType::kFloat32);
  auto body = std::make_shared<Graph>(&g);
  input(*body, "i", DType::kInt64);
  Value* ci = input(*body, "c", DType::kBool);
  Value* y = input(*body, "y", DType::kFloat32);
  body->outputs = {ci, out(node(*body, "Add", {y, x}, {"y2"})), y};
  Node* n = node(g, "Loop", {m, nullptr, y0}, {"yf", "ys"});
  set_graph(n, "body", body);
  g.outputs = n->outputs;
  try {
    run(g, {i64({}, {3}), f32({1}, {0}), f32({3}, {1, 2, 3})});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("scan output 0"), std::string::npos) << e.what();
  }
  // With one iteration it is fine, and the carried value may change shape.
  auto r = run(g, {i64({}, {1}), f32({1}, {10}), f32({3}, {1, 2, 3})});
  EXPECT_EQ(vals<float>(r[0]), (std::vector<float>{11, 12, 13}));
  EXPECT_EQ(r[1].shape(), (Shape{1, 1}));
}

TEST(ControlOps, LoopBodyMismatchIsAnError) {
  Graph g;
  Value* m = input(g, "M", DType::kInt64);
  Value* y0 = input(g, "y0", DType::kFloat32);
  auto body = std::make_shared<Graph>(&g);
  input(*body, "i", DType::kInt64);
  Value* ci = input(*body, "c", DType::kBool);  // missing the carried input
  body->outputs = {ci, ci};
  Node* n = node(g, "Loop", {m, nullptr, y0}, {"yf"});
  set_graph(n, "body", body);
  g.outputs = n->outputs;
  EXPECT_THROW(run(g, {i64({}, {2}), f32({1}, {0})}), Error);
}

TEST(ControlOps, NestedIfInLoopReadsValuesTwoScopesUp) {
  // main(M, x, flag): Loop body does If(flag) then y + x else Relu(y); x and
  // flag are two scopes up from the branches.
  Graph g;
  Value* m = input(g, "M", DType::kInt64);
  Value* x = input(g, "x", DType::kFloat32);
  Value* flag = input(g, "flag", DType::kBool);
  Value* y0 = input(g, "y0", DType::kFloat32);
  auto body = std::make_shared<Graph>(&g);
  input(*body, "i", DType::kInt64);
  Value* ci = input(*body, "c", DType::kBool);
  Value* y = input(*body, "y", DType::kFloat32);
  auto then_g = std::make_shared<Graph>(body.get());
  then_g->outputs.push_back(out(node(*then_g, "Add", {y, x}, {"t"})));
  auto else_g = std::make_shared<Graph>(body.get());
  else_g->outputs.push_back(out(node(*else_g, "Relu", {y}, {"e"})));
  Node* iff = node(*body, "If", {flag}, {"y2"});
  set_graph(iff, "then_branch", then_g);
  set_graph(iff, "else_branch", else_g);
  body->outputs = {ci, out(iff)};
  Node* n = node(g, "Loop", {m, nullptr, y0}, {"yf"});
  set_graph(n, "body", body);
  // A node after the loop still reads x: the loop must not have released it.
  Node* after = node(g, "Add", {out(n), x}, {"z"});
  g.outputs = {out(n), out(after)};
  auto r = run(g, {i64({}, {3}), f32({2}, {1, -2}), boolean(true), f32({2}, {0, 0})});
  EXPECT_EQ(vals<float>(r[0]), (std::vector<float>{3, -6}));
  EXPECT_EQ(vals<float>(r[1]), (std::vector<float>{4, -8}));
  r = run(g, {i64({}, {3}), f32({2}, {1, -2}), boolean(false), f32({2}, {-1, 5})});
  EXPECT_EQ(vals<float>(r[0]), (std::vector<float>{0, 5}));
}

TEST(ControlOps, LoopInfersTypes) {
  LoopGraph m(true, false);
  // Make M a constant 6: the scan outputs get a known leading dim.
  m.loop->inputs[0] = constant(m.g, "six", i64({}, {6}));
  infer_shapes(m.g);
  EXPECT_EQ(out(m.loop, 0)->dtype, DType::kFloat32);
  EXPECT_EQ(sym_shape_str(*out(m.loop, 0)->shape), "[3]");
  EXPECT_EQ(sym_shape_str(*out(m.loop, 1)->shape), "[6,3]");
  EXPECT_EQ(out(m.loop, 2)->dtype, DType::kInt64);
  EXPECT_EQ(sym_shape_str(*out(m.loop, 2)->shape), "[6]");
}

// ---------------------------------------------------------------- Scan

// Scan-9+ body: (s, e) -> (s + e, Relu(s + e)).
std::shared_ptr<Graph> sum_body(Graph& parent, SymShape elem) {
  auto body = std::make_shared<Graph>(&parent);
  Value* s = input(*body, "s", DType::kFloat32, elem);
  Value* e = input(*body, "e", DType::kFloat32, elem);
  Value* s2 = out(node(*body, "Add", {s, e}, {"s2"}));
  body->outputs = {s2, out(node(*body, "Relu", {s2}, {"r"}))};
  return body;
}

TEST(ControlOps, Scan9CumulativeSum) {
  Graph g;
  Value* init = input(g, "init", DType::kFloat32, dims({2}));
  Value* x = input(g, "x", DType::kFloat32, SymShape{Dim::sym("T"), Dim::known(2)});
  Node* n = node(g, "Scan", {init, x}, {"final", "ys"});
  set_graph(n, "body", sum_body(g, dims({2})));
  set_int(n, "num_scan_inputs", 1);
  g.outputs = n->outputs;
  std::vector<float> xs{1, -5, 2, 1, -4, 3, 0.5f, 0.5f, 1, 1};  // T = 5
  auto r = run(g, {f32({2}, {0, 1}), f32({5, 2}, xs)});
  std::vector<float> s{0, 1}, ys;
  for (int t = 0; t < 5; ++t)
    for (int j = 0; j < 2; ++j) {
      s[j] += xs[t * 2 + j];
      ys.push_back(s[j] > 0 ? s[j] : 0);
    }
  EXPECT_EQ(vals<float>(r[0]), s);
  EXPECT_EQ(r[1].shape(), (Shape{5, 2}));
  EXPECT_EQ(vals<float>(r[1]), ys);
  infer_shapes(g);
  EXPECT_EQ(sym_shape_str(*out(n, 1)->shape), "[T,2]");
  EXPECT_EQ(sym_shape_str(*out(n, 0)->shape), "[2]");
}

TEST(ControlOps, Scan9InputAxesDirectionsAndOutputAxes) {
  // x is [3, 7]: scanned along axis 1 backwards; the output is accumulated
  // along axis -1 (= 1 of [3, 7]) and prepended, so it lines up with x again.
  Graph g;
  Value* init = input(g, "init", DType::kFloat32, dims({3}));
  Value* x = input(g, "x", DType::kFloat32, dims({3, 7}));
  Node* n = node(g, "Scan", {init, x}, {"final", "ys"});
  set_graph(n, "body", sum_body(g, dims({3})));
  set_int(n, "num_scan_inputs", 1);
  set_ints(n, "scan_input_axes", {1});
  set_ints(n, "scan_input_directions", {1});
  set_ints(n, "scan_output_axes", {-1});
  set_ints(n, "scan_output_directions", {1});
  g.outputs = n->outputs;
  std::vector<float> xs(21);
  for (int i = 0; i < 21; ++i) xs[i] = float((i * 7) % 11) - 5;
  auto r = run(g, {f32({3}, {1, 0, -1}), f32({3, 7}, xs)});
  // Reverse cumulative sums along each row.
  std::vector<float> s{1, 0, -1}, ys(21);
  for (int t = 6; t >= 0; --t)
    for (int row = 0; row < 3; ++row) {
      s[row] += xs[row * 7 + t];
      ys[row * 7 + t] = s[row] > 0 ? s[row] : 0;
    }
  EXPECT_EQ(vals<float>(r[0]), s);
  EXPECT_EQ(r[1].shape(), (Shape{3, 7}));
  EXPECT_EQ(vals<float>(r[1]), ys);
  infer_shapes(g);
  EXPECT_EQ(sym_shape_str(*out(n, 1)->shape), "[3,7]");
}

TEST(ControlOps, Scan9ZipsInputsWithoutStateAndCopiesAnyDtype) {
  // No state; two int16 scan inputs, the second reversed; the body returns
  // both elements, so the outputs are the inputs (the second one reversed).
  Graph g;
  Value* a = input(g, "a", DType::kInt16);
  Value* b = input(g, "b", DType::kInt16);
  auto body = std::make_shared<Graph>(&g);
  Value* ea = input(*body, "ea", DType::kInt16);
  Value* eb = input(*body, "eb", DType::kInt16);
  body->outputs = {ea, eb};
  Node* n = node(g, "Scan", {a, b}, {"oa", "ob"});
  set_graph(n, "body", body);
  set_int(n, "num_scan_inputs", 2);
  set_ints(n, "scan_input_directions", {0, 1});
  g.outputs = n->outputs;
  auto r = run(g, {make<int16_t>(DType::kInt16, {3, 2}, {1, 2, 3, 4, 5, 6}),
                   make<int16_t>(DType::kInt16, {3, 2}, {10, 20, 30, 40, 50, 60})});
  EXPECT_EQ(vals<int16_t>(r[0]), (std::vector<int16_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(vals<int16_t>(r[1]), (std::vector<int16_t>{50, 60, 30, 40, 10, 20}));
  // Different lengths are an error naming the input.
  try {
    run(g, {make<int16_t>(DType::kInt16, {3}, {1, 2, 3}), make<int16_t>(DType::kInt16, {2}, {1, 2})});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("scan input 1"), std::string::npos) << e.what();
  }
}

TEST(ControlOps, Scan9ZeroLengthAndErrors) {
  Graph g;
  Value* init = input(g, "init", DType::kFloat32, dims({2}));
  Value* x = input(g, "x", DType::kFloat32, dims({0, 2}));
  Node* n = node(g, "Scan", {init, x}, {"final", "ys"});
  set_graph(n, "body", sum_body(g, dims({2})));
  set_int(n, "num_scan_inputs", 1);
  g.outputs = n->outputs;
  Tensor init0 = f32({2}, {3, 4});
  auto r = run(g, {init0, f32({0, 2}, {})});
  EXPECT_EQ(vals<float>(r[0]), (std::vector<float>{3, 4}));
  EXPECT_NE(r[0].raw(), init0.raw());  // a copy, not the input itself
  EXPECT_EQ(r[1].shape(), (Shape{0, 2}));
  // A scalar scan input, a bad axis, a wrong num_scan_inputs.
  EXPECT_THROW(run(g, {f32({2}, {3, 4}), f32({}, {1})}), Error);
  set_ints(n, "scan_input_axes", {2});
  EXPECT_THROW(run(g, {f32({2}, {3, 4}), f32({1, 2}, {1, 1})}), Error);
  n->attrs.erase("scan_input_axes");
  set_int(n, "num_scan_inputs", 3);
  EXPECT_THROW(run(g, {f32({2}, {3, 4}), f32({1, 2}, {1, 1})}), Error);
  n->attrs.erase("num_scan_inputs");
  EXPECT_THROW(run(g, {f32({2}, {3, 4}), f32({1, 2}, {1, 1})}), Error);
}

TEST(ControlOps, Scan8BatchesWithSequenceLengthsAndDirections) {
  // Scan-8: init [B=2, 2], x [B=2, T=3, 2], sequence_lens [3, 1]; the input is
  // scanned backwards within each sequence's length; scan outputs past a
  // sequence's length are zero.
  Graph g;
  Value* lens = input(g, "lens", DType::kInt64, dims({2}));
  Value* init = input(g, "init", DType::kFloat32, dims({2, 2}));
  Value* x = input(g, "x", DType::kFloat32, dims({2, 3, 2}));
  Node* n = node(g, "Scan", {lens, init, x}, {"final", "ys"}, /*opset=*/8);
  set_graph(n, "body", sum_body(g, dims({2})));
  set_int(n, "num_scan_inputs", 1);
  set_ints(n, "directions", {1});
  g.outputs = n->outputs;
  std::vector<float> xs{1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -5, -6};
  std::vector<float> in{0.5f, 0.5f, 10, 20};
  auto r = run(g, {i64({2}, {3, 1}), f32({2, 2}, in), f32({2, 3, 2}, xs)});
  const int64_t L[2] = {3, 1};
  std::vector<float> fin(4), ys(12, 0.0f);
  for (int b = 0; b < 2; ++b) {
    float s[2] = {in[b * 2], in[b * 2 + 1]};
    for (int t = 0; t < L[b]; ++t) {
      const int src = int(L[b]) - 1 - t;
      for (int j = 0; j < 2; ++j) {
        s[j] += xs[b * 6 + src * 2 + j];
        ys[b * 6 + t * 2 + j] = s[j] > 0 ? s[j] : 0;
      }
    }
    fin[b * 2] = s[0];
    fin[b * 2 + 1] = s[1];
  }
  EXPECT_EQ(vals<float>(r[0]), fin);
  EXPECT_EQ(r[1].shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(vals<float>(r[1]), ys);
  // Without sequence_lens every sequence runs its full length.
  n->inputs[0] = nullptr;
  r = run(g, {i64({2}, {0, 0}), f32({2, 2}, {0, 0, 0, 0}), f32({2, 3, 2}, xs)});
  EXPECT_EQ(vals<float>(r[0]), (std::vector<float>{9, 12, -9, -12}));
  infer_shapes(g);
  EXPECT_EQ(sym_shape_str(*out(n, 1)->shape), "[2,3,2]");
  // A length beyond the sequence axis is an error.
  n->inputs[0] = lens;
  EXPECT_THROW(run(g, {i64({2}, {4, 1}), f32({2, 2}, in), f32({2, 3, 2}, xs)}), Error);
}

TEST(ControlOps, ScanBodyMayReadEnclosingValues) {
  // Body: (s, e) -> (s + e + bias, ...) with bias from the enclosing graph.
  Graph g;
  Value* init = input(g, "init", DType::kFloat32, dims({1}));
  Value* x = input(g, "x", DType::kFloat32, dims({4, 1}));
  Value* bias = input(g, "bias", DType::kFloat32, dims({1}));
  auto body = std::make_shared<Graph>(&g);
  Value* s = input(*body, "s", DType::kFloat32);
  Value* e = input(*body, "e", DType::kFloat32);
  Value* t = out(node(*body, "Add", {s, e}, {"t"}));
  body->outputs = {out(node(*body, "Add", {t, bias}, {"u"}))};
  Node* n = node(g, "Scan", {init, x}, {"final"});
  set_graph(n, "body", body);
  set_int(n, "num_scan_inputs", 1);
  g.outputs = n->outputs;
  auto r = run(g, {f32({1}, {0}), f32({4, 1}, {1, 2, 3, 4}), f32({1}, {100})});
  EXPECT_EQ(vals<float>(r[0]), (std::vector<float>{410}));
}

}  // namespace

namespace {

TEST(ControlOps, UntypedBodyInputsGetTheirTypesFromTheNode) {
  // Loop and Scan bodies whose inputs carry no type (as ONNX function
  // expansions write them): inference types them from the node's inputs, so
  // an empty scan output after zero iterations still has the right dtype.
  Graph g;
  Value* m = input(g, "M", DType::kInt64, SymShape{});
  Value* y0 = input(g, "y0", DType::kInt32, dims({4}));
  Value* d = input(g, "d", DType::kInt32, dims({4}));
  auto body = std::make_shared<Graph>(&g);
  input(*body, "i", DType::kUndefined);
  Value* ci = input(*body, "c", DType::kUndefined);
  Value* y = input(*body, "y", DType::kUndefined);
  Value* y2 = out(node(*body, "Add", {y, d}, {"y2"}));
  body->outputs = {ci, y2, y};
  Node* loop = node(g, "Loop", {m, nullptr, y0}, {"yf", "ys"});
  set_graph(loop, "body", body);
  g.outputs = loop->outputs;
  infer_shapes(g);
  EXPECT_EQ(body->inputs[0]->dtype, DType::kInt64);
  EXPECT_EQ(body->inputs[1]->dtype, DType::kBool);
  EXPECT_EQ(out(loop, 1)->dtype, DType::kInt32);
  auto r = run(g, {i64({}, {0}), make<int32_t>(DType::kInt32, {4}, {1, 2, 3, 4}),
                   make<int32_t>(DType::kInt32, {4}, {1, 1, 1, 1})});
  EXPECT_EQ(r[1].dtype(), DType::kInt32);
  EXPECT_EQ(r[1].shape(), (Shape{0}));  // the carried shape is left open: [0] plus no dims
  r = run(g, {i64({}, {2}), make<int32_t>(DType::kInt32, {4}, {1, 2, 3, 4}),
              make<int32_t>(DType::kInt32, {4}, {10, 10, 10, 10})});
  EXPECT_EQ(vals<int32_t>(r[0]), (std::vector<int32_t>{21, 22, 23, 24}));
  EXPECT_EQ(vals<int32_t>(r[1]), (std::vector<int32_t>{1, 2, 3, 4, 11, 12, 13, 14}));

  Graph h;
  Value* init = input(h, "init", DType::kFloat64, dims({3}));
  Value* x = input(h, "x", DType::kFloat64, SymShape{Dim::known(3), Dim::sym("T")});
  auto sb = std::make_shared<Graph>(&h);
  Value* s = input(*sb, "s", DType::kUndefined);
  Value* e = input(*sb, "e", DType::kUndefined);
  Value* s2 = out(node(*sb, "Add", {s, e}, {"s2"}));
  sb->outputs = {s2, out(node(*sb, "Relu", {s2}, {"r"}))};
  Node* scan = node(h, "Scan", {init, x}, {"fin", "ys"});
  set_graph(scan, "body", sb);
  set_int(scan, "num_scan_inputs", 1);
  set_ints(scan, "scan_input_axes", {-1});
  infer_shapes(h);
  EXPECT_EQ(sym_shape_str(*e->shape), "[3]");
  EXPECT_EQ(out(scan, 1)->dtype, DType::kFloat64);
  EXPECT_EQ(sym_shape_str(*out(scan, 1)->shape), "[T,3]");
}

}  // namespace
