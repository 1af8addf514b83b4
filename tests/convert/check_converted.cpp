// check_converted CONVERTED EXPECTED f32|bf16: the converter's output, read with SafetensorsFile, holds
// exactly the reference's parameters (same names, shapes, nanochat's order, the model_config and step as
// metadata) with bit-identical values: f32 as stored by the reference, bf16 as those values rounded
// to nearest even. Exit 0 when everything matches, 1 with a line per problem otherwise.

#include <cstdint>
#include <cstring>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/core/safetensors.hpp"

namespace {

int problems = 0;

template <class... Parts>
void problem(const Parts&... parts) {
  std::cerr << "check_converted: " << nanochat::cat(parts...) << '\n';
  ++problems;
}

// Name of the first differing element, or -1.
std::int64_t first_mismatch(const nanochat::SafetensorsFile& converted, std::string_view name,
                            std::span<const float> expected, bool bf16) {
  for (std::size_t i = 0; i < expected.size(); ++i) {
    bool same;
    if (bf16) {
      same = converted.values<nanochat::bf16>(name)[i].bits == nanochat::bf16(expected[i]).bits;
    } else {
      const float got = converted.values<float>(name)[i];
      same = std::memcmp(&got, &expected[i], sizeof(float)) == 0;
    }
    if (!same) return static_cast<std::int64_t>(i);
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 || (std::string_view(argv[3]) != "f32" && std::string_view(argv[3]) != "bf16")) {
    std::cerr << "usage: check_converted CONVERTED.safetensors EXPECTED.safetensors f32|bf16\n";
    return 2;
  }
  const bool bf16 = std::string_view(argv[3]) == "bf16";
  try {
    const auto converted = nanochat::SafetensorsFile::load(argv[1]);
    const auto expected = nanochat::SafetensorsFile::load(argv[2]);

    // The reference stores the parameters plus the model's inputs and outputs.
    std::vector<std::string> params;
    for (const auto& t : expected.tensors())
      if (t.name != "idx" && t.name != "logits") params.push_back(t.name);
    if (converted.tensors().size() != params.size())
      problem("converted file has ", converted.tensors().size(), " tensors, expected ", params.size());
    const auto& order = converted.tensors();
    if (order.empty() || order.front().name != "transformer.wte.weight" ||
        order.back().name != "lm_head.weight")
      problem("converted tensors are not in nanochat's order (wte first, lm_head last)");

    for (const std::string& name : params) {
      if (!converted.contains(name)) {
        problem("converted file lacks ", name);
        continue;
      }
      const auto& got = converted.at(name);
      const auto& want = expected.at(name);
      if (!(got.shape == want.shape)) {
        problem(name, " has shape ", got.shape, ", expected ", want.shape);
        continue;
      }
      const auto want_dtype = bf16 ? nanochat::DType::bf16 : nanochat::DType::f32;
      if (got.dtype != want_dtype) {
        problem(name, " is ", nanochat::name_of(got.dtype), ", expected ", nanochat::name_of(want_dtype));
        continue;
      }
      if (const auto i = first_mismatch(converted, name, expected.values<float>(name), bf16); i >= 0)
        problem(name, " differs from the reference at element ", i);
    }

    for (const auto& [key, value] : expected.metadata()) {
      const auto it = converted.metadata().find(key);
      if (it == converted.metadata().end() || it->second != value)
        problem("metadata ", key, " is '",
                it == converted.metadata().end() ? std::string("(absent)") : it->second,
                "', expected '", value, "'");
    }
    if (problems == 0)
      std::cout << "check_converted: " << params.size() << " tensors and "
                << expected.metadata().size() << " metadata keys match (" << argv[3] << ")\n";
  } catch (const nanochat::Error& e) {
    problem(e.what());
  }
  return problems == 0 ? 0 : 1;
}
