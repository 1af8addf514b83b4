// Config templates: nanochat's shape table (parameter counts and FLOPs per token from the spec),
// GQA-derived shapes, and the runtime depth dispatcher.

#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "nanochat/core/depth_dispatch.hpp"

using namespace nanochat;

// The table of nanochat's depth -> shape mapping (spec §2.1), checked at compile time.
static_assert(NanochatConfig<20>::model_dim == 1280 && NanochatConfig<20>::n_head == 10 &&
              NanochatConfig<20>::head_dim == 128 && NanochatConfig<20>::n_kv_head == 10);
static_assert(NanochatConfig<20>::matrix_params == 393'216'000);
static_assert(NanochatConfig<20>::total_params(65536) == 560'988'160);
static_assert(NanochatConfig<4>::total_params(65536) == 36'700'160);
static_assert(NanochatConfig<12>::total_params(65536) == 185'597'952);
static_assert(NanochatConfig<26>::total_params(65536) == 1'081'999'360);
static_assert(NanochatConfig<26>::matrix_params == 863'895'552);
static_assert(NanochatConfig<32>::total_params(65536) == 1'879'048'192);
static_assert(NanochatConfig<4, bf16>::model_dim == 256);

TEST_CASE("FLOPs per token follow nanochat's estimate") {
  CHECK(NanochatConfig<20>::flops_per_token(65536, 2048) == 3'491'758'080.0);
  CHECK(std::abs(NanochatConfig<4>::flops_per_token(65536, 2048) / 1.447e8 - 1) < 5e-4);
  CHECK(std::abs(NanochatConfig<12>::flops_per_token(65536, 2048) / 1.038e9 - 1) < 5e-4);
  CHECK(std::abs(NanochatConfig<26>::flops_per_token(65536, 2048) / 6.9009e9 - 1) < 1e-4);
  CHECK(std::abs(NanochatConfig<32>::flops_per_token(65536, 2048) / 1.20796e10 - 1) < 1e-5);
}

TEST_CASE("GQA shrinks the K and V projections only") {
  using Gqa = GptConfig<3, 8, 2, 32>;
  static_assert(Gqa::model_dim == 256 && Gqa::kv_dim == 64 && Gqa::gqa_group == 4);
  static_assert(Gqa::c_q.out == 256 && Gqa::c_k.out == 64 && Gqa::c_v.out == 64);
  static_assert(Gqa::c_fc.out == 1024 && Gqa::mlp_proj.in == 1024);
  CHECK(Gqa::block_params == 256 * 256 * 2 + 2 * 64 * 256 + 2 * 1024 * 256);
  CHECK(Gqa::name() == "depth 3, dim 256, 8 heads, 2 KV heads, head dim 32, f32");
}

TEST_CASE("the depth dispatcher picks the compiled config, and names the ones there are") {
  const auto dim = dispatch_depth(20, CompiledDepths{}, []<class C>() { return C::model_dim; });
  CHECK(dim == 1280);
  int seen = 0;
  dispatch_depth<bf16>(4, DepthList<4, 8>{}, [&]<class C>() {
    static_assert(std::is_same_v<typename C::element_type, bf16>);
    seen = C::depth;
  });
  CHECK(seen == 4);
  CHECK_THROWS_WITH(dispatch_depth(7, DepthList<4, 8, 12>{}, []<class C>() { return 0; }),
                    doctest::Contains("depth 7 is not compiled into this program; available "
                                      "depths: 4, 8, 12"));
}
