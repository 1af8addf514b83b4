#pragma once
// The MPI engine: ranks are the processes of MPI_COMM_WORLD (mpirun, srun), buffers are host
// memory. Needs an MPI implementation (cmake/NanochatMpi.cmake; Debian's OpenMPI).
//
// No collective waits forever. Each is started non-blocking and polled against a deadline
// (the timeout, NANOCHAT_DIST_TIMEOUT seconds, 300 by default). When it passes, the rank asks
// every other rank, on a communicator of its own, which collective it is in; a rank that does
// not answer within a grace period is dead or hung, and the error names it (and any rank that
// is in another collective, a mismatch of calls), then the job is aborted. OpenMPI's own
// default, when a process dies, is to kill the others (mpirun names the rank); a hung rank it
// never notices.

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/dist/bootstrap.hpp"
#include "nanochat/dist/communicator.hpp"

namespace nanochat::dist {

struct MpiOptions {
  double timeout_s = 300.0;  // how long one collective may wait for the slowest rank
  double grace_s = 5.0;      // how long a timed-out rank waits for the others' answers
};

// NANOCHAT_DIST_TIMEOUT (seconds, positive) overrides the default timeout.
inline MpiOptions mpi_options_from_environment() {
  MpiOptions o;
  o.timeout_s = dist_timeout_from_environment(o.timeout_s);
  o.grace_s = std::min(o.grace_s, o.timeout_s);
  return o;
}

class MpiCommunicator final : public Communicator {
 public:
  // Initialises MPI (once per process) and checks that it sees the job the launcher described:
  // a binary linked to another MPI than the mpirun that started it sees itself alone.
  explicit MpiCommunicator(const Placement& placement, MpiOptions options = mpi_options_from_environment())
      : options_(options) {
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) {
      int provided = 0;
      // Only the main thread calls MPI (loader and OpenMP threads never do).
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
      owns_init_ = true;
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
    MPI_Comm_dup(MPI_COMM_WORLD, &diagnosis_);
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_set_errhandler(diagnosis_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    NANOCHAT_CHECK(rank_ == placement.rank && size_ == placement.size, "MPI sees this process as rank ", rank_, " of ",
                   size_, " but the launcher (", placement.source, ") says rank ", placement.rank, " of ",
                   placement.size, ": is this program linked to another MPI than the one that launched it?");
  }
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;
  ~MpiCommunicator() override {
    MPI_Comm_free(&diagnosis_);
    MPI_Comm_free(&comm_);
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (owns_init_ && !finalised) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string describe() const override {
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int length = 0;
    MPI_Get_library_version(version, &length);
    std::string v(version, static_cast<std::size_t>(length));
    if (const auto cut = v.find_first_of(",\n"); cut != std::string::npos) v.resize(cut);
    return cat("MPI (", v, "), ", size_, " ranks");
  }

  void all_reduce(std::span<float> data, ReduceOp op) override {
    run("all_reduce", data.size(), [&](MPI_Request* r) {
      return MPI_Iallreduce(MPI_IN_PLACE, data.data(), count(data.size()), MPI_FLOAT, MPI_SUM, comm_, r);
    });
    if (op == ReduceOp::average) divide(data);
  }
  void all_reduce(std::span<double> data, ReduceOp op) override {
    run("all_reduce", data.size(), [&](MPI_Request* r) {
      return MPI_Iallreduce(MPI_IN_PLACE, data.data(), count(data.size()), MPI_DOUBLE, MPI_SUM, comm_, r);
    });
    if (op == ReduceOp::average) divide(data);
  }
  void reduce_scatter(std::span<float> data, ReduceOp op) override {
    const Chunk mine = whole_chunk_of("reduce_scatter", data.size(), size_, rank_);
    // MPI's in-place variant leaves the result at the buffer's start; NCCL's layout wants it in
    // this rank's chunk (disjoint from the start unless rank 0).
    run("reduce_scatter", data.size(), [&](MPI_Request* r) {
      return MPI_Ireduce_scatter_block(MPI_IN_PLACE, data.data(), count(mine.count), MPI_FLOAT, MPI_SUM, comm_, r);
    });
    if (mine.offset > 0) std::copy_n(data.data(), mine.count, data.data() + mine.offset);
    if (op == ReduceOp::average) divide(data.subspan(mine.offset, mine.count));
  }
  void all_gather(std::span<float> data) override {
    const Chunk mine = whole_chunk_of("all_gather", data.size(), size_, rank_);
    run("all_gather", data.size(), [&](MPI_Request* r) {
      return MPI_Iallgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data.data(), count(mine.count), MPI_FLOAT, comm_, r);
    });
  }
  void reduce(std::span<float> data, ReduceOp op, int root) override {
    check_root(root, size_);
    run("reduce", data.size(), [&](MPI_Request* r) {
      return MPI_Ireduce(rank_ == root ? MPI_IN_PLACE : data.data(), data.data(), count(data.size()), MPI_FLOAT,
                         MPI_SUM, root, comm_, r);
    });
    if (op == ReduceOp::average && rank_ == root) divide(data);
  }
  void broadcast(std::span<float> data, int root) override {
    check_root(root, size_);
    run("broadcast", data.size(), [&](MPI_Request* r) {
      return MPI_Ibcast(data.data(), count(data.size()), MPI_FLOAT, root, comm_, r);
    });
  }
  void broadcast(std::span<char> data, int root) override {
    check_root(root, size_);
    run("broadcast", data.size(), [&](MPI_Request* r) {
      return MPI_Ibcast(data.data(), count(data.size()), MPI_CHAR, root, comm_, r);
    });
  }
  void barrier() override {
    run("barrier", 0, [&](MPI_Request* r) { return MPI_Ibarrier(comm_, r); });
  }
  [[noreturn]] void abort(int exit_code) override {
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);  // MPI_Abort does not return; this keeps [[noreturn]] honest
  }

  const MpiOptions& options() const { return options_; }

 private:
  // What a rank says about itself when another one diagnoses a timeout.
  struct Whereabouts {
    std::int64_t collective;  // how many collectives it had started, this one included
    std::int64_t elements;
  };

  template <class T>
  void divide(std::span<T> data) const {
    const T inverse = T(1) / static_cast<T>(size_);
    for (T& x : data) x *= inverse;
  }

  static int count(std::size_t n) {
    NANOCHAT_CHECK(n <= static_cast<std::size_t>(INT32_MAX), "MPI collective of ", n,
                   " elements: more than MPI's int count can name; split the buffer");
    return static_cast<int>(n);
  }

  // Starts a non-blocking collective and waits for it, never past the deadline.
  template <class Start>
  void run(const char* what, std::size_t elements, Start&& start) {
    ++started_;
    MPI_Request request = MPI_REQUEST_NULL;
    check(start(&request), what);
    wait(request, what, elements);
  }

  void check(int code, const char* what) {
    if (code == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(code, text, &length);
    fail(cat("rank ", rank_, ": MPI ", what, " failed: ", std::string(text, static_cast<std::size_t>(length)),
             " (a rank died?)"));
  }

  void wait(MPI_Request& request, const char* what, std::size_t elements) {
    poll_until(
        options_.timeout_s,
        [&] {
          int done = 0;
          check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), what);
          return done != 0;
        },
        [&] { diagnose_and_abort(what, elements); });
  }

  // Asks every other rank where it is, names the ranks that are not where this one is, aborts.
  [[noreturn]] void diagnose_and_abort(const char* what, std::size_t elements) {
    const int n = size_;
    const Whereabouts mine{started_, static_cast<std::int64_t>(elements)};
    std::vector<Whereabouts> theirs(static_cast<std::size_t>(n));
    std::vector<MPI_Request> requests;
    for (int r = 0; r < n; ++r) {
      if (r == rank_) continue;
      requests.emplace_back();
      MPI_Irecv(&theirs[static_cast<std::size_t>(r)], sizeof(Whereabouts), MPI_BYTE, r, 0, diagnosis_,
                &requests.back());
      requests.emplace_back();
      MPI_Isend(&mine, sizeof(Whereabouts), MPI_BYTE, r, 0, diagnosis_, &requests.back());
    }
    // Answering is part of waiting: a rank that timed out answers the others' questions by
    // sending its own whereabouts to all. Ranks that are not waiting anywhere answer nobody.
    const auto grace_end = std::chrono::steady_clock::now() + std::chrono::duration<double>(options_.grace_s);
    std::vector<bool> answered(static_cast<std::size_t>(n), false);
    answered[static_cast<std::size_t>(rank_)] = true;
    while (std::chrono::steady_clock::now() < grace_end) {
      std::size_t k = 0;
      for (int r = 0; r < n; ++r) {
        if (r == rank_) continue;
        int done = 0;
        if (!answered[static_cast<std::size_t>(r)]) {
          MPI_Test(&requests[k], &done, MPI_STATUS_IGNORE);
          if (done) answered[static_cast<std::size_t>(r)] = true;
        }
        k += 2;
      }
      if (std::all_of(answered.begin(), answered.end(), [](bool a) { return a; })) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::string silent, elsewhere;
    for (int r = 0; r < n; ++r) {
      if (!answered[static_cast<std::size_t>(r)]) {
        silent += cat(silent.empty() ? "" : ", ", r);
      } else if (r != rank_ && (theirs[static_cast<std::size_t>(r)].collective != mine.collective ||
                                theirs[static_cast<std::size_t>(r)].elements != mine.elements)) {
        elsewhere += cat(elsewhere.empty() ? "" : "; ", "rank ", r, " is in collective #",
                         theirs[static_cast<std::size_t>(r)].collective, " of ",
                         theirs[static_cast<std::size_t>(r)].elements, " elements");
      }
    }
    std::string message = cat("rank ", rank_, " of ", n, ": ", what, " (collective #", mine.collective, ", ",
                              elements, " elements) did not complete within ", options_.timeout_s,
                              " s (NANOCHAT_DIST_TIMEOUT)");
    if (!silent.empty()) message += cat("; rank", silent.find(',') == std::string::npos ? " " : "s ", silent,
                                        " did not answer: dead or hung");
    if (!elsewhere.empty()) message += cat("; ", elsewhere, " (the ranks' calls do not match)");
    fail(message + "; aborting the job");
  }

  [[noreturn]] void fail(const std::string& message) {
    std::fprintf(stderr, "nanochat dist: %s\n", message.c_str());
    std::fflush(stderr);
    abort(3);
  }

  MpiOptions options_;
  MPI_Comm comm_ = MPI_COMM_NULL, diagnosis_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  bool owns_init_ = false;
  std::int64_t started_ = 0;
};

}  // namespace nanochat::dist
