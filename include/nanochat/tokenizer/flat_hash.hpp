#pragma once
// Open-addressing hash maps for the hot lookups of encoding and training (pair → merged token,
// bytes → token, piece → count): a linear probe over one flat array beats std::unordered_map's
// node chasing severalfold.

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nanochat::tokenizer {

inline std::uint64_t mix_hash(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

inline std::uint64_t hash_bytes(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ULL ^ s.size();
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t w = 0;
    for (std::size_t k = 0; k < 8; ++k) w |= std::uint64_t{static_cast<unsigned char>(s[i + k])} << (8 * k);
    h = mix_hash(h ^ w);
  }
  std::uint64_t w = 0;
  for (std::size_t k = 0; i + k < s.size(); ++k) w |= std::uint64_t{static_cast<unsigned char>(s[i + k])} << (8 * k);
  return mix_hash(h ^ w);
}

// Map from a 64-bit key (never all ones: keys are pairs of token ids below 2^31) to a value;
// grows to stay at most half full.
template <class V>
class U64Map {
 public:
  U64Map() { reserve(0); }

  void reserve(std::size_t expected) {
    const std::size_t cap = std::bit_ceil(expected * 2 + 16);
    if (cap <= slots_.size()) return;
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
    for (Slot& s : old) {
      if (s.key != kEmpty) slots_[probe(s.key)] = std::move(s);
    }
  }

  const V* find(std::uint64_t key) const {
    const Slot& s = slots_[probe(key)];
    return s.key == key ? &s.value : nullptr;
  }
  V* find(std::uint64_t key) { return const_cast<V*>(std::as_const(*this).find(key)); }

  // The value of key, default-constructed when new.
  V& operator[](std::uint64_t key) {
    std::size_t i = probe(key);
    if (slots_[i].key == key) return slots_[i].value;
    if (2 * (size_ + 1) > slots_.size()) {
      reserve(size_ + 1);
      i = probe(key);
    }
    ++size_;
    slots_[i].key = key;
    return slots_[i].value;
  }

  std::size_t size() const { return size_; }

  template <class Fn>  // fn(key, value&) for every entry
  void for_each(Fn&& fn) {
    for (Slot& s : slots_) {
      if (s.key != kEmpty) fn(s.key, s.value);
    }
  }

 private:
  static constexpr std::uint64_t kEmpty = ~std::uint64_t{0};
  struct Slot {
    std::uint64_t key = kEmpty;
    V value{};
  };
  std::size_t probe(std::uint64_t key) const {
    std::size_t i = mix_hash(key) & mask_;
    while (slots_[i].key != kEmpty && slots_[i].key != key) i = (i + 1) & mask_;
    return i;
  }
  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

// Map from byte strings (owned elsewhere, outliving the map) to 32-bit values.
class BytesMap {
 public:
  explicit BytesMap(std::size_t expected = 0) { reset(expected); }

  void reset(std::size_t expected) {
    const std::size_t cap = std::bit_ceil(expected * 2 + 16);
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
  }

  // Returns false when the key was already present (its value is kept).
  bool insert(std::string_view key, std::uint32_t value) {
    const std::uint64_t h = hash_bytes(key);
    std::size_t i = h & mask_;
    while (slots_[i].value != kMissing) {
      if (slots_[i].hash == h && slots_[i].key == key) return false;
      i = (i + 1) & mask_;
    }
    slots_[i] = {h, key, value};
    return true;
  }

  std::uint32_t find(std::string_view key) const {
    const std::uint64_t h = hash_bytes(key);
    std::size_t i = h & mask_;
    while (slots_[i].value != kMissing) {
      if (slots_[i].hash == h && slots_[i].key == key) return slots_[i].value;
      i = (i + 1) & mask_;
    }
    return kMissing;
  }

  static constexpr std::uint32_t kMissing = 0xFFFFFFFFu;

 private:
  struct Slot {
    std::uint64_t hash = 0;
    std::string_view key;
    std::uint32_t value = kMissing;
  };
  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
};

// Counts of byte strings, the trainer's piece counter. Keys are copied into large blocks owned by
// the counter, so callers pass transient views and no string is allocated per key.
class BytesCounter {
 public:
  BytesCounter() { rehash(1024); }

  void add(std::string_view key, std::int64_t n) {  // n > 0: a zero count marks an empty slot
    const std::uint64_t h = hash_bytes(key);
    std::size_t i = h & mask_;
    while (slots_[i].count != 0) {
      if (slots_[i].hash == h && slots_[i].key == key) {
        slots_[i].count += n;
        return;
      }
      i = (i + 1) & mask_;
    }
    slots_[i] = {h, store(key), n};
    if (2 * ++size_ > slots_.size()) rehash(slots_.size() * 2);
  }

  std::size_t size() const { return size_; }

  template <class Fn>  // fn(std::string_view key, std::int64_t count) for every key
  void for_each(Fn&& fn) const {
    for (const Slot& s : slots_) {
      if (s.count != 0) fn(s.key, s.count);
    }
  }

 private:
  static constexpr std::size_t kBlockSize = std::size_t{1} << 20;
  struct Slot {
    std::uint64_t hash = 0;
    std::string_view key;
    std::int64_t count = 0;
  };

  std::string_view store(std::string_view key) {
    if (key.size() > block_left_) {
      const std::size_t size = std::max(kBlockSize, key.size());
      blocks_.push_back(std::make_unique<char[]>(size));
      block_next_ = blocks_.back().get();
      block_left_ = size;
    }
    std::copy(key.begin(), key.end(), block_next_);
    const std::string_view stored(block_next_, key.size());
    block_next_ += key.size();
    block_left_ -= key.size();
    return stored;
  }

  void rehash(std::size_t capacity) {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
    for (const Slot& s : old) {
      if (s.count == 0) continue;
      std::size_t i = s.hash & mask_;
      while (slots_[i].count != 0) i = (i + 1) & mask_;
      slots_[i] = s;
    }
  }

  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
  std::vector<std::unique_ptr<char[]>> blocks_;
  char* block_next_ = nullptr;
  std::size_t block_left_ = 0;
};

}  // namespace nanochat::tokenizer
