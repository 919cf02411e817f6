// deepep.MaxPool: ONNX MaxPool's Y (no Indices output) with
//   channels_last (int, default 0): 1 makes X [N, H, W, C] and Y
//            [N, OH, OW, C] (2-D only); 0 is MaxPool itself.
// Attributes as MaxPool's (kernel_shape, strides, pads, dilations, auto_pad,
// ceil_mode, storage_order). Made by the load-time channels-last pass on the
// CPU (src/optimizer/channels_last.cpp) so that the pooling between NHWC
// convolutions (ResNet's stem) needs no transposes around it; the fast kernel
// is src/kernels/cpu/ops_pool.cpp.
#include "ops/channels_last.h"

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_FUSED_OP(MaxPool) {
  def.infer = [](InferContext& ctx) {
    static const OpDef* pool = find_op("MaxPool");
    if (!pool) return;
    if (!channels_last(ctx.node)) return pool->infer(ctx);
    infer_channels_last(ctx, *pool);
  };
  def.reference = [](KernelContext& ctx) {
    static const OpDef* pool = find_op("MaxPool");
    DEEPEP_CHECK(pool && pool->reference, ctx.node.describe(), ": this build has no MaxPool kernel");
    if (!channels_last(ctx.node)) return pool->reference(ctx);
    const Tensor& x = ctx.input(0);
    DEEPEP_CHECK(x.rank() == 4, ctx.node.describe(), ": channels_last needs 2-D pooling, X [N, H, W, C]; got X ",
                 shape_str(x.shape()));
    const Tensor xn = to_nchw(x, "MaxPool");
    KernelContext inner{ctx.node, {&xn}, {}, ctx.subgraphs, nullptr};
    inner.outputs.resize(1);
    pool->reference(inner);
    set_output_nhwc(ctx, inner.outputs[0], "MaxPool");
  };
}
