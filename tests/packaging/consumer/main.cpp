// Uses the library the way a downstream project would: a compile-time config, the Cpu backend,
// and the Cuda backend on the emulated device. Prints "consumer: ok" when the results agree.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "nanochat/backend/cpu.hpp"
#include "nanochat/backend/cuda.hpp"
#include "nanochat/core/presets.hpp"
#include "nanochat/data/codecs.hpp"

int main() {
  using namespace nanochat;
  using Config = NanochatConfig<20>;
  static_assert(Config::total_params(65536) == 560'988'160);

  cpu::Cpu cpu;
  cuda::EmulatedDevice device;
  cuda::Cuda gpu(device);
  Tensor<float, cpu::Cpu> x_cpu(cpu, {4, 64}), y_cpu(cpu, {4, 64}), r_cpu(cpu, {4});
  Tensor<float, cuda::Cuda> x_gpu(gpu, {4, 64}), y_gpu(gpu, {4, 64}), r_gpu(gpu, {4});
  cpu::fill_normal<float>(cpu, x_cpu.view(), 1, 0, 0.0f, 1.0f);
  cuda::fill_normal<float>(gpu, x_gpu.view(), 1, 0, 0.0f, 1.0f);
  cpu::rmsnorm_forward<float>(cpu, y_cpu.view(), r_cpu.view(), x_cpu.view());
  cuda::rmsnorm_forward<float>(gpu, y_gpu.view(), r_gpu.view(), x_gpu.view());
  const std::vector<float> a = to_host(cpu, y_cpu.view()), b = to_host(gpu, y_gpu.view());
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::fmax(worst, std::fabs(a[i] - b[i]));
  if (worst > 1e-5) {
    std::printf("consumer: Cpu and emulated Cuda disagree by %g\n", worst);
    return 1;
  }
  // GEMM as a project built for baseline x86-64 gets it (no AVX-512 flags: the kernel is chosen at
  // run time from the CPU, OpenBLAS where it has no AVX-512), with float and with bf16 weights,
  // against the definition.
  {
    // Operands past malloc's mmap threshold, B larger than A: a workspace moved between them shows.
    const std::int64_t m = 200, n = 400, k = 300;
    Tensor<float, cpu::Cpu> in(cpu, {m, k}), w(cpu, {n, k}), out(cpu, {m, n});
    Tensor<bf16, cpu::Cpu> w16(cpu, {n, k});
    cpu::fill_normal<float>(cpu, in.view(), 2, 0, 0.0f, 1.0f);
    cpu::fill_normal<float>(cpu, w.view(), 3, 0, 0.0f, 1.0f);
    for (std::int64_t i = 0; i < n * k; ++i) w16.data()[i] = bf16(w.data()[i]);
    // 0: float weights; 1: bf16 weights; 2: float weights, the product computed in bf16 (both
    // operands rounded: two widened copies in the workspace).
    for (int mode : {2, 1, 0}) {  // mode 2 first: it is what first grows the workspace
      if (mode == 1) {
        cpu::gemm(cpu, out.view(), in.view(), w16.view(), Transpose::no, Transpose::yes);
      } else {
        cpu::gemm(cpu, out.view(), in.view(), w.view(), Transpose::no, Transpose::yes, 1.0f, 0.0f,
                  GemmOptions{.compute = mode == 2 ? GemmCompute::bf16 : GemmCompute::fp32});
      }
      for (std::int64_t i = 0; i < m; ++i)
        for (std::int64_t j = 0; j < n; ++j) {
          double want = 0;
          for (std::int64_t p = 0; p < k; ++p) {
            const float x = in.data()[i * k + p], wv = w.data()[j * k + p];
            want += static_cast<double>(mode == 2 ? round_to_bf16(x) : x) * (mode == 0 ? wv : round_to_bf16(wv));
          }
          if (std::fabs(out.data()[i * n + j] - want) > 1e-4 * (1 + std::fabs(want))) {
            std::printf("consumer: gemm (mode %d) gives %g at (%ld, %ld), want %g\n", mode,
                        static_cast<double>(out.data()[i * n + j]), static_cast<long>(i), static_cast<long>(j), want);
            return 1;
          }
        }
    }
  }
  // The upper triangle of X X^T (Newton–Schulz's symmetric products; OpenBLAS's path hands it to
  // ssyrk): equal to the definition there. The rest of C is unspecified (GemmOptions).
  {
    const std::int64_t n = 70, k = 90;
    Tensor<float, cpu::Cpu> x(cpu, {n, k}), a(cpu, {n, n});
    cpu::fill_normal<float>(cpu, x.view(), 4, 0, 0.0f, 1.0f);
    for (std::int64_t i = 0; i < n * n; ++i) a.data()[i] = -7.0f;
    cpu::gemm(cpu, a.view(), x.view(), x.view(), Transpose::no, Transpose::yes, 0.5f, 0.0f,
              GemmOptions{Triangle::upper});
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < n; ++j) {
        if (j < i) continue;
        double want = 0;
        for (std::int64_t p = 0; p < k; ++p) want += 0.5 * x.data()[i * k + p] * x.data()[j * k + p];
        if (std::fabs(a.data()[i * n + j] - want) > 1e-4 * (1 + std::fabs(want))) {
          std::printf("consumer: symmetric gemm gives %g at (%ld, %ld), want %g\n",
                      static_cast<double>(a.data()[i * n + j]), static_cast<long>(i), static_cast<long>(j), want);
          return 1;
        }
      }
  }
  // The data pipeline's codecs (nanochat::data): a zstd-compressed page decodes back.
  const std::string text = "parquet pages are compressed";
  std::string packed(ZSTD_compressBound(text.size()), '\0');
  packed.resize(ZSTD_compress(packed.data(), packed.size(), text.data(), text.size(), 3));
  std::string unpacked(text.size(), '\0');
  data::decompress(data::parquet::Codec::zstd, reinterpret_cast<const std::uint8_t*>(packed.data()),
                   packed.size(), reinterpret_cast<std::uint8_t*>(unpacked.data()), unpacked.size(),
                   "consumer page");
  if (unpacked != text) {
    std::printf("consumer: zstd round trip failed\n");
    return 1;
  }
  std::printf("consumer: ok (%s, max difference %g)\n", Config::name().c_str(), worst);
  return 0;
}
