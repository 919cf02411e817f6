// The dynamic memory pool: every intermediate of the top-level graph lives in
// one arena at an offset planned from value lifetimes.
//
// Planning is measured, not guessed: the first run of an input-shape signature
// records, through the kernels' output allocator, each value's size, the step
// that writes it, the last step that reads it, and which outputs are views of
// other values' storage (Reshape, Identity...), whose readers then extend the
// viewed buffer's lifetime. Values that escape (graph outputs and their
// views) stay out of the arena. Later runs with that signature place outputs
// at the planned offsets; a size the plan did not foresee (data-dependent
// shapes) falls back to fresh storage, never to an overlapping slice.
#pragma once
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

#include "runtime/executor.h"
#include "runtime/memory_planner.h"

namespace deepep {

struct ArenaPlan {
  std::vector<int> buffer_of_value;  // by top-level Value::id; -1: not planned
  std::vector<BufferRequest> buffers;
  MemoryPlan memory;
};

class PlanRecorder : public RunHooks {
 public:
  PlanRecorder(const Graph& g, const std::unordered_map<const Value*, int>& last_uses);
  Tensor allocate(const Node& node, int output, DType dtype, const Shape& shape) override;
  void after_node(const Node& node, const std::vector<Tensor>& outputs) override;
  ArenaPlan finish() const;

 private:
  const Graph& g_;
  const std::unordered_map<const Value*, int>& last_uses_;
  std::unordered_map<const void*, const Value*> root_of_storage_;
  std::unordered_map<const Value*, uint64_t> bytes_;
  std::unordered_map<const Value*, std::vector<const Value*>> views_;
};

// Places outputs in the arena per the plan; graph outputs go to caller buffers
// when given and matching (zero-copy), else to fresh storage.
class ArenaAllocator : public RunHooks {
 public:
  ArenaAllocator(const ArenaPlan& plan, uint8_t* base, std::shared_ptr<void> owner,
                 const std::map<const Value*, Tensor>* caller_outputs);
  Tensor allocate(const Node& node, int output, DType dtype, const Shape& shape) override;

 private:
  const ArenaPlan& plan_;
  uint8_t* base_;
  std::shared_ptr<void> owner_;
  const std::map<const Value*, Tensor>* caller_outputs_;
};

}  // namespace deepep
