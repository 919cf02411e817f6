// DepthToSpace (DCR and CRD modes) and SpaceToDepth on NCHW tensors, as a
// reshape to 6-D, a transpose and a reshape back.
#include "ops/tensor_util.h"

namespace deepep::ops {
namespace {
using namespace tensor_detail;

int64_t blocksize_of(const Node& node) {
  DEEPEP_CHECK(node.has_attr("blocksize"), node.describe(), ": attribute 'blocksize' is required");
  int64_t b = node.attr_int("blocksize", 0);
  DEEPEP_CHECK(b > 0, node.describe(), ": blocksize must be positive, got ", b);
  return b;
}

bool crd_mode(const Node& node) {
  std::string mode = node.attr_string("mode", "DCR");
  DEEPEP_CHECK(mode == "DCR" || mode == "CRD", node.describe(), ": unknown mode '", mode,
               "' (expected DCR or CRD)");
  return mode == "CRD";
}

Dim mul_dim(const Dim& d, int64_t k) { return d.is_known() ? Dim::known(d.value * k) : Dim{}; }
Dim div_dim(const Dim& d, int64_t k) {
  return d.is_known() && d.value % k == 0 ? Dim::known(d.value / k) : Dim{};
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;
using namespace deepep::ops::tensor_detail;

DEEPEP_DEFINE_OP(DepthToSpace) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0)) return;
    const Value& x = ctx.input(0);
    const int64_t b = blocksize_of(ctx.node);
    if (!x.shape || x.shape->size() != 4) {
      ctx.set(0, x.dtype, SymShape(4));
      return;
    }
    const SymShape& s = *x.shape;
    ctx.set(0, x.dtype, SymShape{s[0], div_dim(s[1], b * b), mul_dim(s[2], b), mul_dim(s[3], b)});
  };
  def.reference = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    const int64_t b = blocksize_of(ctx.node);
    DEEPEP_CHECK(x.rank() == 4, ctx.node.describe(), ": input must be 4-D (NCHW), got shape ",
                 shape_str(x.shape()));
    const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
    DEEPEP_CHECK(c % (b * b) == 0, ctx.node.describe(), ": channels ", c,
                 " are not divisible by blocksize^2 = ", b * b);
    const int64_t oc = c / (b * b);
    const Shape out{n, oc, h * b, w * b};
    if (crd_mode(ctx.node))
      ctx.set_output(0, transpose_view(x, {n, oc, b, b, h, w}, {0, 1, 4, 2, 5, 3}, out, ctx.op()));
    else
      ctx.set_output(0, transpose_view(x, {n, b, b, oc, h, w}, {0, 3, 4, 1, 5, 2}, out, ctx.op()));
  };
}

DEEPEP_DEFINE_OP(SpaceToDepth) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0)) return;
    const Value& x = ctx.input(0);
    const int64_t b = blocksize_of(ctx.node);
    if (!x.shape || x.shape->size() != 4) {
      ctx.set(0, x.dtype, SymShape(4));
      return;
    }
    const SymShape& s = *x.shape;
    ctx.set(0, x.dtype, SymShape{s[0], mul_dim(s[1], b * b), div_dim(s[2], b), div_dim(s[3], b)});
  };
  def.reference = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    const int64_t b = blocksize_of(ctx.node);
    DEEPEP_CHECK(x.rank() == 4, ctx.node.describe(), ": input must be 4-D (NCHW), got shape ",
                 shape_str(x.shape()));
    const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
    DEEPEP_CHECK(h % b == 0 && w % b == 0, ctx.node.describe(), ": spatial dims ", h, "x", w,
                 " are not divisible by blocksize ", b);
    const Shape out{n, c * b * b, h / b, w / b};
    ctx.set_output(0, transpose_view(x, {n, c, h / b, b, w / b, b}, {0, 3, 5, 1, 2, 4}, out,
                                     ctx.op()));
  };
}
