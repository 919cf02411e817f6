// Programmatic dependent launch (device_util.cuh: launch_pdl, pdl_wait): on
// when the current device has compute capability >= 9.0, unless
// DEEPEP_CUDA_PDL=0 (read at each launch: benchmarks A/B it in one process;
// a captured graph keeps what its capture saw).
#include <atomic>
#include <cstdlib>

#include "kernels/cuda/device_util.cuh"

namespace deepep::cuda {

bool pdl_enabled() {
  if (const char* v = std::getenv("DEEPEP_CUDA_PDL"); v && v[0] == '0') return false;
  constexpr int kDevices = 64;
  static std::atomic<int> major[kDevices] = {};  // 0: not asked yet
  int d = 0;
  if (cudaGetDevice(&d) != cudaSuccess || d < 0 || d >= kDevices) return false;
  int m = major[d].load(std::memory_order_relaxed);
  if (m == 0) {
    if (cudaDeviceGetAttribute(&m, cudaDevAttrComputeCapabilityMajor, d) != cudaSuccess) m = -1;
    major[d].store(m, std::memory_order_relaxed);
  }
  return m >= 9;
}

}  // namespace deepep::cuda
