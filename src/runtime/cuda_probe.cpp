// The hardware probe: reads each GPU's multiprocessors, clocks, memory and
// caches off the CUDA runtime and derives its tensor-core generation, memory
// bandwidth and peak rates. The executor uses it to choose paths (TF32 for
// float32 on compute capability >= 8.0 unless strict; float16 tensor cores).
#include <cuda_runtime.h>

#include "deepep/error.h"
#include "runtime/cuda_runtime.h"

namespace deepep {

bool cuda_built() { return true; }

namespace {
const char* tensor_core_generation(int major, int minor) {
  if (major == 7) return minor >= 5 ? "Turing" : "Volta";
  if (major == 8) return minor == 9 ? "Ada" : "Ampere";
  if (major == 9) return "Hopper";
  if (major >= 10) return "Blackwell";
  return "";
}
int fp32_cores_per_sm(int major, int minor) {
  if (major == 8 && minor == 0) return 64;
  if (major >= 8) return 128;
  if (major == 7) return 64;
  if (major == 6) return minor == 0 ? 64 : 128;
  return 128;
}
// Dense fp16 tensor-core flops per SM per clock with fp32 accumulation
// (datasheet rates of the data-centre parts; consumer parts of 8.6/8.9 halve
// the fp32-accumulate rate).
int fp16_tc_flops_per_sm_clock(int major, int minor) {
  if (major == 7) return 1024;
  if (major == 8) return minor == 0 ? 2048 : 512;
  if (major == 9) return 4096;
  if (major >= 10) return 4096;
  return 0;
}
}  // namespace

std::vector<GpuDeviceInfo> cuda_devices(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    if (why)
      *why = e == cudaSuccess ? std::string("no CUDA device found")
                              : std::string("no usable CUDA device: ") + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
    return {};
  }
  std::vector<GpuDeviceInfo> out;
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  for (int d = 0; d < n; ++d) {
    GpuDeviceInfo g;
    g.index = d;
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, d) != cudaSuccess) continue;
    auto attr = [&](cudaDeviceAttr a) {
      int v = 0;
      cudaDeviceGetAttribute(&v, a, d);
      return v;
    };
    g.name = p.name;
    g.cc_major = p.major, g.cc_minor = p.minor;
    g.tensor_cores = tensor_core_generation(p.major, p.minor);
    g.sm_count = p.multiProcessorCount;
    g.clock_khz = attr(cudaDevAttrClockRate);
    g.memory_bytes = p.totalGlobalMem;
    g.memory_bus_bits = attr(cudaDevAttrGlobalMemoryBusWidth);
    g.memory_clock_khz = attr(cudaDevAttrMemoryClockRate);
    g.memory_bandwidth_gbs = double(g.memory_bus_bits) / 8.0 * double(g.memory_clock_khz) * 1e3 * 2.0 / 1e9;
    g.l2_bytes = attr(cudaDevAttrL2CacheSize);
    g.smem_per_block_optin = attr(cudaDevAttrMaxSharedMemoryPerBlockOptin);
    g.smem_per_sm = attr(cudaDevAttrMaxSharedMemoryPerMultiprocessor);
    g.fp32_cores_per_sm = fp32_cores_per_sm(p.major, p.minor);
    const double clk = double(g.clock_khz) * 1e3;
    g.peak_fp32_tflops = double(g.sm_count) * g.fp32_cores_per_sm * 2.0 * clk / 1e12;
    g.peak_fp16_tflops = double(g.sm_count) * fp16_tc_flops_per_sm_clock(p.major, p.minor) * clk / 1e12;
    g.tf32 = p.major >= 8;
    g.bf16 = p.major >= 8;
    g.driver_version = driver, g.runtime_version = runtime;
    out.push_back(std::move(g));
  }
  return out;
}

}  // namespace deepep
