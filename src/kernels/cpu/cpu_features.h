// Which x86 ISA the fast CPU kernels use, picked at run time from the CPU's
// features (__builtin_cpu_supports), never from build flags: each ISA's code
// lives in its own *_avx2.cpp / *_avx512.cpp compiled with that ISA's flags
// only, and runs only on a CPU that has it. DEEPEP_CPU_ISA=avx2|avx512|none
// lowers the choice (tests force each path; a higher ISA than the CPU has is
// ignored). kNone means: no fast kernel, the reference runs.
#pragma once

namespace deepep::cpu {

enum class Isa { kNone = 0, kAvx2 = 1, kAvx512 = 2 };

const char* isa_name(Isa isa);
// The best ISA this CPU supports (ignores DEEPEP_CPU_ISA).
Isa cpu_best_isa();
// The ISA the fast kernels use: cpu_best_isa() lowered by DEEPEP_CPU_ISA or
// by set_isa_override().
Isa active_isa();
// Tests: force an ISA (clamped to what the CPU has); returns the previous
// override. Isa(-1) clears the override.
int set_isa_override(int isa);

// The per-core L2 cache in bytes (sysconf; 1 MiB when the OS does not say):
// the GEMM sizes the B blocks it keeps in L2 from it (docs/CPU.md).
// DEEPEP_CPU_L2_BYTES overrides it (read once).
long l2_cache_bytes();

// AMX-BF16 tiles (and AVX-512 BF16) on this CPU, granted by the OS
// (arch_prctl ARCH_REQ_XCOMP_PERM, asked once), AVX-512 active, and not
// turned off by DEEPEP_CPU_AMX=0.
bool amx_usable();

// Whether this thread's float32 GEMMs may run as bf16x3 on AMX tiles
// (gemm_amx.h: ~1e-5 relative error instead of ~1e-7, up to 8/3 of the FMA
// peak). Off unless a scope allows it: the Engine does for its runs unless
// its precision is "fp32-strict".
bool fp32_bf16x3_allowed();
class Fp32PrecisionScope {
 public:
  explicit Fp32PrecisionScope(bool allow_bf16x3);
  ~Fp32PrecisionScope();
  Fp32PrecisionScope(const Fp32PrecisionScope&) = delete;
  Fp32PrecisionScope& operator=(const Fp32PrecisionScope&) = delete;

 private:
  bool old_;
};

}  // namespace deepep::cpu

// The address of isa's kernel table from its per-ISA getters (each defined in
// that ISA's file), or nullptr for Isa::kNone and off x86-64, where the ISA
// files are not built.
#if defined(__x86_64__)
#define DEEPEP_ISA_TABLE(isa, avx512_getter, avx2_getter)                  \
  ((isa) == ::deepep::cpu::Isa::kAvx512 ? &avx512_getter()                 \
   : (isa) == ::deepep::cpu::Isa::kAvx2 ? &avx2_getter()                   \
                                        : nullptr)
#else
#define DEEPEP_ISA_TABLE(isa, avx512_getter, avx2_getter) ((void)(isa), nullptr)
#endif
