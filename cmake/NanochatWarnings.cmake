# Warning and checking flags for the project's own programs (never forced on consumers).
# nanochat_program(target) applies them; CUDA sources also get ptxas spill reporting, checked by
# check_spills.sh against spill_allowlist.txt.
set(NANOCHAT_CXX_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  # GCC 12 at -O3 reports std::string's own char_traits::copy as overlapping (GCC PR 105329,
  # 105651: libstdc++ inlined into a string concatenation); with -Werror it stopped Release builds.
  list(APPEND NANOCHAT_CXX_WARNINGS -Wno-restrict)
endif()
function(nanochat_program target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:${NANOCHAT_CXX_WARNINGS} -Werror>
    $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings -Xptxas=-v
        -Xcompiler=-Wall,-Wextra,-Werror>)
  if(NANOCHAT_NATIVE)
    # Tests, examples and benchmarks run where they are built; AVX-512 matters for the CPU ops.
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-march=native>
                                             $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-march=native>)
  endif()
  if(NANOCHAT_TSAN)
    target_compile_options(${target} PRIVATE -fsanitize=thread -g -O1)
    target_link_options(${target} PRIVATE -fsanitize=thread)
  endif()
  get_target_property(sources ${target} SOURCES)
  if(sources MATCHES "\\.cu(;|$)")
    set_target_properties(${target} PROPERTIES CUDA_COMPILER_LAUNCHER
      "${PROJECT_SOURCE_DIR}/cmake/check_spills.sh;${PROJECT_SOURCE_DIR}/cmake/spill_allowlist.txt")
  endif()
endfunction()
