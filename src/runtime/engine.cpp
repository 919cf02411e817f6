#include "deepep/engine.h"

#include <map>

#include "format/de_file.h"
#include "frontend/onnx_loader.h"
#include "runtime/executor.h"

namespace deepep {

std::string TensorInfo::shape_str() const {
  if (!has_shape) return "[?]";
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    s += i ? ", " : "";
    s += dims[i] >= 0 ? std::to_string(dims[i]) : (symbols[i].empty() ? "?" : symbols[i]);
  }
  return s + "]";
}

struct Engine::Impl {
  OnnxModel model;
  std::shared_ptr<void> mapping;  // a .de file's mapped weights
  std::string metadata_json;
  std::string device;
  std::vector<TensorInfo> inputs, outputs;
};

namespace {
TensorInfo info_of(const Value* v) {
  TensorInfo t;
  t.name = v->name;
  t.dtype = v->dtype;
  t.has_shape = v->shape.has_value();
  if (v->shape)
    for (const Dim& d : *v->shape) {
      t.dims.push_back(d.is_known() ? d.value : -1);
      t.symbols.push_back(d.is_known() ? "" : d.symbol);
    }
  return t;
}

// Checks one input against its spec, binding symbols to sizes as it goes.
void validate_input(const TensorInfo& spec, const Tensor& t, std::map<std::string, int64_t>& syms) {
  if (spec.dtype != DType::kUndefined && t.dtype() != spec.dtype)
    throw InputError(detail::concat("input '", spec.name, "': expected dtype ",
                                    dtype_name(spec.dtype), ", got ", dtype_name(t.dtype())));
  if (!spec.has_shape) return;
  if (t.rank() != int(spec.dims.size()))
    throw InputError(detail::concat("input '", spec.name, "': expected rank ", spec.dims.size(),
                                    " (shape ", spec.shape_str(), "), got shape ",
                                    shape_str(t.shape())));
  for (int i = 0; i < t.rank(); ++i) {
    if (spec.dims[i] >= 0 && spec.dims[i] != t.dim(i))
      throw InputError(detail::concat("input '", spec.name, "': dimension ", i, " must be ",
                                      spec.dims[i], " (shape ", spec.shape_str(), "), got shape ",
                                      shape_str(t.shape())));
    if (spec.dims[i] < 0 && !spec.symbols[i].empty()) {
      auto [it, fresh] = syms.emplace(spec.symbols[i], t.dim(i));
      if (!fresh && it->second != t.dim(i))
        throw InputError(detail::concat("input '", spec.name, "': dimension ", i, " ('",
                                        spec.symbols[i], "') is ", t.dim(i),
                                        ", but another input set '", spec.symbols[i], "' to ",
                                        it->second));
    }
  }
}
}  // namespace

std::shared_ptr<Engine> Engine::load(const std::string& path, const EngineOptions& options) {
  DEEPEP_CHECK(options.device == "cpu", "device '", options.device,
               "' is not available: this build runs on the CPU only (use device='cpu')");
  auto impl = std::make_shared<Impl>();
  if (is_de_file(path)) {
    DeFile de = load_de_file(path);
    impl->model = std::move(de.model);
    impl->mapping = std::move(de.mapping);
    impl->metadata_json = std::move(de.metadata_json);
  } else {
    impl->model = load_onnx_file(path);
  }
  impl->device = options.device;
  for (const Value* v : impl->model.graph->inputs) impl->inputs.push_back(info_of(v));
  for (const Value* v : impl->model.graph->outputs) impl->outputs.push_back(info_of(v));
  return std::make_shared<Engine>(std::move(impl));
}

Engine::Engine(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;
const std::vector<TensorInfo>& Engine::inputs() const { return impl_->inputs; }
const std::vector<TensorInfo>& Engine::outputs() const { return impl_->outputs; }
const std::string& Engine::device() const { return impl_->device; }
std::string Engine::graph_text() const { return impl_->model.graph->to_text(); }
size_t Engine::node_count() const { return impl_->model.graph->nodes().size(); }
std::unique_ptr<Session> Engine::create_session() const {
  return std::unique_ptr<Session>(new Session(impl_));
}
NamedTensors Engine::run(const NamedTensors& inputs) const { return create_session()->run(inputs); }

Session::Session(std::shared_ptr<Engine::Impl> impl) : impl_(std::move(impl)) {}
Session::~Session() = default;

NamedTensors Session::run(const NamedTensors& inputs) {
  const Graph& g = *impl_->model.graph;
  std::map<std::string, const Tensor*> given;
  for (const auto& [name, t] : inputs) {
    if (!given.emplace(name, &t).second)
      throw InputError(detail::concat("input '", name, "' was given twice"));
  }
  std::vector<Tensor> bound;
  std::map<std::string, int64_t> syms;
  for (const TensorInfo& spec : impl_->inputs) {
    auto it = given.find(spec.name);
    if (it == given.end()) {
      std::string names;
      for (const auto& s : impl_->inputs) names += (names.empty() ? "" : ", ") + s.name;
      throw InputError(detail::concat("missing input '", spec.name, "' (", dtype_name(spec.dtype),
                                      spec.shape_str(), "); the model's inputs are: ", names));
    }
    validate_input(spec, *it->second, syms);
    bound.push_back(*it->second);
    given.erase(it);
  }
  if (!given.empty()) {
    std::string names;
    for (const auto& s : impl_->inputs) names += (names.empty() ? "" : ", ") + s.name;
    throw InputError(detail::concat("unknown input '", given.begin()->first,
                                    "'; the model's inputs are: ", names));
  }
  Executor ex;
  std::vector<Tensor> outs = ex.run(g, bound);
  NamedTensors result;
  for (size_t i = 0; i < outs.size(); ++i) result.emplace_back(g.outputs[i]->name, std::move(outs[i]));
  return result;
}

}  // namespace deepep
