// The IR: a graph of nodes over SSA values. Every value is produced once (by a
// node, or it is a graph input or an initializer holding data). Dimensions are
// numbers or symbols ("batch", "seq"), so one graph serves many input shapes.
// Subgraphs (If/Loop/Scan bodies) are Graphs whose `parent` is the enclosing
// graph; they may read the enclosing graph's values directly.
#pragma once
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "deepep/tensor.h"

namespace deepep {

struct Node;
class Graph;
struct OpDef;

// A dimension: known size (value >= 0), or a named symbol, or unknown (both empty).
struct Dim {
  int64_t value = -1;
  std::string symbol;
  static Dim known(int64_t v) { return Dim{v, {}}; }
  static Dim sym(std::string s) { return Dim{-1, std::move(s)}; }
  bool is_known() const { return value >= 0; }
  bool is_symbol() const { return value < 0 && !symbol.empty(); }
  bool operator==(const Dim& o) const { return value == o.value && symbol == o.symbol; }
  std::string str() const;
};
using SymShape = std::vector<Dim>;
SymShape to_sym_shape(const Shape& s);
std::string sym_shape_str(const SymShape& s);

struct Value {
  std::string name;
  DType dtype = DType::kUndefined;
  std::optional<SymShape> shape;  // nullopt: rank unknown
  Node* producer = nullptr;
  std::optional<Tensor> data;  // initializers and folded constants
  int id = -1;                 // index in the owning graph's value list
  Graph* owner = nullptr;

  bool is_constant() const { return data.has_value(); }
};

struct Attribute {
  enum class Kind { kInt, kFloat, kString, kInts, kFloats, kStrings, kTensor, kGraph, kGraphs };
  Kind kind = Kind::kInt;
  int64_t i = 0;
  float f = 0;
  std::string s;
  std::vector<int64_t> ints;
  std::vector<float> floats;
  std::vector<std::string> strings;
  Tensor t;
  std::vector<std::shared_ptr<Graph>> graphs;  // one for kGraph
};

// A node's attributes by name; `std::less<>` lets lookups take a
// string_view or a literal without building a std::string.
using AttrMap = std::map<std::string, Attribute, std::less<>>;

struct Node {
  std::string op_type;
  std::string name;
  std::string domain;  // "" for the default ONNX domain
  int opset = 0;       // the model's opset for this node's domain
  AttrMap attrs;
  std::vector<Value*> inputs;  // nullptr: optional input omitted
  std::vector<Value*> outputs;  // nullptr: optional output not requested
  const OpDef* def = nullptr;
  int id = -1;
  // Optimizer bookkeeping (not serialized): the op types, with counts, of the
  // source nodes a fused node stands for; empty for a node as loaded.
  std::map<std::string, int64_t> absorbed;

  bool has_attr(std::string_view k) const { return attrs.find(k) != attrs.end(); }
  int64_t attr_int(std::string_view k, int64_t dflt) const;
  float attr_float(std::string_view k, float dflt) const;
  std::string attr_string(std::string_view k, const std::string& dflt) const;
  std::vector<int64_t> attr_ints(std::string_view k, std::vector<int64_t> dflt = {}) const;
  std::vector<float> attr_floats(std::string_view k, std::vector<float> dflt = {}) const;
  const Attribute* attr(std::string_view k) const;
  // "Conv '/layer1/conv1/Conv'" for messages.
  std::string describe() const;
};

class Graph {
 public:
  explicit Graph(Graph* parent = nullptr) : parent_(parent) {}
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  Value* add_value(const std::string& name);
  Node* add_node(const std::string& op_type, const std::string& name);
  // Inserts a node at position `pos` of the node list (nodes().size() appends).
  Node* insert_node(size_t pos, const std::string& op_type, const std::string& name);
  // Renames a value; `name` must be free (see unique_name).
  void rename(Value* v, const std::string& name);
  // `base` if no value of this graph or an enclosing one has that name, else
  // `base` with the first free numeric suffix ("w_1", "w_2", ...).
  std::string unique_name(const std::string& base) const;
  // Finds a value by name in this graph, then in enclosing graphs.
  Value* find(const std::string& name) const;
  Graph* parent() const { return parent_; }

  std::vector<Value*> inputs;   // graph inputs (not initializers)
  std::vector<Value*> outputs;
  const std::vector<std::unique_ptr<Node>>& nodes() const { return nodes_; }
  const std::vector<std::unique_ptr<Value>>& values() const { return values_; }

  // Removes nodes for which `dead` is true (used by passes), keeping order.
  template <class Pred>
  void erase_nodes_if(Pred dead);
  // Removes values for which `dead` is true; the caller ensures that nothing
  // (node, graph input/output, subgraph) still refers to them.
  template <class Pred>
  void erase_values_if(Pred dead);
  // Renumbers node and value ids after edits.
  void reindex();

  std::string name;
  // Text form, one node a line: "%y: float32[batch,64] = Relu(%x)"; constants
  // first ("%w: float32[3] = const[1, 2, 3]", larger ones by digest), then
  // nodes, subgraphs nested in their attributes. "[*]" is an unknown rank,
  // "?" an unknown dimension. ir/graph_text_parser.h reads it back.
  std::string to_text() const;
  // The same, written to `os` with every line but the first indented by `indent`.
  void print(std::ostream& os, int indent) const;

 private:
  Graph* parent_;
  std::vector<std::unique_ptr<Value>> values_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::map<std::string, Value*> by_name_;
};

// Pieces of the text form, shared with its parser and the optimizer.
// Tensors up to kMaxTextElements print their values, larger ones a digest.
inline constexpr int64_t kMaxTextElements = 64;
std::string quote_text(const std::string& s);  // "a\"b", with \\, \n, \xHH escapes
uint64_t tensor_digest(const Tensor& t);       // FNV-1a of the bytes
std::string tensor_data_text(const Tensor& t);  // "[1, 2, 3]" or "<digest>"

template <class Pred>
void Graph::erase_nodes_if(Pred dead) {
  std::vector<std::unique_ptr<Node>> kept;
  for (auto& n : nodes_)
    if (!dead(*n)) kept.push_back(std::move(n));
  nodes_ = std::move(kept);
  reindex();
}

template <class Pred>
void Graph::erase_values_if(Pred dead) {
  std::vector<std::unique_ptr<Value>> kept;
  for (auto& v : values_) {
    if (!dead(*v)) {
      kept.push_back(std::move(v));
      continue;
    }
    auto it = by_name_.find(v->name);
    if (it != by_name_.end() && it->second == v.get()) by_name_.erase(it);
  }
  values_ = std::move(kept);
  reindex();
}

}  // namespace deepep
