// A recursive-descent parser over a small hand-written lexer; the grammar is
// the one Graph::print writes:
//
//   graph   := "graph" NAME "(" [param {"," param}] ")" "{" {stmt} "return" [ref {"," ref}] "}"
//   param   := ref ":" type
//   type    := DTYPE "[" ("*" | [dim {"," dim}]) "]"          dim := INT | SYMBOL | STRING | "?"
//   stmt    := out {"," out} "=" ("const" literal | OP ["<" attr {"," attr} ">"] "(" [in {"," in}] ")")
//   out     := "_" | ref [":" type]          in := "_" | ref          ref := "%" (BARE | STRING)
//   attr    := KEY "=" (INT | FLOAT | STRING | list | "tensor<" type ">" literal | graph
//                       | "floats[]" | "strings[]" | "graphs[" graph {"," graph} "]")
//   literal := "[" [value {"," value}] "]"
//
// A node's outputs are created only after its attributes and inputs are read,
// so a subgraph can capture only values defined before the node (SSA).
#include "ir/graph_text_parser.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>

#include "deepep/error.h"
#include "ir/dtype_dispatch.h"
#include "ir/op_registry.h"

namespace deepep {

namespace {

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  std::unique_ptr<Graph> parse() {
    auto g = graph(nullptr);
    skip();
    if (pos_ < s_.size()) fail("unexpected text after the graph");
    return g;
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;

  // ---- lexing ----
  [[noreturn]] void fail(const std::string& msg) const {
    int line = 1, col = 1;
    for (size_t i = 0; i < pos_ && i < s_.size(); ++i) {
      if (s_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    DEEPEP_FAIL("graph text ", line, ":", col, ": ", msg);
  }
  void skip() {
    while (pos_ < s_.size()) {
      if (std::isspace(uint8_t(s_[pos_]))) {
        ++pos_;
      } else if (s_[pos_] == '#') {
        while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
  }
  char peek() {
    skip();
    return pos_ < s_.size() ? s_[pos_] : '\0';
  }
  bool accept(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  void expect(char c) {
    if (!accept(c)) fail(std::string("expected '") + c + "'");
  }
  static bool ident_start(char c) { return std::isalpha(uint8_t(c)) || c == '_'; }
  static bool ident_char(char c) { return std::isalnum(uint8_t(c)) || c == '_' || c == '.'; }
  bool at_ident() { return ident_start(peek()); }
  // [A-Za-z_][A-Za-z0-9_.]*
  std::string ident() {
    if (!at_ident()) fail("expected a name");
    size_t b = pos_;
    while (pos_ < s_.size() && ident_char(s_[pos_])) ++pos_;
    return std::string(s_.substr(b, pos_ - b));
  }
  bool accept_word(std::string_view w) {
    size_t save = pos_;
    if (at_ident() && ident() == w) return true;
    pos_ = save;
    return false;
  }
  void expect_word(std::string_view w) {
    if (!accept_word(w)) fail("expected '" + std::string(w) + "'");
  }
  std::string string_lit() {
    expect('"');
    std::string r;
    while (true) {
      if (pos_ >= s_.size()) fail("unterminated string");
      char c = s_[pos_++];
      if (c == '"') return r;
      if (c != '\\') {
        r += c;
        continue;
      }
      if (pos_ >= s_.size()) fail("unterminated string");
      char e = s_[pos_++];
      if (e == 'n') {
        r += '\n';
      } else if (e == 'x') {
        unsigned v = 0;
        auto res = std::from_chars(s_.data() + pos_, s_.data() + std::min(pos_ + 2, s_.size()), v, 16);
        if (res.ptr != s_.data() + pos_ + 2) fail("bad \\x escape");
        pos_ += 2;
        r += char(v);
      } else {
        r += e;
      }
    }
  }
  // A name: bare [A-Za-z0-9_./-]+ or a quoted string.
  std::string name_token() {
    if (peek() == '"') return string_lit();
    size_t b = pos_;
    while (pos_ < s_.size() && (std::isalnum(uint8_t(s_[pos_])) || std::strchr("_./-", s_[pos_])))
      ++pos_;
    if (pos_ == b) fail("expected a name");
    return std::string(s_.substr(b, pos_ - b));
  }
  // A number's text: [-](digits[.digits][e[+-]digits] | inf | nan).
  bool at_number() {
    char c = peek();
    if (std::isdigit(uint8_t(c)) || c == '-' || c == '.') return true;
    return s_.substr(pos_, 3) == "inf" || s_.substr(pos_, 3) == "nan";
  }
  std::string number_token() {
    skip();
    size_t b = pos_;
    if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
    if (s_.substr(pos_, 3) == "inf" || s_.substr(pos_, 3) == "nan") {
      pos_ += 3;
    } else {
      while (pos_ < s_.size() && (std::isdigit(uint8_t(s_[pos_])) || s_[pos_] == '.')) ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
        ++pos_;
        if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
        while (pos_ < s_.size() && std::isdigit(uint8_t(s_[pos_]))) ++pos_;
      }
    }
    if (pos_ == b || s_.substr(b, pos_ - b) == "-") fail("expected a number");
    return std::string(s_.substr(b, pos_ - b));
  }
  static bool is_float_text(const std::string& t) {
    return t.find_first_of(".eEni") != std::string::npos;
  }
  int64_t to_int(const std::string& t) {
    int64_t v = 0;
    auto r = std::from_chars(t.data(), t.data() + t.size(), v);
    if (r.ec != std::errc() || r.ptr != t.data() + t.size()) fail("bad integer '" + t + "'");
    return v;
  }
  double to_double(const std::string& t) {
    // from_chars takes "inf"/"nan" with an optional '-'.
    double v = 0;
    auto r = std::from_chars(t.data(), t.data() + t.size(), v);
    if (r.ec != std::errc() || r.ptr != t.data() + t.size()) fail("bad number '" + t + "'");
    return v;
  }

  // ---- grammar ----
  std::unique_ptr<Graph> graph(Graph* parent) {
    expect_word("graph");
    auto g = std::make_unique<Graph>(parent);
    g->name = peek() == '"' ? string_lit() : ident();
    expect('(');
    if (!accept(')')) {
      do {
        skip();
        const size_t at = pos_;
        Value* v = define(*g, ref_name(), at);
        expect(':');
        type(*v);
        g->inputs.push_back(v);
      } while (accept(','));
      expect(')');
    }
    expect('{');
    while (!accept_word("return")) statement(*g);
    if (peek() != '}') {
      do {
        g->outputs.push_back(use(*g));
      } while (accept(','));
    }
    expect('}');
    return g;
  }

  std::string ref_name() {
    expect('%');
    return name_token();
  }
  // `at`: where the name was written, for the error message.
  Value* define(Graph& g, const std::string& name, size_t at) {
    Value* old = g.find(name);
    if (old && old->owner == &g) {
      pos_ = at;
      fail("value %" + name + " is defined twice");
    }
    return g.add_value(name);
  }
  Value* use(Graph& g) {
    if (accept_word("_")) return nullptr;
    std::string name = ref_name();
    Value* v = g.find(name);
    if (!v) fail("value %" + name + " is used before it is defined");
    return v;
  }

  void type(Value& v) {
    std::string dt = ident();
    v.dtype = dtype_from_name(dt);
    if (v.dtype == DType::kUndefined && dt != "undefined") fail("unknown dtype '" + dt + "'");
    expect('[');
    if (accept('*')) {
      expect(']');
      return;
    }
    SymShape shape;
    if (!accept(']')) {
      do {
        if (accept('?')) shape.push_back(Dim{});
        else if (peek() == '"') shape.push_back(Dim::sym(string_lit()));
        else if (at_ident()) shape.push_back(Dim::sym(ident()));
        else shape.push_back(Dim::known(to_int(number_token())));
      } while (accept(','));
      expect(']');
    }
    v.shape = std::move(shape);
  }

  struct Out {
    std::string name;  // empty: "_"
    size_t at = 0;
    Value type;
    bool typed = false;
  };

  void statement(Graph& g) {
    std::vector<Out> outs;
    do {
      Out o;
      skip();
      o.at = pos_;
      if (!accept_word("_")) {
        o.name = ref_name();
        if (accept(':')) {
          type(o.type);
          o.typed = true;
        }
      }
      outs.push_back(std::move(o));
    } while (accept(','));
    expect('=');
    std::string op = ident();
    if (op == "const") return constant(g, outs);

    Node n;  // filled first, moved into the graph once complete
    const size_t dot = op.rfind('.');
    n.domain = dot == std::string::npos ? "" : op.substr(0, dot);
    n.op_type = dot == std::string::npos ? op : op.substr(dot + 1);
    if (accept('<')) {
      do {
        std::string key = ident();
        expect('=');
        n.attrs[key] = attribute(g);
      } while (accept(','));
      expect('>');
    }
    expect('(');
    if (!accept(')')) {
      do {
        n.inputs.push_back(use(g));
      } while (accept(','));
      expect(')');
    }
    Node* node = g.add_node(n.op_type, "");
    node->domain = n.domain;
    node->attrs = std::move(n.attrs);
    node->inputs = std::move(n.inputs);
    node->def = find_op(node->domain, node->op_type);
    for (Out& o : outs) {
      if (o.name.empty()) {
        node->outputs.push_back(nullptr);
        continue;
      }
      Value* v = define(g, o.name, o.at);
      v->dtype = o.type.dtype;
      v->shape = o.type.shape;
      v->producer = node;
      node->outputs.push_back(v);
    }
  }

  void constant(Graph& g, std::vector<Out>& outs) {
    if (outs.size() != 1 || outs[0].name.empty()) fail("a constant defines exactly one value");
    if (!outs[0].typed || !outs[0].type.shape) fail("a constant needs its dtype and shape");
    Shape shape;
    for (const Dim& d : *outs[0].type.shape) {
      if (!d.is_known()) fail("a constant's shape must be fully known");
      shape.push_back(d.value);
    }
    Value* v = define(g, outs[0].name, outs[0].at);
    v->dtype = outs[0].type.dtype;
    v->shape = outs[0].type.shape;
    v->data = literal(v->dtype, shape);
  }

  // "[v, v, ...]" with all values of the tensor, or one that fills it.
  Tensor literal(DType dt, const Shape& shape) {
    if (peek() == '<') fail("a constant summarized by its digest cannot be parsed; write its values");
    if (dtype_size(dt) == 0) fail("constants of dtype " + std::string(dtype_name(dt)) + " are not supported");
    std::vector<std::string> items;
    skip();
    const size_t at = pos_;
    expect('[');
    if (!accept(']')) {
      do {
        if (accept_word("true")) items.push_back("1");
        else if (accept_word("false")) items.push_back("0");
        else items.push_back(number_token());
      } while (accept(','));
      expect(']');
    }
    Tensor t(dt, shape);
    const int64_t n = t.numel();
    if (int64_t(items.size()) != n && !(items.size() == 1 && n > 0)) {
      pos_ = at;
      fail("constant of shape " + shape_str(shape) + " needs " + std::to_string(n) +
           " values (or one to fill it), got " + std::to_string(items.size()));
    }
    for (int64_t i = 0; i < n; ++i) store(t, i, items.size() == 1 ? items[0] : items[size_t(i)]);
    return t;
  }
  void store(Tensor& t, int64_t i, const std::string& item) {
    const DType dt = t.dtype();
    if (dt == DType::kBool || dt == DType::kUInt8 || (dtype_size(dt) == 1 && !dtype_is_int(dt))) {
      t.data<uint8_t>()[i] = uint8_t(to_int(item));  // bool, float8 and sub-byte codes
      return;
    }
    if (dt == DType::kUInt64) {
      uint64_t v = 0;
      auto r = std::from_chars(item.data(), item.data() + item.size(), v);
      if (r.ec != std::errc() || r.ptr != item.data() + item.size()) fail("bad uint64 '" + item + "'");
      t.data<uint64_t>()[i] = v;
      return;
    }
    dispatch_numeric(dt, "graph text", [&](auto tag) {
      using T = typename decltype(tag)::type;
      if constexpr (is_floating_v<T>) {
        const double d = to_double(item);
        if constexpr (std::is_same_v<T, double>) t.data<T>()[i] = d;
        else t.data<T>()[i] = T(float(d));
      } else {
        if (is_float_text(item)) fail("integer constant given '" + item + "'");
        t.data<T>()[i] = T(to_int(item));
      }
    });
  }

  Attribute attribute(Graph& g) {
    Attribute a;
    using K = Attribute::Kind;
    char c = peek();
    if (c == '"') {
      a.kind = K::kString;
      a.s = string_lit();
    } else if (c == '[') {
      list(a);
    } else if (at_number()) {
      std::string t = number_token();
      if (is_float_text(t)) {
        a.kind = K::kFloat;
        a.f = float(to_double(t));
      } else {
        a.kind = K::kInt;
        a.i = to_int(t);
      }
    } else {
      size_t save = pos_;
      std::string w = ident();
      if (w == "graph") {
        pos_ = save;
        a.kind = K::kGraph;
        a.graphs.push_back(graph(&g));
      } else if (w == "tensor") {
        a.kind = K::kTensor;
        expect('<');
        Value tv;
        type(tv);
        expect('>');
        if (!tv.shape) fail("a tensor attribute needs a shape");
        Shape shape;
        for (const Dim& d : *tv.shape) {
          if (!d.is_known()) fail("a tensor attribute's shape must be fully known");
          shape.push_back(d.value);
        }
        a.t = literal(tv.dtype, shape);
      } else if (w == "floats" || w == "strings") {
        a.kind = w == "floats" ? K::kFloats : K::kStrings;
        expect('[');
        expect(']');
      } else if (w == "graphs") {
        a.kind = K::kGraphs;
        expect('[');
        if (!accept(']')) {
          do {
            a.graphs.push_back(graph(&g));
          } while (accept(','));
          expect(']');
        }
      } else {
        fail("unexpected attribute value '" + w + "'");
      }
    }
    return a;
  }

  // [1,2] ints; [1.0,2] floats (any float makes the list floats); ["a"] strings; [] ints.
  void list(Attribute& a) {
    using K = Attribute::Kind;
    expect('[');
    a.kind = K::kInts;
    if (accept(']')) return;
    if (peek() == '"') {
      a.kind = K::kStrings;
      do {
        a.strings.push_back(string_lit());
      } while (accept(','));
      expect(']');
      return;
    }
    std::vector<std::string> items;
    do {
      items.push_back(number_token());
    } while (accept(','));
    expect(']');
    bool floats = false;
    for (const auto& t : items) floats = floats || is_float_text(t);
    a.kind = floats ? K::kFloats : K::kInts;
    for (const auto& t : items) {
      if (floats) a.floats.push_back(float(to_double(t)));
      else a.ints.push_back(to_int(t));
    }
  }
};

}  // namespace

std::unique_ptr<Graph> parse_graph_text(std::string_view text) { return Parser(text).parse(); }

}  // namespace deepep
