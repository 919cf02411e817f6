// Maps a runtime DType to a C++ type for templated kernels:
//   dispatch(t.dtype(), [&](auto tag) { using T = typename decltype(tag)::type; ... });
// The dispatch_* variants restrict the set and fail with the op's name for others.
#pragma once
#include <cstdint>
#include <type_traits>

#include "deepep/error.h"
#include "deepep/half.h"
#include "deepep/tensor.h"

namespace deepep {

template <class T>
struct TypeTag {
  using type = T;
};

template <DType D> struct CppType;
template <> struct CppType<DType::kFloat32> { using type = float; };
template <> struct CppType<DType::kFloat64> { using type = double; };
template <> struct CppType<DType::kFloat16> { using type = float16; };
template <> struct CppType<DType::kBFloat16> { using type = bfloat16; };
template <> struct CppType<DType::kInt8> { using type = int8_t; };
template <> struct CppType<DType::kInt16> { using type = int16_t; };
template <> struct CppType<DType::kInt32> { using type = int32_t; };
template <> struct CppType<DType::kInt64> { using type = int64_t; };
template <> struct CppType<DType::kUInt8> { using type = uint8_t; };
template <> struct CppType<DType::kUInt16> { using type = uint16_t; };
template <> struct CppType<DType::kUInt32> { using type = uint32_t; };
template <> struct CppType<DType::kUInt64> { using type = uint64_t; };
template <> struct CppType<DType::kBool> { using type = bool; };

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::kFloat32; }
template <> constexpr DType dtype_of<double>() { return DType::kFloat64; }
template <> constexpr DType dtype_of<float16>() { return DType::kFloat16; }
template <> constexpr DType dtype_of<bfloat16>() { return DType::kBFloat16; }
template <> constexpr DType dtype_of<int8_t>() { return DType::kInt8; }
template <> constexpr DType dtype_of<int16_t>() { return DType::kInt16; }
template <> constexpr DType dtype_of<int32_t>() { return DType::kInt32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::kInt64; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::kUInt8; }
template <> constexpr DType dtype_of<uint16_t>() { return DType::kUInt16; }
template <> constexpr DType dtype_of<uint32_t>() { return DType::kUInt32; }
template <> constexpr DType dtype_of<uint64_t>() { return DType::kUInt64; }
template <> constexpr DType dtype_of<bool>() { return DType::kBool; }

template <class T>
constexpr bool is_floating_v = std::is_floating_point_v<T> || std::is_same_v<T, float16> ||
                               std::is_same_v<T, bfloat16>;

// Float types only: f32, f64, f16, bf16.
template <class F>
decltype(auto) dispatch_float(DType t, const char* what, F&& f) {
  switch (t) {
    case DType::kFloat32: return f(TypeTag<float>{});
    case DType::kFloat64: return f(TypeTag<double>{});
    case DType::kFloat16: return f(TypeTag<float16>{});
    case DType::kBFloat16: return f(TypeTag<bfloat16>{});
    default: DEEPEP_FAIL(what, ": unsupported dtype ", dtype_name(t), " (expected a float type)");
  }
}

// Numeric types: floats and all integers (not bool).
template <class F>
decltype(auto) dispatch_numeric(DType t, const char* what, F&& f) {
  switch (t) {
    case DType::kFloat32: return f(TypeTag<float>{});
    case DType::kFloat64: return f(TypeTag<double>{});
    case DType::kFloat16: return f(TypeTag<float16>{});
    case DType::kBFloat16: return f(TypeTag<bfloat16>{});
    case DType::kInt8: return f(TypeTag<int8_t>{});
    case DType::kInt16: return f(TypeTag<int16_t>{});
    case DType::kInt32: return f(TypeTag<int32_t>{});
    case DType::kInt64: return f(TypeTag<int64_t>{});
    case DType::kUInt8: return f(TypeTag<uint8_t>{});
    case DType::kUInt16: return f(TypeTag<uint16_t>{});
    case DType::kUInt32: return f(TypeTag<uint32_t>{});
    case DType::kUInt64: return f(TypeTag<uint64_t>{});
    default: DEEPEP_FAIL(what, ": unsupported dtype ", dtype_name(t), " (expected a numeric type)");
  }
}

// Integer types only.
template <class F>
decltype(auto) dispatch_int(DType t, const char* what, F&& f) {
  switch (t) {
    case DType::kInt8: return f(TypeTag<int8_t>{});
    case DType::kInt16: return f(TypeTag<int16_t>{});
    case DType::kInt32: return f(TypeTag<int32_t>{});
    case DType::kInt64: return f(TypeTag<int64_t>{});
    case DType::kUInt8: return f(TypeTag<uint8_t>{});
    case DType::kUInt16: return f(TypeTag<uint16_t>{});
    case DType::kUInt32: return f(TypeTag<uint32_t>{});
    case DType::kUInt64: return f(TypeTag<uint64_t>{});
    default: DEEPEP_FAIL(what, ": unsupported dtype ", dtype_name(t), " (expected an integer type)");
  }
}

// Every type with a flat buffer, bool included (float8 types are moved as bytes).
template <class F>
decltype(auto) dispatch_all(DType t, const char* what, F&& f) {
  if (t == DType::kBool) return f(TypeTag<bool>{});
  return dispatch_numeric(t, what, std::forward<F>(f));
}

// Copy-only ops (Transpose, Gather, Concat...) only need the element width.
template <class F>
decltype(auto) dispatch_by_size(DType t, const char* what, F&& f) {
  switch (dtype_size(t)) {
    case 1: return f(TypeTag<uint8_t>{});
    case 2: return f(TypeTag<uint16_t>{});
    case 4: return f(TypeTag<uint32_t>{});
    case 8: return f(TypeTag<uint64_t>{});
    default: DEEPEP_FAIL(what, ": unsupported dtype ", dtype_name(t));
  }
}

}  // namespace deepep
