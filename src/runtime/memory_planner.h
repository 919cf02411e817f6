// Arena planning: places every intermediate buffer at an offset in one arena so
// that no two buffers live at the same time share bytes, using as few bytes as
// possible.
//
// Algorithm: greedy placement (the TFLite/XNNPACK family) run under several
// buffer orderings — largest first, longest-lived first, earliest first,
// largest size x lifetime first — each with three fits: best fit (the
// smallest gap among already-placed, time-overlapping buffers that holds it,
// else on top of them), tight fit (the same, with the space between them and
// the arena's current end counting as a gap) and first fit (the lowest gap);
// the smallest arena wins ("size/best-fit" alone is the classic greedy by
// size). Each placement is O(n log n) over the placed buffers, so a plan is
// O(12 n^2 log n): milliseconds for thousands of buffers, once per input-shape
// signature.
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
  std::string strategy;           // the ordering and fit that won, e.g. "size/best-fit"
};

inline constexpr uint64_t kArenaAlign = 64;

MemoryPlan plan_memory(const std::vector<BufferRequest>& requests);
// Empty string when the plan is valid, else a description of the first clash.
std::string check_plan(const std::vector<BufferRequest>& requests, const MemoryPlan& plan);

}  // namespace deepep
