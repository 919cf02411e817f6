// 16-bit and 8-bit float storage types. Arithmetic goes through float, which is
// what every reference kernel wants: reduced-precision values are rounded to
// nearest-even once, when stored.
#pragma once
#include <cstdint>
#include <cstring>

namespace deepep {

float half_bits_to_float(uint16_t h);
uint16_t float_to_half_bits(float f);
inline float bf16_bits_to_float(uint16_t b) {
  uint32_t u = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint16_t float_to_bf16_bits(float f);

// ONNX float8 variants (see the ONNX "Float stored in 8 bits" spec).
enum class F8Kind : uint8_t { E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ };
float f8_to_float(uint8_t v, F8Kind k);
uint8_t float_to_f8(float f, F8Kind k, bool saturate);

// float4 E2M1 (OCP MX), one code (0..15) per byte: magnitudes 0, 0.5, 1, 1.5, 2,
// 3, 4, 6 and a sign bit (0x8); no infinity or NaN.
float f4e2m1_to_float(uint8_t v);
// Round to nearest even; out-of-range values and infinities saturate to +-6.
// NaN has no code: like ml_dtypes, +NaN gives 0x8 and -NaN 0x0. Wider sources
// go through float32 first, as ml_dtypes does.
uint8_t float_to_f4e2m1(float f);

// float8 E8M0 (exponent only, unsigned): code c is 2^(c-127); 0xFF is NaN.
float e8m0_to_float(uint8_t v);
// The Cast `round_mode` attribute: "up" (default), "down" or "nearest".
enum class E8M0Round : uint8_t { Up, Down, Nearest };
// Bit-exact with onnx.numpy_helper.to_float8e8m0 (the ONNX reference): the
// float32 exponent field, rounded by the mantissa; NaN and infinity give 0xFF
// (NaN), zero gives code 0 (2^-127); the sign is ignored (negative inputs are
// undefined in the spec). With `saturate` a round-up past 2^127 stays at 0xFE,
// without it becomes NaN.
uint8_t float_to_e8m0(float f, E8M0Round mode, bool saturate);

template <class Derived>
struct FloatLike {
  // Arithmetic in float; the result converts back on assignment.
  friend float operator+(Derived a, Derived b) { return float(a) + float(b); }
  friend float operator-(Derived a, Derived b) { return float(a) - float(b); }
  friend float operator*(Derived a, Derived b) { return float(a) * float(b); }
  friend float operator/(Derived a, Derived b) { return float(a) / float(b); }
  friend float operator-(Derived a) { return -float(a); }
  friend bool operator<(Derived a, Derived b) { return float(a) < float(b); }
  friend bool operator>(Derived a, Derived b) { return float(a) > float(b); }
  friend bool operator<=(Derived a, Derived b) { return float(a) <= float(b); }
  friend bool operator>=(Derived a, Derived b) { return float(a) >= float(b); }
  friend bool operator==(Derived a, Derived b) { return float(a) == float(b); }
  friend bool operator!=(Derived a, Derived b) { return float(a) != float(b); }
};

struct float16 : FloatLike<float16> {
  uint16_t bits = 0;
  float16() = default;
  float16(float f) : bits(float_to_half_bits(f)) {}  // NOLINT: implicit like a builtin
  float16(double f) : float16(float(f)) {}           // NOLINT
  float16(int64_t v) : float16(float(v)) {}          // NOLINT
  float16(int v) : float16(float(v)) {}              // NOLINT
  operator float() const { return half_bits_to_float(bits); }  // NOLINT
  static float16 from_bits(uint16_t b) { float16 h; h.bits = b; return h; }
};

struct bfloat16 : FloatLike<bfloat16> {
  uint16_t bits = 0;
  bfloat16() = default;
  bfloat16(float f) : bits(float_to_bf16_bits(f)) {}  // NOLINT
  bfloat16(double f) : bfloat16(float(f)) {}          // NOLINT
  bfloat16(int64_t v) : bfloat16(float(v)) {}         // NOLINT
  bfloat16(int v) : bfloat16(float(v)) {}             // NOLINT
  operator float() const { return bf16_bits_to_float(bits); }  // NOLINT
  static bfloat16 from_bits(uint16_t b) { bfloat16 h; h.bits = b; return h; }
};

static_assert(sizeof(float16) == 2 && sizeof(bfloat16) == 2);

}  // namespace deepep
