// The MPI engine's all_reduce (non-blocking MPI_Iallreduce polled against the timeout, then the
// average's scaling) against OpenMPI's own blocking MPI_Allreduce, fp32 in place, 1 KB .. 64 MB.
// Run under mpirun (every rank must make the same calls, so not a Google Benchmark, whose
// iteration counts differ from process to process):
//   mpirun -np 2 -x OMP_NUM_THREADS=1 build/benchmarks/bench_allreduce [--repeats 21]
// The two are timed interleaved (engine, MPI, engine, ...) at each size; rank 0 prints the
// median of each as bus bandwidth, NCCL's convention: bytes * 2 (W - 1) / W / seconds.
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "nanochat/core/flags.hpp"
#include "nanochat/dist/mpi_communicator.hpp"

int main(int argc, char** argv) {
  using namespace nanochat;
  int repeats = 21;
  try {  // before MPI starts: every rank refuses the same bad flag and exits alike
    Flags flags("bench_allreduce", "the MPI engine's all_reduce against MPI_Allreduce (run under mpirun)");
    flags.add("--repeats", repeats, "timed pairs a size, after one warm-up pair", FlagRange<int>{3, 100000});
    if (!flags.parse(argc, argv)) return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_allreduce: %s\n", e.what());
    return 2;
  }
  dist::MpiCommunicator comm(dist::placement_from_environment());
  const int w = comm.size();
  if (comm.rank() == 0) {
    std::printf("%s; %d repeats a size, interleaved; median bus bandwidth, GB/s\n", comm.describe().c_str(), repeats);
    std::printf("%10s %14s %14s %8s\n", "bytes", "engine sum", "MPI_Allreduce", "ratio");
  }
  for (std::size_t bytes = 1024; bytes <= (64u << 20); bytes *= 4) {
    std::vector<float> data(bytes / sizeof(float), 1.0f);
    std::vector<double> engine, mpi;
    for (int k = 0; k < repeats + 1; ++k) {  // the first pair warms up
      MPI_Barrier(MPI_COMM_WORLD);
      double t0 = MPI_Wtime();
      comm.all_reduce(std::span<float>(data), dist::ReduceOp::sum);
      double t1 = MPI_Wtime();
      MPI_Barrier(MPI_COMM_WORLD);
      const double t2 = MPI_Wtime();
      MPI_Allreduce(MPI_IN_PLACE, data.data(), static_cast<int>(data.size()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      const double t3 = MPI_Wtime();
      // The slowest rank's time is the collective's.
      double times[2] = {t1 - t0, t3 - t2};
      MPI_Allreduce(MPI_IN_PLACE, times, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      if (k > 0) {
        engine.push_back(times[0]);
        mpi.push_back(times[1]);
      }
      std::fill(data.begin(), data.end(), 1.0f);  // keep the values finite
    }
    auto median = [](std::vector<double> v) {
      std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
      return v[v.size() / 2];
    };
    const double bus = static_cast<double>(bytes) * 2.0 * (w - 1) / w / 1e9;
    const double e = median(engine), m = median(mpi);
    if (comm.rank() == 0) std::printf("%10zu %14.3f %14.3f %8.2f\n", bytes, bus / e, bus / m, m / e);
  }
  return 0;
}
