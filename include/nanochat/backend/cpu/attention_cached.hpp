#pragma once
// Attention of a chunk of new queries over a KV cache on the Cpu backend (spec §2.3 with a
// cache): query t of a Tq-token chunk sits at position Tk - Tq + t and sees keys [0, Tk - Tq + t].
// This one rule covers nanochat's three cases: Tq == 1 attends to every cached key, Tq == Tk is
// the ordinary causal mask, 1 < Tq < Tk sees the whole prefix and is causal inside the chunk.
// Online softmax over blocks of keys (one pass; the running max and sum are updated once per
// block) needs no scratch but a block of scores on the stack, so nothing is allocated per step.
// The cache holds float or bf16 (half the bytes to read, which is what batched decode waits on:
// docs/benchmarks.md, "Engine"); bf16 keys and values are widened exactly as they are read, so
// the result is this same attention over the rounded K and V. Scores and value sums take four
// keys at a time: four independent dot products, and one read-modify-write of the output
// accumulator per four value rows.
// Layouts: q, out [R, Tq, H, D]; k_cache, v_cache [R, Hkv, capacity, D] with Tk <= capacity.
// A second form serves a pool of cache slots, each at its own position (continuous batching):
// q, out [N, H, D] are N tokens of any slots, token i belongs to slot slots[i], sits at position
// positions[i] and sees that slot's keys [0, positions[i]]. Both run the same per-query loop.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "nanochat/backend/cpu/avx512_vector.hpp"
#include "nanochat/backend/cpu/cpu.hpp"
#include "nanochat/core/bf16.hpp"
#include "nanochat/core/simd_math.hpp"

namespace nanochat::cpu {

inline constexpr std::int64_t attention_cached_max_head_dim = 512;
inline constexpr std::int64_t attention_key_block = 128;  // keys whose scores are held at once

namespace attention_cached_detail {

inline constexpr std::int64_t keys_at_once = 4;

// n <= vec_lanes cached elements as floats. With AVX-512 a bf16 vector widens in one
// zero-extension and a shift (GCC 12's generic conversion, tuned for this CPU as znver3, splits
// it into four instructions and a second load).
template <class E>
FloatVec load_cached(const E* p, std::int64_t n = vec_lanes) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<E, bf16>) return avx512::load16(p, avx512::first_lanes(n));
#endif
  return load_vec(p, n);
}

// s[j] = scale * (the sum of acc[j]'s lanes), j < N. With AVX-512 the four sums of a group of
// keys are formed together in one shuffle tree rather than one lane at a time.
template <std::int64_t N>
void store_sums(const FloatVec (&acc)[N], float scale, float* s) {
#if defined(__AVX512F__)
  if constexpr (N == 4) {
    using avx512::all16, avx512::all8;  // the zero-masking forms: GCC bug 105593 (avx512_vector.hpp)
    const __m512 a01 = _mm512_add_ps(_mm512_maskz_unpacklo_ps(all16, acc[0], acc[1]),
                                     _mm512_maskz_unpackhi_ps(all16, acc[0], acc[1]));
    const __m512 a23 = _mm512_add_ps(_mm512_maskz_unpacklo_ps(all16, acc[2], acc[3]),
                                     _mm512_maskz_unpackhi_ps(all16, acc[2], acc[3]));
    // Each 128-bit lane: partial sums of keys 0, 1, 2, 3 over its four elements.
    const __m512d d01 = _mm512_castps_pd(a01), d23 = _mm512_castps_pd(a23);
    __m512 t = _mm512_add_ps(_mm512_castpd_ps(_mm512_maskz_unpacklo_pd(all8, d01, d23)),
                             _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(all8, d01, d23)));
    t = _mm512_add_ps(t, _mm512_maskz_shuffle_f32x4(all16, t, t, _MM_SHUFFLE(1, 0, 3, 2)));
    t = _mm512_add_ps(t, _mm512_maskz_shuffle_f32x4(all16, t, t, _MM_SHUFFLE(2, 3, 0, 1)));
    // Lane j of the first 128 bits: the sum for key j.
    _mm_storeu_ps(s, _mm_mul_ps(_mm512_maskz_extractf32x4_ps(0xF, t, 0), _mm_set1_ps(scale)));
    return;
  }
#endif
  for (std::int64_t j = 0; j < N; ++j) s[j] = reduce_add(acc[j]) * scale;
}

// Requests the cache lines prefetch_bytes past the `bytes` at rows (the rows about to be read
// then). The hardware prefetcher alone left decode waiting on memory: attention over a d8 bf16
// cache at batch 8 (8 layers, 288 keys, one thread) took 1.4-1.5 ms with this, 2.1 ms without; 4
// and 16 KB ahead were no better. Past the end of the cache it requests lines nobody reads, which
// costs nothing (a prefetch never faults).
inline constexpr std::int64_t prefetch_bytes = 8192;

template <class E>
void prefetch_ahead(const E* rows, std::int64_t count) {
  const char* ahead = reinterpret_cast<const char*>(rows) + prefetch_bytes;
  for (std::int64_t b = 0; b < count * static_cast<std::int64_t>(sizeof(E)); b += 64) __builtin_prefetch(ahead + b);
}

// s[j] = scale * q . k_j for the N key rows k_j = k + j * dim.
template <std::int64_t N, class E>
void dot_rows(const float* q, const E* k, std::int64_t dim, float scale, float* s) {
  FloatVec acc[N] = {};
  std::int64_t i = 0;
  for (; i + vec_lanes <= dim; i += vec_lanes) {
    const FloatVec qv = load_vec(q + i);
    for (std::int64_t j = 0; j < N; ++j) acc[j] += qv * load_cached(k + j * dim + i);
  }
  if (i < dim) {
    const FloatVec qv = load_vec(q + i, dim - i);
    for (std::int64_t j = 0; j < N; ++j) acc[j] += qv * load_cached(k + j * dim + i, dim - i);
  }
  store_sums(acc, scale, s);
}

// acc[0, dim) += sum_j p[j] v_j over the N value rows v_j = v + j * dim.
template <std::int64_t N, class E>
void add_rows(float* acc, const float* p, const E* v, std::int64_t dim) {
  std::int64_t i = 0;
  for (; i + vec_lanes <= dim; i += vec_lanes) {
    FloatVec a = load_vec(acc + i);
    for (std::int64_t j = 0; j < N; ++j) a += p[j] * load_cached(v + j * dim + i);
    store_vec(acc + i, a);
  }
  if (i < dim) {
    FloatVec a = load_vec(acc + i, dim - i);
    for (std::int64_t j = 0; j < N; ++j) a += p[j] * load_cached(v + j * dim + i, dim - i);
    store_vec(acc + i, a, dim - i);
  }
}

// One query vector over the first `visible` keys and values of one (slot, KV head) of the cache.
template <class E>
void attend_query(const float* qv, const E* kb, const E* vb, std::int64_t visible, std::int64_t dim, float scale,
                  float* o) {
  float acc[attention_cached_max_head_dim];
  for (std::int64_t i = 0; i < dim; ++i) acc[i] = 0.0f;
  float max = -std::numeric_limits<float>::infinity(), sum = 0.0f;
  for (std::int64_t j0 = 0; j0 < visible; j0 += attention_key_block) {
    const std::int64_t n = std::min(attention_key_block, visible - j0);
    // The block's scores are independent dot products (no chain through the running
    // maximum), and their exponentials are taken as vectors.
    float p[attention_key_block];
    std::int64_t j = 0;
    for (; j + keys_at_once <= n; j += keys_at_once) {
      prefetch_ahead(kb + (j0 + j) * dim, keys_at_once * dim);
      dot_rows<keys_at_once>(qv, kb + (j0 + j) * dim, dim, scale, p + j);
    }
    for (; j < n; ++j) dot_rows<1>(qv, kb + (j0 + j) * dim, dim, scale, p + j);
    const float block_max = max_of(p, n);
    if (block_max > max) {  // rescale what was accumulated under the old maximum
      const float c = std::exp(max - block_max);
      sum *= c;
#pragma omp simd
      for (std::int64_t i = 0; i < dim; ++i) acc[i] *= c;
      max = block_max;
    }
    map_vec(p, n, [max](FloatVec v) { return simd_exp(v - max); });
    sum += sum_of(p, n);
    for (j = 0; j + keys_at_once <= n; j += keys_at_once) {
      prefetch_ahead(vb + (j0 + j) * dim, keys_at_once * dim);
      add_rows<keys_at_once>(acc, p + j, vb + (j0 + j) * dim, dim);
    }
    for (; j < n; ++j) add_rows<1>(acc, p + j, vb + (j0 + j) * dim, dim);
  }
  const float inv = 1.0f / sum;
  for (std::int64_t i = 0; i < dim; ++i) o[i] = acc[i] * inv;
}

// The checks both forms share: contiguous tensors, a cache whose head dim fits q's, grouped heads.
template <class E>
void check_cache(CpuView<float> out, CpuView<const float> q, CpuView<const E> k_cache, CpuView<const E> v_cache) {
  NANOCHAT_CHECK(q.is_contiguous() && out.is_contiguous(), "attention_cached_forward: q and out must be contiguous");
  NANOCHAT_CHECK(k_cache.rank() == 4 && k_cache.is_contiguous(), "attention_cached_forward: k cache ",
                 k_cache.shape(), " must be a contiguous [R, Hkv, capacity, D] tensor");
  check_shape(out.shape(), q.shape(), "attention_cached_forward: out");
  check_shape(v_cache.shape(), k_cache.shape(), "attention_cached_forward: v cache");
  NANOCHAT_CHECK(v_cache.is_contiguous(), "attention_cached_forward: the v cache must be contiguous");
  const std::int64_t heads = q.size(q.rank() - 2), dim = q.size(q.rank() - 1), kv_heads = k_cache.size(1);
  NANOCHAT_CHECK(k_cache.size(3) == dim, "attention_cached_forward: cache ", k_cache.shape(),
                 " does not fit queries ", q.shape());
  NANOCHAT_CHECK(kv_heads > 0 && heads % kv_heads == 0, "attention_cached_forward: ", heads,
                 " query heads do not split into groups over ", kv_heads, " KV heads");
  NANOCHAT_CHECK(dim <= attention_cached_max_head_dim, "attention_cached_forward: head dim ", dim,
                 " exceeds ", attention_cached_max_head_dim);
}

}  // namespace attention_cached_detail

// E, the cache's element type: float or bf16.
template <class E>
void attention_cached_forward(Cpu&, CpuView<float> out, CpuView<const float> q, CpuView<const E> k_cache,
                              CpuView<const E> v_cache, std::int64_t keys, float scale) {
  static_assert(std::is_same_v<E, float> || std::is_same_v<E, bf16>, "the KV cache holds float or bf16");
  using namespace attention_cached_detail;
  NANOCHAT_CHECK(q.rank() == 4, "attention_cached_forward: q ", q.shape(), " must be a [R, Tq, H, D] tensor");
  check_cache(out, q, k_cache, v_cache);
  const std::int64_t rows = q.size(0), tq = q.size(1), heads = q.size(2), dim = q.size(3);
  const std::int64_t kv_heads = k_cache.size(1), capacity = k_cache.size(2);
  NANOCHAT_CHECK(k_cache.size(0) >= rows, "attention_cached_forward: cache ", k_cache.shape(),
                 " has fewer rows than queries ", q.shape());
  NANOCHAT_CHECK(tq <= keys && keys <= capacity, "attention_cached_forward: ", keys,
                 " keys must cover the ", tq, " queries and fit the cache's capacity ", capacity);
  const std::int64_t group = heads / kv_heads, prefix = keys - tq;
#pragma omp parallel for collapse(3) schedule(static)
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t h = 0; h < heads; ++h)
      for (std::int64_t t = 0; t < tq; ++t) {
        const std::int64_t base = ((r * kv_heads + h / group) * capacity) * dim;
        attend_query(q.data() + ((r * tq + t) * heads + h) * dim, k_cache.data() + base, v_cache.data() + base,
                     prefix + t + 1, dim, scale, out.data() + ((r * tq + t) * heads + h) * dim);
      }
}

// The slot-pool form: q, out [N, H, D]; token i reads slot slots[i] up to position positions[i].
template <class E>
void attention_cached_forward(Cpu&, CpuView<float> out, CpuView<const float> q, CpuView<const E> k_cache,
                              CpuView<const E> v_cache, CpuView<const std::int32_t> slots,
                              CpuView<const std::int32_t> positions, float scale) {
  static_assert(std::is_same_v<E, float> || std::is_same_v<E, bf16>, "the KV cache holds float or bf16");
  using namespace attention_cached_detail;
  NANOCHAT_CHECK(q.rank() == 3, "attention_cached_forward: q ", q.shape(), " must be a [N, H, D] tensor");
  check_cache(out, q, k_cache, v_cache);
  const std::int64_t tokens = q.size(0), heads = q.size(1), dim = q.size(2);
  const std::int64_t pool = k_cache.size(0), kv_heads = k_cache.size(1), capacity = k_cache.size(2);
  check_shape(slots.shape(), Shape{tokens}, "attention_cached_forward: slots");
  check_shape(positions.shape(), Shape{tokens}, "attention_cached_forward: positions");
  for (std::int64_t i = 0; i < tokens; ++i)
    NANOCHAT_CHECK(slots.data()[i] >= 0 && slots.data()[i] < pool && positions.data()[i] >= 0 &&
                       positions.data()[i] < capacity,
                   "attention_cached_forward: token ", i, " at slot ", slots.data()[i], " position ",
                   positions.data()[i], " is outside the cache ", k_cache.shape());
  const std::int64_t group = heads / kv_heads;
#pragma omp parallel for collapse(2) schedule(static)
  for (std::int64_t i = 0; i < tokens; ++i)
    for (std::int64_t h = 0; h < heads; ++h) {
      const std::int64_t base = ((slots.data()[i] * kv_heads + h / group) * capacity) * dim;
      attend_query(q.data() + (i * heads + h) * dim, k_cache.data() + base, v_cache.data() + base,
                   std::int64_t{positions.data()[i]} + 1, dim, scale, out.data() + (i * heads + h) * dim);
    }
}

}  // namespace nanochat::cpu
