// deepep.FusedConv: Y = epilogue(Conv(X, W) + B[channel], residual), made by
// the conv_activation_fusion pass from Conv + activation + residual Add
// chains (BatchNorm and per-channel affine maps are already folded into W
// and B by conv_batchnorm_fold).
//   inputs:  X, W, B (optional, [M]) as for ONNX Conv; residual (optional,
//            Y's shape exactly)
//   attrs:   Conv's (group, strides, pads, dilations, kernel_shape,
//            auto_pad) and the epilogue's (ops/fused_epilogue.h)
// float32 only. The convolution itself is ONNX Conv's kernel (im2col + the
// blocked sgemm, or the depthwise loop), run on this node without B; the
// bias, the activation and the residual then cost one threaded pass over Y
// where the unfused chain makes up to three (bias, activation, Add), each
// with its own output buffer.
#include "ops/float_io.h"
#include "ops/fused_epilogue.h"
#include "ops/gemm_util.h"

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

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_FUSED_OP(FusedConv) {
  def.infer = [](InferContext& ctx) {
    // Conv's inference reads only X, W and the conv attributes.
    static const OpDef* conv = find_op("Conv");
    if (conv && conv->infer) conv->infer(ctx);
  };
  def.reference = with_float32_compute(fused_conv_kernel);
  def.cost = [](const Node& n, const std::vector<Shape>& in, const std::vector<Shape>& out) {
    static const OpDef* conv = find_op("Conv");
    return conv && conv->cost ? conv->cost(n, in, out) : Cost{};
  };
}
