// The optimizers against PyTorch (tests/reference/optim_reference.py): torch.optim.AdamW itself,
// Muon written from the spec, and five training steps of a tiny GPT with nanochat's optimizer
// setup, clipping and schedules. Plus the schedules' shapes.

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <string>
#include <vector>

#include "nanochat/backend/cpu.hpp"
#include "nanochat/core/safetensors.hpp"
#include "nanochat/model/gpt.hpp"
#include "nanochat/model/weights_file.hpp"
#include "nanochat/optim/nanochat_optimizers.hpp"
#include "relative_error.hpp"

using namespace nanochat;
using nanochat::cpu::Cpu;

namespace {

SafetensorsFile fixture(const char* name) {
  return SafetensorsFile::load(std::string(NANOCHAT_FIXTURES) + "/optim/" + name);
}

Tensor<float, Cpu> load(Cpu& cpu, const SafetensorsFile& f, const std::string& name) {
  Tensor<float, Cpu> t(cpu, f.at(name).shape);
  copy_from_host(cpu, t.view(), f.values<float>(name));
  return t;
}

double relative_error(const TensorView<float, Cpu>& got, std::span<const float> want) {
  return testing::relative_error({got.data(), static_cast<std::size_t>(got.numel())}, want);
}

void set(Cpu& cpu, Tensor<float, Cpu>& t, const SafetensorsFile& f, const std::string& name) {
  copy_from_host(cpu, t.view(), f.values<float>(name));
}

}  // namespace

TEST_CASE("AdamW matches torch.optim.AdamW over two steps, per-group lr and weight decay") {
  Cpu cpu;
  const auto f = fixture("adamw.safetensors");
  auto a = load(cpu, f, "a"), b = load(cpu, f, "b");
  Tensor<float, Cpu> ga(cpu, a.shape()), gb(cpu, b.shape());
  AdamW<Cpu> opt(cpu, {{{{"a", a.view(), ga.view()}}, 0.01f, 0.0f}, {{{"b", b.view(), gb.view()}}, 0.003f, 0.1f}},
                 {.beta1 = 0.8f, .beta2 = 0.95f, .eps = 1e-10f});
  for (int step = 0; step < 2; ++step) {
    set(cpu, ga, f, "grad" + std::to_string(step) + ".a");
    set(cpu, gb, f, "grad" + std::to_string(step) + ".b");
    opt.step(1.0f);
    CHECK(relative_error(a.view(), f.values<float>("after" + std::to_string(step) + ".a")) < 1e-6);
    CHECK(relative_error(b.view(), f.values<float>("after" + std::to_string(step) + ".b")) < 1e-6);
  }
  CHECK(opt.steps() == 2);
}

TEST_CASE("Muon matches the reference on wide, tall and square matrices over two steps") {
  Cpu cpu;
  const auto f = fixture("muon.safetensors");
  const std::vector<std::string> names{"wide", "tall", "square"};
  std::vector<Tensor<float, Cpu>> params, grads;
  std::vector<Muon<Cpu>::Param> refs;
  for (const auto& n : names) {
    params.push_back(load(cpu, f, n));
    grads.emplace_back(cpu, params.back().shape());
  }
  for (std::size_t i = 0; i < names.size(); ++i) refs.push_back({names[i], params[i].view(), grads[i].view()});
  Muon<Cpu> opt(cpu, refs, 0.02f);
  const float momenta[] = {0.85f, 0.8503333f};
  for (int step = 0; step < 2; ++step) {
    for (std::size_t i = 0; i < names.size(); ++i) set(cpu, grads[i], f, "grad" + std::to_string(step) + "." + names[i]);
    opt.step(1.0f, momenta[step]);
    for (std::size_t i = 0; i < names.size(); ++i) {
      CAPTURE(names[i]);
      CAPTURE(step);
      CHECK(relative_error(params[i].view(), f.values<float>("after" + std::to_string(step) + "." + names[i])) < 1e-5);
    }
  }
}

TEST_CASE("newton_schulz (one triangle of the symmetric products, matrices spread over threads) equals the plain formula") {
  // The plain formula with gemm, in double: X / |X|_F, then X <- a X + (b A + c A A) X, A = X X^T,
  // through the transpose for tall matrices. Even and odd step counts end in different buffers.
  auto plain = [](std::vector<double> x, std::int64_t rows, std::int64_t cols, int steps) {
    const bool tall = rows > cols;
    const std::int64_t m = std::min(rows, cols), n = std::max(rows, cols);
    auto at = [&](std::vector<double>& v, std::int64_t i, std::int64_t j) -> double& {  // X as m x n
      return tall ? v[static_cast<std::size_t>(j * cols + i)] : v[static_cast<std::size_t>(i * cols + j)];
    };
    double norm = 0;
    for (double v : x) norm += v * v;
    for (double& v : x) v /= std::sqrt(norm) + 1e-7;
    for (int s = 0; s < steps; ++s) {
      std::vector<double> a(static_cast<std::size_t>(m * m)), p(a.size()), next = x;
      for (std::int64_t i = 0; i < m; ++i)
        for (std::int64_t j = 0; j < m; ++j)
          for (std::int64_t k = 0; k < n; ++k) a[static_cast<std::size_t>(i * m + j)] += at(x, i, k) * at(x, j, k);
      for (std::int64_t i = 0; i < m; ++i)
        for (std::int64_t j = 0; j < m; ++j) {
          double aa = 0;
          for (std::int64_t k = 0; k < m; ++k) aa += a[static_cast<std::size_t>(i * m + k)] * a[static_cast<std::size_t>(k * m + j)];
          p[static_cast<std::size_t>(i * m + j)] = -4.7750 * a[static_cast<std::size_t>(i * m + j)] + 2.0315 * aa;
        }
      for (std::int64_t i = 0; i < m; ++i)
        for (std::int64_t j = 0; j < n; ++j) {
          double px = 0;
          for (std::int64_t k = 0; k < m; ++k) px += p[static_cast<std::size_t>(i * m + k)] * at(x, k, j);
          at(next, i, j) = 3.4445 * at(x, i, j) + px;
        }
      x = next;
    }
    return x;
  };
  Cpu cpu;
  // 70 x 100 spans several 12 x 32 kernel tiles on both sides of the diagonal.
  const std::vector<std::pair<std::int64_t, std::int64_t>> shapes{{12, 30}, {30, 12}, {17, 17}, {5, 40}, {40, 5},
                                                                  {70, 100}, {100, 70}};
  for (int steps : {1, 2, 5}) {
    CAPTURE(steps);
    std::vector<Tensor<float, Cpu>> mats;
    std::vector<std::vector<double>> inputs;
    for (auto [rows, cols] : shapes) {
      mats.emplace_back(cpu, Shape{rows, cols});
      inputs.emplace_back();
      for (std::int64_t i = 0; i < rows * cols; ++i) {
        const float v = std::sin(0.37f * static_cast<float>(i) + static_cast<float>(rows)) * 0.3f;
        mats.back().data()[i] = v;
        inputs.back().push_back(v);
      }
    }
    std::vector<TensorView<float, Cpu>> views;
    for (auto& t : mats) views.push_back(t.view());
    cpu::newton_schulz(cpu, std::span<const TensorView<float, Cpu>>(views), steps, 3.4445f, -4.7750f, 2.0315f);
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      CAPTURE(shapes[i].first);
      CAPTURE(shapes[i].second);
      const auto want = plain(inputs[i], shapes[i].first, shapes[i].second, steps);
      const std::vector<float> want_f(want.begin(), want.end());
      // fp32 against exact: each iteration scales the rounding error by up to a = 3.4.
      CHECK(relative_error(views[i], want_f) < (steps < 5 ? 1e-5 : 5e-5));
    }
  }
}

TEST_CASE("five training steps with nanochat's optimizers give PyTorch's losses") {
  using Cfg = GptConfig<2, 4, 2, 16>;
  Cpu cpu;
  const auto f = fixture("train5.safetensors");
  Gpt<Cfg, Cpu> model(cpu, 97, 2, 16);
  load_weights(cpu, model.weights(), f);
  NanochatOptimizers<Cfg, Cpu> opt(cpu, model.weights(), model.grads());
  const LrSchedule schedule{.num_iterations = 5};
  const auto expected = f.values<float>("losses");
  Tensor<std::int32_t, Cpu> ids(cpu, {2, 16}), targets(cpu, {2, 16});
  for (int it = 0; it < 5; ++it) {
    const auto idx = f.values<std::int64_t>("idx" + std::to_string(it));
    const auto tgt = f.values<std::int64_t>("targets" + std::to_string(it));
    for (int i = 0; i < 32; ++i) {
      ids.data()[i] = static_cast<std::int32_t>(idx[static_cast<std::size_t>(i)]);
      targets.data()[i] = static_cast<std::int32_t>(tgt[static_cast<std::size_t>(i)]);
    }
    const float loss = model.forward_loss(ids.view(), targets.view());
    CAPTURE(it);
    CHECK(loss == doctest::Approx(expected[static_cast<std::size_t>(it)]).epsilon(1e-4));
    model.backward(ids.view(), targets.view());
    clip_grad_norm(cpu, model.grads(), 1.0f);
    opt.step(static_cast<float>(schedule.multiplier(it)), static_cast<float>(muon_momentum_at(it)));
    model.zero_grad();
  }
}

TEST_CASE("the LR multiplier warms up then holds then warms down to final_lr_frac and momentum ramps") {
  const LrSchedule s{.num_iterations = 100, .warmup_ratio = 0.1, .warmdown_ratio = 0.2, .final_lr_frac = 0.1};
  CHECK(s.multiplier(0) == doctest::Approx(0.1));
  CHECK(s.multiplier(9) == doctest::Approx(1.0));
  CHECK(s.multiplier(80) == doctest::Approx(1.0));
  CHECK(s.multiplier(90) == doctest::Approx(0.5 + 0.5 * 0.1));
  CHECK(s.multiplier(100) == doctest::Approx(0.1));
  // Past the horizon the warmdown would continue into negative learning rates: refused.
  CHECK_THROWS_WITH_AS(s.multiplier(101), doctest::Contains("step 101 is outside the run's 0..100"), Error);
  const LrSchedule d20{.num_iterations = 21400};
  CHECK(d20.multiplier(17120) == 1.0);  // warmdown starts after step 17,120 (spec §3.6)
  CHECK(d20.multiplier(17121) < 1.0);
  CHECK(muon_momentum_at(0) == doctest::Approx(0.85));
  CHECK(muon_momentum_at(150) == doctest::Approx(0.90));
  CHECK(muon_momentum_at(300) == doctest::Approx(0.95));
  CHECK(muon_momentum_at(5000) == doctest::Approx(0.95));
}

TEST_CASE("clipping scales gradients above the norm and reports the norm before") {
  using Cfg = GptConfig<1, 2, 2, 8>;
  Cpu cpu;
  GptWeights<Cfg, Cpu> g(cpu, 11);
  cpu::fill_normal<float>(cpu, g.flat(), 1, 0, 0.0f, 1.0f);
  const double before = std::sqrt(cpu::sum_of_squares(cpu, g.flat()));
  CHECK(clip_grad_norm(cpu, g, 1.0f) == doctest::Approx(before).epsilon(1e-5));
  CHECK(std::sqrt(cpu::sum_of_squares(cpu, g.flat())) == doctest::Approx(1.0).epsilon(1e-5));
  CHECK(clip_grad_norm(cpu, g, 10.0f) == doctest::Approx(1.0).epsilon(1e-5));  // below: untouched
  CHECK(std::sqrt(cpu::sum_of_squares(cpu, g.flat())) == doctest::Approx(1.0).epsilon(1e-5));
}
