#include "optimizer/pattern.h"

#include <algorithm>
#include <cstring>

#include "ir/dtype_dispatch.h"
#include "ir/op_registry.h"

namespace deepep::opt {

bool is_op(const Node& n, std::string_view op) { return n.domain.empty() && n.op_type == op; }

Node* producer_of(const Value* v, std::string_view op) {
  return v && v->producer && is_op(*v->producer, op) ? v->producer : nullptr;
}

bool is_random(const Node& n) {
  static constexpr std::string_view kRandom[] = {"RandomNormal", "RandomNormalLike", "RandomUniform",
                                                 "RandomUniformLike", "Multinomial", "Bernoulli"};
  return n.domain.empty() && std::find(std::begin(kRandom), std::end(kRandom), n.op_type) != std::end(kRandom);
}

bool is_pure(const Node& n) {
  if (is_random(n) || (n.def && (n.def->flags & kControlFlow))) return false;
  for (const auto& [k, a] : n.attrs)
    if (!a.graphs.empty()) return false;
  return true;
}

std::optional<std::vector<int64_t>> ints_arg(const Node& n, int input, const char* attr,
                                             std::optional<std::vector<int64_t>> absent) {
  if (input >= 0 && input < int(n.inputs.size()) && n.inputs[size_t(input)]) {
    const Tensor* t = constant_of(n.inputs[size_t(input)]);
    if (!t) return std::nullopt;
    return t->to_int_vector();
  }
  if (attr && n.has_attr(attr)) return n.attr_ints(attr);
  return absent;
}

bool same_shape(const std::optional<SymShape>& a, const std::optional<SymShape>& b) {
  if (!a || !b || a->size() != b->size()) return false;
  for (size_t i = 0; i < a->size(); ++i) {
    const Dim &x = (*a)[i], &y = (*b)[i];
    if (!(x.is_known() || x.is_symbol()) || !(x == y)) return false;
  }
  return true;
}

std::optional<int64_t> rank_of(const Value* v) {
  if (!v || !v->shape) return std::nullopt;
  return int64_t(v->shape->size());
}

std::optional<std::vector<int64_t>> normalize_axes(std::vector<int64_t> axes, int64_t rank) {
  for (int64_t& a : axes) {
    if (a < -rank || a >= rank) return std::nullopt;
    if (a < 0) a += rank;
  }
  std::sort(axes.begin(), axes.end());
  return axes;
}

bool same_tensor(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         (a.raw() == b.raw() || a.nbytes() == 0 || std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0);
}

bool same_attributes(const Node& a, const Node& b) {
  if (a.attrs.size() != b.attrs.size()) return false;
  for (auto ia = a.attrs.begin(), ib = b.attrs.begin(); ia != a.attrs.end(); ++ia, ++ib) {
    const Attribute &x = ia->second, &y = ib->second;
    if (ia->first != ib->first || x.kind != y.kind) return false;
    const bool same = x.i == y.i && std::memcmp(&x.f, &y.f, sizeof x.f) == 0 && x.s == y.s &&
                      x.ints == y.ints && x.strings == y.strings && x.graphs == y.graphs &&
                      x.floats.size() == y.floats.size() &&
                      (x.floats.empty() ||  // (memcmp of null pointers is undefined even for 0 bytes)
                       std::memcmp(x.floats.data(), y.floats.data(), x.floats.size() * sizeof(float)) == 0) &&
                      x.t.defined() == y.t.defined() && (!x.t.defined() || same_tensor(x.t, y.t));
    if (!same) return false;
  }
  return true;
}

std::string derived_name(const std::string& name, const std::string& suffix) {
  // "w_folded" or "w_folded_3" (a unique_name number) -> "w".
  const size_t at = name.rfind(suffix);
  if (at != std::string::npos) {
    const std::string rest = name.substr(at + suffix.size());
    if (rest.empty() || (rest.size() > 1 && rest[0] == '_' &&
                         rest.find_first_not_of("0123456789", 1) == std::string::npos))
      return name.substr(0, at) + suffix;
  }
  return name + suffix;
}

bool is_float(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat64 || t == DType::kFloat16 || t == DType::kBFloat16;
}

std::vector<double> to_doubles(const Tensor& t) {
  std::vector<double> v(size_t(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[size_t(i)] = t.get_double(i);
  return v;
}

Tensor from_doubles(DType dtype, const Shape& shape, const std::vector<double>& v) {
  Tensor t(dtype, shape);
  dispatch_float(dtype, "from_doubles", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = t.data<T>();
    for (size_t i = 0; i < v.size(); ++i) {
      if constexpr (std::is_same_v<T, double>) p[i] = v[i];
      else p[i] = T(float(v[i]));
    }
  });
  return t;
}

Tensor int64_tensor(const std::vector<int64_t>& v) {
  Tensor t(DType::kInt64, {int64_t(v.size())});
  std::copy(v.begin(), v.end(), t.data<int64_t>());
  return t;
}

}  // namespace deepep::opt
