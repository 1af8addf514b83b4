// Each NANOCHAT_CASE instantiates one impossible configuration; the test passes when the compiler
// fails with the static_assert message that names the problem (tests/core/CMakeLists.txt).
#include "nanochat/core/presets.hpp"

#if NANOCHAT_CASE == 1
using Bad = nanochat::GptConfig<2, 6, 4, 64>;  // 6 heads cannot be split into 4 KV groups
#elif NANOCHAT_CASE == 2
using Bad = nanochat::GptConfig<2, 4, 4, 63>;  // rotary needs an even head dim
#elif NANOCHAT_CASE == 3
using Bad = nanochat::GptConfig<2, 4, 4, 64, double>;
#elif NANOCHAT_CASE == 4
using Bad = nanochat::NanochatConfig<5>;  // dim 320 over ceil(320/128) = 3 heads
#elif NANOCHAT_CASE == 5
using Bad = nanochat::GptConfig<2, 4, 8, 64>;
#endif
static_assert(Bad::model_dim > 0);
