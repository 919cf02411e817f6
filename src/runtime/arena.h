// The dynamic memory pool: every intermediate of the top-level graph lives in
// one arena at an offset planned from value lifetimes.
//
// Planning is measured, not guessed: the first run of an input-shape signature
// records, through the kernels' output allocator, each value's size, the step
// that writes it, the last step that reads it, and which outputs are views of
// other values' storage (Reshape, Flatten, Identity, ...), whose
// readers then extend the viewed buffer's lifetime (views of views too). Values
// that escape (graph outputs and their views) stay out of the arena. Later
// runs with that signature place outputs at the planned offsets; a size the
// plan did not foresee (data-dependent shapes) falls back to fresh storage,
// never to an overlapping slice. And a replay trusts no aliasing it did not
// record: an output that points into the arena outside its value's own slot
// (or, for a recorded view, its root's slot) is copied out at once.
//
// In-place reuse: output 0 of an op flagged kInplace (elementwise/broadcast
// kinds; input 0) or kInplaceResidual (a fused epilogue's residual, input 3)
// shares that input's buffer when the input is a planned value (or a
// full-size view of one) that no later step reads, no other input of the node
// reads the same storage, and dtype and byte size match. Such values form one
// buffer with the union of their lifetimes. At run time the allocator hands
// out the shared slice only when the input occupies exactly that slice (same
// start, same bytes); otherwise the output gets the slice as an ordinary
// placement or fresh storage, never a partial overlap with a live input.
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
  std::vector<bool> inplace;         // by Value::id: output 0 planned into its in-place input's buffer
  std::vector<int> view_buffer;      // by Value::id: the buffer a recorded view points into; -1: none
  std::vector<BufferRequest> buffers;
  MemoryPlan memory;
  size_t inplace_reuses = 0;         // values that share their input's buffer
};

class PlanRecorder : public RunHooks {
 public:
  PlanRecorder(const Graph& g, const std::unordered_map<const Value*, int>& last_uses);
  void before_node(const Node& node, const std::vector<const Tensor*>& inputs) override;
  Tensor allocate(const Node& node, int output, DType dtype, const Shape& shape) override;
  void after_node(const Node& node, std::vector<Tensor>& outputs) override;
  ArenaPlan finish() const;

 private:
  struct Candidate {
    int node;
    const Value* out;
    const Value* in_root;
  };
  const Graph& g_;
  const std::unordered_map<const Value*, int>& last_uses_;
  std::vector<const Tensor*> inputs_;  // of the node running now
  std::unordered_map<const void*, const Value*> root_of_storage_;  // storage allocate() made -> its value
  std::unordered_map<const Value*, const void*> storage_of_;  // what allocate() handed out
  std::unordered_map<const Value*, uint64_t> bytes_;
  std::unordered_map<const Value*, const void*> data_of_;  // start of a root's bytes
  // Value -> values that view its storage (edges of the view graph; a root's
  // lifetime covers everything reachable from it).
  std::unordered_map<const Value*, std::vector<const Value*>> views_;
  std::vector<Candidate> candidates_;
};

// Places outputs in the arena per the plan; graph outputs go to caller buffers
// when given and matching (zero-copy), else to fresh storage.
class ArenaAllocator : public RunHooks {
 public:
  ArenaAllocator(const ArenaPlan& plan, uint8_t* base, std::shared_ptr<void> owner,
                 const std::map<const Value*, Tensor>* caller_outputs);
  void before_node(const Node& node, const std::vector<const Tensor*>& inputs) override;
  Tensor allocate(const Node& node, int output, DType dtype, const Shape& shape) override;
  // Copies out any output that points into the arena where the plan did not
  // record it (a kernel that returned a view of an input this time, but
  // fresh storage when the plan was measured).
  void after_node(const Node& node, std::vector<Tensor>& outputs) override;
  // Outputs written over their in-place input in this run, outputs the plan placed
  // that got fresh storage instead (size or aliasing mismatch), and
  // unrecorded views of the arena that were copied out.
  size_t inplace_hits() const { return inplace_hits_; }
  size_t fallbacks() const { return fallbacks_; }
  size_t copied_views() const { return copied_views_; }

 private:
  const ArenaPlan& plan_;
  uint8_t* base_;
  std::shared_ptr<void> owner_;
  const std::map<const Value*, Tensor>* caller_outputs_;
  std::vector<const Tensor*> inputs_;
  size_t inplace_hits_ = 0, fallbacks_ = 0, copied_views_ = 0;
};

}  // namespace deepep
