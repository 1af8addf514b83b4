// The hand-written backward of the whole GPT against central finite differences of its loss,
// on a tiny config with GQA and ignored targets, every weight random and non-zero.

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "nanochat/backend/cpu.hpp"
#include "nanochat/model/gpt.hpp"

using namespace nanochat;
using nanochat::cpu::Cpu;

namespace {

using Tiny = GptConfig<2, 4, 2, 8>;  // dim 32, two query heads per KV head

template <class G>
void randomise(Cpu& cpu, G& model, std::uint64_t seed) {
  std::uint64_t stream = 0;
  model.weights().for_each([&](const std::string&, TensorView<float, Cpu> v) {
    cpu::fill_normal<float>(cpu, v, seed, stream++, 0.0f, 0.3f);
  });
}

Tensor<std::int32_t, Cpu> ids_tensor(Cpu& cpu, Shape shape, std::vector<std::int32_t> values) {
  Tensor<std::int32_t, Cpu> t(cpu, shape);
  copy_from_host(cpu, t.view(), std::span<const std::int32_t>(values));
  return t;
}

}  // namespace

TEST_CASE("GPT backward equals finite differences of the loss for every kind of parameter") {
  Cpu cpu;
  const std::int64_t vocab = 13, batch = 2, seq = 5;
  Gpt<Tiny, Cpu> model(cpu, vocab, batch, seq);
  randomise(cpu, model, 3);
  auto ids = ids_tensor(cpu, {batch, seq}, {1, 5, 7, 2, 12, 0, 3, 3, 9, 11});
  auto targets = ids_tensor(cpu, {batch, seq}, {5, 7, -1, 12, 4, 3, -1, 9, 11, 0});

  model.forward_loss(ids.view(), targets.view());
  model.backward(ids.view(), targets.view());

  int checked = 0;
  model.weights().for_each([&](const std::string& name, TensorView<float, Cpu> w) {
    TensorView<float, Cpu> g;
    model.grads().for_each([&](const std::string& n, TensorView<float, Cpu> v) {
      if (n == name) g = v;
    });
    // A few entries of each parameter, spread over the tensor.
    for (std::int64_t i = 0; i < w.numel(); i += std::max<std::int64_t>(1, w.numel() / 5)) {
      float* p = w.data() + i;
      const float saved = *p, h = 1e-2f;
      *p = saved + h;
      const double up = model.forward_loss(ids.view(), targets.view());
      *p = saved - h;
      const double down = model.forward_loss(ids.view(), targets.view());
      *p = saved;
      const double numeric = (up - down) / (2.0 * h);
      const double analytic = g.data()[i];
      CAPTURE(name);
      CAPTURE(i);
      CHECK(analytic == doctest::Approx(numeric).epsilon(2e-2).scale(5e-3));
      ++checked;
    }
  });
  CHECK(checked > 60);
}
