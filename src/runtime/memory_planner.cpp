#include "runtime/memory_planner.h"

#include <algorithm>
#include <functional>
#include <map>
#include <numeric>

namespace deepep {

namespace {
uint64_t aligned(uint64_t b) { return (b + kArenaAlign - 1) / kArenaAlign * kArenaAlign; }
bool overlap_in_time(const BufferRequest& a, const BufferRequest& b) {
  return a.first <= b.last && b.first <= a.last;
}

enum class Fit {
  kBest,   // the smallest gap between time-overlapping buffers, else on top of them
  kTight,  // the same, but the free space between them and the arena's end is a gap too
  kFirst,  // the lowest gap that holds it (the free space up to the arena's end included)
};
const char* fit_name(Fit f) { return f == Fit::kBest ? "best-fit" : f == Fit::kTight ? "tight-fit" : "first-fit"; }

// Places buffers in `order`, each in a gap among the already-placed buffers
// that live at the same time as it, chosen by `fit`; with no gap, on top of them.
uint64_t place(const std::vector<BufferRequest>& reqs, const std::vector<uint64_t>& need,
               const std::vector<size_t>& order, Fit fit, std::vector<uint64_t>& offsets) {
  offsets.assign(reqs.size(), 0);
  uint64_t arena = 0;
  std::vector<size_t> placed;
  placed.reserve(reqs.size());
  std::vector<std::pair<uint64_t, uint64_t>> busy;  // [offset, end) of time-overlapping buffers
  for (size_t i : order) {
    if (!need[i]) continue;  // zero bytes: offset 0, clashes with nothing
    busy.clear();
    for (size_t j : placed)
      if (overlap_in_time(reqs[i], reqs[j])) busy.emplace_back(offsets[j], offsets[j] + need[j]);
    std::sort(busy.begin(), busy.end());
    uint64_t best = UINT64_MAX, best_waste = UINT64_MAX, cursor = 0;
    auto consider = [&](uint64_t begin, uint64_t end) {
      if (end <= begin || end - begin < need[i]) return;
      const uint64_t waste = end - begin - need[i];
      if (fit == Fit::kFirst ? best == UINT64_MAX : waste < best_waste) {
        best = begin;
        best_waste = waste;
      }
    };
    for (const auto& [b, e] : busy) {
      consider(cursor, b);
      cursor = std::max(cursor, e);
    }
    if (fit != Fit::kBest || best == UINT64_MAX) consider(cursor, arena);
    if (best == UINT64_MAX) best = cursor;
    offsets[i] = best;
    arena = std::max(arena, best + need[i]);
    placed.push_back(i);
  }
  return arena;
}
}  // namespace

MemoryPlan plan_memory(const std::vector<BufferRequest>& reqs) {
  MemoryPlan plan;
  plan.offsets.assign(reqs.size(), 0);
  std::vector<uint64_t> need(reqs.size());
  // Lower bound: the most bytes live at one step (sweep over step boundaries).
  std::map<int, int64_t> delta;
  for (size_t i = 0; i < reqs.size(); ++i) {
    const BufferRequest& r = reqs[i];
    need[i] = aligned(r.bytes);
    plan.naive_bytes += need[i];
    delta[r.first] += int64_t(need[i]);
    delta[r.last + 1] -= int64_t(need[i]);
  }
  int64_t live = 0;
  for (const auto& [step, d] : delta) {
    live += d;
    plan.lower_bound_bytes = std::max<uint64_t>(plan.lower_bound_bytes, uint64_t(live));
  }
  if (reqs.empty()) return plan;

  // Orderings to try; ties break by first use, then by index (deterministic).
  using Key = std::function<bool(size_t, size_t)>;
  auto length = [&](size_t i) { return int64_t(reqs[i].last) - reqs[i].first; };
  auto tie = [&](size_t a, size_t b) {
    return reqs[a].first != reqs[b].first ? reqs[a].first < reqs[b].first : a < b;
  };
  const std::pair<const char*, Key> orders[] = {
      {"size",
       [&](size_t a, size_t b) { return reqs[a].bytes != reqs[b].bytes ? reqs[a].bytes > reqs[b].bytes : tie(a, b); }},
      {"lifetime",
       [&](size_t a, size_t b) {
         if (length(a) != length(b)) return length(a) > length(b);
         return need[a] != need[b] ? need[a] > need[b] : tie(a, b);
       }},
      {"first-use",
       [&](size_t a, size_t b) {
         if (reqs[a].first != reqs[b].first) return reqs[a].first < reqs[b].first;
         return need[a] != need[b] ? need[a] > need[b] : a < b;
       }},
      {"area",
       [&](size_t a, size_t b) {
         const double x = double(need[a]) * double(length(a) + 1), y = double(need[b]) * double(length(b) + 1);
         return x != y ? x > y : tie(a, b);
       }},
  };
  std::vector<size_t> order(reqs.size());
  std::vector<uint64_t> offsets;
  plan.arena_bytes = UINT64_MAX;
  for (const auto& [name, key] : orders) {
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), key);
    for (Fit fit : {Fit::kBest, Fit::kTight, Fit::kFirst}) {
      const uint64_t arena = place(reqs, need, order, fit, offsets);
      if (arena < plan.arena_bytes) {
        plan.arena_bytes = arena;
        plan.offsets = offsets;
        plan.strategy = std::string(name) + "/" + fit_name(fit);
      }
      if (plan.arena_bytes == plan.lower_bound_bytes) return plan;  // optimal: stop early
    }
  }
  return plan;
}

std::string check_plan(const std::vector<BufferRequest>& reqs, const MemoryPlan& plan) {
  if (plan.offsets.size() != reqs.size()) return "plan has the wrong number of offsets";
  for (size_t i = 0; i < reqs.size(); ++i) {
    if (reqs[i].first > reqs[i].last)
      return "buffer " + std::to_string(i) + " is read (step " + std::to_string(reqs[i].last) +
             ") before it is written (step " + std::to_string(reqs[i].first) + ")";
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
