// DeepEP's channels-last ops (deepep.FusedConv, deepep.MaxPool with
// channels_last = 1: X [N, H, W, C], Y [N, OH, OW, C']) are made at load time
// by the channels-last pass (src/optimizer/channels_last.cpp). Their reference
// kernels and shape inference run the NCHW op between transposes: slow by
// design, the oracle of the fast NHWC kernels.
#pragma once
#include <vector>

#include "ir/op_registry.h"
#include "ops/tensor_util.h"

namespace deepep::ops {

inline const std::vector<int64_t> kToNchw{0, 3, 1, 2};
inline const std::vector<int64_t> kToNhwc{0, 2, 3, 1};

template <typename T>
std::vector<T> permuted(const std::vector<T>& v, const std::vector<int64_t>& perm) {
  std::vector<T> out;
  for (int64_t p : perm) out.push_back(v[size_t(p)]);
  return out;
}

inline bool channels_last(const Node& n) { return n.attr_int("channels_last", 0) != 0; }
// channels_last = 2 (deepep.FusedConv only): X stays NCHW [N, C, H, W]
// while Y and the residual are NHWC. Set on the CPU, at load time, on a conv
// of at most kNchwInputMaxChannels input channels (an RGB stem) at the edge
// of the NHWC region (src/optimizer/nchw_input_conv.cpp): the direct conv
// reads the image's planes itself, and the edge transpose goes.
inline bool nchw_input(const Node& n) { return n.attr_int("channels_last", 0) == 2; }
inline constexpr int64_t kNchwInputMaxChannels = 4;

// x [N, H, W, C] as a new [N, C, H, W] tensor.
inline Tensor to_nchw(const Tensor& x, const char* op) {
  return tensor_detail::transpose_view(x, x.shape(), kToNchw, permuted(x.shape(), kToNchw), op);
}

// Output 0 of `ctx` := y [N, C, H, W] stored as [N, H, W, C].
inline void set_output_nhwc(KernelContext& ctx, const Tensor& y, const char* op) {
  Tensor& out = ctx.output(0, y.dtype(), permuted(y.shape(), kToNhwc));
  tensor_detail::copy_strided(y, out, permuted(strides_of(y.shape()), kToNhwc), 0, op);
}

// Output 0's dtype and shape from the NCHW op's inference on an NCHW view of
// input 0 (as it is with nchw_input; other inputs and attributes as given).
inline void infer_channels_last(InferContext& ctx, const OpDef& nchw) {
  if (!nchw.infer || !ctx.has_input(0)) return;
  const Value& x = ctx.input(0);
  if (!x.shape || x.shape->size() != 4) return ctx.set(0, x.dtype, std::nullopt);
  Value view;
  view.dtype = x.dtype;
  view.shape = nchw_input(ctx.node) ? *x.shape : permuted(*x.shape, kToNchw);
  InferContext inner{ctx.node, ctx.inputs, {}};
  inner.inputs[0] = &view;
  inner.outputs.resize(ctx.outputs.size());
  nchw.infer(inner);
  auto y = inner.outputs.empty() ? InferContext::Out{} : inner.outputs[0];
  if (y.shape && y.shape->size() == 4) y.shape = permuted(*y.shape, kToNhwc);
  ctx.set(0, y.dtype, y.shape);
}

}  // namespace deepep::ops
