// A dense, row-major tensor. Storage is shared and reference counted, so a
// Tensor can own its bytes (64-byte aligned), view a mapped file, or wrap a
// caller's buffer without copying (zero-copy I/O).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "deepep/dtype.h"
#include "deepep/error.h"
#include "deepep/half.h"

namespace deepep {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);  // "[2, 3, 4]"

class Tensor {
 public:
  Tensor() = default;
  // Allocates uninitialised, 64-byte aligned storage.
  Tensor(DType dtype, Shape shape);
  // Views `data` (not copied); `owner` keeps it alive (may be null for
  // buffers the caller guarantees outlive the tensor).
  static Tensor wrap(DType dtype, Shape shape, void* data, std::shared_ptr<void> owner);
  static Tensor zeros(DType dtype, Shape shape);
  template <class T>
  static Tensor scalar(DType dtype, T v);

  bool defined() const { return dtype_ != DType::kUndefined; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_[i < 0 ? i + rank() : i]; }
  int rank() const { return int(shape_.size()); }
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype_); }

  void* raw() { return ptr_; }
  const void* raw() const { return ptr_; }
  template <class T>
  T* data() { return static_cast<T*>(ptr_); }
  template <class T>
  const T* data() const { return static_cast<const T*>(ptr_); }

  // Same bytes, new shape (numel must match).
  Tensor reshaped(Shape shape) const;
  // A deep copy into fresh storage.
  Tensor clone() const;
  // Element i converted to double / int64 (for shape-carrying tensors).
  double get_double(int64_t i) const;
  int64_t get_int(int64_t i) const;
  // All elements as int64 (axes, shapes, pads...).
  std::vector<int64_t> to_int_vector() const;

  const std::shared_ptr<void>& owner() const { return owner_; }

 private:
  DType dtype_ = DType::kUndefined;
  Shape shape_;
  std::shared_ptr<void> owner_;
  void* ptr_ = nullptr;
};

template <class T>
Tensor Tensor::scalar(DType dtype, T v) {
  Tensor t(dtype, {});
  *t.data<T>() = v;
  return t;
}

}  // namespace deepep
