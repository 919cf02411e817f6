// Registration of the fast CPU kernels onto the op table. The registry
// (src/ir/op_registry.cpp) calls register_kernels once while it builds the
// table; each family file (ops_*.cpp) adds its kernels through
// add_fast_kernel, by op key ("MatMul", "deepep.FusedConv"). Kernels decline
// (supports() == false) when active_isa() is Isa::kNone, so
// DEEPEP_CPU_ISA=none runs the reference everywhere.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "ir/op_registry.h"

namespace deepep::cpu {

using OpTable = std::map<std::string, OpDef>;

// Adds a fast kernel to op `key`; throws if the op does not exist. The
// supports predicate is wrapped to decline when no ISA is active.
void add_fast_kernel(OpTable& table, const std::string& key, const std::string& name,
                     std::function<bool(const KernelContext&)> supports, KernelFn run);

void register_kernels(OpTable& table);

// What, besides a node and its inputs' types and shapes, decides which fast
// kernel takes it (and the plans kernels keep in a NodeCache): the ISA in use
// (tests force one) and whether this thread allows bf16x3 float32 GEMMs.
uint64_t kernel_environment();

// One line per family file:
void register_matmul_kernels(OpTable& table);
void register_conv_kernels(OpTable& table);
void register_conv_nhwc_kernels(OpTable& table);  // deepep.FusedConv, channels_last = 1
void register_pointwise_depthwise_kernels(OpTable& table);  // deepep.PointwiseDepthwiseConv
void register_pool_kernels(OpTable& table);
void register_attention_kernels(OpTable& table);  // deepep.Attention
void register_norm_kernels(OpTable& table);       // deepep.SkipLayerNorm, LayerNormalization

}  // namespace deepep::cpu
