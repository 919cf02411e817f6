// deepep.FusedConv: Y = epilogue(Conv(X, W) + B[channel], residual), made by
// the conv_activation_fusion pass from Conv + activation + residual Add
// chains (BatchNorm and per-channel affine maps are already folded into W
// and B by conv_batchnorm_fold).
//   inputs:  X, W, B (optional, [M]) as for ONNX Conv; residual (optional,
//            Y's shape exactly)
//   attrs:   Conv's (group, strides, pads, dilations, kernel_shape,
//            auto_pad) and the epilogue's (ops/fused_epilogue.h);
//            channels_last (int, default 0): 1 makes X [N, H, W, C], Y
//            [N, OH, OW, M] and the residual Y's NHWC shape (2-D only); 2
//            the same with X left NCHW (CPU only, few input channels:
//            ops/channels_last.h). W stays [M, C/group, kH, kW] and B [M]:
//            fast kernels reorder W once when packing/uploading it. Set by
//            the load-time channels_last pass (src/optimizer/channels_last.cpp)
//            and, for 2, nchw_input_conv.
// float32 only. The convolution itself is ONNX Conv's kernel (im2col + the
// blocked sgemm, or the depthwise loop), run on this node without B; the
// bias, the activation and the residual then cost one threaded pass over Y
// where the unfused chain makes up to three (bias, activation, Add), each
// with its own output buffer.
#include "ops/channels_last.h"
#include "ops/float_io.h"
#include "ops/fused_epilogue.h"
#include "ops/gemm_util.h"
#include "ops/tensor_util.h"

namespace deepep::ops {
namespace {

void fused_conv_kernel(KernelContext& ctx) {
  const Node& node = ctx.node;
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  const Epilogue epi = read_epilogue(node);
  DEEPEP_CHECK(x.dtype() == DType::kFloat32 && w.dtype() == DType::kFloat32, node.describe(),
               ": X and W must be float32, got ", dtype_name(x.dtype()), " and ", dtype_name(w.dtype()));
  DEEPEP_CHECK(w.rank() >= 3, node.describe(), ": W must be [M, C/group, kernel...], got ", shape_str(w.shape()));
  const int64_t M = w.dim(0);
  const Tensor* bias = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  const Tensor* res = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  if (bias)
    DEEPEP_CHECK(bias->dtype() == DType::kFloat32 && bias->numel() == M, node.describe(), ": B must be float32[",
                 M, "], got ", dtype_name(bias->dtype()), shape_str(bias->shape()));

  // The output may be the residual's buffer (kInplaceResidual) and the conv
  // below writes it before the epilogue reads the residual: read a copy.
  Tensor res_copy;
  if (res && ctx.allocator) {
    res_copy = res->clone();
    res = &res_copy;
  }
  static const OpDef* conv = find_op("Conv");
  DEEPEP_CHECK(conv && conv->reference, node.describe(), ": this build has no Conv kernel");
  KernelContext inner{node, {&x, &w}, {}, ctx.subgraphs, ctx.allocator};
  inner.outputs.resize(1);
  conv->reference(inner);
  ctx.set_output(0, std::move(inner.outputs[0]));
  Tensor& y = ctx.outputs[0];
  if (res) {
    DEEPEP_CHECK(res->dtype() == DType::kFloat32 && res->shape() == y.shape(), node.describe(),
                 ": residual must be float32 of the output's shape ", shape_str(y.shape()), ", got ",
                 dtype_name(res->dtype()), shape_str(res->shape()));
  }
  if (y.numel() == 0 || (!bias && !res && epi.act == Act::kNone)) return;
  const int64_t planes = y.dim(0) * M;
  const int64_t plane = y.numel() / planes;
  float* py = y.data<float>();
  const float* pb = bias ? bias->data<float>() : nullptr;
  const float* pr = res ? res->data<float>() : nullptr;
  const int threads = threads_for_work(double(y.numel()) * epilogue_work(epi.act) * 8);
  with_activation(epi.act, [&]<Act A>() {
    parallel_for(planes, threads, [&](int64_t s, int64_t e) {
      for (int64_t pl = s; pl < e; ++pl)
        epilogue_row<A>(py + pl * plane, plane, pb ? pb + pl % M : nullptr, 0, pr ? pr + pl * plane : nullptr, 1,
                        epi.residual_first, epi.p0, epi.p1);
    });
  });
}

// The reference of the channels-last form: the NCHW kernel between
// transposes. Slow by design; it is the oracle of the fast NHWC kernels.
void fused_conv_channels_last(KernelContext& ctx) {
  const Node& node = ctx.node;
  const Tensor& x = ctx.input(0);
  DEEPEP_CHECK(x.rank() == 4, node.describe(), ": channels_last needs a 2-D convolution, X [N, ",
               nchw_input(node) ? "C, H, W" : "H, W, C", "]; got X ", shape_str(x.shape()));
  const Tensor xn = nchw_input(node) ? x : to_nchw(x, "FusedConv");
  Tensor rn;
  if (ctx.has_input(3)) {
    const Tensor& r = ctx.input(3);
    DEEPEP_CHECK(r.rank() == 4, node.describe(), ": residual must be [N, OH, OW, M], got ", shape_str(r.shape()));
    rn = to_nchw(r, "FusedConv");
  }
  KernelContext inner{node, {&xn, &ctx.input(1), ctx.has_input(2) ? &ctx.input(2) : nullptr,
                             ctx.has_input(3) ? &rn : nullptr},
                      {}, ctx.subgraphs, nullptr};
  inner.outputs.resize(1);
  fused_conv_kernel(inner);
  set_output_nhwc(ctx, inner.outputs[0], "FusedConv");
}

void fused_conv_reference(KernelContext& ctx) {
  if (channels_last(ctx.node)) return fused_conv_channels_last(ctx);
  fused_conv_kernel(ctx);
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_FUSED_OP(FusedConv) {
  def.infer = [](InferContext& ctx) {
    // Conv's inference reads only X, W and the conv attributes.
    static const OpDef* conv = find_op("Conv");
    if (!conv || !conv->infer) return;
    if (!channels_last(ctx.node)) return conv->infer(ctx);
    infer_channels_last(ctx, *conv);
  };
  def.reference = with_float32_compute(fused_conv_reference);
  def.cost = [](const Node& n, const std::vector<Shape>& in, const std::vector<Shape>& out) {
    static const OpDef* conv = find_op("Conv");
    if (!conv || !conv->cost) return Cost{};
    if (!channels_last(n) || in.empty() || out.empty() || in[0].size() != 4 || out[0].size() != 4)
      return conv->cost(n, in, out);
    std::vector<Shape> i2 = in, o2 = out;  // the flops are the NCHW conv's
    if (!nchw_input(n)) i2[0] = permuted(in[0], kToNchw);
    o2[0] = permuted(out[0], kToNchw);
    return conv->cost(n, i2, o2);
  };
}
