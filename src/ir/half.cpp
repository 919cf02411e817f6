// IEEE half, bfloat16, the ONNX float8 formats and float4 E2M1, converted with
// round-to-nearest-even; NaN and infinity follow each format's rules. Float8
// E8M0 (a bare exponent) rounds by the Cast `round_mode`.
#include "deepep/half.h"

#include <cmath>
#include <cstring>
#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

namespace deepep {

namespace {
uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
}  // namespace

float half_bits_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t man = h & 0x3ff;
  if (exp == 0) {  // zero or subnormal: man * 2^-24
    float f = std::ldexp(float(man), -24);
    return sign ? -f : f;
  }
  if (exp == 31) return bits_float(sign | 0x7f800000u | (man << 13));
  return bits_float(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t float_to_half_bits(float f) {
  const uint32_t u = float_bits(f);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs >= 0x7f800000u) return sign | (abs > 0x7f800000u ? 0x7e00 : 0x7c00);  // NaN / inf
  if (abs >= 0x477ff000u) return sign | 0x7c00;  // rounds to >= 65520: overflow to inf
  if (abs < 0x38800000u) {                       // below the smallest normal half: subnormal
    // Scale so the half subnormal unit (2^-24) becomes 1.0 and round to nearest-even.
    float scaled = bits_float(abs) * 16777216.0f;
    return sign | uint16_t(std::nearbyint(scaled));
  }
  uint32_t mant_odd = (abs >> 13) & 1;
  uint32_t rounded = abs + 0xfff + mant_odd;  // round to nearest even at bit 13
  return sign | uint16_t(((rounded >> 13) - (112u << 10)) & 0x7fff);
}

uint16_t float_to_bf16_bits(float f) {
  uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fff + ((u >> 16) & 1);
  return uint16_t(u >> 16);
}

namespace {
struct F8Format {
  int exp_bits, man_bits, bias;
  bool fnuz;      // no negative zero; 0x80 is NaN; no infinities
  bool has_inf;   // E5M2 has infinities
  float max;
};
F8Format format_of(F8Kind k) {
  switch (k) {
    case F8Kind::E4M3FN: return {4, 3, 7, false, false, 448.0f};
    case F8Kind::E4M3FNUZ: return {4, 3, 8, true, false, 240.0f};
    case F8Kind::E5M2: return {5, 2, 15, false, true, 57344.0f};
    case F8Kind::E5M2FNUZ: return {5, 2, 16, true, false, 57344.0f};
  }
  return {4, 3, 7, false, false, 448.0f};
}
}  // namespace

float f8_to_float(uint8_t v, F8Kind k) {
  const F8Format fmt = format_of(k);
  const bool neg = v & 0x80;
  const int e = (v >> fmt.man_bits) & ((1 << fmt.exp_bits) - 1);
  const int m = v & ((1 << fmt.man_bits) - 1);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  if (fmt.fnuz) {
    if (v == 0x80) return nan;
  } else if (k == F8Kind::E4M3FN) {
    if ((v & 0x7f) == 0x7f) return nan;
  } else {  // E5M2: IEEE-like
    if (e == 31) return m ? nan : (neg ? -INFINITY : INFINITY);
  }
  float val = e == 0 ? std::ldexp(float(m), 1 - fmt.bias - fmt.man_bits)
                     : std::ldexp(float(m + (1 << fmt.man_bits)), e - fmt.bias - fmt.man_bits);
  return neg ? -val : val;
}

namespace {
// Finite magnitudes of a float8 format in increasing order, with their codes.
struct F8Table {
  std::vector<std::pair<float, uint8_t>> mags;
  explicit F8Table(F8Kind k) {
    for (int c = 0; c < 128; ++c) {
      const float v = f8_to_float(uint8_t(c), k);
      if (std::isfinite(v)) mags.emplace_back(v, uint8_t(c));
    }
    std::sort(mags.begin(), mags.end());
  }
};
const F8Table& f8_table(F8Kind k) {
  static const F8Table tables[4] = {F8Table(F8Kind::E4M3FN), F8Table(F8Kind::E4M3FNUZ),
                                    F8Table(F8Kind::E5M2), F8Table(F8Kind::E5M2FNUZ)};
  return tables[int(k)];
}
}  // namespace

uint8_t float_to_f8(float f, F8Kind k, bool saturate) {
  const F8Format fmt = format_of(k);
  const uint8_t nan_code = fmt.fnuz ? 0x80 : 0x7f;
  if (std::isnan(f)) return nan_code;
  const uint8_t sign = std::signbit(f) ? 0x80 : 0;
  const float a = std::fabs(f);
  const auto& mags = f8_table(k).mags;
  const uint8_t max_code = mags.back().second;
  // Past max + ulp/2 a value overflows; exactly halfway rounds to even.
  const float top_ulp = std::ldexp(1.0f, int(std::floor(std::log2(fmt.max))) - fmt.man_bits);
  const float limit = fmt.max + top_ulp / 2;
  if (a > limit || (a == limit && (max_code & 1))) {
    if (saturate) return sign | max_code;
    if (fmt.has_inf) return sign | 0x7c;
    return nan_code;
  }
  // Nearest magnitude, ties to the even code.
  auto it = std::lower_bound(mags.begin(), mags.end(), std::make_pair(a, uint8_t(0)));
  uint8_t best;
  if (it == mags.end()) {
    best = max_code;
  } else if (it == mags.begin()) {
    best = it->second;
  } else {
    const auto lo = *(it - 1), hi = *it;
    const float dlo = a - lo.first, dhi = hi.first - a;
    best = dlo < dhi ? lo.second : dhi < dlo ? hi.second : ((lo.second & 1) ? hi.second : lo.second);
  }
  if (best == 0 && fmt.fnuz) return 0;  // fnuz formats have no negative zero
  return sign | best;
}

float f4e2m1_to_float(uint8_t v) {
  static constexpr float kMag[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  const float m = kMag[v & 7];
  return (v & 8) ? -m : m;
}

uint8_t float_to_f4e2m1(float f) {
  if (std::isnan(f)) return std::signbit(f) ? 0x0 : 0x8;
  const uint8_t sign = std::signbit(f) ? 0x8 : 0;
  const float a = std::fabs(f);
  static constexpr float kMag[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  if (a >= 6.0f) return sign | 7;  // saturates (infinity too)
  uint8_t hi = 1;
  while (kMag[hi] < a) ++hi;  // kMag[hi - 1] < a <= kMag[hi]
  const uint8_t lo = hi - 1;
  const float dlo = a - kMag[lo], dhi = kMag[hi] - a;
  const uint8_t code = dlo < dhi ? lo : dhi < dlo ? hi : ((lo & 1) ? hi : lo);
  return sign | code;
}

float e8m0_to_float(uint8_t v) {
  if (v == 0xFF) return std::numeric_limits<float>::quiet_NaN();
  return std::ldexp(1.0f, int(v) - 127);
}

uint8_t float_to_e8m0(float f, E8M0Round mode, bool saturate) {
  const uint32_t bits = float_bits(f);
  uint32_t exp = (bits >> 23) & 0xFF;
  if (exp == 0xFF) return 0xFF;  // NaN, infinity
  bool up = false;
  switch (mode) {
    case E8M0Round::Up: up = (bits & 0x7FFFFFu) != 0; break;
    case E8M0Round::Down: break;
    case E8M0Round::Nearest: {
      // Guard bit (the mantissa's top bit: m >= 0.5) decides; for normal numbers
      // a tie (m == 0.5) rounds up. Float32 subnormals, as in the reference, round
      // up only past the tie.
      const bool g = bits & 0x400000u, sticky = (bits & 0x3FFFFFu) != 0;
      up = g && (sticky || exp > 0);
      break;
    }
  }
  if (up && !(saturate && exp == 0xFE)) ++exp;
  return uint8_t(exp);  // 0xFE + 1 is 0xFF: NaN when not saturating
}

}  // namespace deepep
