#include "runtime/executor.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>

#include "deepep/error.h"

namespace deepep {

const Tensor* Executor::Scope::find(const Value* v) const {
  // Constants (of this graph or an enclosing one) are read where they live:
  // binding them into every run's scope cost a hash insert and erase each.
  // (One a node still computes reads as that node's output.)
  if (v->data && !v->producer) return &*v->data;
  for (const Scope* s = this; s; s = s->parent) {
    auto it = s->values.find(v);
    if (it != s->values.end()) return &it->second;
  }
  return v->data ? &*v->data : nullptr;
}

namespace {
// DEEPEP_PROFILE=1: time per op type and kernel (reference or fast), printed
// to stderr at exit, slowest first; DEEPEP_PROFILE=2: per op type and input
// shapes. Each node's first call (where kernels pack or transform constant
// weights) is counted apart, so the table shows steady-state times.
struct OpProfile {
  std::mutex mu;
  std::map<std::string, std::pair<double, long>> ms;  // key -> (total ms, calls)
  std::set<const Node*> seen;                          // nodes whose first call is past
  double first_ms = 0;
  long first_calls = 0;
  ~OpProfile() {
    std::vector<std::pair<double, std::string>> rows;
    double total = 0;
    for (const auto& [k, v] : ms) rows.push_back({v.first, k}), total += v.first;
    std::sort(rows.rbegin(), rows.rend());
    std::fprintf(stderr, "DEEPEP_PROFILE: %.1f ms in kernels (and %.1f ms in %ld first calls, not below)\n", total,
                 first_ms, first_calls);
    for (const auto& [t, k] : rows)
      std::fprintf(stderr, "  %10.2f ms %5.1f%%  %6ld calls  %8.3f ms/call  %s\n", t, 100 * t / std::max(total, 1e-9),
                   ms[k].second, t / double(std::max(ms[k].second, 1L)), k.c_str());
  }
};
OpProfile* op_profile() {
  static OpProfile* p = std::getenv("DEEPEP_PROFILE") && *std::getenv("DEEPEP_PROFILE") != '0' ? new OpProfile : nullptr;
  static struct Flush {
    ~Flush() { delete p; }
  } flush;
  return p;
}

// Values of enclosing graphs that `g` (or its own subgraphs) reads.
std::vector<const Value*> captured_values(const Graph& g) {
  std::vector<const Value*> out;
  for (const auto& n : g.nodes()) {
    for (const Value* v : n->inputs)
      if (v && v->owner != &g) out.push_back(v);
    for (const auto& [k, a] : n->attrs)
      for (const auto& sg : a.graphs)
        for (const Value* v : captured_values(*sg))
          if (v->owner != &g) out.push_back(v);
  }
  for (const Value* v : g.outputs)
    if (v->owner != &g) out.push_back(v);
  return out;
}
}  // namespace

const std::unordered_map<const Value*, int>& Executor::last_uses(const Graph& g) {
  auto it = last_use_cache_.find(&g);
  if (it != last_use_cache_.end()) return it->second;
  std::unordered_map<const Value*, int> last;
  for (const auto& n : g.nodes()) {
    for (const Value* v : n->inputs)
      if (v) last[v] = n->id;
    // Subgraphs read enclosing values without listing them as inputs.
    for (const auto& [k, a] : n->attrs)
      for (const auto& sg : a.graphs)
        for (const Value* v : captured_values(*sg)) last[v] = n->id;
  }
  for (const Value* v : g.outputs) last[v] = int(g.nodes().size());  // keep outputs
  return last_use_cache_[&g] = std::move(last);
}

std::vector<Tensor> Executor::run(const Graph& g, const std::vector<Tensor>& inputs) {
  const Scope* parent = scope_stack_.empty() ? nullptr : scope_stack_.back();
  return run_in(g, inputs, parent, nullptr);
}

std::vector<Tensor> Executor::run_graph(const Graph& g, const std::vector<Tensor>& inputs,
                                        RunHooks* hooks) {
  return run_in(g, inputs, nullptr, hooks);
}

std::vector<Tensor> Executor::run_in(const Graph& g, const std::vector<Tensor>& inputs,
                                     const Scope* parent, RunHooks* hooks) {
  DEEPEP_CHECK(inputs.size() == g.inputs.size(), "graph '", g.name, "' expects ", g.inputs.size(),
               " inputs, got ", inputs.size());
  Scope scope;
  scope.parent = parent;
  for (size_t i = 0; i < inputs.size(); ++i) scope.values[g.inputs[i]] = inputs[i];
  const auto& last = last_uses(g);
  scope_stack_.push_back(&scope);
  struct Pop {
    std::vector<const Scope*>& s;
    ~Pop() { s.pop_back(); }
  } pop{scope_stack_};

  std::vector<NodeCache>& caches = node_caches_[&g];
  if (caches.size() != g.nodes().size()) caches.assign(g.nodes().size(), NodeCache{});
  // Reused node to node (their capacity: no allocation per node).
  std::vector<const Tensor*> input_buf;
  std::vector<Tensor> output_buf;
  for (size_t ni = 0; ni < g.nodes().size(); ++ni) {
    const auto& n = g.nodes()[ni];
    KernelContext ctx{*n, std::move(input_buf), std::move(output_buf), this, hooks, &caches[ni]};
    ctx.inputs.clear();
    ctx.outputs.clear();
    for (const Value* v : n->inputs) {
      if (!v) {
        ctx.inputs.push_back(nullptr);
        continue;
      }
      const Tensor* t = scope.find(v);
      DEEPEP_CHECK(t, n->describe(), ": input '", v->name, "' has no value at run time");
      ctx.inputs.push_back(t);
    }
    ctx.outputs.resize(n->outputs.size());
    DEEPEP_CHECK(n->def && n->def->reference, n->describe(), ": no kernel");
    if (hooks) hooks->before_node(*n, ctx.inputs);
    try {
      const KernelFn& kernel = select_kernel(*n->def, ctx);
      if (OpProfile* prof = op_profile()) {
        const auto t0 = std::chrono::steady_clock::now();
        kernel(ctx);
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        std::string key = n->op_type;
        if (std::getenv("DEEPEP_PROFILE")[0] == '2')  // per input shapes too
          for (const Tensor* t : ctx.inputs)
            if (t) key.append(" ").append(shape_str(t->shape()));
        if (&kernel != &n->def->reference)
          for (const FastKernel& f : n->def->cpu)
            if (&f.run == &kernel) key.append(" [").append(f.name).append("]");
        std::lock_guard<std::mutex> lock(prof->mu);
        if (prof->seen.insert(n.get()).second) {
          prof->first_ms += ms;
          prof->first_calls += 1;
        } else {
          auto& e = prof->ms[key];
          e.first += ms;
          e.second += 1;
        }
      } else {
        kernel(ctx);
      }
    } catch (const Error& e) {
      const std::string msg = e.what();
      // Name the node once: kernels usually already do.
      if (msg.find(n->op_type) == std::string::npos)
        throw Error(detail::concat(n->describe(), ": ", msg));
      throw;
    }
    if (hooks) hooks->after_node(*n, ctx.outputs);
    for (size_t i = 0; i < n->outputs.size(); ++i) {
      if (!n->outputs[i]) continue;
      DEEPEP_CHECK(ctx.outputs[i].defined(), n->describe(), ": kernel did not produce output ", i);
      scope.values[n->outputs[i]] = std::move(ctx.outputs[i]);
    }
    input_buf = std::move(ctx.inputs);
    output_buf = std::move(ctx.outputs);
    // Release what no later node reads (values of this scope only).
    for (const Value* v : n->inputs) {
      if (!v || v->data || v->owner != &g) continue;
      auto it = last.find(v);
      if (it != last.end() && it->second == n->id) scope.values.erase(v);
    }
  }
  std::vector<Tensor> outs;
  outs.reserve(g.outputs.size());
  for (const Value* v : g.outputs) {
    const Tensor* t = scope.find(v);
    DEEPEP_CHECK(t, "graph output '", v->name, "' was not computed");
    outs.push_back(*t);
  }
  return outs;
}

}  // namespace deepep
