// ReverseSequence: for each batch entry b, reverses the first seq_lens[b]
// steps along the time axis (time/batch axes are 0 and 1, either order).
#include "ops/tensor_util.h"

using namespace deepep;
using namespace deepep::ops;
using namespace deepep::ops::tensor_detail;

DEEPEP_DEFINE_OP(ReverseSequence) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    const Tensor& lens = ctx.input(1);
    DEEPEP_CHECK(x.rank() >= 2, ctx.node.describe(), ": input must have rank >= 2, got shape ",
                 shape_str(x.shape()));
    const int64_t ta = ctx.node.attr_int("time_axis", 0), ba = ctx.node.attr_int("batch_axis", 1);
    DEEPEP_CHECK((ta == 0 && ba == 1) || (ta == 1 && ba == 0), ctx.node.describe(),
                 ": time_axis and batch_axis must be 0 and 1 (in either order), got ", ta, " and ", ba);
    const int64_t T = x.dim(int(ta)), B = x.dim(int(ba));
    DEEPEP_CHECK(lens.rank() == 1 && lens.dim(0) == B, ctx.node.describe(), ": sequence_lens ",
                 shape_str(lens.shape()), " must have one entry per batch (", B, ")");
    const std::vector<int64_t> lv = index_values(lens, ctx.node, "sequence_lens");
    const auto st = strides_of(x.shape());
    const int64_t es = int64_t(dtype_size(x.dtype()));
    const int64_t inner = st[1] * es;  // bytes of one (time, batch) cell
    const int64_t tst = st[size_t(ta)] * es, bst = st[size_t(ba)] * es;
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    const auto* src = static_cast<const uint8_t*>(x.raw());
    auto* dst = static_cast<uint8_t*>(y.raw());
    if (inner == 0) return;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t len = lv[size_t(b)];
      DEEPEP_CHECK(len >= 0 && len <= T, ctx.node.describe(), ": sequence_lens[", b, "] = ", len,
                   " is out of range [0, ", T, "]");
      for (int64_t t = 0; t < T; ++t) {
        const int64_t from = t < len ? len - 1 - t : t;
        std::memcpy(dst + b * bst + t * tst, src + b * bst + from * tst, size_t(inner));
      }
    }
  };
}
