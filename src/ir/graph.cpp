#include "ir/graph.h"

#include <sstream>

#include "deepep/error.h"
#include "ir/op_registry.h"

namespace deepep {

std::string Dim::str() const {
  if (is_known()) return std::to_string(value);
  return symbol.empty() ? "?" : symbol;
}

SymShape to_sym_shape(const Shape& s) {
  SymShape r;
  r.reserve(s.size());
  for (int64_t d : s) r.push_back(Dim::known(d));
  return r;
}

std::string sym_shape_str(const SymShape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r += ",";
    r += s[i].str();
  }
  return r + "]";
}

const Attribute* Node::attr(const std::string& k) const {
  auto it = attrs.find(k);
  return it == attrs.end() ? nullptr : &it->second;
}
int64_t Node::attr_int(const std::string& k, int64_t dflt) const {
  const Attribute* a = attr(k);
  return a ? a->i : dflt;
}
float Node::attr_float(const std::string& k, float dflt) const {
  const Attribute* a = attr(k);
  return a ? a->f : dflt;
}
std::string Node::attr_string(const std::string& k, const std::string& dflt) const {
  const Attribute* a = attr(k);
  return a ? a->s : dflt;
}
std::vector<int64_t> Node::attr_ints(const std::string& k, std::vector<int64_t> dflt) const {
  const Attribute* a = attr(k);
  return a ? a->ints : dflt;
}
std::vector<float> Node::attr_floats(const std::string& k, std::vector<float> dflt) const {
  const Attribute* a = attr(k);
  return a ? a->floats : dflt;
}
std::string Node::describe() const {
  return op_type + (name.empty() ? std::string() : " '" + name + "'");
}

Value* Graph::add_value(const std::string& name) {
  auto v = std::make_unique<Value>();
  v->name = name;
  v->id = int(values_.size());
  v->owner = this;
  Value* raw = v.get();
  values_.push_back(std::move(v));
  if (!name.empty()) by_name_[name] = raw;
  return raw;
}

Node* Graph::add_node(const std::string& op_type, const std::string& name) {
  auto n = std::make_unique<Node>();
  n->op_type = op_type;
  n->name = name;
  n->id = int(nodes_.size());
  Node* raw = n.get();
  nodes_.push_back(std::move(n));
  return raw;
}

Value* Graph::find(const std::string& name) const {
  for (const Graph* g = this; g; g = g->parent_) {
    auto it = g->by_name_.find(name);
    if (it != g->by_name_.end()) return it->second;
  }
  return nullptr;
}

void Graph::reindex() {
  for (size_t i = 0; i < nodes_.size(); ++i) nodes_[i]->id = int(i);
}

namespace {
std::string value_text(const Value* v) {
  if (!v) return "_";
  std::string s = "%" + v->name;
  return s;
}
std::string type_text(const Value* v) {
  std::string s(dtype_name(v->dtype));
  return s + (v->shape ? sym_shape_str(*v->shape) : "[?]");
}
std::string attr_text(const Attribute& a) {
  std::ostringstream os;
  auto list = [&](const auto& xs) {
    os << '[';
    for (size_t i = 0; i < xs.size(); ++i) os << (i ? "," : "") << xs[i];
    os << ']';
  };
  switch (a.kind) {
    case Attribute::Kind::kInt: os << a.i; break;
    case Attribute::Kind::kFloat: os << a.f; break;
    case Attribute::Kind::kString: os << '"' << a.s << '"'; break;
    case Attribute::Kind::kInts: list(a.ints); break;
    case Attribute::Kind::kFloats: list(a.floats); break;
    case Attribute::Kind::kStrings: list(a.strings); break;
    case Attribute::Kind::kTensor:
      os << "tensor<" << dtype_name(a.t.dtype()) << shape_str(a.t.shape()) << '>';
      break;
    case Attribute::Kind::kGraph:
    case Attribute::Kind::kGraphs: os << "<" << a.graphs.size() << " graph(s)>"; break;
  }
  return os.str();
}
}  // namespace

std::string Graph::to_text() const {
  std::ostringstream os;
  os << "graph " << (name.empty() ? "main" : name) << "(";
  for (size_t i = 0; i < inputs.size(); ++i)
    os << (i ? ", " : "") << value_text(inputs[i]) << ": " << type_text(inputs[i]);
  os << ") {\n";
  for (const auto& n : nodes_) {
    os << "  ";
    for (size_t i = 0; i < n->outputs.size(); ++i) {
      os << (i ? ", " : "") << value_text(n->outputs[i]);
      if (n->outputs[i]) os << ": " << type_text(n->outputs[i]);
    }
    os << " = " << n->op_type;
    if (!n->attrs.empty()) {
      os << '<';
      bool first = true;
      for (const auto& [k, a] : n->attrs) {
        os << (first ? "" : ", ") << k << '=' << attr_text(a);
        first = false;
      }
      os << '>';
    }
    os << '(';
    for (size_t i = 0; i < n->inputs.size(); ++i) os << (i ? ", " : "") << value_text(n->inputs[i]);
    os << ")\n";
  }
  os << "  return ";
  for (size_t i = 0; i < outputs.size(); ++i) os << (i ? ", " : "") << value_text(outputs[i]);
  os << "\n}\n";
  return os.str();
}

}  // namespace deepep
