#pragma once
// A KV cache as a pool of slots for continuous batching: per layer, keys and values
// [slots, KV heads, max positions, head dim] (after rotary and QK-norm, like KvCache, and of
// element type E: the compute dtype or bf16), allocated once at construction, since a server
// plans its memory from the number of slots and the context rather than growing under load.
// Each slot holds one sequence and its own length; a step writes any tokens of any slots at
// their own positions, a slot is freed (length 0) and reused, and a slot's first positions can be
// copied into another (a shared prompt prefix computed once).

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "nanochat/core/config.hpp"
#include "nanochat/core/tensor.hpp"
#include "nanochat/model/kv_cache.hpp"

namespace nanochat {

template <Config C, Backend B, class E = typename C::element_type>
class KvSlotPool {
 public:
  using T = typename C::element_type;  // what insert() takes
  using element_type = E;              // what the cache holds

  KvSlotPool(B& backend, std::int64_t slots, std::int64_t positions)
      : backend_(&backend), slots_(slots), capacity_(positions), lengths_(static_cast<std::size_t>(slots), 0) {
    NANOCHAT_CHECK(slots > 0 && positions > 0, "KvSlotPool: slots and positions must be positive, got ", slots,
                   " and ", positions);
    for (std::size_t l = 0; l < C::depth; ++l) {
      k_[l] = Tensor<E, B>(backend, {slots, C::n_kv_head, positions, C::head_dim});
      v_[l] = Tensor<E, B>(backend, {slots, C::n_kv_head, positions, C::head_dim});
    }
  }

  std::int64_t slots() const { return slots_; }
  std::int64_t capacity() const { return capacity_; }
  std::int64_t length(std::int64_t slot) const { return lengths_[index(slot)]; }
  void free(std::int64_t slot) { lengths_[index(slot)] = 0; }
  // Writes k, v [N, Hkv, D] of layer l: token i at position positions[i] of slot slots[i]. The
  // caller checks the positions and calls set_length after the last layer.
  void insert(int l, TensorView<const T, B> k, TensorView<const T, B> v, std::span<const std::int32_t> slots,
              std::span<const std::int32_t> positions) {
    const auto n = static_cast<std::int64_t>(slots.size());
    check_shape(k.shape(), Shape{n, C::n_kv_head, C::head_dim}, "KvSlotPool::insert: k");
    check_shape(v.shape(), Shape{n, C::n_kv_head, C::head_dim}, "KvSlotPool::insert: v");
    const auto layer = static_cast<std::size_t>(l);
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t h = 0; h < C::n_kv_head; ++h) {
        const std::int64_t from = (i * C::n_kv_head + h) * C::head_dim;
        const std::int64_t to =
            ((std::int64_t{slots[static_cast<std::size_t>(i)]} * C::n_kv_head + h) * capacity_ +
             positions[static_cast<std::size_t>(i)]) * C::head_dim;
        write_cached_head(*backend_, k_[layer].data() + to, k.data() + from, C::head_dim);
        write_cached_head(*backend_, v_[layer].data() + to, v.data() + from, C::head_dim);
      }
  }

  void set_length(std::int64_t slot, std::int64_t length) {
    NANOCHAT_CHECK(length >= 0 && length <= capacity_, "KvSlotPool: length ", length, " outside [0, ",
                   capacity_, "]");
    lengths_[index(slot)] = length;
  }

  // Slot `to` gets the first `positions` cached positions of slot `from` (and that length).
  void copy_prefix(std::int64_t from, std::int64_t to, std::int64_t positions) {
    NANOCHAT_CHECK(positions >= 0 && positions <= length(from), "KvSlotPool::copy_prefix: slot ", from, " has ",
                   length(from), " positions, asked for ", positions);
    if (from != to) {
      const std::size_t bytes = static_cast<std::size_t>(positions * C::head_dim) * sizeof(E);
      const std::int64_t head_stride = capacity_ * C::head_dim;
      for (std::size_t l = 0; l < C::depth; ++l)
        for (std::int64_t h = 0; h < C::n_kv_head; ++h) {
          const std::int64_t dst = (to * C::n_kv_head + h) * head_stride, src = (from * C::n_kv_head + h) * head_stride;
          backend_->copy_on_device(k_[l].data() + dst, k_[l].data() + src, bytes);
          backend_->copy_on_device(v_[l].data() + dst, v_[l].data() + src, bytes);
        }
    }
    lengths_[index(to)] = positions;
  }

  TensorView<const E, B> keys(int l) const { return k_[static_cast<std::size_t>(l)].view(); }
  TensorView<const E, B> values(int l) const { return v_[static_cast<std::size_t>(l)].view(); }
  std::size_t bytes() const { return 2 * C::depth * k_[0].bytes(); }

 private:
  std::size_t index(std::int64_t slot) const {
    NANOCHAT_CHECK(slot >= 0 && slot < slots_, "KvSlotPool: slot ", slot, " outside [0, ", slots_, ")");
    return static_cast<std::size_t>(slot);
  }

  B* backend_;
  std::int64_t slots_, capacity_;
  std::vector<std::int64_t> lengths_;
  std::array<Tensor<E, B>, C::depth> k_, v_;
};

}  // namespace nanochat
