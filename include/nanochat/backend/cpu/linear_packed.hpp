#pragma once
// A Linear weight packed once for the Cpu's product of many rows: pack_linear(cpu, w) keeps the
// weight's view (the streaming kernel of linear_small.hpp reads it as it is, for up to
// linear_small_rows rows) and, where this machine runs it (prepacked::runs), w laid out as the
// AVX-512 GEMM's panels (gemm_prepacked.hpp), so a step of more rows skips packing the whole
// matrix on every call. linear_forward on it gives the bits linear_forward on the view gives.
// The weights must not change while it lives (a served model's); it costs the weight's bytes again.

#include <cstdint>
#include <type_traits>

#include "nanochat/backend/cpu/cpu.hpp"
#include "nanochat/backend/cpu/gemm.hpp"
#include "nanochat/backend/cpu/gemm_prepacked.hpp"
#include "nanochat/backend/cpu/linear_small.hpp"
#include "nanochat/core/bf16.hpp"
#include "nanochat/core/gemm_shape.hpp"

namespace nanochat::cpu {

template <class W>
class PackedLinear {
  static_assert(std::is_same_v<W, float> || std::is_same_v<W, bf16>, "PackedLinear: weights are float or bf16");

 public:
  PackedLinear() = default;
  PackedLinear(Cpu& cpu, CpuView<const W> w) : weight_(w) {
    NANOCHAT_CHECK(w.rank() == 2 && w.is_contiguous(), "pack_linear: the weight ", w.shape(),
                   " must be a contiguous matrix");
#if defined(NANOCHAT_X86_KERNELS)
    if (!prepacked::runs<W>()) return;
    const std::int64_t elements = prepacked::packed_elements<W>(w.size(0), w.size(1));
    panels_ = cpu.allocate(static_cast<std::size_t>(elements) * sizeof(prepacked::panel_t<W>));
    prepacked::pack_weight(w.data(), w.size(1), w.size(0), w.size(1),
                            static_cast<prepacked::panel_t<W>*>(panels_.data()));
    bytes_ = static_cast<std::size_t>(elements) * sizeof(prepacked::panel_t<W>);
#else
    (void)cpu;
#endif
  }

  CpuView<const W> weight() const { return weight_; }
  // Bytes of the packed copy (0 where this machine multiplies the view as it is).
  std::size_t bytes() const { return bytes_; }

  // The panels (prepacked::panel_t<W>), or null where none were packed.
  const void* packed() const { return panels_.data(); }

 private:
  CpuView<const W> weight_;
  Cpu::Buffer panels_;
  std::size_t bytes_ = 0;
};

template <class W>
PackedLinear<W> pack_linear(Cpu& cpu, CpuView<const W> w) {
  return PackedLinear<W>(cpu, w);
}

// out = beta * out + in w^T, as linear_forward(cpu, out, in, w.weight(), beta): the same rule
// for which rows take the streaming kernel, the rest on the packed copy where there is one.
template <class W>
void linear_forward(Cpu& cpu, CpuView<float> out, CpuView<const float> in, const PackedLinear<W>& w,
                    float beta = 0.0f) {
  const CpuView<const W> weight = w.weight();
  detail::linear_forward_impl(out, in, weight, beta, [&] {
#if defined(NANOCHAT_X86_KERNELS)
    if (w.packed() != nullptr) {
      const GemmShape g = gemm_shape(out, in, weight, Transpose::no, Transpose::yes);
      prepacked::gemm<W>(g, in.data(), static_cast<const prepacked::panel_t<W>*>(w.packed()), out.data(), 1.0f, beta);
      return;
    }
#endif
    gemm(cpu, out, in, weight, Transpose::no, Transpose::yes, 1.0f, beta);
  });
}

}  // namespace nanochat::cpu
