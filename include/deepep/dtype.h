// Element types. The numeric values are ONNX TensorProto.DataType codes so the
// frontend and the .de format can store them without a translation table.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace deepep {

enum class DType : uint8_t {
  kUndefined = 0,
  kFloat32 = 1,
  kUInt8 = 2,
  kInt8 = 3,
  kUInt16 = 4,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kString = 8,  // not supported by kernels; named so errors can say so
  kBool = 9,
  kFloat16 = 10,
  kFloat64 = 11,
  kUInt32 = 12,
  kUInt64 = 13,
  kBFloat16 = 16,
  kFloat8E4M3FN = 17,
  kFloat8E4M3FNUZ = 18,
  kFloat8E5M2 = 19,
  kFloat8E5M2FNUZ = 20,
  // Sub-byte types are held unpacked, one element per byte (the code in the
  // low bits, zero-extended), as ml_dtypes does; files pack them.
  kUInt4 = 21,
  kInt4 = 22,
  kFloat4E2M1 = 23,
  kFloat8E8M0 = 24,
  kUInt2 = 25,
  kInt2 = 26,
};

// Bits per element in packed (file) form: 4 or 2 for sub-byte types, else 8 x size.
int dtype_packed_bits(DType t);

// Bytes per element; 0 for types DeepEP cannot hold in a flat buffer.
size_t dtype_size(DType t);
// "float32", "float16", "bfloat16", "int64", ... (numpy spelling).
std::string_view dtype_name(DType t);
// Inverse of dtype_name; returns kUndefined for unknown names.
DType dtype_from_name(std::string_view name);
// Whether `code` (an ONNX data type code) names a type DeepEP supports.
bool dtype_supported(int onnx_code);
bool dtype_is_float(DType t);     // f16, bf16, f32, f64, f8 variants
bool dtype_is_signed_int(DType t);
bool dtype_is_unsigned_int(DType t);
inline bool dtype_is_int(DType t) { return dtype_is_signed_int(t) || dtype_is_unsigned_int(t); }

}  // namespace deepep
