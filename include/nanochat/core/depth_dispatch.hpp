#pragma once
// The runtime front door to compile-time configs: `--depth 20` picks NanochatConfig<20> from a
// list compiled into the program. A depth outside the list is an error naming the ones there are.

#include <string>
#include <type_traits>

#include "nanochat/core/error.hpp"
#include "nanochat/core/presets.hpp"

namespace nanochat {

template <int... Depths>
struct DepthList {
  static_assert(sizeof...(Depths) > 0, "DepthList needs at least one depth");
  static constexpr bool contains(int depth) { return ((depth == Depths) || ...); }
  static std::string str() {
    std::string s;
    ((s += (s.empty() ? "" : ", ") + std::to_string(Depths)), ...);
    return s;
  }
};

// The one list of depths the programs are built for: base_train trains them and every program
// that loads or describes a model (base_eval, chat_cli, model_info) takes exactly these, so any
// model that trains can be evaluated and chatted with. d2 (the smallest, for tests) and d4 (the
// CPU main job) to d32 (nanochat's $1000 tier); each is a full instantiation of model and
// optimizers in base_train.
using CompiledDepths = DepthList<2, 4, 6, 8, 12, 16, 20, 26, 32>;

// Calls fn.template operator()<NanochatConfig<depth, Element>>() for the runtime depth and
// returns its result; every instantiation must return the same type.
template <class Element = float, int... Depths, class Fn>
decltype(auto) dispatch_depth(int depth, DepthList<Depths...> list, Fn&& fn) {
  using Result = std::common_type_t<
      decltype(fn.template operator()<NanochatConfig<Depths, Element>>())...>;
  NANOCHAT_CHECK(list.contains(depth), "depth ", depth,
                 " is not compiled into this program; available depths: ", list.str());
  if constexpr (std::is_void_v<Result>) {
    ((depth == Depths ? (fn.template operator()<NanochatConfig<Depths, Element>>(), 0) : 0), ...);
  } else {
    Result result{};
    ((depth == Depths ? (result = fn.template operator()<NanochatConfig<Depths, Element>>(), 0) : 0),
     ...);
    return result;
  }
}

}  // namespace nanochat
