#include "kernels/cpu/register.h"

#include "deepep/error.h"
#include "kernels/cpu/cpu_features.h"

namespace deepep::cpu {

void add_fast_kernel(OpTable& table, const std::string& key, const std::string& name,
                     std::function<bool(const KernelContext&)> supports, KernelFn run) {
  auto it = table.find(key);
  DEEPEP_CHECK(it != table.end(), "fast CPU kernel '", name, "' names unknown op '", key, "'");
  FastKernel k;
  k.name = name;
  k.supports = [s = std::move(supports)](const KernelContext& ctx) {
    return active_isa() != Isa::kNone && (!s || s(ctx));
  };
  k.run = std::move(run);
  it->second.cpu.push_back(std::move(k));
}

uint64_t kernel_environment() { return uint64_t(active_isa()) << 1 | uint64_t(fp32_bf16x3_allowed()); }

void register_kernels(OpTable& table) {
  register_matmul_kernels(table);
  register_conv_kernels(table);
  register_conv_nhwc_kernels(table);
  register_pointwise_depthwise_kernels(table);
  register_pool_kernels(table);
  register_attention_kernels(table);
  register_norm_kernels(table);
}

}  // namespace deepep::cpu
