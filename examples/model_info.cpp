// model_info: what a --depth means. Prints the compiled config nanochat's rule gives for the
// depth (shapes, parameter counts, FLOPs per token), then initialises the token embedding from
// the Philox stream on the Cpu backend and on the Cuda backend's emulated device, and checks the
// two are bit-identical (the GPU suite checks the same on a real device). Also says which GEMM
// kernels the Cpu backend chose on this machine (gemm_kernel.hpp) and from which CPU features.

#include <cstdio>
#include <vector>

#include "nanochat/backend/cpu.hpp"
#include "nanochat/backend/cuda.hpp"
#include "nanochat/core/depth_dispatch.hpp"
#include "nanochat/core/flags.hpp"
#include "nanochat/core/limits.hpp"

using namespace nanochat;

namespace {

struct Options {
  int depth = 4;
  std::int64_t vocab_size = 65536;
  std::int64_t seq_len = 2048;
  std::uint64_t seed = 42;
};

template <Config C>
int report(const Options& o) {
  const double m = 1e6;
  std::printf("model:            %s\n", C::name().c_str());
  std::printf("vocab, seq len:   %lld, %lld\n", static_cast<long long>(o.vocab_size),
              static_cast<long long>(o.seq_len));
  std::printf("parameters:       %.2fM total = %.2fM block matrices + %.2fM wte + %.2fM lm_head\n",
              static_cast<double>(C::total_params(o.vocab_size)) / m,
              static_cast<double>(C::matrix_params) / m,
              static_cast<double>(C::embedding_params(o.vocab_size)) / m,
              static_cast<double>(C::embedding_params(o.vocab_size)) / m);
  std::printf("FLOPs per token:  %.4e (forward + backward)\n", C::flops_per_token(o.vocab_size, o.seq_len));
  const cpu::GemmKernels kernels = cpu::gemm_kernels();
  std::printf("Cpu GEMM kernels: fp32 %s, bf16 %s (CPU features: %s)\n", cpu::gemm_kernel_name(kernels.fp32),
              cpu::gemm_kernel_name(kernels.bf16), cpu::cpu_features().describe().c_str());

  // wte ~ N(0, 1), as nanochat initialises it, on both backends from the same Philox stream.
  cpu::Cpu cpu;
  cuda::EmulatedDevice device;
  cuda::Cuda gpu(device);
  const Shape wte{o.vocab_size, C::model_dim};
  Tensor<float, cpu::Cpu> on_cpu(cpu, wte);
  Tensor<float, cuda::Cuda> on_device(gpu, wte);
  cpu::fill_normal<float>(cpu, on_cpu.view(), o.seed, 0, 0.0f, 1.0f);
  cuda::fill_normal<float>(gpu, on_device.view(), o.seed, 0, 0.0f, 1.0f);
  const std::vector<float> a = to_host(cpu, on_cpu.view()), b = to_host(gpu, on_device.view());
  std::size_t differing = 0;
  for (std::size_t i = 0; i < a.size(); ++i) differing += a[i] != b[i];
  std::printf("wte init:         %zu values on Cpu and on the %s: %s\n", a.size(), device.name().c_str(),
              differing == 0 ? "bit-identical" : "DIFFERENT");
  return differing == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  Flags flags("model_info", "shape, size and cost of a nanochat model of a given depth");
  flags.add("--depth", o.depth, "number of transformer blocks (nanochat's one dial)")
      .add("--vocab-size", o.vocab_size, "tokenizer vocabulary size", {1, max_vocab_size})
      .add("--seq-len", o.seq_len, "sequence length (for the attention FLOPs)", {1, max_sequence_len})
      .add("--seed", o.seed, "Philox seed for the initialisation check");
  try {
    if (!flags.parse(argc, argv)) return 0;
    return dispatch_depth(o.depth, CompiledDepths{}, [&]<class C>() { return report<C>(o); });
  } catch (const Error& e) {
    std::fprintf(stderr, "model_info: %s\n", e.what());
    return 2;
  }
}
