#include "deepep/dtype.h"

namespace deepep {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::kFloat32: case DType::kInt32: case DType::kUInt32: return 4;
    case DType::kFloat64: case DType::kInt64: case DType::kUInt64: return 8;
    case DType::kFloat16: case DType::kBFloat16: case DType::kInt16: case DType::kUInt16: return 2;
    case DType::kInt8: case DType::kUInt8: case DType::kBool:
    case DType::kFloat8E4M3FN: case DType::kFloat8E4M3FNUZ:
    case DType::kFloat8E5M2: case DType::kFloat8E5M2FNUZ: case DType::kFloat8E8M0:
    case DType::kUInt4: case DType::kInt4: case DType::kFloat4E2M1:
    case DType::kUInt2: case DType::kInt2: return 1;
    default: return 0;
  }
}

namespace {
struct NameEntry {
  DType t;
  std::string_view name;
};
constexpr NameEntry kNames[] = {
    {DType::kFloat32, "float32"},   {DType::kFloat64, "float64"},   {DType::kFloat16, "float16"},
    {DType::kBFloat16, "bfloat16"}, {DType::kInt8, "int8"},         {DType::kInt16, "int16"},
    {DType::kInt32, "int32"},       {DType::kInt64, "int64"},       {DType::kUInt8, "uint8"},
    {DType::kUInt16, "uint16"},     {DType::kUInt32, "uint32"},     {DType::kUInt64, "uint64"},
    {DType::kBool, "bool"},         {DType::kString, "string"},
    {DType::kFloat8E4M3FN, "float8_e4m3fn"}, {DType::kFloat8E4M3FNUZ, "float8_e4m3fnuz"},
    {DType::kFloat8E5M2, "float8_e5m2"},     {DType::kFloat8E5M2FNUZ, "float8_e5m2fnuz"},
    {DType::kFloat8E8M0, "float8_e8m0fnu"},  {DType::kUInt4, "uint4"},
    {DType::kInt4, "int4"},                  {DType::kFloat4E2M1, "float4_e2m1fn"},
    {DType::kUInt2, "uint2"},                {DType::kInt2, "int2"},
};
}  // namespace

std::string_view dtype_name(DType t) {
  for (const auto& e : kNames)
    if (e.t == t) return e.name;
  return "undefined";
}

DType dtype_from_name(std::string_view name) {
  for (const auto& e : kNames)
    if (e.name == name) return e.t;
  return DType::kUndefined;
}

bool dtype_supported(int code) {
  return code > 0 && code <= 26 && code != 8 && code != 14 && code != 15;
}

int dtype_packed_bits(DType t) {
  switch (t) {
    case DType::kUInt4: case DType::kInt4: case DType::kFloat4E2M1: return 4;
    case DType::kUInt2: case DType::kInt2: return 2;
    default: return int(dtype_size(t)) * 8;
  }
}

bool dtype_is_float(DType t) {
  switch (t) {
    case DType::kFloat32: case DType::kFloat64: case DType::kFloat16: case DType::kBFloat16:
    case DType::kFloat8E4M3FN: case DType::kFloat8E4M3FNUZ: case DType::kFloat8E5M2:
    case DType::kFloat8E5M2FNUZ: case DType::kFloat8E8M0: case DType::kFloat4E2M1: return true;
    default: return false;
  }
}
bool dtype_is_signed_int(DType t) {
  return t == DType::kInt8 || t == DType::kInt16 || t == DType::kInt32 || t == DType::kInt64;
}
bool dtype_is_unsigned_int(DType t) {
  return t == DType::kUInt8 || t == DType::kUInt16 || t == DType::kUInt32 || t == DType::kUInt64;
}

}  // namespace deepep
