#include "runtime/memory_planner.h"

#include <algorithm>
#include <map>
#include <numeric>

namespace deepep {

namespace {
uint64_t aligned(uint64_t b) { return (b + kArenaAlign - 1) / kArenaAlign * kArenaAlign; }
bool overlap_in_time(const BufferRequest& a, const BufferRequest& b) {
  return a.first <= b.last && b.first <= a.last;
}
}  // namespace

MemoryPlan plan_memory(const std::vector<BufferRequest>& reqs) {
  MemoryPlan plan;
  plan.offsets.assign(reqs.size(), 0);
  // Lower bound: the most bytes live at one step (sweep over step boundaries).
  std::map<int, int64_t> delta;
  for (const auto& r : reqs) {
    plan.naive_bytes += aligned(r.bytes);
    delta[r.first] += int64_t(aligned(r.bytes));
    delta[r.last + 1] -= int64_t(aligned(r.bytes));
  }
  int64_t live = 0;
  for (const auto& [step, d] : delta) {
    live += d;
    plan.lower_bound_bytes = std::max<uint64_t>(plan.lower_bound_bytes, uint64_t(live));
  }

  std::vector<size_t> order(reqs.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (reqs[a].bytes != reqs[b].bytes) return reqs[a].bytes > reqs[b].bytes;
    return reqs[a].first < reqs[b].first;
  });
  std::vector<size_t> placed;
  std::vector<std::pair<uint64_t, uint64_t>> busy;  // [offset, end) of time-overlapping buffers
  for (size_t i : order) {
    const uint64_t need = aligned(reqs[i].bytes);
    busy.clear();
    for (size_t j : placed)
      if (overlap_in_time(reqs[i], reqs[j])) busy.emplace_back(plan.offsets[j], plan.offsets[j] + aligned(reqs[j].bytes));
    std::sort(busy.begin(), busy.end());
    // Best fit: the smallest gap that holds it; else after the last busy range.
    uint64_t best = UINT64_MAX, best_waste = UINT64_MAX, cursor = 0;
    for (const auto& [b, e] : busy) {
      if (b > cursor && b - cursor >= need && b - cursor - need < best_waste) {
        best = cursor;
        best_waste = b - cursor - need;
      }
      cursor = std::max(cursor, e);
    }
    if (best == UINT64_MAX) best = cursor;
    plan.offsets[i] = best;
    plan.arena_bytes = std::max(plan.arena_bytes, best + need);
    placed.push_back(i);
  }
  return plan;
}

std::string check_plan(const std::vector<BufferRequest>& reqs, const MemoryPlan& plan) {
  if (plan.offsets.size() != reqs.size()) return "plan has the wrong number of offsets";
  for (size_t i = 0; i < reqs.size(); ++i) {
    if (plan.offsets[i] % kArenaAlign) return "buffer " + std::to_string(i) + " is misaligned";
    if (plan.offsets[i] + reqs[i].bytes > plan.arena_bytes)
      return "buffer " + std::to_string(i) + " ends past the arena";
    for (size_t j = i + 1; j < reqs.size(); ++j) {
      if (!overlap_in_time(reqs[i], reqs[j]) || !reqs[i].bytes || !reqs[j].bytes) continue;
      const uint64_t a0 = plan.offsets[i], a1 = a0 + reqs[i].bytes;
      const uint64_t b0 = plan.offsets[j], b1 = b0 + reqs[j].bytes;
      if (a0 < b1 && b0 < a1)
        return "buffers " + std::to_string(i) + " and " + std::to_string(j) +
               " are live together and share bytes";
    }
  }
  return "";
}

}  // namespace deepep
