# Finds MPI (Debian: libopenmpi-dev, with openmpi-bin for mpirun) for distributed training
# (include/nanochat/dist/mpi_communicator.hpp). Optional: without it the programs train in one
# process and refuse a multi-process launch with a message, and the distributed tests skip.
# Sets NANOCHAT_MPI_FOUND and, when found, the target MPI::MPI_CXX and MPIEXEC_EXECUTABLE.
if(DEFINED NANOCHAT_MPI_FOUND)
  return()
endif()
find_package(MPI QUIET COMPONENTS CXX)
if(MPI_CXX_FOUND)
  set(NANOCHAT_MPI_FOUND ON)
  message(STATUS "nanochat: MPI ${MPI_CXX_VERSION} found (mpirun: ${MPIEXEC_EXECUTABLE}); distributed training is built")
else()
  set(NANOCHAT_MPI_FOUND OFF)
  message(STATUS "nanochat: MPI not found (Debian: apt-get install libopenmpi-dev openmpi-bin); base_train trains "
                 "in one process only and the distributed tests are skipped")
endif()

# nanochat_link_mpi(<target>): builds <target> with the MPI engine (NANOCHAT_HAVE_MPI) when MPI is there.
function(nanochat_link_mpi target)
  if(NANOCHAT_MPI_FOUND)
    target_link_libraries(${target} PRIVATE MPI::MPI_CXX)
    target_compile_definitions(${target} PRIVATE NANOCHAT_HAVE_MPI=1)
  endif()
endfunction()
