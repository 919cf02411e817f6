// Split: cuts a tensor along an axis into parts given by `split` (attribute
// before opset 13, input after), by `num_outputs` (opset 18, last part may be
// smaller), or into equal parts, one per output.
#include "ops/tensor_util.h"

namespace deepep::ops {
namespace {
using namespace tensor_detail;

// Part sizes for a dim of size `dim` (or nullopt sizes when dim < 0 and the
// split is not given explicitly).
std::vector<int64_t> split_sizes(const Node& node, int64_t dim, size_t n_out,
                                 const std::optional<std::vector<int64_t>>& split) {
  if (split) {
    DEEPEP_CHECK(split->size() == n_out, node.describe(), ": split has ", split->size(),
                 " entries but the node has ", n_out, " outputs");
    int64_t sum = 0;
    for (int64_t s : *split) {
      DEEPEP_CHECK(s >= 0, node.describe(), ": split sizes must be >= 0, got ", shape_str(*split));
      sum += s;
    }
    DEEPEP_CHECK(dim < 0 || sum == dim, node.describe(), ": split ", shape_str(*split), " sums to ",
                 sum, " but the axis has size ", dim);
    return *split;
  }
  int64_t parts = int64_t(n_out);
  if (node.has_attr("num_outputs")) {
    parts = node.attr_int("num_outputs", 0);
    DEEPEP_CHECK(parts >= 1 && size_t(parts) == n_out, node.describe(), ": num_outputs ", parts,
                 " does not match the ", n_out, " outputs");
  }
  DEEPEP_CHECK(parts >= 1, node.describe(), ": has no outputs");
  DEEPEP_CHECK(dim >= 0, node.describe(), ": axis size is unknown");
  if (!node.has_attr("num_outputs"))
    DEEPEP_CHECK(dim % parts == 0 || node.opset >= 18, node.describe(), ": axis of size ", dim,
                 " cannot be split into ", parts, " equal parts");
  const int64_t chunk = (dim + parts - 1) / parts;
  std::vector<int64_t> sizes(static_cast<size_t>(parts));
  int64_t left = dim;
  for (auto& s : sizes) {
    s = std::min(chunk, left);
    left -= s;
  }
  return sizes;
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;
using namespace deepep::ops::tensor_detail;

DEEPEP_DEFINE_OP(Split) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0)) return;
    const Value& x = ctx.input(0);
    const size_t n_out = ctx.outputs.size();
    for (size_t i = 0; i < n_out; ++i) ctx.set(int(i), x.dtype, std::nullopt);
    if (!x.shape) return;
    const int64_t r = int64_t(x.shape->size());
    const int64_t axis = axis_in(ctx.node.attr_int("axis", 0), r, ctx.node);
    bool present = false;
    auto split = const_ints_or_attr(ctx, 1, "split", &present);
    const Dim& d = (*x.shape)[size_t(axis)];
    std::optional<std::vector<int64_t>> sizes;
    if (split || (!present && d.is_known()))
      sizes = split_sizes(ctx.node, d.is_known() ? d.value : -1, n_out, split);
    for (size_t i = 0; i < n_out; ++i) {
      SymShape s = *x.shape;
      if (sizes) s[size_t(axis)] = Dim::known((*sizes)[i]);
      else if (n_out == 1) s[size_t(axis)] = d;
      else s[size_t(axis)] = Dim{};
      ctx.set(int(i), x.dtype, s);
    }
  };
  def.reference = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    const int64_t axis = axis_in(ctx.node.attr_int("axis", 0), x.rank(), ctx.node);
    DEEPEP_CHECK(x.rank() > 0, ctx.node.describe(), ": cannot split a scalar");
    auto split = ints_from_input_or_attr(ctx, 1, "split");
    const size_t n_out = ctx.outputs.size();
    auto sizes = split_sizes(ctx.node, x.dim(int(axis)), n_out, split);
    int64_t outer = 1, inner = int64_t(dtype_size(x.dtype()));
    for (int64_t d = 0; d < axis; ++d) outer *= x.dim(int(d));
    for (int64_t d = axis + 1; d < x.rank(); ++d) inner *= x.dim(int(d));
    const int64_t in_row = x.dim(int(axis)) * inner;
    const auto* src = static_cast<const uint8_t*>(x.raw());
    int64_t col = 0;
    for (size_t i = 0; i < n_out; ++i) {
      Shape s = x.shape();
      s[size_t(axis)] = sizes[i];
      Tensor& y = ctx.output(int(i), x.dtype(), s);
      const int64_t row = sizes[i] * inner;
      auto* dst = static_cast<uint8_t*>(y.raw());
      if (row > 0)
        for (int64_t o = 0; o < outer; ++o)
          std::memcpy(dst + o * row, src + o * in_row + col, size_t(row));
      col += row;
    }
  };
}
