#pragma once
// KV cache (spec §7.1): per layer, keys and values [rows, KV heads, capacity, head dim], after
// rotary and QK-norm, of element type E: the compute dtype, or bf16 (rounded to nearest even as
// they are written, by the backend's convert op: half the memory and half the bytes a decode step
// reads). All rows share one position count. Capacity grows in
// steps of 1024 positions (old contents kept), so the decode loop only reallocates when the
// cache is full; reserve() up front avoids even that. A batch-1 prefill is broadcast into the
// other rows with broadcast_row0, so a prompt is prefilled once for N samples.

#include <array>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "nanochat/core/config.hpp"
#include "nanochat/core/tensor.hpp"

namespace nanochat {

// One head's `dim` values of one position, copied or rounded into the cache's element type E
// (shared with the slot pool, kv_slot_pool.hpp).
template <class E, class T, Backend B>
void write_cached_head(B& backend, E* to, const T* from, std::int64_t dim) {
  if constexpr (std::is_same_v<E, T>) {
    backend.copy_on_device(to, from, static_cast<std::size_t>(dim) * sizeof(T));
  } else {
    convert(backend, TensorView<E, B>(to, Shape{dim}), TensorView<const T, B>(from, Shape{dim}));
  }
}

template <Config C, Backend B, class E = typename C::element_type>
class KvCache {
 public:
  using T = typename C::element_type;  // what insert() takes
  using element_type = E;              // what the cache holds
  static constexpr std::int64_t growth_step = 1024;

  KvCache(B& backend, std::int64_t rows, std::int64_t capacity = growth_step)
      : backend_(&backend), rows_(rows) {
    NANOCHAT_CHECK(rows > 0, "KvCache: rows must be positive, got ", rows);
    allocate(round_up(capacity < 1 ? 1 : capacity));
  }

  std::int64_t rows() const { return rows_; }
  std::int64_t position() const { return pos_; }
  std::int64_t capacity() const { return capacity_; }
  void reset() { pos_ = 0; }

  // Makes room for `positions` in total, growing to the next multiple of 1024 past it.
  void reserve(std::int64_t positions) {
    if (positions <= capacity_) return;
    std::array<Tensor<E, B>, C::depth> old_k = std::move(k_), old_v = std::move(v_);
    const std::int64_t old_capacity = capacity_;
    allocate(round_up(positions + growth_step));
    const std::size_t used = static_cast<std::size_t>(pos_ * C::head_dim) * sizeof(E);
    if (used == 0) return;
    for (std::size_t l = 0; l < C::depth; ++l)
      for (std::int64_t rh = 0; rh < rows_ * C::n_kv_head; ++rh) {
        const std::int64_t from = rh * old_capacity * C::head_dim, to = rh * capacity_ * C::head_dim;
        backend_->copy_on_device(k_[l].data() + to, old_k[l].data() + from, used);
        backend_->copy_on_device(v_[l].data() + to, old_v[l].data() + from, used);
      }
  }

  // Writes k, v [rows_used, Tadd, Hkv, D] of layer l at positions [pos, pos + Tadd). The caller
  // reserves first and calls advance(Tadd) after the last layer.
  void insert(int l, TensorView<const T, B> k, TensorView<const T, B> v) {
    const Shape want{k.size(0), k.size(1), C::n_kv_head, C::head_dim};
    check_shape(k.shape(), want, "KvCache::insert: k");
    check_shape(v.shape(), want, "KvCache::insert: v");
    NANOCHAT_CHECK(k.is_contiguous() && v.is_contiguous(), "KvCache::insert: k and v must be contiguous");
    const std::int64_t used_rows = k.size(0), tadd = k.size(1);
    NANOCHAT_CHECK(used_rows <= rows_, "KvCache::insert: ", used_rows, " rows exceed the cache's ", rows_);
    NANOCHAT_CHECK(pos_ + tadd <= capacity_, "KvCache::insert: positions up to ", pos_ + tadd,
                   " exceed the capacity ", capacity_, " (reserve first)");
    const auto layer = static_cast<std::size_t>(l);
    for (std::int64_t r = 0; r < used_rows; ++r)
      for (std::int64_t t = 0; t < tadd; ++t)
        for (std::int64_t h = 0; h < C::n_kv_head; ++h) {
          const std::int64_t from = ((r * tadd + t) * C::n_kv_head + h) * C::head_dim;
          const std::int64_t to = ((r * C::n_kv_head + h) * capacity_ + pos_ + t) * C::head_dim;
          write_head(k_[layer].data() + to, k.data() + from);
          write_head(v_[layer].data() + to, v.data() + from);
        }
  }

  void advance(std::int64_t tadd) { pos_ += tadd; }

  // Copies row 0's cached positions into rows [1, rows): one prefill serves every sample.
  void broadcast_row0(std::int64_t rows) {
    NANOCHAT_CHECK(rows >= 1 && rows <= rows_, "KvCache::broadcast_row0: ", rows,
                   " rows, the cache has ", rows_);
    const std::size_t used = static_cast<std::size_t>(pos_ * C::head_dim) * sizeof(E);
    const std::int64_t head_stride = capacity_ * C::head_dim;
    for (std::size_t l = 0; l < C::depth; ++l)
      for (std::int64_t r = 1; r < rows; ++r)
        for (std::int64_t h = 0; h < C::n_kv_head; ++h) {
          const std::int64_t to = (r * C::n_kv_head + h) * head_stride, from = h * head_stride;
          backend_->copy_on_device(k_[l].data() + to, k_[l].data() + from, used);
          backend_->copy_on_device(v_[l].data() + to, v_[l].data() + from, used);
        }
  }

  TensorView<const E, B> keys(int l) const { return k_[static_cast<std::size_t>(l)].view(); }
  TensorView<const E, B> values(int l) const { return v_[static_cast<std::size_t>(l)].view(); }
  std::size_t bytes() const { return 2 * C::depth * k_[0].bytes(); }

 private:
  static std::int64_t round_up(std::int64_t n) { return (n + growth_step - 1) / growth_step * growth_step; }

  void write_head(E* to, const T* from) { write_cached_head(*backend_, to, from, C::head_dim); }

  void allocate(std::int64_t capacity) {
    capacity_ = capacity;
    for (std::size_t l = 0; l < C::depth; ++l) {
      k_[l] = Tensor<E, B>(*backend_, {rows_, C::n_kv_head, capacity, C::head_dim});
      v_[l] = Tensor<E, B>(*backend_, {rows_, C::n_kv_head, capacity, C::head_dim});
    }
  }

  B* backend_;
  std::int64_t rows_;
  std::int64_t capacity_ = 0;
  std::int64_t pos_ = 0;
  std::array<Tensor<E, B>, C::depth> k_, v_;
};

}  // namespace nanochat
