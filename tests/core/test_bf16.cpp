// bf16 conversions: an independent table of edge cases, and (with the CUDA headers) bit-for-bit
// agreement with __float2bfloat16_rn / __bfloat162float over every bf16 value and a sweep of
// floats that covers every rounding situation.

#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "nanochat/core/bf16.hpp"

#if defined(NANOCHAT_TEST_CUDA_BF16)
#include <cuda_bf16.h>
#endif

using nanochat::bf16;

namespace {
std::uint16_t bits_of(float f) { return bf16(f).bits; }
float from_bits32(std::uint32_t u) { return std::bit_cast<float>(u); }
}  // namespace

TEST_CASE("bf16 rounds to nearest, ties to even") {
  CHECK(bits_of(1.0f) == 0x3f80);
  CHECK(bits_of(from_bits32(0x3f808000)) == 0x3f80);  // tie, even below: stay
  CHECK(bits_of(from_bits32(0x3f818000)) == 0x3f82);  // tie, odd below: round up to even
  CHECK(bits_of(from_bits32(0x3f808001)) == 0x3f81);  // above the tie: up
  CHECK(bits_of(from_bits32(0x3f807fff)) == 0x3f80);  // below the tie: down
  CHECK(bits_of(-2.5f) == 0xc020);
  CHECK(bits_of(from_bits32(0x3fffffff)) == 0x4000);  // carry into the exponent
}

TEST_CASE("bf16 keeps zeros, subnormals, infinities and NaN") {
  CHECK(bits_of(0.0f) == 0x0000);
  CHECK(bits_of(-0.0f) == 0x8000);
  CHECK(bits_of(from_bits32(0x00010000)) == 0x0001);  // smallest bf16 subnormal
  CHECK(bits_of(from_bits32(0x00008000)) == 0x0000);  // tie to even (zero)
  CHECK(bits_of(std::numeric_limits<float>::infinity()) == 0x7f80);
  CHECK(bits_of(-std::numeric_limits<float>::infinity()) == 0xff80);
  CHECK(bits_of(std::numeric_limits<float>::max()) == 0x7f80);  // rounds up past the largest
  CHECK(bits_of(from_bits32(0x7f7f7fff)) == 0x7f7f);            // largest finite stays finite
  const std::uint16_t nan = bits_of(std::numeric_limits<float>::quiet_NaN());
  CHECK((nan & 0x7f80) == 0x7f80);
  CHECK((nan & 0x007f) != 0);
  // A signalling NaN whose payload sits only in the dropped bits must not become infinity.
  const std::uint16_t snan = bits_of(from_bits32(0x7f800001));
  CHECK(std::isnan(static_cast<float>(bf16::from_bits(snan))));
  CHECK((bits_of(from_bits32(0xff800001)) >> 15) == 1);  // sign kept
}

TEST_CASE("bf16 -> float is exact and round-trips every bf16") {
  for (std::uint32_t b = 0; b < 0x10000; ++b) {
    const bf16 v = bf16::from_bits(static_cast<std::uint16_t>(b));
    const float f = static_cast<float>(v);
    REQUIRE(std::bit_cast<std::uint32_t>(f) == b << 16);
    if (!std::isnan(f)) REQUIRE(bf16(f).bits == b);
  }
  CHECK(static_cast<float>(std::numeric_limits<bf16>::epsilon()) == 0.0078125f);
}

#if defined(NANOCHAT_TEST_CUDA_BF16)
TEST_CASE("bf16 matches CUDA's __nv_bfloat16 bit for bit") {
  static_assert(sizeof(__nv_bfloat16) == sizeof(bf16) && alignof(__nv_bfloat16) == alignof(bf16));
  // Every high half with low halves that cover: exact, just below / at / above the tie, and
  // assorted payloads (the rounding decision depends only on these bits and the kept LSB).
  const std::uint32_t lows[] = {0x0000, 0x0001, 0x3fff, 0x7fff, 0x8000, 0x8001, 0xbfff, 0xffff,
                                0x1234, 0xedcb};
  std::uint64_t checked = 0;
  for (std::uint32_t high = 0; high < 0x10000; ++high) {
    for (std::uint32_t low : lows) {
      const float f = from_bits32(high << 16 | low);
      const __nv_bfloat16 theirs = __float2bfloat16_rn(f);
      const auto their_bits = std::bit_cast<std::uint16_t>(theirs);
      const std::uint16_t ours = bf16(f).bits;
      if (std::isnan(f)) {
        REQUIRE(std::isnan(static_cast<float>(bf16::from_bits(ours))));
        REQUIRE(std::isnan(__bfloat162float(theirs)));
      } else {
        REQUIRE(ours == their_bits);
      }
      ++checked;
    }
    const bf16 b = bf16::from_bits(static_cast<std::uint16_t>(high));
    const __nv_bfloat16 nv = std::bit_cast<__nv_bfloat16>(b);
    const float theirs = __bfloat162float(nv), ours = static_cast<float>(b);
    REQUIRE(std::memcmp(&theirs, &ours, 4) == 0);
  }
  CHECK(checked == 655360);
}
#endif
