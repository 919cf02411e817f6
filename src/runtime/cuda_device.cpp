// Device-name parsing, shared by builds with and without CUDA.
#include <cctype>

#include "deepep/error.h"
#include "runtime/cuda_runtime.h"

namespace deepep {

int parse_device(const std::string& device) {
  if (device == "cpu") return -1;
  if (device == "cuda" || device == "gpu") return 0;
  const std::string p = device.rfind("cuda:", 0) == 0 ? "cuda:" : (device.rfind("gpu:", 0) == 0 ? "gpu:" : "");
  if (!p.empty() && device.size() > p.size() && device.size() - p.size() <= 4) {
    bool digits = true;
    for (size_t i = p.size(); i < device.size(); ++i) digits = digits && std::isdigit(static_cast<unsigned char>(device[i]));
    if (digits) return std::stoi(device.substr(p.size()));
  }
  throw InputError(detail::concat("unknown device '", device, "': use 'cpu', 'cuda' or 'cuda:N'"));
}

}  // namespace deepep
