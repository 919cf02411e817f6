// The Winograd transforms (conv_winograd_isa.h) compiled for AVX2 (this file
// gets only that ISA's -m flags; called only when cpu_features finds it).
#define DEEPEP_ISA_NS avx2
#define DEEPEP_VW 8
#include "kernels/cpu/conv_winograd_isa.h"

namespace deepep::cpu {
const WinogradKernels& winograd_avx2_kernels() {
  static const WinogradKernels k = avx2::make_winograd();
  return k;
}
}  // namespace deepep::cpu
