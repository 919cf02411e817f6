#include "kernels/cpu/cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace deepep::cpu {

namespace {
std::atomic<int> g_override{-1};

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

}  // namespace deepep::cpu
