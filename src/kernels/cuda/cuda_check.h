// Checked CUDA, cuBLAS(Lt) and cuDNN calls: a failure throws deepep::Error
// naming the call, the error, and what was running (an op, or a runtime step).
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <string>

#include "deepep/error.h"

namespace deepep::cuda {

[[noreturn]] inline void fail_call(const std::string& what, const char* call, const std::string& err) {
  throw Error(detail::concat(what, ": ", call, " failed: ", err));
}
inline void check(cudaError_t e, const std::string& what, const char* call) {
  if (e != cudaSuccess) fail_call(what, call, std::string(cudaGetErrorName(e)) + " (" + cudaGetErrorString(e) + ")");
}
inline void check(cublasStatus_t e, const std::string& what, const char* call) {
  if (e != CUBLAS_STATUS_SUCCESS) fail_call(what, call, std::string("cuBLAS status ") + std::to_string(int(e)));
}
inline void check(cudnnStatus_t e, const std::string& what, const char* call) {
  if (e != CUDNN_STATUS_SUCCESS) fail_call(what, call, cudnnGetErrorString(e));
}

}  // namespace deepep::cuda

// DEEPEP_CUDA(expr, what): `what` is a string naming the op or step.
#define DEEPEP_CUDA(expr, what) ::deepep::cuda::check((expr), (what), #expr)
// After a kernel launch: the launch error, if any.
#define DEEPEP_CUDA_LAUNCHED(what) ::deepep::cuda::check(cudaGetLastError(), (what), "kernel launch")
