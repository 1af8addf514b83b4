// Tensor and TensorView on the Cpu backend: views, slices, reshapes, and the errors that name
// both shapes.

#include <doctest/doctest.h>

#include <numeric>
#include <vector>

#include "nanochat/backend/cpu/cpu.hpp"
#include "nanochat/core/error.hpp"
#include "nanochat/core/tensor.hpp"

using namespace nanochat;
using nanochat::cpu::Cpu;

TEST_CASE("an owning tensor gives views that index, slice and reshape its memory") {
  Cpu cpu;
  Tensor<float, Cpu> t(cpu, {2, 3, 4});
  CHECK(t.numel() == 24);
  CHECK(t.bytes() == 96);
  CHECK(reinterpret_cast<std::uintptr_t>(t.data()) % Cpu::alignment == 0);
  std::vector<float> values(24);
  std::iota(values.begin(), values.end(), 0.0f);
  copy_from_host(cpu, t.view(), std::span<const float>(values));

  TensorView<float, Cpu> v = t.view();
  CHECK(v(1, 2, 3) == 23.0f);
  CHECK(v[1].shape() == Shape{3, 4});
  CHECK(v[1](0, 1) == 13.0f);
  const auto cols = v.slice(2, 1, 3);  // [2, 3, 2], non-contiguous
  CHECK(cols.shape() == Shape{2, 3, 2});
  CHECK_FALSE(cols.is_contiguous());
  CHECK(cols(1, 1, 0) == 17.0f);
  const auto flat = v.reshape({6, 4});
  CHECK(flat(5, 0) == 20.0f);
  CHECK(to_host(cpu, v.slice(0, 1, 2)) == std::vector<float>(values.begin() + 12, values.end()));

  TensorView<const float, Cpu> read_only = v;  // mutable -> const converts implicitly
  CHECK(read_only.data() == v.data());
}

TEST_CASE("shape errors name the shapes involved") {
  Cpu cpu;
  Tensor<float, Cpu> t(cpu, {2, 3});
  CHECK_THROWS_WITH(t.view().reshape({4, 2}),
                    doctest::Contains("cannot view shape [2, 3] (6 elements) as [4, 2]"));
  CHECK_THROWS_WITH(t.view().slice(1, 2, 5), doctest::Contains("range [2, 5) is out of bounds"));
  CHECK_THROWS_WITH(t.view()[2], doctest::Contains("index 2 is out of bounds for shape [2, 3]"));
  CHECK_THROWS_WITH(t.view().slice(0, 0, 1).slice(1, 0, 2).reshape({2}),
                    doctest::Contains("non-contiguous"));
  CHECK_THROWS_WITH(check_shape(Shape{3, 4}, Shape{3, 5}, "gemm: C"),
                    doctest::Contains("gemm: C has shape [3, 4] but expected [3, 5]"));
  CHECK_THROWS_WITH((Shape{2, -1}), doctest::Contains("non-negative"));
  std::vector<float> wrong(5);
  CHECK_THROWS_WITH(copy_from_host(cpu, t.view(), std::span<const float>(wrong)),
                    doctest::Contains("5 host elements do not fill a tensor of shape [2, 3]"));
}

TEST_CASE("errors carry where they were raised") {
  try {
    NANOCHAT_FAIL("the thing ", 42, " is wrong");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("the thing 42 is wrong (at ") == 0);
    CHECK(std::string(e.what()).find("test_tensor.cpp:") != std::string::npos);
    CHECK(e.where().line() > 0);
  }
}
