// Element access for the one-byte storage types that have no C++ arithmetic
// type: the float8 variants, float8 E8M0, float4 E2M1 and the 4- and 2-bit
// integers. DeepEP holds each element in its own byte, the code in the low bits
// and zero-extended (int4 -3 is stored as 13), as ml_dtypes does.
#pragma once
#include <cstdint>

#include "deepep/dtype.h"
#include "deepep/half.h"

namespace deepep::ops {

inline bool is_f8(DType t) {
  return t == DType::kFloat8E4M3FN || t == DType::kFloat8E4M3FNUZ || t == DType::kFloat8E5M2 ||
         t == DType::kFloat8E5M2FNUZ;
}

inline F8Kind f8_kind(DType t) {
  switch (t) {
    case DType::kFloat8E4M3FN: return F8Kind::E4M3FN;
    case DType::kFloat8E4M3FNUZ: return F8Kind::E4M3FNUZ;
    case DType::kFloat8E5M2: return F8Kind::E5M2;
    default: return F8Kind::E5M2FNUZ;
  }
}

// float8 variants, float8 E8M0 and float4 E2M1: values exactly representable in float.
inline bool is_narrow_float(DType t) {
  return is_f8(t) || t == DType::kFloat8E8M0 || t == DType::kFloat4E2M1;
}

// int4, uint4, int2, uint2.
inline bool is_sub_byte_int(DType t) {
  return t == DType::kInt4 || t == DType::kUInt4 || t == DType::kInt2 || t == DType::kUInt2;
}

inline int sub_byte_bits(DType t) { return (t == DType::kInt2 || t == DType::kUInt2) ? 2 : 4; }

// [lo, hi] of a sub-byte integer type.
inline void sub_byte_range(DType t, int& lo, int& hi) {
  const int bits = sub_byte_bits(t);
  const bool is_signed = t == DType::kInt4 || t == DType::kInt2;
  lo = is_signed ? -(1 << (bits - 1)) : 0;
  hi = is_signed ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
}

// The value of a stored code: sign-extended for int4/int2. Bits above the
// type's width are ignored.
inline int sub_byte_value(uint8_t code, DType t) {
  const int bits = sub_byte_bits(t);
  const int v = code & ((1 << bits) - 1);
  const bool is_signed = t == DType::kInt4 || t == DType::kInt2;
  return (is_signed && v >= (1 << (bits - 1))) ? v - (1 << bits) : v;
}

// The code of an integer: its low bits (two's complement), i.e. modular.
inline uint8_t sub_byte_code(int64_t v, DType t) {
  return uint8_t(uint64_t(v) & ((uint64_t(1) << sub_byte_bits(t)) - 1));
}

// The value of a narrow float code, exact in float.
inline float narrow_float_value(uint8_t code, DType t) {
  if (t == DType::kFloat8E8M0) return e8m0_to_float(code);
  if (t == DType::kFloat4E2M1) return f4e2m1_to_float(code);
  return f8_to_float(code, f8_kind(t));
}

}  // namespace deepep::ops
