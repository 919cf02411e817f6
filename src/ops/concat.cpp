// Concat: joins inputs along an axis; all other dims must agree.
#include "ops/tensor_util.h"

using namespace deepep;
using namespace deepep::ops;
using namespace deepep::ops::tensor_detail;

DEEPEP_DEFINE_OP(Concat) {
  def.infer = [](InferContext& ctx) {
    DType dt = DType::kUndefined;
    std::optional<SymShape> out;
    bool first = true, rank_unknown = false;
    int64_t axis = 0;
    int64_t known_sum = 0;
    int unknown = 0;
    Dim only_unknown;
    for (size_t i = 0; i < ctx.inputs.size(); ++i) {
      if (!ctx.inputs[i]) continue;
      const Value& v = *ctx.inputs[i];
      if (dt == DType::kUndefined) dt = v.dtype;
      if (!v.shape) {
        rank_unknown = true;
        continue;
      }
      const SymShape& s = *v.shape;
      if (first) {
        out = s;
        axis = axis_in(ctx.node.attr_int("axis", 1), int64_t(s.size()), ctx.node);
        first = false;
      } else {
        DEEPEP_CHECK(s.size() == out->size(), ctx.node.describe(), ": inputs have different ranks");
        for (size_t d = 0; d < s.size(); ++d)
          if (int64_t(d) != axis) (*out)[d] = dim_merge((*out)[d], s[d]);
      }
      const Dim& a = s[size_t(axis)];
      if (a.is_known()) known_sum += a.value;
      else {
        ++unknown;
        only_unknown = a;
      }
    }
    if (out) {
      if (rank_unknown) (*out)[size_t(axis)] = Dim{};
      else if (unknown == 0) (*out)[size_t(axis)] = Dim::known(known_sum);
      else if (unknown == 1 && known_sum == 0) (*out)[size_t(axis)] = only_unknown;
      else (*out)[size_t(axis)] = Dim{};
    }
    ctx.set(0, dt, out);
  };
  def.reference = [](KernelContext& ctx) {
    std::vector<const Tensor*> ins;
    for (int i = 0; i < ctx.num_inputs(); ++i)
      if (ctx.has_input(i)) ins.push_back(&ctx.input(i));
    DEEPEP_CHECK(!ins.empty(), ctx.node.describe(), ": needs at least one input");
    const Tensor& x0 = *ins[0];
    DEEPEP_CHECK(x0.rank() > 0, ctx.node.describe(), ": cannot concatenate scalars");
    DEEPEP_CHECK(ctx.node.has_attr("axis"), ctx.node.describe(), ": attribute 'axis' is required");
    const int64_t axis = axis_in(ctx.node.attr_int("axis", 0), x0.rank(), ctx.node);
    Shape out = x0.shape();
    out[size_t(axis)] = 0;
    for (const Tensor* t : ins) {
      DEEPEP_CHECK(t->dtype() == x0.dtype(), ctx.node.describe(), ": input dtypes differ (",
                   dtype_name(x0.dtype()), " vs ", dtype_name(t->dtype()), ")");
      bool ok = t->rank() == x0.rank();
      for (int d = 0; ok && d < x0.rank(); ++d) ok = d == axis || t->dim(d) == x0.dim(d);
      DEEPEP_CHECK(ok, ctx.node.describe(), ": cannot concatenate shapes ", shape_str(x0.shape()),
                   " and ", shape_str(t->shape()), " along axis ", axis);
      out[size_t(axis)] += t->dim(int(axis));
    }
    Tensor& y = ctx.output(0, x0.dtype(), out);
    int64_t outer = 1, inner = int64_t(dtype_size(x0.dtype()));
    for (int64_t d = 0; d < axis; ++d) outer *= out[size_t(d)];
    for (int64_t d = axis + 1; d < x0.rank(); ++d) inner *= out[size_t(d)];
    const int64_t out_row = out[size_t(axis)] * inner;
    auto* dst = static_cast<uint8_t*>(y.raw());
    int64_t col = 0;
    for (const Tensor* t : ins) {
      const int64_t row = t->dim(int(axis)) * inner;
      const auto* src = static_cast<const uint8_t*>(t->raw());
      if (row > 0)
        for (int64_t o = 0; o < outer; ++o)
          std::memcpy(dst + o * out_row + col, src + o * row, size_t(row));
      col += row;
    }
  };
}
