// The CUDA backend's entry points in a build without CUDA: no devices, and a
// clear error when a model is asked to run on one.
#include "deepep/error.h"
#include "runtime/cuda_runtime.h"

namespace deepep {

bool cuda_built() { return false; }

std::vector<GpuDeviceInfo> cuda_devices(std::string* why) {
  if (why) *why = "this build of DeepEP has no CUDA backend (configure with -DDEEPEP_WITH_CUDA=ON)";
  return {};
}

std::shared_ptr<CudaModel> cuda_load(const Graph&, const CudaOptions& o) {
  throw Error(detail::concat("device 'cuda:", o.device,
                             "' is not available: this build of DeepEP has no CUDA backend (use device='cpu', or "
                             "rebuild with -DDEEPEP_WITH_CUDA=ON)"));
}

std::unique_ptr<CudaSession> cuda_session(const std::shared_ptr<CudaModel>&) {
  throw Error("this build of DeepEP has no CUDA backend");
}

}  // namespace deepep
