#include "kernels/cpu/cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif
#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#endif
#if defined(__unix__)
#include <unistd.h>
#endif

namespace deepep::cpu {

namespace {
std::atomic<int> g_override{-1};
thread_local bool t_bf16x3 = false;

// CPUID leaf 7: AMX-BF16 and AMX-TILE (EDX bits 22, 24), AVX512-BF16
// (subleaf 1, EAX bit 5); then the kernel's permission to use tile data
// (Linux >= 5.16), asked once for the process.
bool amx_present_and_granted() {
#if defined(__linux__) && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 22)) || !(d & (1u << 24))) return false;
  if (!__get_cpuid_count(7, 1, &a, &b, &c, &d) || !(a & (1u << 5))) return false;
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

Isa env_isa(Isa best) {
  const char* e = std::getenv("DEEPEP_CPU_ISA");
  if (!e || !*e) return best;
  Isa want = best;
  if (!std::strcmp(e, "none") || !std::strcmp(e, "reference")) want = Isa::kNone;
  else if (!std::strcmp(e, "avx2")) want = Isa::kAvx2;
  else if (!std::strcmp(e, "avx512")) want = Isa::kAvx512;
  return int(want) < int(best) ? want : best;
}
}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kNone: return "none";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
  }
  return "?";
}

Isa cpu_best_isa() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static const Isa best = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma"))
      return Isa::kAvx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::kAvx2;
    return Isa::kNone;
  }();
  return best;
#else
  return Isa::kNone;
#endif
}

Isa active_isa() {
  static const Isa from_env = env_isa(cpu_best_isa());
  const int o = g_override.load(std::memory_order_relaxed);
  if (o >= 0) return int(o) < int(cpu_best_isa()) ? Isa(o) : cpu_best_isa();
  return from_env;
}

int set_isa_override(int isa) { return g_override.exchange(isa < 0 ? -1 : isa); }

long l2_cache_bytes() {
  static const long bytes = [] {
    if (const char* e = std::getenv("DEEPEP_CPU_L2_BYTES"); e && std::atol(e) > 0) return std::atol(e);
    long b = 0;
#if defined(_SC_LEVEL2_CACHE_SIZE)
    b = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
    return b > 0 ? b : 1L << 20;
  }();
  return bytes;
}

bool amx_usable() {
  static const bool granted = [] {
    const char* e = std::getenv("DEEPEP_CPU_AMX");
    if (e && !std::strcmp(e, "0")) return false;
    return amx_present_and_granted();
  }();
  return granted && active_isa() == Isa::kAvx512;
}

bool fp32_bf16x3_allowed() { return t_bf16x3; }
Fp32PrecisionScope::Fp32PrecisionScope(bool allow_bf16x3) : old_(t_bf16x3) { t_bf16x3 = allow_bf16x3; }
Fp32PrecisionScope::~Fp32PrecisionScope() { t_bf16x3 = old_; }

}  // namespace deepep::cpu
