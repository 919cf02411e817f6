// Row-major GEMM through cuBLASLt: C[b] = alpha * op(A[b]) op(B[b]) (+ bias
// per column, optional ReLU or tanh-GELU) for b < batch, with per-shape algorithm choice
// cached process-wide (heuristic candidates timed once on first use of a
// geometry when the product is large, else the heuristic's first choice).
#pragma once
#include <cublasLt.h>

#include <memory>
#include <string>

#include "kernels/cuda/gpu_kernels.h"

namespace deepep::cuda {

struct GemmShape {
  DType dtype = DType::kFloat32;  // A, B and C (float32 or float16)
  bool ta = false, tb = false;
  int64_t M = 0, N = 0, K = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;  // batch strides in elements (0: shared)
  int64_t batch = 1;
  float alpha = 1.f;
  bool bias = false;  // bias has N values of `dtype`, added per column of C
  // Activation after the bias, in cuBLASLt's epilogue. kGelu is GELU's tanh
  // approximation (cuBLASLt has no erf GELU).
  enum class Act { kNone, kRelu, kGelu } act = Act::kNone;
};

struct GemmPlan;  // descriptors and the chosen algorithm

// Builds descriptors and chooses an algorithm. `a`, `b`, `c` (and bias) are
// the real buffers, used for timing candidates. Returns the plan; its
// workspace need is gemm_workspace(plan).
std::shared_ptr<GemmPlan> gemm_prepare(GpuContext& ctx, const GemmShape& s, const void* a, const void* b, void* c,
                                       const void* bias, const std::string& what);
size_t gemm_workspace(const GemmPlan& p);
// Enqueues the product (no synchronization; safe under graph capture).
void gemm_run(GpuContext& ctx, const GemmPlan& p, const void* a, const void* b, void* c, const void* bias,
              const std::string& what);

}  // namespace deepep::cuda
