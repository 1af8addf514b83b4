#pragma once
// OpenMP queries that degrade to one thread when the including program is built without
// OpenMP (the pragmas are then ignored and the loops run serially).

#ifdef _OPENMP
#include <omp.h>
#endif

namespace nanochat::tokenizer {

inline int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

inline int thread_index() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

}  // namespace nanochat::tokenizer
