// Conv and deepep.FusedConv through cuDNN (NCHW, 1-D and 2-D), followed by
// the fused epilogue kernel (bias, activation, residual) in one pass.
#pragma once
#include "kernels/cuda/gpu_kernels.h"

namespace deepep::cuda {
GpuKernel conv_kernel(bool fused);
}
