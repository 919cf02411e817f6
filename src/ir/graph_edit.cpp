#include "ir/graph_edit.h"

#include <algorithm>

#include "deepep/error.h"
#include "ir/op_registry.h"

namespace deepep {

namespace {

template <class F>
void for_each_subgraph(const Node& n, F&& f) {
  for (const auto& [k, a] : n.attrs)
    for (const auto& sg : a.graphs) f(*sg);
}

// Calls f(v) for every value a subgraph (and its own subgraphs) reads or returns.
template <class F>
void subgraph_reads(const Graph& sg, F&& f) {
  for (const auto& n : sg.nodes()) {
    for (const Value* v : n->inputs)
      if (v) f(v);
    for_each_subgraph(*n, [&](const Graph& inner) { subgraph_reads(inner, f); });
  }
  for (const Value* v : sg.outputs)
    if (v) f(v);
}

// Redirects reads of `from` inside a subgraph (and deeper) to `to`; subgraph
// outputs are positional, so their names do not matter.
void replace_in_subgraph(Graph& sg, const Value* from, Value* to) {
  for (const auto& n : sg.nodes()) {
    for (Value*& v : n->inputs)
      if (v == from) v = to;
    for_each_subgraph(*n, [&](Graph& inner) { replace_in_subgraph(inner, from, to); });
  }
  for (Value*& v : sg.outputs)
    if (v == from) v = to;
}

std::string where(const Graph& g) { return detail::concat("graph '", g.name.empty() ? "main" : g.name, "'"); }
std::string node_at(const Node& n) { return detail::concat("node #", n.id, " ", n.describe()); }

}  // namespace

// ---- uses ----------------------------------------------------------------

UseIndex::UseIndex(const Graph& g) {
  for (const auto& n : g.nodes()) {
    for (size_t i = 0; i < n->inputs.size(); ++i)
      if (n->inputs[i]) uses_[n->inputs[i]].push_back({n.get(), int(i)});
    for_each_subgraph(*n, [&](const Graph& sg) {
      std::unordered_set<const Value*> seen;
      subgraph_reads(sg, [&](const Value* v) {
        if (seen.insert(v).second) uses_[v].push_back({n.get(), -1});
      });
    });
  }
  outputs_.insert(g.outputs.begin(), g.outputs.end());
}

const std::vector<Use>& UseIndex::uses(const Value* v) const {
  static const std::vector<Use> kNone;
  auto it = uses_.find(v);
  return it == uses_.end() ? kNone : it->second;
}

Node* UseIndex::sole_consumer(const Value* v) const {
  const auto& us = uses(v);
  if (us.size() != 1 || us[0].input < 0 || is_output(v)) return nullptr;
  return us[0].node;
}

std::vector<const Value*> reads_of(const Node& n) {
  std::unordered_set<const Value*> seen;
  std::vector<const Value*> out;
  auto add = [&](const Value* v) {
    if (v && seen.insert(v).second) out.push_back(v);
  };
  for (const Value* v : n.inputs) add(v);
  for_each_subgraph(n, [&](const Graph& sg) { subgraph_reads(sg, add); });
  return out;
}

std::vector<Use> uses_of(const Graph& g, const Value* v) { return UseIndex(g).uses(v); }

bool is_graph_output(const Graph& g, const Value* v) {
  return std::find(g.outputs.begin(), g.outputs.end(), v) != g.outputs.end();
}

// ---- replacing -----------------------------------------------------------

bool can_replace_all_uses(const Graph& g, const Value* from, const Value* to) {
  if (from == to || !is_graph_output(g, from)) return true;
  const bool is_input = std::find(g.inputs.begin(), g.inputs.end(), to) != g.inputs.end();
  return to && to->owner == &g && !is_input && !is_graph_output(g, to);
}

bool replace_all_uses(Graph& g, Value* from, Value* to) {
  DEEPEP_CHECK(from->owner == &g, "replace_all_uses: %", from->name, " does not belong to ", where(g));
  if (from == to) return true;
  if (!can_replace_all_uses(g, from, to)) return false;
  if (is_graph_output(g, from)) {
    const std::string name = from->name;
    g.rename(from, g.unique_name(name + "_replaced"));
    g.rename(to, name);
    for (Value*& v : g.outputs)
      if (v == from) v = to;
  }
  for (const auto& n : g.nodes()) {
    for (Value*& v : n->inputs)
      if (v == from) v = to;
    for_each_subgraph(*n, [&](Graph& sg) { replace_in_subgraph(sg, from, to); });
  }
  return true;
}

// ---- creating ------------------------------------------------------------

Value* new_value(Graph& g, const std::string& base, DType dtype, std::optional<SymShape> shape) {
  Value* v = g.add_value(g.unique_name(base));
  v->dtype = dtype;
  v->shape = std::move(shape);
  return v;
}

Value* new_constant(Graph& g, const std::string& base, Tensor t) {
  Value* v = g.add_value(g.unique_name(base));
  make_constant(v, std::move(t));
  return v;
}

void make_constant(Value* v, Tensor t) {
  v->dtype = t.dtype();
  v->shape = to_sym_shape(t.shape());
  v->data = std::move(t);
  v->producer = nullptr;
}

Node* insert_node_before(Graph& g, const Node* before, const std::string& op_type,
                         std::vector<Value*> inputs, std::vector<Value*> outputs,
                         const std::string& domain) {
  const size_t pos = before ? size_t(before->id) : g.nodes().size();
  DEEPEP_CHECK(!before || (pos < g.nodes().size() && g.nodes()[pos].get() == before),
               "insert_node_before: the anchor node is not in ", where(g), " (stale ids?)");
  Node* n = g.insert_node(pos, op_type, "");
  n->domain = domain;
  n->def = find_op(domain, op_type);
  n->inputs = std::move(inputs);
  n->outputs = std::move(outputs);
  for (Value* v : n->outputs)
    if (v) v->producer = n;
  return n;
}

// ---- removing ------------------------------------------------------------

void absorb(Node& fused, const Node& n) {
  if (&fused == &n) return;
  if (n.absorbed.empty()) {
    ++fused.absorbed[n.op_type];
    return;
  }
  for (const auto& [op, count] : n.absorbed) fused.absorbed[op] += count;
}

void remove_nodes(Graph& g, const std::unordered_set<const Node*>& dead) {
  if (dead.empty()) return;
  for (const Node* n : dead)
    for (Value* v : n->outputs)
      if (v && v->producer == n) v->producer = nullptr;
  g.erase_nodes_if([&](const Node& n) { return dead.count(&n) != 0; });
  prune_values(g);
}

int prune_values(Graph& g) {
  std::unordered_set<const Value*> live(g.inputs.begin(), g.inputs.end());
  live.insert(g.outputs.begin(), g.outputs.end());
  for (const auto& n : g.nodes()) {
    live.insert(n->inputs.begin(), n->inputs.end());
    live.insert(n->outputs.begin(), n->outputs.end());
    for_each_subgraph(*n, [&](const Graph& sg) { subgraph_reads(sg, [&](const Value* v) { live.insert(v); }); });
  }
  const size_t before = g.values().size();
  g.erase_values_if([&](const Value& v) { return live.count(&v) == 0; });
  return int(before - g.values().size());
}

// ---- verifying -----------------------------------------------------------

namespace {

// `defined`: values readable at this point (this graph's and enclosing ones').
void verify_graph(const Graph& g, std::unordered_set<const Value*>& defined) {
  const std::string at = where(g);
  std::unordered_set<const Node*> nodes;
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    const Node* n = g.nodes()[i].get();
    DEEPEP_CHECK(n->id == int(i), at, ": ", n->describe(), " at position ", i, " has id ", n->id,
                 " (call reindex)");
    nodes.insert(n);
  }
  std::unordered_set<std::string> names;
  for (size_t i = 0; i < g.values().size(); ++i) {
    const Value* v = g.values()[i].get();
    DEEPEP_CHECK(v->id == int(i) && v->owner == &g, at, ": value %", v->name, " has id ", v->id,
                 " at position ", i, (v->owner == &g ? "" : " and another owner"));
    DEEPEP_CHECK(!v->name.empty(), at, ": value #", i, " has no name");
    DEEPEP_CHECK(names.insert(v->name).second, at, ": two values are named %", v->name);
    DEEPEP_CHECK(g.find(v->name) == v, at, ": the name %", v->name, " does not find its value");
    DEEPEP_CHECK(!v->producer || nodes.count(v->producer), at, ": value %", v->name,
                 " names a producer that is not a node of the graph (removed?)");
    DEEPEP_CHECK(!(v->producer && v->data), at, ": value %", v->name,
                 " is both a constant and produced by ", node_at(*v->producer));
  }
  std::vector<const Value*> added;
  auto define = [&](const Value* v, const std::string& how) {
    DEEPEP_CHECK(v->owner == &g, at, ": ", how, " %", v->name, " belongs to another graph");
    DEEPEP_CHECK(defined.insert(v).second, at, ": value %", v->name, " is defined twice (", how, ")");
    added.push_back(v);
  };
  for (const Value* v : g.inputs) {
    DEEPEP_CHECK(v, at, ": a graph input is null");
    DEEPEP_CHECK(!v->producer && !v->data, at, ": graph input %", v->name,
                 " is also produced by a node or a constant");
    define(v, "graph input");
  }
  for (const auto& v : g.values())
    if (v->data) define(v.get(), "constant");
  for (const auto& up : g.nodes()) {
    const Node& n = *up;
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      const Value* v = n.inputs[i];
      if (!v) continue;
      DEEPEP_CHECK(defined.count(v), at, ": ", node_at(n), " reads %", v->name, " (input ", i, "), ",
                   v->producer && v->owner == &g ? "which a later node produces (not topological)"
                                                 : "which is not defined before it");
    }
    for (const auto& [k, a] : n.attrs)
      for (const auto& sg : a.graphs) {
        DEEPEP_CHECK(sg && sg->parent() == &g, at, ": subgraph '", k, "' of ", node_at(n),
                     " does not name this graph as its parent");
        try {
          verify_graph(*sg, defined);
        } catch (const Error& e) {
          DEEPEP_FAIL(at, ": in subgraph '", k, "' of ", node_at(n), ": ", e.what());
        }
      }
    for (size_t i = 0; i < n.outputs.size(); ++i) {
      const Value* v = n.outputs[i];
      if (!v) continue;
      DEEPEP_CHECK(v->producer == &n, at, ": ", node_at(n), " output ", i, " %", v->name,
                   " names another producer", (v->producer ? " (" + node_at(*v->producer) + ")" : std::string(" (none)")));
      define(v, "output of " + node_at(n));
    }
  }
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    const Value* v = g.outputs[i];
    DEEPEP_CHECK(v, at, ": graph output ", i, " is null");
    DEEPEP_CHECK(defined.count(v), at, ": graph output %", v->name, " is never defined");
  }
  for (const Value* v : added) defined.erase(v);
}

}  // namespace

void verify(const Graph& g) {
  std::unordered_set<const Value*> defined;
  // A subgraph verified alone may read values its enclosing graphs define.
  for (const Graph* p = g.parent(); p; p = p->parent()) {
    for (const Value* v : p->inputs) defined.insert(v);
    for (const auto& v : p->values())
      if (v->data || v->producer) defined.insert(v.get());
  }
  verify_graph(g, defined);
}

}  // namespace deepep
