// Internal: 64-byte-aligned float buffers for the fast CPU kernels, and a
// per-thread scratch buffer that grows on demand (sgemm.cpp, the
// pointwise-depthwise conv).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "deepep/error.h"

namespace deepep::cpu {

// n floats (at least one), 64-byte aligned: whole vectors never straddle a
// cache line.
inline std::shared_ptr<float> alloc_floats(int64_t n) {
  const size_t bytes = (size_t(std::max<int64_t>(n, 1)) * sizeof(float) + 63) / 64 * 64;
  float* p = static_cast<float*>(std::aligned_alloc(64, bytes));
  DEEPEP_CHECK(p, "CPU kernels: out of memory for ", n, " floats");
  return std::shared_ptr<float>(p, [](float* q) { std::free(q); });
}

// A per-thread scratch buffer of at least n floats, grown on demand and kept
// for the thread's next call (one per use: callers hold thread_local ones).
struct Scratch {
  std::shared_ptr<float> p;
  int64_t cap = 0;
  float* get(int64_t n) {
    if (!p || cap < n) {
      cap = n;
      p = alloc_floats(n);
    }
    return p.get();
  }
};

}  // namespace deepep::cpu
