#pragma once
// The communicator a program gets for how it was launched: one process unless a launcher says
// several (bootstrap.hpp), then MPI. A program built without MPI (NANOCHAT_HAVE_MPI, set by
// cmake/NanochatMpi.cmake's nanochat_link_mpi) refuses a multi-process launch instead of
// training W independent copies.

#include <cstdio>
#include <exception>
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

// A program's failure under a launcher: the message on stderr, prefixed with the rank when there
// are several, and then the other ranks ended at once (they would wait for this one in their
// next collective). Returns the exit status for one process; with several it does not return.
inline int fail_rank(const char* program, Communicator* comm, const std::exception& e, int exit_code) {
  const bool several = comm != nullptr && comm->size() > 1;
  std::fprintf(stderr, "%s: %s%s\n", program, several ? cat("rank ", comm->rank(), ": ").c_str() : "", e.what());
  if (several) comm->abort(exit_code);
  return exit_code;
}

}  // namespace nanochat::dist
