// The channels-last conv inner loops (ops_conv_nhwc_isa.h) compiled for
// AVX2 (this file gets only that ISA's -m flags; called only when
// cpu_features finds it).
#define DEEPEP_ISA_NS avx2
#define DEEPEP_VW 8
#include "kernels/cpu/ops_conv_nhwc_isa.h"

namespace deepep::cpu {
const NhwcKernels& nhwc_avx2_kernels() {
  static const NhwcKernels k = avx2::make_nhwc();
  return k;
}
}  // namespace deepep::cpu
