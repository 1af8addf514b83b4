#pragma once
// bfloat16: the top 16 bits of an IEEE binary32. Same size, alignment and bit pattern as
// CUDA's __nv_bfloat16, so buffers move between host and device without conversion.
// float -> bf16 rounds to nearest, ties to even; NaN stays NaN (quiet, sign kept); overflow
// rounds to infinity exactly as the hardware conversion does.

#include <bit>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "nanochat/core/macros.hpp"

namespace nanochat {

struct bf16 {
  std::uint16_t bits;

  bf16() = default;
  NANOCHAT_HOST_DEVICE constexpr explicit bf16(float value) : bits(round_to_bits(value)) {}
  NANOCHAT_HOST_DEVICE constexpr explicit operator float() const {
    return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16);
  }

  NANOCHAT_HOST_DEVICE static constexpr bf16 from_bits(std::uint16_t raw) {
    bf16 b{};
    b.bits = raw;
    return b;
  }

  NANOCHAT_HOST_DEVICE static constexpr std::uint16_t round_to_bits(float value) {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(value);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
      return static_cast<std::uint16_t>((u >> 16) | 0x0040u);  // quiet the NaN, keep sign
    }
    // Adding 0x7fff plus the lowest kept bit rounds half to even; a carry into the exponent
    // is correct (it is the next binade, or infinity from the largest finite values).
    const std::uint32_t lsb = (u >> 16) & 1u;
    return static_cast<std::uint16_t>((u + 0x7fffu + lsb) >> 16);
  }

  friend NANOCHAT_HOST_DEVICE constexpr bool operator==(bf16 a, bf16 b) {
    return static_cast<float>(a) == static_cast<float>(b);
  }
};

static_assert(sizeof(bf16) == 2 && alignof(bf16) == 2, "bf16 must match __nv_bfloat16's layout");
static_assert(std::is_trivially_copyable_v<bf16>);

// Rounds a float to the nearest bf16 and back; the precision loss of storing in bf16.
NANOCHAT_HOST_DEVICE constexpr float round_to_bf16(float value) {
  return static_cast<float>(bf16(value));
}

// dst = T(value): a float stored as it is, or rounded to bf16. Written through the bits, which
// GCC 12 vectorises in an `omp simd` loop; assigning a bf16 temporary it does not.
NANOCHAT_HOST_DEVICE constexpr void store_as(bf16& dst, float value) { dst.bits = bf16::round_to_bits(value); }
NANOCHAT_HOST_DEVICE constexpr void store_as(float& dst, float value) { dst = value; }

}  // namespace nanochat

template <>
class std::numeric_limits<nanochat::bf16> {
 public:
  static constexpr bool is_specialized = true;
  static constexpr bool has_infinity = true;
  static constexpr bool has_quiet_NaN = true;
  static constexpr int digits = 8;
  static constexpr nanochat::bf16 epsilon() { return nanochat::bf16::from_bits(0x3c00); }  // 2^-7
  static constexpr nanochat::bf16 min() { return nanochat::bf16::from_bits(0x0080); }
  static constexpr nanochat::bf16 lowest() { return nanochat::bf16::from_bits(0xff7f); }
  static constexpr nanochat::bf16 max() { return nanochat::bf16::from_bits(0x7f7f); }
  static constexpr nanochat::bf16 infinity() { return nanochat::bf16::from_bits(0x7f80); }
  static constexpr nanochat::bf16 quiet_NaN() { return nanochat::bf16::from_bits(0x7fc0); }
};
