#pragma once
// Warp-wide tensor-core product in the SIMT facade: mma.sync.aligned.m16n8k16.row.col.f32.bf16.
// bf16.f32, D = A B + C with A 16x16 (row), B 16x8 (col), C and D 16x8 fp32. In nvcc's device pass
// it is the PTX instruction; in the emulator the 32 lanes gather their fragments through the
// warp's exchange area and barrier (as the shuffles do), each lane forms the full product in fp32
// and keeps the elements the PTX ISA's fragment layout assigns it ("Matrix Fragments for
// mma.m16n8k16 with floating point type"). With g = lane / 4 and t = lane % 4:
//   A: reg 0 = (row g, cols 2t, 2t+1), reg 1 = (row g+8, same cols), regs 2 and 3 = the same rows
//      at cols 2t+8, 2t+9; the lower-numbered column in the low 16 bits.
//   B: reg 0 = (rows 2t, 2t+1, col g), reg 1 = (rows 2t+8, 2t+9, col g); lower row in the low half.
//   C, D: c0, c1 = (row g, cols 2t, 2t+1), c2, c3 = (row g+8, cols 2t, 2t+1).
// Fragments come from shared memory through ldmatrix (load_matrices below), whose per-lane
// layout is the same (g, t) pattern, so one 16x16 A is one .x4 and two 8-column B tiles another.

#include <cstdint>
#include <cstring>

#include "nanochat/backend/cuda/simt.hpp"
#include "nanochat/core/bf16.hpp"

// bf16 mma.sync needs sm_80 (ldmatrix sm_75): older targets would otherwise stop in ptxas with
// no word of why.
#if NANOCHAT_DEVICE_PASS && __CUDA_ARCH__ < 800
#error "nanochat's Cuda kernels need sm_80 or newer (bf16 mma.sync, ldmatrix): set CMAKE_CUDA_ARCHITECTURES to 80 or above"
#endif

namespace nanochat::simt {

struct MmaA {
  std::uint32_t reg[4];
};
struct MmaB {
  std::uint32_t reg[2];
};
struct MmaAccumulator {
  float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
};

// Two bf16 as one 32-bit fragment register: `low` is the lower-numbered row or column.
NANOCHAT_HOST_DEVICE inline std::uint32_t pack_bf16x2(bf16 low, bf16 high) {
  return static_cast<std::uint32_t>(low.bits) | (static_cast<std::uint32_t>(high.bits) << 16);
}

namespace mma_layout {
// Which elements a lane holds (g = lane / 4, t = lane % 4); element e = 0 or 1 of a register.
NANOCHAT_HOST_DEVICE constexpr unsigned a_row(unsigned lane, unsigned reg) { return lane / 4 + 8 * (reg & 1u); }
NANOCHAT_HOST_DEVICE constexpr unsigned a_col(unsigned lane, unsigned reg, unsigned e) {
  return 2 * (lane % 4) + e + 8 * (reg >> 1);
}
NANOCHAT_HOST_DEVICE constexpr unsigned b_row(unsigned lane, unsigned reg, unsigned e) {
  return 2 * (lane % 4) + e + 8 * reg;
}
NANOCHAT_HOST_DEVICE constexpr unsigned b_col(unsigned lane) { return lane / 4; }
NANOCHAT_HOST_DEVICE constexpr unsigned c_row(unsigned lane, unsigned i) { return lane / 4 + 8 * (i >> 1); }
NANOCHAT_HOST_DEVICE constexpr unsigned c_col(unsigned lane, unsigned i) { return 2 * (lane % 4) + (i & 1u); }
}  // namespace mma_layout

// d = a b + c over the whole warp; every lane of a full warp must call it together (as on the GPU,
// where the instruction is .aligned: a partial or diverged warp is undefined, here a fault).
NANOCHAT_HOST_DEVICE inline void mma_bf16_m16n8k16(MmaAccumulator& d, const MmaA& a, const MmaB& b,
                                                   const MmaAccumulator& c) {
#if NANOCHAT_DEVICE_PASS
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%10, %11, %12, %13};\n"
      : "=f"(d.c[0]), "=f"(d.c[1]), "=f"(d.c[2]), "=f"(d.c[3])
      : "r"(a.reg[0]), "r"(a.reg[1]), "r"(a.reg[2]), "r"(a.reg[3]), "r"(b.reg[0]), "r"(b.reg[1]),
        "f"(c.c[0]), "f"(c.c[1]), "f"(c.c[2]), "f"(c.c[3]));
#else
  emulator::ThreadContext& t = emulator::context();
  auto& warp = t.block->warp_state[warp_id()];
  const unsigned lane = lane_id();
  if (t.block->lanes_in_warp(warp_id()) != warp_size) emulator::fault("mma.sync in a partial warp");
  std::memcpy(warp.mma_slots[lane], a.reg, sizeof a.reg);
  std::memcpy(warp.mma_slots[lane] + 4, b.reg, sizeof b.reg);
  warp.barrier->arrive_and_wait();
  if (warp.exited.load(std::memory_order_relaxed) != 0) emulator::fault("mma.sync with lanes that have exited");
  // The whole A (16x16) and B (16x8) from every lane's fragments.
  float full_a[16][16], full_b[16][8];
  const auto element = [](std::uint32_t reg, unsigned e) {
    return static_cast<float>(bf16::from_bits(static_cast<std::uint16_t>(reg >> (16 * e))));
  };
  for (unsigned l = 0; l < warp_size; ++l)
    for (unsigned e = 0; e < 2; ++e) {
      for (unsigned r = 0; r < 4; ++r)
        full_a[mma_layout::a_row(l, r)][mma_layout::a_col(l, r, e)] = element(warp.mma_slots[l][r], e);
      for (unsigned r = 0; r < 2; ++r)
        full_b[mma_layout::b_row(l, r, e)][mma_layout::b_col(l)] = element(warp.mma_slots[l][4 + r], e);
    }
  warp.barrier->arrive_and_wait();  // nobody overwrites a slot before all have read
  MmaAccumulator out;
  for (unsigned i = 0; i < 4; ++i) {
    const unsigned row = mma_layout::c_row(lane, i), col = mma_layout::c_col(lane, i);
    float acc = 0.0f;
    for (unsigned k = 0; k < 16; ++k) acc += full_a[row][k] * full_b[k][col];
    out.c[i] = acc + c.c[i];
  }
  d = out;
#endif
}

// ldmatrix.sync.aligned.m8n8.x{N}[.trans].shared.b16: N 8x8 matrices of 16-bit elements from
// shared memory, lane 8i + r giving the address of row r of matrix i (16-byte aligned; the
// addresses of lanes past 8N are not read). Register i of lane l holds matrix i's row l / 4,
// columns 2 (l % 4) and 2 (l % 4) + 1 (the lower column in the low half); with Transpose, those
// of the transposed matrix: column l / 4, rows 2 (l % 4) and 2 (l % 4) + 1. The whole warp calls
// it together; each of those rows must lie in the block's shared memory.
template <int N, bool Transpose = false>
NANOCHAT_HOST_DEVICE inline void load_matrices(std::uint32_t (&regs)[N], const bf16* row) {
  static_assert(N == 1 || N == 2 || N == 4, "ldmatrix loads 1, 2 or 4 matrices");
#if NANOCHAT_DEVICE_PASS
  const auto address = static_cast<unsigned>(__cvta_generic_to_shared(row));
  if constexpr (N == 4 && !Transpose) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(regs[0]), "=r"(regs[1]), "=r"(regs[2]), "=r"(regs[3]) : "r"(address));
  } else if constexpr (N == 4) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(regs[0]), "=r"(regs[1]), "=r"(regs[2]), "=r"(regs[3]) : "r"(address));
  } else if constexpr (N == 2 && !Transpose) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n"
                 : "=r"(regs[0]), "=r"(regs[1]) : "r"(address));
  } else if constexpr (N == 2) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n"
                 : "=r"(regs[0]), "=r"(regs[1]) : "r"(address));
  } else if constexpr (!Transpose) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(regs[0]) : "r"(address));
  } else {
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n" : "=r"(regs[0]) : "r"(address));
  }
#else
  emulator::ThreadContext& t = emulator::context();
  auto& warp = t.block->warp_state[warp_id()];
  const unsigned lane = lane_id(), g = lane / 4, pair = 2 * (lane % 4);
  if (t.block->lanes_in_warp(warp_id()) != warp_size) emulator::fault("ldmatrix in a partial warp");
  if (lane < 8u * N) {
    const auto address = reinterpret_cast<std::uintptr_t>(row);
    if (address % 16 != 0) emulator::fault("misaligned ldmatrix row address");
    // ldmatrix reads the .shared window only: a row (16 bytes) outside the block's shared memory
    // is an illegal address on the GPU, whatever host memory it happens to name here.
    const auto shared = reinterpret_cast<std::uintptr_t>(t.block->shared.data());
    if (address < shared || address + 16 > shared + t.block->shared.size())
      emulator::fault("ldmatrix row outside shared memory");
  }
  std::memcpy(warp.slots[lane], &row, sizeof row);
  warp.barrier->arrive_and_wait();
  if (warp.exited.load(std::memory_order_relaxed) != 0) emulator::fault("ldmatrix with lanes that have exited");
  const auto row_of = [&](unsigned source) {
    const bf16* p;
    std::memcpy(&p, warp.slots[source], sizeof p);
    return p;
  };
  for (unsigned i = 0; i < static_cast<unsigned>(N); ++i) {
    if constexpr (Transpose) {
      regs[i] = pack_bf16x2(row_of(8 * i + pair)[g], row_of(8 * i + pair + 1)[g]);
    } else {
      const bf16* p = row_of(8 * i + g);
      regs[i] = pack_bf16x2(p[pair], p[pair + 1]);
    }
  }
  warp.barrier->arrive_and_wait();  // nobody overwrites an address before all have read
#endif
}

}  // namespace nanochat::simt
