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
