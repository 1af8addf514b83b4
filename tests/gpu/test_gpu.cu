// The GPU suite: the same comparisons the emulated device passes in CI, on a real GPU through
// RealDevice (cudart + cuBLASLt). Without a GPU it reports itself skipped (exit code 77).

#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "backend_cases.hpp"
#include "nanochat/backend/cuda/real_device.hpp"

using namespace nanochat;
using namespace nanochat::testing;

namespace {
cuda::RealDevice& gpu() {
  static cuda::RealDevice device(0);
  return device;
}
}  // namespace

TEST_CASE("Cuda gemm (cuBLASLt) on the GPU matches Cpu") {
  Cuda cuda(gpu());
  check_gemm_matches_cpu(cuda);
}

TEST_CASE("Cuda RMSNorm kernels on the GPU match Cpu, forward and backward") {
  Cuda cuda(gpu());
  check_rmsnorm_shapes(cuda);
}

TEST_CASE("Cuda FlashAttention-2 on the GPU matches Cpu attention, forward and backward") {
  Cuda cuda(gpu());
  check_attention_shapes(cuda);
  // Shapes the emulator cannot afford: many tiles per row (the online softmax's rescaling over
  // 16 and 32 key tiles), nanochat's d20 head layout at T = 2048, GQA 4:1 at head dim 64.
  check_attention_matches_cpu(cuda, {2, 1000, 8, 2, 128}, 900);
  check_attention_matches_cpu(cuda, {1, 2048, 10, 10, 128}, 910);
  check_attention_matches_cpu(cuda, {3, 517, 8, 2, 64}, 920);
}

TEST_CASE("Philox fills on the GPU are bit-identical to Cpu") {
  Cuda cuda(gpu());
  check_fill_normal_bit_identical(cuda);
}

int main(int argc, char** argv) {
  if (cuda::RealDevice::count() == 0) {
    std::puts("test_gpu: no CUDA device available; skipping the GPU suite");
    return 77;
  }
  std::printf("test_gpu: running on %s\n", gpu().name().c_str());
  doctest::Context context(argc, argv);
  return context.run();
}
