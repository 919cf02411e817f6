#include "deepep/tensor.h"

#include <cstdlib>
#include <cstring>
#include <sstream>

#include "ir/dtype_dispatch.h"

namespace deepep {

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ']';
  return os.str();
}

Tensor::Tensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
  for (int64_t d : shape_) DEEPEP_CHECK(d >= 0, "negative dimension in shape ", shape_str(shape_));
  DEEPEP_CHECK(dtype_size(dtype) > 0, "cannot allocate a tensor of dtype ", dtype_name(dtype));
  // Round up to the alignment; keep at least one line so data() is never null.
  size_t bytes = (nbytes() + 63) / 64 * 64;
  if (bytes == 0) bytes = 64;
  void* p = std::aligned_alloc(64, bytes);
  DEEPEP_CHECK(p != nullptr, "out of memory allocating ", bytes, " bytes for a tensor of shape ",
               shape_str(shape_));
  owner_ = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  ptr_ = p;
}

Tensor Tensor::wrap(DType dtype, Shape shape, void* data, std::shared_ptr<void> owner) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.owner_ = std::move(owner);
  t.ptr_ = data;
  return t;
}

Tensor Tensor::zeros(DType dtype, Shape shape) {
  Tensor t(dtype, std::move(shape));
  std::memset(t.raw(), 0, t.nbytes());
  return t;
}

Tensor Tensor::reshaped(Shape shape) const {
  DEEPEP_CHECK(shape_numel(shape) == numel(), "cannot reshape ", shape_str(shape_), " to ",
               shape_str(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t(dtype_, shape_);
  if (nbytes()) std::memcpy(t.raw(), raw(), nbytes());
  return t;
}

double Tensor::get_double(int64_t i) const {
  return dispatch_all(dtype_, "Tensor::get_double", [&](auto tag) -> double {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>)
      return double(float(data<T>()[i]));
    else
      return double(data<T>()[i]);
  });
}

int64_t Tensor::get_int(int64_t i) const {
  return dispatch_all(dtype_, "Tensor::get_int", [&](auto tag) -> int64_t {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>)
      return int64_t(float(data<T>()[i]));
    else
      return int64_t(data<T>()[i]);
  });
}

std::vector<int64_t> Tensor::to_int_vector() const {
  std::vector<int64_t> v(static_cast<size_t>(numel()));
  for (int64_t i = 0; i < numel(); ++i) v[size_t(i)] = get_int(i);
  return v;
}

}  // namespace deepep
