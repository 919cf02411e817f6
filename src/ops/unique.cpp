// Unique: the distinct elements (or, with `axis`, the distinct slices along
// the axis), sorted ascending (sorted=1, the default) or in order of first
// occurrence, with first-occurrence indices, inverse indices and counts.
// NaNs compare equal to each other and greater than every number (numpy).
#include <cmath>
#include <numeric>

#include "ops/tensor_util.h"

namespace deepep::ops {
namespace {

// Three-way compare with a total order: NaN after everything, NaN == NaN.
template <class T>
int cmp3(T a, T b) {
  if constexpr (std::is_same_v<T, bool> || std::is_integral_v<T>) {
    return a < b ? -1 : (b < a ? 1 : 0);
  } else {
    using C = std::conditional_t<std::is_same_v<T, double>, double, float>;
    const C x = C(a), y = C(b);
    const bool nx = std::isnan(x), ny = std::isnan(y);
    if (nx || ny) return nx == ny ? 0 : (nx ? 1 : -1);
    return x < y ? -1 : (y < x ? 1 : 0);
  }
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;
using namespace deepep::ops::tensor_detail;

DEEPEP_DEFINE_OP(Unique) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0)) return;
    const Value& x = ctx.input(0);
    if (ctx.node.has_attr("axis") && x.shape) {
      SymShape s = *x.shape;
      s[size_t(axis_in(ctx.node.attr_int("axis", 0), int64_t(s.size()), ctx.node))] = Dim{};
      ctx.set(0, x.dtype, s);
    } else {
      ctx.set(0, x.dtype, ctx.node.has_attr("axis") ? std::nullopt
                                                    : std::optional<SymShape>(SymShape(1)));
    }
    for (int i = 1; i < int(ctx.outputs.size()); ++i) ctx.set(i, DType::kInt64, SymShape(1));
  };
  def.reference = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    const bool sorted = ctx.node.attr_int("sorted", 1) != 0;
    const bool has_axis = ctx.node.has_attr("axis");
    const Shape shape = has_axis ? x.shape() : Shape{x.numel()};
    DEEPEP_CHECK(!shape.empty(), ctx.node.describe(), ": cannot take unique slices of a scalar");
    const int64_t axis =
        has_axis ? axis_in(ctx.node.attr_int("axis", 0), x.rank(), ctx.node) : 0;
    const int64_t n = shape[size_t(axis)];
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= shape[size_t(d)];
    for (size_t d = size_t(axis) + 1; d < shape.size(); ++d) inner *= shape[d];

    // Items (slices) ordered by value, ties by position; then grouped.
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::vector<int64_t> group_of(static_cast<size_t>(n));
    std::vector<int64_t> first;  // first index of each group, in sorted-value order
    std::vector<int64_t> count;
    dispatch_all(x.dtype(), ctx.op(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* p = x.data<T>();
      auto compare = [&](int64_t a, int64_t b) {
        for (int64_t o = 0; o < outer; ++o)
          for (int64_t j = 0; j < inner; ++j) {
            int c = cmp3(p[(o * n + a) * inner + j], p[(o * n + b) * inner + j]);
            if (c) return c;
          }
        return 0;
      };
      std::stable_sort(order.begin(), order.end(),
                       [&](int64_t a, int64_t b) { return compare(a, b) < 0; });
      for (size_t i = 0; i < order.size(); ++i) {
        if (i == 0 || compare(order[i - 1], order[i]) != 0) {
          first.push_back(order[i]);
          count.push_back(0);
        }
        group_of[size_t(order[i])] = int64_t(first.size()) - 1;
        ++count.back();
      }
    });
    const size_t g = first.size();
    // Output position of each group: sorted order, or order of first occurrence.
    std::vector<int64_t> pos(g);
    std::iota(pos.begin(), pos.end(), 0);
    if (!sorted) {
      std::vector<int64_t> by_first(g);
      std::iota(by_first.begin(), by_first.end(), 0);
      std::sort(by_first.begin(), by_first.end(),
                [&](int64_t a, int64_t b) { return first[size_t(a)] < first[size_t(b)]; });
      for (size_t i = 0; i < g; ++i) pos[size_t(by_first[i])] = int64_t(i);
    }
    Shape yshape = shape;
    yshape[size_t(axis)] = int64_t(g);
    Tensor& y = ctx.output(0, x.dtype(), yshape);
    const int64_t es = int64_t(dtype_size(x.dtype()));
    const auto* src = static_cast<const uint8_t*>(x.raw());
    auto* dst = static_cast<uint8_t*>(y.raw());
    for (size_t k = 0; k < g && inner > 0; ++k)
      for (int64_t o = 0; o < outer; ++o)
        std::memcpy(dst + ((o * int64_t(g) + pos[k]) * inner) * es,
                    src + ((o * n + first[k]) * inner) * es, size_t(inner * es));
    if (ctx.outputs.size() > 1) {
      int64_t* idx = ctx.output(1, DType::kInt64, {int64_t(g)}).data<int64_t>();
      for (size_t k = 0; k < g; ++k) idx[pos[k]] = first[k];
    }
    if (ctx.outputs.size() > 2) {
      int64_t* inv = ctx.output(2, DType::kInt64, {n}).data<int64_t>();
      for (int64_t i = 0; i < n; ++i) inv[i] = pos[size_t(group_of[size_t(i)])];
    }
    if (ctx.outputs.size() > 3) {
      int64_t* cnt = ctx.output(3, DType::kInt64, {int64_t(g)}).data<int64_t>();
      for (size_t k = 0; k < g; ++k) cnt[pos[k]] = count[k];
    }
  };
}
