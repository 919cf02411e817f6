// Arena planning: places every intermediate buffer at an offset in one arena so
// that no two buffers live at the same time share bytes, using as few bytes as
// possible.
//
// Algorithm (greedy by size, best fit — the TFLite/XNNPACK family): sort
// buffers by size, largest first; place each at the lowest-waste gap among the
// already-placed buffers whose lifetimes overlap it (or at the end of them).
// Invariant: for any two buffers whose [first, last] step ranges intersect,
// their [offset, offset + bytes) ranges are disjoint (check_plan proves it).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace deepep {

struct BufferRequest {
  uint64_t bytes = 0;
  int first = 0;  // step that writes it
  int last = 0;   // last step that reads it (inclusive)
};

struct MemoryPlan {
  std::vector<uint64_t> offsets;  // one per request
  uint64_t arena_bytes = 0;       // planned size
  uint64_t naive_bytes = 0;       // sum of all buffers (no reuse)
  uint64_t lower_bound_bytes = 0; // most bytes live at any one step
};

inline constexpr uint64_t kArenaAlign = 64;

MemoryPlan plan_memory(const std::vector<BufferRequest>& requests);
// Empty string when the plan is valid, else a description of the first clash.
std::string check_plan(const std::vector<BufferRequest>& requests, const MemoryPlan& plan);

}  // namespace deepep
