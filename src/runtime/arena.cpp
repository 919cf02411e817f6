#include "runtime/arena.h"

#include <algorithm>
#include <set>

namespace deepep {

PlanRecorder::PlanRecorder(const Graph& g, const std::unordered_map<const Value*, int>& last_uses)
    : g_(g), last_uses_(last_uses) {}

Tensor PlanRecorder::allocate(const Node& node, int output, DType dtype, const Shape& shape) {
  Tensor t(dtype, shape);
  const Value* v = node.outputs[output];
  if (v) {
    root_of_storage_[t.owner().get()] = v;
    bytes_[v] = t.nbytes();
  }
  return t;
}

void PlanRecorder::after_node(const Node& node, const std::vector<Tensor>& outputs) {
  for (size_t i = 0; i < outputs.size() && i < node.outputs.size(); ++i) {
    const Value* v = node.outputs[i];
    if (!v || !outputs[i].defined() || bytes_.count(v)) continue;
    auto it = root_of_storage_.find(outputs[i].owner().get());
    if (it == root_of_storage_.end()) continue;  // its own storage, or a weight's: not planned
    views_[it->second].push_back(v);
    root_of_storage_[outputs[i].owner().get()] = it->second;
  }
}

ArenaPlan PlanRecorder::finish() const {
  std::set<const Value*> outputs(g_.outputs.begin(), g_.outputs.end());
  auto last_use = [&](const Value* v) {
    auto it = last_uses_.find(v);
    return it == last_uses_.end() ? v->producer->id : it->second;
  };
  ArenaPlan plan;
  plan.buffer_of_value.assign(g_.values().size(), -1);
  // Deterministic order: by producing node, then output index.
  std::vector<const Value*> roots;
  for (const auto& [v, b] : bytes_) roots.push_back(v);
  std::sort(roots.begin(), roots.end(), [](const Value* a, const Value* b) { return a->id < b->id; });
  for (const Value* v : roots) {
    if (!v->producer || v->owner != &g_) continue;
    bool escapes = outputs.count(v) > 0;
    int last = last_use(v);
    auto vit = views_.find(v);
    if (vit != views_.end())
      for (const Value* w : vit->second) {
        escapes = escapes || outputs.count(w) > 0;
        last = std::max(last, last_use(w));
      }
    if (escapes) continue;
    plan.buffer_of_value[size_t(v->id)] = int(plan.buffers.size());
    plan.buffers.push_back({bytes_.at(v), v->producer->id, last});
  }
  plan.memory = plan_memory(plan.buffers);
  return plan;
}

ArenaAllocator::ArenaAllocator(const ArenaPlan& plan, uint8_t* base, std::shared_ptr<void> owner,
                               const std::map<const Value*, Tensor>* caller_outputs)
    : plan_(plan), base_(base), owner_(std::move(owner)), caller_outputs_(caller_outputs) {}

Tensor ArenaAllocator::allocate(const Node& node, int output, DType dtype, const Shape& shape) {
  const Value* v = node.outputs[output];
  if (v && caller_outputs_) {
    auto it = caller_outputs_->find(v);
    if (it != caller_outputs_->end() && it->second.dtype() == dtype && it->second.shape() == shape)
      return it->second;
  }
  const int b = v && size_t(v->id) < plan_.buffer_of_value.size() ? plan_.buffer_of_value[size_t(v->id)] : -1;
  if (b >= 0) {
    const uint64_t need = uint64_t(shape_numel(shape)) * dtype_size(dtype);
    if (need <= plan_.buffers[size_t(b)].bytes)
      return Tensor::wrap(dtype, shape, base_ + plan_.memory.offsets[size_t(b)], owner_);
  }
  return Tensor(dtype, shape);
}

}  // namespace deepep
