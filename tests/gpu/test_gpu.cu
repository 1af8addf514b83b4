// The GPU suite: the same comparisons the emulated device passes in CI, on a real GPU through
// RealDevice (cudart + cuBLASLt). Without a GPU it reports itself skipped (exit code 77).

#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "backend_cases.hpp"
#include "nanochat/backend/cuda/real_device.hpp"
#ifdef NANOCHAT_HAS_NCCL
#include "dist/collectives_check.hpp"
#include "nanochat/dist/nccl_communicator.hpp"
#include "nanochat/dist/real_nccl.hpp"
#include "nanochat/dist/single_process_communicator.hpp"
#endif

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

#ifdef NANOCHAT_HAS_NCCL
// check_collectives' buffers in managed memory: NCCL reads and writes it on the GPU, the check
// on the host once each collective is waited for.
struct ManagedMemory {
  template <class T>
  std::span<T> get(std::size_t n) {
    void* p = nullptr;
    cuda::check_cuda(cudaMallocManaged(&p, n * sizeof(T)), "cudaMallocManaged");
    blocks.push_back(p);
    return {static_cast<T*>(p), n};
  }
  ManagedMemory() = default;
  ManagedMemory(const ManagedMemory&) = delete;
  ~ManagedMemory() {
    for (void* p : blocks) cudaFree(p);
  }
  std::vector<void*> blocks;
};

TEST_CASE("the NCCL engine on one GPU (libnccl, one rank) passes the collectives' reference") {
  cuda::RealDevice device;
  dist::RealNccl nccl(device, 60);
  dist::NcclCommunicator comm(nccl, device, 0, 1, dist::unique_id_over(dist::single_process(), nccl), {60});
  CHECK(nanochat_dist_test::check_collectives(comm, ManagedMemory()) == "");
}
#endif

int main(int argc, char** argv) {
  if (cuda::RealDevice::count() == 0) {
    std::puts("test_gpu: no CUDA device available; skipping the GPU suite");
    return 77;
  }
  std::printf("test_gpu: running on %s\n", gpu().name().c_str());
  doctest::Context context(argc, argv);
  return context.run();
}
