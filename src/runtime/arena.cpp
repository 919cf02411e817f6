#include "runtime/arena.h"

#include <algorithm>
#include <numeric>
#include <set>

namespace deepep {

namespace {
// The input whose buffer output 0 may reuse, or -1: input 0 of elementwise
// and broadcast ops flagged kInplace, the residual (input 3) of ops flagged
// kInplaceResidual.
int inplace_input(const Node& node, size_t num_inputs) {
  if (!node.def) return -1;
  if ((node.def->flags & kInplace) &&
      (node.def->kind == FusionKind::kElementwise || node.def->kind == FusionKind::kBroadcast))
    return num_inputs > 0 ? 0 : -1;
  if (node.def->flags & kInplaceResidual) return num_inputs > 3 ? 3 : -1;
  return -1;
}
}  // namespace

PlanRecorder::PlanRecorder(const Graph& g, const std::unordered_map<const Value*, int>& last_uses)
    : g_(g), last_uses_(last_uses) {}

void PlanRecorder::before_node(const Node& node, const std::vector<const Tensor*>& inputs) {
  inputs_ = inputs;
}

Tensor PlanRecorder::allocate(const Node& node, int output, DType dtype, const Shape& shape) {
  Tensor t(dtype, shape);
  const Value* v = node.outputs[output];
  if (!v) return t;
  if (t.owner()) root_of_storage_[t.owner().get()] = v;
  storage_of_[v] = t.owner().get();
  bytes_[v] = t.nbytes();
  data_of_[v] = t.raw();
  // In-place candidate: the op's in-place input is all of a planned value's
  // storage, and no other input reads that storage.
  const int ip = output == 0 ? inplace_input(node, inputs_.size()) : -1;
  if (ip >= 0 && inputs_[size_t(ip)] && inputs_[size_t(ip)]->owner()) {
    const Tensor& in = *inputs_[size_t(ip)];
    auto it = root_of_storage_.find(in.owner().get());
    bool ok = it != root_of_storage_.end() && in.dtype() == dtype && in.nbytes() == t.nbytes() &&
              in.nbytes() > 0;
    if (ok) {
      const Value* root = it->second;
      auto bit = bytes_.find(root);
      ok = bit != bytes_.end() && bit->second == in.nbytes() && in.raw() == data_of_.at(root);
      for (size_t k = 0; ok && k < inputs_.size(); ++k)
        ok = k == size_t(ip) || !inputs_[k] || inputs_[k]->owner() != in.owner();
      if (ok) candidates_.push_back({node.id, v, root});
    }
  }
  return t;
}

void PlanRecorder::after_node(const Node& node, std::vector<Tensor>& outputs) {
  for (size_t i = 0; i < outputs.size() && i < node.outputs.size(); ++i) {
    const Value* v = node.outputs[i];
    if (!v || !outputs[i].defined()) continue;
    const void* storage = outputs[i].owner().get();
    auto own = storage_of_.find(v);
    if (own != storage_of_.end()) {
      if (own->second == storage) continue;  // the buffer allocate() handed out: a root
      // The kernel allocated, then returned something else: not a root.
      auto r = root_of_storage_.find(own->second);
      if (r != root_of_storage_.end() && r->second == v) root_of_storage_.erase(r);
      storage_of_.erase(own);
      bytes_.erase(v);
      data_of_.erase(v);
    }
    if (!storage) continue;  // views a caller's buffer: never planned
    // A view of an input (Reshape, Identity, ...): that input's readers now
    // include this value's readers.
    bool linked = false;
    for (size_t k = 0; k < inputs_.size() && k < node.inputs.size(); ++k)
      if (inputs_[k] && node.inputs[k] && inputs_[k]->owner().get() == storage) {
        views_[node.inputs[k]].push_back(v);
        linked = true;
      }
    if (linked) continue;
    // A view of storage no input holds (a kernel returning an outer value).
    auto it = root_of_storage_.find(storage);
    if (it != root_of_storage_.end()) views_[it->second].push_back(v);
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
  plan.inplace.assign(g_.values().size(), false);
  plan.view_buffer.assign(g_.values().size(), -1);
  // Deterministic order: by producing node, then output index.
  std::vector<const Value*> roots;
  for (const auto& [v, b] : bytes_)
    if (v->producer && v->owner == &g_) roots.push_back(v);
  std::sort(roots.begin(), roots.end(), [](const Value* a, const Value* b) { return a->id < b->id; });

  // Groups of roots sharing one buffer (in-place chains); a root starts alone.
  struct Group {
    uint64_t bytes = 0;
    int first = 0, last = 0;
    bool escapes = false;
    std::vector<const Value*> members;  // roots sharing the buffer
    std::vector<const Value*> views;    // values that may point into it
  };
  std::vector<Group> groups(roots.size());
  std::unordered_map<const Value*, size_t> group_of;
  for (size_t k = 0; k < roots.size(); ++k) {
    const Value* v = roots[k];
    Group& gr = groups[k];
    gr.bytes = bytes_.at(v);
    gr.first = v->producer->id;
    gr.last = last_use(v);
    gr.escapes = outputs.count(v) > 0;
    // Everything that may view its storage: views, views of views, ...
    std::vector<const Value*> todo = {v};
    std::set<const Value*> seen = {v};
    while (!todo.empty()) {
      const Value* u = todo.back();
      todo.pop_back();
      auto vit = views_.find(u);
      if (vit == views_.end()) continue;
      for (const Value* w : vit->second) {
        if (!seen.insert(w).second) continue;
        gr.escapes = gr.escapes || outputs.count(w) > 0;
        gr.last = std::max(gr.last, last_use(w));
        gr.views.push_back(w);
        todo.push_back(w);
      }
    }
    gr.members = {v};
    group_of[v] = k;
  }
  // In-place merges, in node order: output `out` joins its in-place input's group when
  // that group is read by nothing after this node.
  std::vector<Candidate> cands = candidates_;
  std::sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) { return a.node < b.node; });
  for (const Candidate& c : cands) {
    auto gi = group_of.find(c.in_root), oi = group_of.find(c.out);
    if (gi == group_of.end() || oi == group_of.end() || gi->second == oi->second) continue;
    Group& src = groups[gi->second];
    Group& dst = groups[oi->second];
    if (src.escapes || dst.escapes || src.last != c.node || src.bytes != dst.bytes ||
        dst.members.size() != 1)
      continue;
    src.last = std::max(src.last, dst.last);
    src.members.push_back(c.out);
    src.views.insert(src.views.end(), dst.views.begin(), dst.views.end());
    group_of[c.out] = gi->second;
    dst.members.clear();
    plan.inplace[size_t(c.out->id)] = true;
    ++plan.inplace_reuses;
  }
  for (const Group& gr : groups) {
    if (gr.members.empty() || gr.escapes) continue;
    for (const Value* v : gr.members) plan.buffer_of_value[size_t(v->id)] = int(plan.buffers.size());
    for (const Value* w : gr.views)
      if (w->owner == &g_) plan.view_buffer[size_t(w->id)] = int(plan.buffers.size());
    plan.buffers.push_back({gr.bytes, gr.first, gr.last});
  }
  plan.memory = plan_memory(plan.buffers);
  // Naive: every planned value in its own buffer, in-place chains included.
  plan.memory.naive_bytes = 0;
  for (const Group& gr : groups)
    if (!gr.members.empty() && !gr.escapes)
      plan.memory.naive_bytes += gr.members.size() * ((gr.bytes + kArenaAlign - 1) / kArenaAlign * kArenaAlign);
  return plan;
}

ArenaAllocator::ArenaAllocator(const ArenaPlan& plan, uint8_t* base, std::shared_ptr<void> owner,
                               const std::map<const Value*, Tensor>* caller_outputs)
    : plan_(plan), base_(base), owner_(std::move(owner)), caller_outputs_(caller_outputs) {}

void ArenaAllocator::before_node(const Node& node, const std::vector<const Tensor*>& inputs) {
  inputs_ = inputs;
}

Tensor ArenaAllocator::allocate(const Node& node, int output, DType dtype, const Shape& shape) {
  const Value* v = node.outputs[output];
  if (v && caller_outputs_) {
    auto it = caller_outputs_->find(v);
    if (it != caller_outputs_->end() && it->second.dtype() == dtype && it->second.shape() == shape)
      return it->second;
  }
  const int b = v && size_t(v->id) < plan_.buffer_of_value.size() ? plan_.buffer_of_value[size_t(v->id)] : -1;
  if (b < 0) return Tensor(dtype, shape);
  const uint64_t need = uint64_t(shape_numel(shape)) * dtype_size(dtype);
  const uint64_t have = plan_.buffers[size_t(b)].bytes;
  uint8_t* const p = base_ + plan_.memory.offsets[size_t(b)];
  bool ok = need <= have;
  // No input of this node may share bytes with the slice, except the op's
  // in-place input exactly filling it for a planned in-place output.
  bool inplace = false;
  const int ip = output == 0 ? inplace_input(node, inputs_.size()) : -1;
  for (size_t k = 0; ok && k < inputs_.size(); ++k) {
    const Tensor* in = inputs_[k];
    if (!in || !in->nbytes()) continue;
    const auto* s = static_cast<const uint8_t*>(in->raw());
    if (s + in->nbytes() <= p || p + have <= s) continue;
    ok = int(k) == ip && plan_.inplace[size_t(v->id)] && s == p && in->nbytes() == need && in->dtype() == dtype;
    inplace = ok;
  }
  if (!ok) {
    ++fallbacks_;
    return Tensor(dtype, shape);
  }
  inplace_hits_ += inplace;
  return Tensor::wrap(dtype, shape, p, owner_);
}

void ArenaAllocator::after_node(const Node& node, std::vector<Tensor>& outputs) {
  const uint8_t* const end = base_ + plan_.memory.arena_bytes;
  for (size_t i = 0; i < outputs.size() && i < node.outputs.size(); ++i) {
    const Value* v = node.outputs[i];
    Tensor& t = outputs[i];
    if (!v || !t.defined() || !t.nbytes()) continue;
    const auto* s = static_cast<const uint8_t*>(t.raw());
    if (s + t.nbytes() <= base_ || end <= s) continue;  // not in the arena
    int b = plan_.buffer_of_value[size_t(v->id)];
    if (b < 0) b = plan_.view_buffer[size_t(v->id)];
    if (b >= 0) {
      const uint8_t* slot = base_ + plan_.memory.offsets[size_t(b)];
      if (slot <= s && s + t.nbytes() <= slot + plan_.buffers[size_t(b)].bytes) continue;
    }
    t = t.clone();
    ++copied_views_;
  }
}

}  // namespace deepep
