// The GPT's parameters: nanochat's names, shapes and counts; nanochat's initialisation, the same
// bits on the Cpu backend and on the Cuda backend; gradients that accumulate across backward
// calls; a step shorter than planned; activation memory linear in the sequence length, and bf16
// where only Linear layers read it in a bf16 Config; a NaN or a bad target is not hidden.

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "nanochat/backend/cpu.hpp"
#include "nanochat/backend/cuda.hpp"
#include "nanochat/model/gpt.hpp"

using namespace nanochat;
using nanochat::cpu::Cpu;

TEST_CASE("parameters carry nanochat's state_dict names, [out, in] shapes and Config's counts") {
  using Cfg = GptConfig<2, 4, 2, 16>;
  Cpu cpu;
  GptWeights<Cfg, Cpu> w(cpu, 100);
  std::vector<std::string> names;
  std::int64_t total = 0;
  std::map<std::string, Shape> shapes;
  const float* expected_next = w.flat().data();
  w.for_each([&](const std::string& name, TensorView<float, Cpu> v) {
    names.push_back(name);
    shapes[name] = v.shape();
    CHECK(v.data() == expected_next);  // contiguous, in state_dict order
    expected_next = v.data() + v.numel();
    total += v.numel();
  });
  CHECK(total == Cfg::total_params(100));
  CHECK(w.flat().numel() == total);
  CHECK(names.front() == "transformer.wte.weight");
  CHECK(names[1] == "transformer.h.0.attn.c_q.weight");
  CHECK(names[6] == "transformer.h.0.mlp.c_proj.weight");
  CHECK(names.back() == "lm_head.weight");
  CHECK(names.size() == 2 + 6 * 2);
  CHECK(shapes["transformer.h.1.attn.c_k.weight"] == Shape{32, 64});
  CHECK(shapes["transformer.h.1.mlp.c_fc.weight"] == Shape{256, 64});
  CHECK(shapes["transformer.h.1.mlp.c_proj.weight"] == Shape{64, 256});
  CHECK(shapes["lm_head.weight"] == Shape{100, 64});
}

TEST_CASE("initialisation follows nanochat and is bit-identical on Cpu and on the Cuda backend") {
  using Cfg = GptConfig<2, 4, 4, 32>;  // dim 128
  Cpu cpu;
  GptWeights<Cfg, Cpu> on_cpu(cpu, 1000);
  init_weights(cpu, on_cpu, 42);
  cuda::EmulatedDevice device;
  cuda::Cuda gpu(device);
  GptWeights<Cfg, cuda::Cuda> on_gpu(gpu, 1000);
  init_weights(gpu, on_gpu, 42);
  CHECK(to_host(cpu, on_cpu.flat()) == to_host(gpu, on_gpu.flat()));

  auto stddev = [](TensorView<float, Cpu> v) {
    double sum = 0, sq = 0;
    for (std::int64_t i = 0; i < v.numel(); ++i) {
      sum += v.data()[i];
      sq += static_cast<double>(v.data()[i]) * v.data()[i];
    }
    const double n = static_cast<double>(v.numel());
    return std::sqrt(sq / n - (sum / n) * (sum / n));
  };
  CHECK(stddev(on_cpu.wte) == doctest::Approx(1.0).epsilon(0.01));
  CHECK(stddev(on_cpu.blocks[0].c_q) == doctest::Approx(1.0 / std::sqrt(128.0)).epsilon(0.02));
  CHECK(stddev(on_cpu.blocks[1].c_fc) == doctest::Approx(1.0 / std::sqrt(128.0)).epsilon(0.02));
  CHECK(stddev(on_cpu.lm_head) == 0.0);
  CHECK(stddev(on_cpu.blocks[0].attn_proj) == 0.0);
  CHECK(stddev(on_cpu.blocks[1].mlp_proj) == 0.0);
  CHECK(nanochat_linear_std(32, 128) == doctest::Approx(0.5 / std::sqrt(128.0)));  // GQA's c_k
  // A different seed gives different weights.
  GptWeights<Cfg, Cpu> other(cpu, 1000);
  init_weights(cpu, other, 43);
  CHECK(on_cpu.wte.data()[0] != other.wte.data()[0]);
}

TEST_CASE("gradients accumulate across backward calls until zero_grad") {
  using Cfg = GptConfig<1, 2, 2, 8>;
  Cpu cpu;
  Gpt<Cfg, Cpu> model(cpu, 17, 1, 6);
  model.init(1);
  std::uint64_t stream = 100;  // make the zero-initialised projections non-zero too
  model.weights().for_each([&](const std::string&, TensorView<float, Cpu> v) {
    cpu::fill_normal<float>(cpu, v, 5, stream++, 0.0f, 0.2f);
  });
  Tensor<std::int32_t, Cpu> ids(cpu, {1, 6}), targets(cpu, {1, 6});
  for (int i = 0; i < 6; ++i) {
    ids.data()[i] = (3 * i + 1) % 17;
    targets.data()[i] = (5 * i + 2) % 17;
  }
  model.forward_loss(ids.view(), targets.view());
  model.backward(ids.view(), targets.view(), 0.5f);
  const std::vector<float> once = to_host(cpu, model.grads().flat());
  model.forward_loss(ids.view(), targets.view());
  model.backward(ids.view(), targets.view(), 0.5f);
  const std::vector<float> twice = to_host(cpu, model.grads().flat());
  double worst = 0, norm = 0;
  for (std::size_t i = 0; i < once.size(); ++i) {
    worst = std::max(worst, std::abs(static_cast<double>(twice[i]) - 2.0 * once[i]));
    norm = std::max(norm, std::abs(static_cast<double>(once[i])));
  }
  CHECK(norm > 0);
  CHECK(worst <= 1e-6 * norm);
  model.zero_grad();
  for (float v : to_host(cpu, model.grads().flat())) REQUIRE(v == 0.0f);
}

TEST_CASE("bad token ids and wrong batch shapes are errors that say what is wrong") {
  using Cfg = GptConfig<1, 2, 2, 8>;
  Cpu cpu;
  Gpt<Cfg, Cpu> model(cpu, 17, 1, 4);
  Tensor<std::int32_t, Cpu> ids(cpu, {1, 4}), wrong(cpu, {2, 4});
  for (int i = 0; i < 4; ++i) ids.data()[i] = i;
  ids.data()[2] = 17;
  CHECK_THROWS_WITH(model.forward(ids.view()),
                    doctest::Contains("token id 17 at position 2 is outside the vocabulary of 17"));
  CHECK_THROWS_WITH(model.forward(wrong.view()), doctest::Contains("Gpt: ids has shape [2, 4] but expected [1, 4]"));
  ids.data()[2] = 1;
  Tensor<std::int32_t, Cpu> targets(cpu, {1, 4});
  for (int i = 0; i < 4; ++i) targets.data()[i] = -2;
  CHECK_THROWS_WITH(model.forward_loss(ids.view(), targets.view()), doctest::Contains("target -2 at position 0"));
}

TEST_CASE("a step shorter than planned runs at its own width: the logits, loss and gradients of a model planned for it") {
  using Cfg = GptConfig<2, 4, 2, 8>;
  Cpu cpu;
  const std::int64_t vocab = 29, rows = 2, planned = 16, width = 9;
  Gpt<Cfg, Cpu> wide(cpu, vocab, rows, planned), exact(cpu, vocab, rows, width);
  std::uint64_t stream = 300;  // every weight non-zero, the projections too
  wide.weights().for_each([&](const std::string&, TensorView<float, Cpu> v) {
    cpu::fill_normal<float>(cpu, v, 11, stream++, 0.0f, 0.2f);
  });
  copy_from_host(cpu, exact.weights().flat(), std::span<const float>(to_host(cpu, wide.weights().flat())));
  const auto batch = [&](std::int64_t t, Tensor<std::int32_t, Cpu>& ids, Tensor<std::int32_t, Cpu>& targets) {
    for (std::int64_t i = 0; i < rows * t; ++i) {
      ids.data()[i] = static_cast<std::int32_t>((7 * i + 3) % vocab);
      targets.data()[i] = i % 5 == 2 ? -1 : static_cast<std::int32_t>((11 * i + 1) % vocab);
    }
  };
  Tensor<std::int32_t, Cpu> ids(cpu, {rows, width}), targets(cpu, {rows, width});
  batch(width, ids, targets);
  const float loss_wide = wide.forward_loss(ids.view(), targets.view());
  const std::vector<float> logits_wide = to_host(cpu, wide.activations().logits);
  wide.backward(ids.view(), targets.view());
  CHECK(wide.activations().run_seq() == width);
  CHECK(wide.activations().seq() == planned);
  CHECK(wide.activations().logits.shape() == Shape{rows * width, vocab});
  const float loss_exact = exact.forward_loss(ids.view(), targets.view());
  CHECK(logits_wide == to_host(cpu, exact.activations().logits));
  exact.backward(ids.view(), targets.view());
  CHECK(loss_wide == loss_exact);
  CHECK(to_host(cpu, wide.grads().flat()) == to_host(cpu, exact.grads().flat()));

  // Back to the planned width: a model planned for it (and never run shorter) gives the same.
  Gpt<Cfg, Cpu> full(cpu, vocab, rows, planned);
  copy_from_host(cpu, full.weights().flat(), std::span<const float>(to_host(cpu, wide.weights().flat())));
  Tensor<std::int32_t, Cpu> long_ids(cpu, {rows, planned}), long_targets(cpu, {rows, planned});
  batch(planned, long_ids, long_targets);
  CHECK(wide.forward_loss(long_ids.view(), long_targets.view()) == full.forward_loss(long_ids.view(), long_targets.view()));
  CHECK(to_host(cpu, wide.activations().logits) == to_host(cpu, full.activations().logits));

  // Wider than planned, or a backward of another width than its forward's, is refused.
  Tensor<std::int32_t, Cpu> too_long(cpu, {rows, planned + 1});
  for (std::int64_t i = 0; i < too_long.numel(); ++i) too_long.data()[i] = 1;
  CHECK_THROWS_WITH(wide.forward(too_long.view()),
                    doctest::Contains("Gpt: ids has shape [2, 17] but the model is planned for [2, 1..16]"));
  CHECK_THROWS_WITH(wide.backward(ids.view(), targets.view()),
                    doctest::Contains("Gpt: ids has shape [2, 9] but expected [2, 16]"));
}

TEST_CASE("activation memory grows linearly with the sequence: no T x T tensor is kept") {
  using Cfg = GptConfig<2, 4, 2, 16>;
  Cpu cpu;
  const GptActivations<Cfg, Cpu> short_seq(cpu, 2, 256, 97), long_seq(cpu, 2, 1024, 97);
  // Every tensor is [B * T, .] or [B, H, T]; only the arena's alignment padding is not.
  CHECK(static_cast<double>(long_seq.bytes()) / static_cast<double>(short_seq.bytes()) <= 4.01);
}

TEST_CASE("a bf16 Config keeps the Linear layers' inputs in bf16: half their bytes, nothing else changes") {
  using Fp32 = GptConfig<2, 4, 2, 16>;
  using Bf16 = GptConfig<2, 4, 2, 16, bf16>;
  Cpu cpu;
  const std::int64_t batch = 2, seq = 256, n = batch * seq;  // n * 2 bytes: whole 64-byte lines, no new padding
  const GptActivations<Fp32, Cpu> fp32(cpu, batch, seq, 97);
  const GptActivations<Bf16, Cpu> half(cpu, batch, seq, 97);
  // Per block xn1, xn2 [N, C] and relu(h)^2 [N, 4C]; then xf [N, C]; each 2 bytes an element fewer.
  const std::int64_t halved = Bf16::depth * (2 * n * Bf16::model_dim + n * Bf16::mlp_dim) + n * Bf16::model_dim;
  CHECK(fp32.bytes() - half.bytes() == static_cast<std::size_t>(halved) * (sizeof(float) - sizeof(bf16)));
  CHECK(std::is_same_v<decltype(half.layers[0].xn1)::element_type, bf16>);
  CHECK(std::is_same_v<decltype(half.layers[0].a)::element_type, bf16>);
  CHECK(std::is_same_v<decltype(half.layers[0].h)::element_type, float>);  // relu^2's backward reads it
  CHECK(std::is_same_v<decltype(fp32.xf)::element_type, float>);
}

// A one-block model over a 17-token vocabulary, initialised, and a batch of 4 ids and targets.
struct TinyGpt {
  Cpu cpu;
  Gpt<GptConfig<1, 2, 2, 8>, Cpu> model{cpu, 17, 1, 4};
  Tensor<std::int32_t, Cpu> ids{cpu, {1, 4}}, targets{cpu, {1, 4}};
  TinyGpt() {
    model.init(1);
    for (int i = 0; i < 4; ++i) {
      ids.data()[i] = i;
      targets.data()[i] = 16 - i;
    }
  }
};

TEST_CASE_FIXTURE(TinyGpt, "a NaN weight gives a NaN loss: the softcap does not turn a diverged logit into a finite one") {
  CHECK(std::isfinite(model.forward_loss(ids.view(), targets.view())));
  model.weights().lm_head.data()[3] = std::numeric_limits<float>::quiet_NaN();  // vocabulary entry 0, every position
  CHECK(std::isnan(model.forward_loss(ids.view(), targets.view())));
}

TEST_CASE_FIXTURE(TinyGpt, "the backward checks its targets too: it writes where they point") {
  model.forward_loss(ids.view(), targets.view());
  targets.data()[1] = 17;
  CHECK_THROWS_WITH(model.backward(ids.view(), targets.view()),
                    doctest::Contains("cross_entropy_backward: target 17 at position 1 is outside the vocabulary of 17"));
}
