#include "ops/op_util.h"

namespace deepep::ops {

int64_t normalize_axis(int64_t axis, int64_t rank, const Node& node) {
  int64_t a = axis < 0 ? axis + rank : axis;
  DEEPEP_CHECK(a >= 0 && a < std::max<int64_t>(rank, 1), node.describe(), ": axis ", axis,
               " is out of range for rank ", rank);
  return a;
}

std::vector<int64_t> strides_of(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (size_t i = s.size(); i-- > 1;) st[i - 1] = st[i] * s[i];
  return st;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const Node& node) {
  const size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    DEEPEP_CHECK(da == db || da == 1 || db == 1, node.describe(), ": shapes ", shape_str(a),
                 " and ", shape_str(b), " cannot be broadcast together");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

SymShape broadcast_sym(const SymShape& a, const SymShape& b) {
  const size_t r = std::max(a.size(), b.size());
  SymShape out(r);
  for (size_t i = 0; i < r; ++i) {
    Dim da = i < r - a.size() ? Dim::known(1) : a[i - (r - a.size())];
    Dim db = i < r - b.size() ? Dim::known(1) : b[i - (r - b.size())];
    if (da == db) out[i] = da;
    else if (da.is_known() && da.value == 1) out[i] = db;
    else if (db.is_known() && db.value == 1) out[i] = da;
    else if (da.is_known() && !db.is_known()) out[i] = da;  // the other must equal it
    else if (db.is_known() && !da.is_known()) out[i] = db;
    else out[i] = Dim{};
  }
  return out;
}

std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out) {
  std::vector<int64_t> st(out.size(), 0);
  auto in_st = strides_of(in);
  const size_t off = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i) st[off + i] = in[i] == 1 ? 0 : in_st[i];
  return st;
}

std::optional<std::vector<int64_t>> ints_from_input_or_attr(const KernelContext& ctx, int i,
                                                            const char* attr) {
  if (ctx.has_input(i)) return ctx.input(i).to_int_vector();
  if (ctx.node.has_attr(attr)) return ctx.node.attr_ints(attr);
  return std::nullopt;
}

void infer_same_as_input(InferContext& ctx) {
  if (!ctx.has_input(0)) return;
  ctx.set(0, ctx.input(0).dtype, ctx.input(0).shape);
}

namespace {
std::optional<SymShape> broadcast_all(const InferContext& ctx) {
  std::optional<SymShape> s = SymShape{};
  for (size_t i = 0; i < ctx.inputs.size(); ++i) {
    if (!ctx.inputs[i]) continue;
    if (!ctx.inputs[i]->shape) return std::nullopt;
    s = broadcast_sym(*s, *ctx.inputs[i]->shape);
  }
  return s;
}
}  // namespace

void infer_broadcast(InferContext& ctx) {
  if (!ctx.has_input(0)) return;
  ctx.set(0, ctx.input(0).dtype, broadcast_all(ctx));
}

void infer_broadcast_bool(InferContext& ctx) { ctx.set(0, DType::kBool, broadcast_all(ctx)); }

bool periodic(const Shape& small, const Shape& full) {
  if (small.size() > full.size()) return false;
  size_t lead = 0;
  while (lead < small.size() && small[lead] == 1) ++lead;
  for (size_t i = lead; i < small.size(); ++i)
    if (small[i] != full[full.size() - small.size() + i]) return false;
  return true;
}

}  // namespace deepep::ops
