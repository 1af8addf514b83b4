#pragma once
// Runtime names for the element types a Tensor can hold; files (safetensors, checkpoints) and
// error messages speak in these, code speaks in the C++ types.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include "nanochat/core/bf16.hpp"

namespace nanochat {

enum class DType : std::uint8_t { f32, bf16, i32, i64, u8 };

template <class T>
inline constexpr bool is_element_type_v =
    std::is_same_v<T, float> || std::is_same_v<T, bf16> || std::is_same_v<T, std::int32_t> ||
    std::is_same_v<T, std::int64_t> || std::is_same_v<T, std::uint8_t>;

template <class T>
constexpr DType dtype_of() {
  using U = std::remove_const_t<T>;
  static_assert(is_element_type_v<U>,
                "Tensor element types are float, bf16, int32_t, int64_t and uint8_t");
  if constexpr (std::is_same_v<U, float>) return DType::f32;
  else if constexpr (std::is_same_v<U, bf16>) return DType::bf16;
  else if constexpr (std::is_same_v<U, std::int32_t>) return DType::i32;
  else if constexpr (std::is_same_v<U, std::int64_t>) return DType::i64;
  else return DType::u8;
}

constexpr std::size_t size_of(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::bf16: return 2;
    case DType::i32: return 4;
    case DType::i64: return 8;
    case DType::u8: return 1;
  }
  return 0;
}

// The names safetensors uses, so file headers and messages agree.
constexpr std::string_view name_of(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::bf16: return "BF16";
    case DType::i32: return "I32";
    case DType::i64: return "I64";
    case DType::u8: return "U8";
  }
  return "?";
}

}  // namespace nanochat
