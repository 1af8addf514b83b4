#pragma once
// The collectives data-parallel training needs, behind one interface so that the engines are
// interchangeable: one process (identity, single_process_communicator.hpp), MPI between CPU
// processes (mpi_communicator.hpp); NCCL between GPUs slots in the same way. Buffers are raw
// element spans in the engine's memory (host memory for MPI, device memory for NCCL), and
// calls are virtual: a collective moves a whole tensor, so the dispatch costs nothing.
//
// The in-place layouts are NCCL's: reduce_scatter and all_gather work on one buffer of size()
// equal chunks, chunk r being rank r's. Every rank must make the same calls in the same order
// with the same sizes (the engines check sizes where they can).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "nanochat/core/error.hpp"

namespace nanochat::dist {

enum class ReduceOp { sum, average };

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // What the engine is, for logs: "single process", "MPI (OpenMPI ...)".
  virtual std::string describe() const = 0;

  // Every rank ends with the element-wise reduction of everyone's data.
  virtual void all_reduce(std::span<float> data, ReduceOp op) = 0;
  virtual void all_reduce(std::span<double> data, ReduceOp op) = 0;
  // data holds size() equal chunks; afterwards chunk rank() holds the reduction of every rank's
  // chunk rank(); the other chunks are unspecified.
  virtual void reduce_scatter(std::span<float> data, ReduceOp op) = 0;
  // data holds size() equal chunks; each rank contributes its chunk rank(); afterwards every
  // rank holds all of them.
  virtual void all_gather(std::span<float> data) = 0;
  // Rank root ends with the reduction; the others' data is unspecified afterwards.
  virtual void reduce(std::span<float> data, ReduceOp op, int root) = 0;
  virtual void broadcast(std::span<float> data, int root) = 0;
  virtual void broadcast(std::span<char> data, int root) = 0;
  // Returns once every rank has called it (checkpoint files are written in phases).
  virtual void barrier() = 0;
  // Ends every rank's process at once after this one failed: the others would otherwise wait
  // for it in their next collective. Never returns.
  [[noreturn]] virtual void abort(int exit_code) = 0;
};

// How long one collective may wait for the slowest rank, in seconds: NANOCHAT_DIST_TIMEOUT
// (positive) or `fallback`. Every engine that can wait on a peer honours it.
inline double dist_timeout_from_environment(double fallback) {
  const char* text = std::getenv("NANOCHAT_DIST_TIMEOUT");
  if (text == nullptr) return fallback;
  char* end = nullptr;
  const double v = std::strtod(text, &end);
  NANOCHAT_CHECK(end != text && *end == '\0' && v > 0 && v < 1e9, "NANOCHAT_DIST_TIMEOUT=", text,
                 " is not a positive number of seconds");
  return v;
}

// Polls done() until it is true, calling on_timeout() (which must throw or end the process) once
// timeout_s has passed. Spins briefly (a step's collectives are quick), then backs off so that a
// long wait for a slow rank does not burn the core the rank's compute threads need.
template <class Done, class OnTimeout>
void poll_until(double timeout_s, Done&& done, OnTimeout&& on_timeout) {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + std::chrono::duration<double>(timeout_s);
  for (std::int64_t polls = 0; !done(); ++polls) {
    if (clock::now() > deadline) on_timeout();
    if (polls > 1000) std::this_thread::sleep_for(std::chrono::microseconds(polls > 100000 ? 1000 : 50));
  }
}

// A double summed over all ranks (gradient norms, validation totals).
inline double sum_over_ranks(Communicator& comm, double value) {
  comm.all_reduce(std::span<double>(&value, 1), ReduceOp::sum);
  return value;
}

// Counts summed over all ranks in place, exactly (a double holds every integer up to 2^53);
// nothing is communicated in one process.
inline void sum_counts_over_ranks(Communicator& comm, std::span<std::size_t> counts) {
  if (comm.size() == 1) return;
  std::vector<double> sums(counts.begin(), counts.end());
  comm.all_reduce(std::span<double>(sums), ReduceOp::sum);
  for (std::size_t i = 0; i < counts.size(); ++i) counts[i] = static_cast<std::size_t>(sums[i]);
}

// The chunk of `count` elements (count a multiple of size()) that rank owns.
struct Chunk {
  std::size_t offset, count;
};
inline Chunk chunk_of(std::size_t count, int size, int rank) {
  const std::size_t each = count / static_cast<std::size_t>(size);
  return {each * static_cast<std::size_t>(rank), each};
}

// rank's chunk of a reduce_scatter or all_gather buffer of n elements, which must split evenly.
inline Chunk whole_chunk_of(const char* what, std::size_t n, int size, int rank) {
  NANOCHAT_CHECK(n % static_cast<std::size_t>(size) == 0, what, ": a buffer of ", n, " elements does not split into ",
                 size, " equal chunks");
  return chunk_of(n, size, rank);
}

inline void check_root(int root, int size) {
  NANOCHAT_CHECK(root >= 0 && root < size, "collective root ", root, " is not a rank of ", size);
}

}  // namespace nanochat::dist
