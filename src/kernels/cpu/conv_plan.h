// The geometry of a 2-D float32 Conv / deepep.FusedConv as the fast CPU
// kernels see it, in either activation layout (NCHW: ops_conv.cpp; NHWC,
// channels_last = 1: ops_conv_nhwc.cpp).
#pragma once
#include <cstdint>

#include "ir/op_registry.h"
#include "ops/fused_epilogue.h"

namespace deepep::cpu {

struct ConvPlan {
  int64_t N, C, H, W, M, group, Cg, Mg, KH, KW, OH, OW;
  int64_t sh, sw, ph, pw, dh, dw;
  ops::Epilogue epi;  // FusedConv's activation and residual order (none for Conv)
  bool x_nchw = false;  // channels_last = 2: X NCHW, Y NHWC (ops::nchw_input)
  bool depthwise() const { return Cg == 1 && Mg == 1; }
};

// The plan, or false when the fast path does not take this node (the
// reference then runs and reports any error). Kept in ctx.cache when there is
// one (made once per input types and shapes, not read from the node's
// attributes every run). Takes: float32 X and W of rank 4 in
// the layout asked for (the node's channels_last attribute must agree; with
// channels_last = 2, X is NCHW: x_nchw),
// group and kernel_shape consistent with W, a bias of M floats; for
// FusedConv (`fused`) a known activation and a residual of Y's shape.
bool make_conv_plan(const KernelContext& ctx, bool channels_last, bool fused, ConvPlan& p);

// A FusedConv's output may be its residual's own buffer (the arena runs it
// in place: kInplaceResidual). Paths that read the residual where they write
// Y, element for element, take it as is; paths that store Y first and add the
// residual after (an epilogue pass) take this: `res` itself when the n floats
// at y and at res do not overlap, else a copy (valid until the calling
// thread's next call).
const float* residual_apart(const float* res, const float* y, int64_t n);

}  // namespace deepep::cpu
