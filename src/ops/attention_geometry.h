// Decoding of deepep.Attention's inputs and attributes, shared by the
// reference kernel (src/ops/fused_attention.cpp, which documents the layouts
// and attributes) and the fast kernels (src/kernels/cpu/ops_attention.cpp).
// Everything here throws a deepep::Error naming the problem; a fast kernel's
// `supports` catches it and declines, so that the reference reports it.
#pragma once
#include <array>
#include <cstdint>

#include "ir/op_registry.h"

namespace deepep::ops {

// One operand viewed per (batch, head): a row-major [rows, cols] matrix.
struct AttentionView {
  const float* p = nullptr;
  int64_t sb = 0, sh = 0, ld = 0;  // batch and head offsets, row stride
  const float* at(int64_t b, int64_t h) const { return p + b * sb + h * sh; }
};

struct AttentionGeometry {
  int64_t B = 0, H = 0, Sq = 0, Sk = 0, D = 0, Dv = 0;
  bool kt = false;  // K viewed as [D, Sk]
  AttentionView q, k, v;
  Shape y;
  int64_t ysb = 0, ysh = 0, yld = 0;  // Y's batch and head offsets, row stride
};

// Q, K, V (inputs 0-2: 3-D with num_heads, packed 3-D QKV with
// qkv_hidden_sizes, or 4-D with k_transposed): float32, shapes that agree.
AttentionGeometry attention_geometry(const KernelContext& ctx);

enum class AttentionMaskMode { kAdd, kKeep, kDrop };

// The mask_mode attribute ("add" by default).
AttentionMaskMode attention_mask_mode(const Node& n);

struct AttentionMask {
  AttentionMaskMode mode = AttentionMaskMode::kAdd;
  float fill = 0.f;                            // mask_fill (-inf by default)
  const Tensor* mask = nullptr;                // input 3, nullptr when omitted
  std::array<int64_t, 4> strides{0, 0, 0, 0};  // mask strides over [B, H, Sq, Sk]
};

// mask_mode, mask_fill and the optional mask (input 3: float32 for "add",
// bool otherwise, broadcasting to [B, H, Sq, Sk] of `g`).
AttentionMask attention_mask(const KernelContext& ctx, const AttentionGeometry& g);

// Allocates Y (float32, g.y) and returns its data, or nullptr when there is
// nothing left to compute: Y is empty, or Sk == 0 (a softmax over nothing;
// Y is then zeros, as the chain's MatMul gives).
float* attention_output(KernelContext& ctx, const AttentionGeometry& g);

}  // namespace deepep::ops
