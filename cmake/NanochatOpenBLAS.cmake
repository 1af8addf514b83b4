# Creates nanochat::openblas: OpenBLAS's CBLAS interface (cblas.h + libopenblas).
# Debian installs one header set per threading flavour; prefer the OpenMP one so BLAS threads
# and our OpenMP loops share one pool instead of oversubscribing the cores.
if(TARGET nanochat::openblas)
  return()
endif()
find_path(NANOCHAT_OPENBLAS_INCLUDE_DIR cblas.h
  PATH_SUFFIXES openblas-openmp openblas-pthread openblas x86_64-linux-gnu/openblas-openmp
                x86_64-linux-gnu/openblas-pthread aarch64-linux-gnu/openblas-openmp)
find_library(NANOCHAT_OPENBLAS_LIBRARY NAMES openblas openblaso openblasp
  PATH_SUFFIXES openblas-openmp openblas-pthread)
if(NOT NANOCHAT_OPENBLAS_INCLUDE_DIR OR NOT NANOCHAT_OPENBLAS_LIBRARY)
  message(FATAL_ERROR "nanochat needs OpenBLAS (cblas.h and libopenblas); on Debian: "
                      "apt-get install libopenblas-openmp-dev")
endif()
add_library(nanochat::openblas INTERFACE IMPORTED)
set_target_properties(nanochat::openblas PROPERTIES
  INTERFACE_INCLUDE_DIRECTORIES "${NANOCHAT_OPENBLAS_INCLUDE_DIR}"
  INTERFACE_LINK_LIBRARIES "${NANOCHAT_OPENBLAS_LIBRARY}")
