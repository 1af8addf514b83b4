#pragma once
// The communicator a program gets for how it was launched: one process unless a launcher says
// several (bootstrap.hpp), then MPI. A program built without MPI (NANOCHAT_HAVE_MPI, set by
// cmake/NanochatMpi.cmake's nanochat_link_mpi) refuses a multi-process launch instead of
// training W independent copies.

#include <memory>

#include "nanochat/dist/bootstrap.hpp"
#include "nanochat/dist/single_process_communicator.hpp"
#ifdef NANOCHAT_HAVE_MPI
#include "nanochat/dist/mpi_communicator.hpp"
#endif

namespace nanochat::dist {

inline std::unique_ptr<Communicator> communicator_for(const Placement& placement,
                                                      [[maybe_unused]] const char* program) {
  if (placement.size == 1) return std::make_unique<SingleProcessCommunicator>();
#ifdef NANOCHAT_HAVE_MPI
  return std::make_unique<MpiCommunicator>(placement);
#else
  NANOCHAT_FAIL("launched as rank ", placement.rank, " of ", placement.size, " (", placement.source, ") but this ",
                program, " was built without MPI (Debian: apt-get install libopenmpi-dev openmpi-bin, then "
                "reconfigure): it trains in one process only");
#endif
}

}  // namespace nanochat::dist
