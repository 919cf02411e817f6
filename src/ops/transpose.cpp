// Transpose: permutes axes (default: reverses them).
#include "ops/tensor_util.h"

namespace deepep::ops {
namespace {
using namespace tensor_detail;

std::vector<int64_t> perm_of(const Node& node, int64_t r) {
  std::vector<int64_t> perm = node.attr_ints("perm");
  if (!node.has_attr("perm")) {
    perm.resize(size_t(r));
    for (int64_t i = 0; i < r; ++i) perm[size_t(i)] = r - 1 - i;
  }
  DEEPEP_CHECK(int64_t(perm.size()) == r, node.describe(), ": perm has ", perm.size(),
               " entries, expected the input rank ", r);
  std::vector<bool> seen(size_t(r), false);
  for (int64_t& p : perm) {
    int64_t q = p < 0 ? p + r : p;
    DEEPEP_CHECK(q >= 0 && q < r && !seen[size_t(q)], node.describe(), ": perm ",
                 shape_str(node.attr_ints("perm")), " is not a permutation of 0..", r - 1);
    seen[size_t(q)] = true;
    p = q;
  }
  return perm;
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;
using namespace deepep::ops::tensor_detail;

DEEPEP_DEFINE_OP(Transpose) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0)) return;
    const Value& x = ctx.input(0);
    if (!x.shape) {
      ctx.set(0, x.dtype, ctx.node.has_attr("perm")
                              ? std::optional<SymShape>(SymShape(ctx.node.attr_ints("perm").size()))
                              : std::nullopt);
      return;
    }
    auto perm = perm_of(ctx.node, int64_t(x.shape->size()));
    SymShape out;
    for (int64_t p : perm) out.push_back((*x.shape)[size_t(p)]);
    ctx.set(0, x.dtype, out);
  };
  def.reference = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    auto perm = perm_of(ctx.node, x.rank());
    Shape out;
    for (int64_t p : perm) out.push_back(x.dim(int(p)));
    ctx.set_output(0, transpose_view(x, x.shape(), perm, out, ctx.op()));
  };
}
