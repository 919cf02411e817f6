#include "ir/graph.h"

#include <cctype>
#include <charconv>
#include <cstdio>
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

const Attribute* Node::attr(std::string_view k) const {
  auto it = attrs.find(k);
  return it == attrs.end() ? nullptr : &it->second;
}
int64_t Node::attr_int(std::string_view k, int64_t dflt) const {
  const Attribute* a = attr(k);
  return a ? a->i : dflt;
}
float Node::attr_float(std::string_view k, float dflt) const {
  const Attribute* a = attr(k);
  return a ? a->f : dflt;
}
std::string Node::attr_string(std::string_view k, const std::string& dflt) const {
  const Attribute* a = attr(k);
  return a ? a->s : dflt;
}
std::vector<int64_t> Node::attr_ints(std::string_view k, std::vector<int64_t> dflt) const {
  const Attribute* a = attr(k);
  return a ? a->ints : dflt;
}
std::vector<float> Node::attr_floats(std::string_view k, std::vector<float> dflt) const {
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
  return insert_node(nodes_.size(), op_type, name);
}

Node* Graph::insert_node(size_t pos, const std::string& op_type, const std::string& name) {
  DEEPEP_CHECK(pos <= nodes_.size(), "Graph::insert_node: position ", pos, " is past the end");
  auto n = std::make_unique<Node>();
  n->op_type = op_type;
  n->name = name;
  Node* raw = n.get();
  nodes_.insert(nodes_.begin() + std::ptrdiff_t(pos), std::move(n));
  if (pos + 1 == nodes_.size()) raw->id = int(pos);
  else reindex();
  return raw;
}

void Graph::rename(Value* v, const std::string& name) {
  DEEPEP_CHECK(v->owner == this, "Graph::rename: value '", v->name, "' belongs to another graph");
  auto it = by_name_.find(v->name);
  if (it != by_name_.end() && it->second == v) by_name_.erase(it);
  v->name = name;
  if (!name.empty()) by_name_[name] = v;
}

std::string Graph::unique_name(const std::string& base) const {
  if (!find(base)) return base;
  for (int i = 1;; ++i) {
    std::string s = base + "_" + std::to_string(i);
    if (!find(s)) return s;
  }
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
  for (size_t i = 0; i < values_.size(); ++i) values_[i]->id = int(i);
}

// ---- Text form ------------------------------------------------------------

namespace {

bool is_bare(const std::string& s, bool allow_path_chars) {
  if (s.empty()) return false;
  if (!allow_path_chars && !(std::isalpha(uint8_t(s[0])) || s[0] == '_')) return false;
  for (char c : s) {
    const bool ok = std::isalnum(uint8_t(c)) || c == '_' ||
                    (allow_path_chars && (c == '.' || c == '/' || c == '-'));
    if (!ok) return false;
  }
  return true;
}

// Value names: bare when made of [A-Za-z0-9_./-], else quoted.
std::string name_text(const std::string& s) {
  return is_bare(s, true) ? s : quote_text(s);
}
std::string value_text(const Value* v) { return v ? '%' + name_text(v->name) : std::string("_"); }

std::string dim_text(const Dim& d) {
  if (d.is_known()) return std::to_string(d.value);
  if (d.symbol.empty()) return "?";
  return is_bare(d.symbol, false) ? d.symbol : quote_text(d.symbol);
}
std::string type_text(DType dt, const std::optional<SymShape>& shape) {
  std::string s(dtype_name(dt));
  if (!shape) return s + "[*]";
  s += "[";
  for (size_t i = 0; i < shape->size(); ++i) {
    if (i) s += ',';
    s += dim_text((*shape)[i]);
  }
  return s + "]";
}
std::string type_text(const Value* v) { return type_text(v->dtype, v->shape); }

template <class T>
std::string chars_text(T v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}
// A float attribute always reads as a float ("1.0", not "1").
std::string float_attr_text(float f) {
  std::string s = chars_text(f);
  if (s.find_first_of(".eEni") == std::string::npos) s += ".0";
  return s;
}

std::string attr_text(const Attribute& a, int indent) {
  std::ostringstream os;
  auto list = [&](const auto& xs, const char* empty_kind, auto&& item) {
    if (xs.empty()) {
      os << empty_kind << "[]";
      return;
    }
    os << '[';
    for (size_t i = 0; i < xs.size(); ++i) os << (i ? "," : "") << item(xs[i]);
    os << ']';
  };
  switch (a.kind) {
    case Attribute::Kind::kInt: os << a.i; break;
    case Attribute::Kind::kFloat: os << float_attr_text(a.f); break;
    case Attribute::Kind::kString: os << quote_text(a.s); break;
    case Attribute::Kind::kInts: list(a.ints, "", [](int64_t x) { return std::to_string(x); }); break;
    case Attribute::Kind::kFloats: list(a.floats, "floats", float_attr_text); break;
    case Attribute::Kind::kStrings: list(a.strings, "strings", quote_text); break;
    case Attribute::Kind::kTensor:
      os << "tensor<" << type_text(a.t.dtype(), to_sym_shape(a.t.shape())) << '>'
         << tensor_data_text(a.t);
      break;
    case Attribute::Kind::kGraph: a.graphs.at(0)->print(os, indent); break;
    case Attribute::Kind::kGraphs:
      os << "graphs[";
      for (size_t i = 0; i < a.graphs.size(); ++i) {
        if (i) os << ", ";
        a.graphs[i]->print(os, indent);
      }
      os << ']';
      break;
  }
  return os.str();
}

}  // namespace

std::string quote_text(const std::string& s) {
  std::string r = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      r += '\\';
      r += c;
    } else if (c == '\n') {
      r += "\\n";
    } else if (uint8_t(c) < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", unsigned(uint8_t(c)));
      r += buf;
    } else {
      r += c;
    }
  }
  return r + "\"";
}

uint64_t tensor_digest(const Tensor& t) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  const auto* p = static_cast<const uint8_t*>(t.raw());
  for (size_t i = 0; i < t.nbytes(); ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

std::string tensor_data_text(const Tensor& t) {
  if (t.numel() > kMaxTextElements) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "<%016llx>", static_cast<unsigned long long>(tensor_digest(t)));
    return buf;
  }
  std::string s = "[";
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (i) s += ", ";
    const DType dt = t.dtype();
    if (dt == DType::kBool) {
      s += t.data<bool>()[i] ? "true" : "false";
    } else if (dt == DType::kFloat64) {
      s += chars_text(t.data<double>()[i]);
    } else if (dtype_is_float(dt) && dtype_size(dt) >= 2) {
      s += chars_text(float(t.get_double(i)));  // f16/bf16 widen to float exactly
    } else if (dtype_is_int(dt)) {
      s += dt == DType::kUInt64 ? std::to_string(t.data<uint64_t>()[i]) : std::to_string(t.get_int(i));
    } else {
      s += std::to_string(unsigned(t.data<uint8_t>()[i]));  // float8 / sub-byte: the stored code
    }
  }
  return s + "]";
}

void Graph::print(std::ostream& os, int indent) const {
  const std::string pad(size_t(indent) + 2, ' ');
  os << "graph " << (name.empty() ? "main" : name_text(name)) << "(";
  for (size_t i = 0; i < inputs.size(); ++i)
    os << (i ? ", " : "") << value_text(inputs[i]) << ": " << type_text(inputs[i]);
  os << ") {\n";
  for (const auto& v : values_)
    if (v->data)
      os << pad << value_text(v.get()) << ": " << type_text(v.get()) << " = const"
         << tensor_data_text(*v->data) << "\n";
  for (const auto& n : nodes_) {
    os << pad;
    for (size_t i = 0; i < n->outputs.size(); ++i) {
      os << (i ? ", " : "") << value_text(n->outputs[i]);
      if (n->outputs[i]) os << ": " << type_text(n->outputs[i]);
    }
    os << " = " << (n->domain.empty() ? "" : n->domain + ".") << n->op_type;
    if (!n->attrs.empty()) {
      os << '<';
      bool first = true;
      for (const auto& [k, a] : n->attrs) {
        os << (first ? "" : ", ") << k << '=' << attr_text(a, indent + 2);
        first = false;
      }
      os << '>';
    }
    os << '(';
    for (size_t i = 0; i < n->inputs.size(); ++i) os << (i ? ", " : "") << value_text(n->inputs[i]);
    os << ")\n";
  }
  os << pad << "return";
  for (size_t i = 0; i < outputs.size(); ++i) os << (i ? ", " : " ") << value_text(outputs[i]);
  os << "\n" << std::string(size_t(indent), ' ') << "}";
}

std::string Graph::to_text() const {
  std::ostringstream os;
  print(os, 0);
  os << "\n";
  return os.str();
}

}  // namespace deepep
