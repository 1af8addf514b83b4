# Creates nanochat::nccl and nanochat::cccl when the CUDA toolkit provides them; both are optional.
if(NOT TARGET nanochat::nccl)
  find_path(NANOCHAT_NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
  find_library(NANOCHAT_NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR})
  if(NANOCHAT_NCCL_INCLUDE_DIR AND NANOCHAT_NCCL_LIBRARY)
    add_library(nanochat::nccl INTERFACE IMPORTED)
    set_target_properties(nanochat::nccl PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${NANOCHAT_NCCL_INCLUDE_DIR}"
      INTERFACE_LINK_LIBRARIES "${NANOCHAT_NCCL_LIBRARY}"
      INTERFACE_COMPILE_DEFINITIONS NANOCHAT_HAS_NCCL=1)
  endif()
endif()
if(NOT TARGET nanochat::cccl)
  # CUDA 13 keeps CUB/Thrust/libcu++ under include/cccl; older toolkits put them in include/.
  find_path(NANOCHAT_CCCL_INCLUDE_DIR cub/cub.cuh
    HINTS ${CUDAToolkit_INCLUDE_DIRS} PATH_SUFFIXES cccl)
  if(NANOCHAT_CCCL_INCLUDE_DIR)
    add_library(nanochat::cccl INTERFACE IMPORTED)
    set_target_properties(nanochat::cccl PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${NANOCHAT_CCCL_INCLUDE_DIR}")
  endif()
endif()
