// Runs under mpirun for test_dist: `collectives` checks every collective of the launched engine
// against the reference (collectives_check.hpp) and that a buffer which does not split into
// equal chunks is refused; `hang R` and `die R` make rank R stop answering (sleep) or die
// (SIGKILL) before an all_reduce the others enter, which must end the job with a message naming R.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "collectives_check.hpp"
#include "nanochat/dist/launch.hpp"

int main(int argc, char** argv) {
  using namespace nanochat;
  const std::string mode = argc > 1 ? argv[1] : "collectives";
  std::unique_ptr<dist::Communicator> comm;
  try {
    comm = dist::communicator_for(dist::placement_from_environment(), "mpi_collectives_check");
    if (mode == "collectives") {
      const std::string errors = nanochat_dist_test::check_collectives(*comm);
      std::vector<float> odd(static_cast<std::size_t>(comm->size()) + 1, 1.0f);
      std::string refused;
      try {
        comm->reduce_scatter(std::span<float>(odd), dist::ReduceOp::sum);
      } catch (const Error& e) {
        refused = e.what();
      }
      const bool refused_ok = comm->size() == 1 || refused.find("does not split into") != std::string::npos;
      std::printf("rank %d of %d (%s): %s%s\n", comm->rank(), comm->size(), comm->describe().c_str(),
                  errors.empty() ? "collectives ok" : errors.c_str(), refused_ok ? "" : "; an uneven reduce_scatter was not refused");
      return errors.empty() && refused_ok ? 0 : 1;
    }
    const int victim = argc > 2 ? std::atoi(argv[2]) : 1;
    std::vector<float> x(1000, 1.0f);
    comm->all_reduce(std::span<float>(x), dist::ReduceOp::sum);  // everyone is up
    if (comm->rank() == victim) {
      if (mode == "die") std::raise(SIGKILL);
      std::this_thread::sleep_for(std::chrono::hours(1));
    }
    comm->all_reduce(std::span<float>(x), dist::ReduceOp::sum);
    std::printf("rank %d: the second all_reduce completed without rank %d\n", comm->rank(), victim);
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mpi_collectives_check: %s\n", e.what());
    if (comm && comm->size() > 1) comm->abort(2);
    return 2;
  }
}
