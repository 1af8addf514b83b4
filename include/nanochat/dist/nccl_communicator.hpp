#pragma once
// The NCCL engine: the communicator over NCCL's collectives between GPUs (buffers are device
// memory), through an NcclRuntime (nccl_runtime.hpp: libnccl, or the emulated NCCL in CI).
// Each collective is enqueued on NCCL's own stream after the compute stream's work so far, and
// marked by an event. The Communicator calls wait for it on the host, never past the timeout
// (NANOCHAT_DIST_TIMEOUT, 300 s by default): then the error names what the runtime knows (the
// ranks that never joined, emulated; NCCL's async error, real) and the communicator is aborted.
// start_* and order_after let a caller overlap communication with the backward: start a
// bucket's all_reduce as soon as its gradients are written, and only make the compute stream
// wait for it before the optimizer reads them; settle() then bounds, on the host, the wait the
// GPU's compute stream would otherwise do without a timeout.
//
// The unique id travels over an existing communicator (unique_id_over: MPI's, when the job was
// launched by mpirun or srun).

#include <cstdlib>
#include <optional>
#include <span>
#include <string>

#include "nanochat/backend/cuda/device_runtime.hpp"
#include "nanochat/core/error.hpp"
#include "nanochat/dist/communicator.hpp"
#include "nanochat/dist/nccl_runtime.hpp"

namespace nanochat::dist {

// Rank 0 makes the id (ncclGetUniqueId) and `bootstrap` broadcasts it to the other ranks.
inline NcclUniqueId unique_id_over(Communicator& bootstrap, NcclRuntime& nccl) {
  NcclUniqueId id;
  if (bootstrap.rank() == 0) id = nccl.unique_id();
  bootstrap.broadcast(std::span<char>(id.bytes), 0);
  return id;
}

struct NcclOptions {
  double timeout_s = 300.0;  // how long a collective may take before the job is declared stuck
};

inline NcclOptions nccl_options_from_environment() { return {dist_timeout_from_environment(NcclOptions{}.timeout_s)}; }

class NcclCommunicator final : public Communicator {
 public:
  // A collective in flight on NCCL's stream.
  struct Pending {
    NcclEvent done;
    const char* what;
    std::size_t elements;
    std::int64_t collective;
  };

  // Joins the id's communicator of `size` ranks as `rank` (ncclCommInitRank). `bootstrap`, when
  // given, is the communicator abort() ends the job through (MPI kills every process).
  NcclCommunicator(NcclRuntime& nccl, cuda::DeviceRuntime& device, int rank, int size, const NcclUniqueId& id,
                   NcclOptions options = nccl_options_from_environment(), Communicator* bootstrap = nullptr)
      : nccl_(&nccl), device_(&device), rank_(rank), size_(size), options_(options), bootstrap_(bootstrap) {
    NANOCHAT_CHECK(size >= 1 && rank >= 0 && rank < size, "NCCL communicator: rank ", rank, " is not a rank of ", size);
    nccl_->init(size, id, rank);
    token_ = static_cast<float*>(device_->allocate(sizeof(float)));
    device_->fill_zero(token_, sizeof(float));
  }
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;
  ~NcclCommunicator() override {
    forget_unsettled();
    device_->free(token_);
  }

  // How long each later collective may take (a first collective after a slow start, or one
  // a test expects to time out, wants another bound than the rest).
  void set_timeout(double timeout_s) {
    NANOCHAT_CHECK(timeout_s > 0, "NCCL communicator: a timeout of ", timeout_s, " s is not positive");
    options_.timeout_s = timeout_s;
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string describe() const override { return cat("NCCL (", nccl_->name(), "), ", size_, " ranks"); }

  // Non-blocking starts; the results are there once wait() or order_after() says so.
  Pending start_all_reduce(std::span<float> data, ReduceOp op) {
    return start("all_reduce", data.size(), [&] {
      nccl_->all_reduce(data.data(), data.data(), data.size(), NcclType::f32, nccl_op(op));
    });
  }
  Pending start_reduce_scatter(std::span<float> data, ReduceOp op) {
    const Chunk mine = whole_chunk_of("reduce_scatter", data.size(), size_, rank_);
    return start("reduce_scatter", data.size(), [&] {
      nccl_->reduce_scatter(data.data(), data.data() + mine.offset, mine.count, NcclType::f32, nccl_op(op));
    });
  }
  Pending start_all_gather(std::span<float> data) {
    const Chunk mine = whole_chunk_of("all_gather", data.size(), size_, rank_);
    return start("all_gather", data.size(),
                 [&] { nccl_->all_gather(data.data() + mine.offset, data.data(), mine.count, NcclType::f32); });
  }

  // The host waits for the collective, never past the timeout. NCCL's stream runs its
  // collectives in order, so this one done means every earlier one is done too.
  void wait(const Pending& p) {
    poll_until(options_.timeout_s, [&] { return reached(p); }, [&] {
      const std::string known = nccl_->diagnose();
      nccl_->abort();
      NANOCHAT_FAIL("NCCL: rank ", rank_, " of ", size_, ": ", p.what, " (collective #", p.collective, ", ",
                    p.elements, " elements) did not complete within ", options_.timeout_s,
                    " s (NANOCHAT_DIST_TIMEOUT)", known.empty() ? "" : "; ", known, "; the communicator is aborted");
    });
    nccl_->release(p.done);
    if (unsettled_ && unsettled_->collective < p.collective) forget_unsettled();
  }
  // The compute stream waits for the collective (no host wait: the backward goes on meanwhile).
  // On a GPU nothing bounds that wait: a collective a peer never joins stalls the compute stream,
  // and the host's next synchronization of it would hang. So the latest such collective stays
  // unsettled until a later wait() passes it or settle() waits for it, bounded: call settle()
  // before the host synchronizes the compute stream (reads a loss, saves a checkpoint).
  void order_after(const Pending& p) {
    try {
      nccl_->compute_waits_for(p.done);
    } catch (const Error& e) {
      fail(p, e);
    }
    forget_unsettled();  // p is later on the same stream
    unsettled_ = p;
  }
  // Waits on the host, bounded by the timeout, for every collective order_after() left unsettled.
  void settle() {
    if (!unsettled_) return;
    const Pending p = *unsettled_;
    unsettled_.reset();
    wait(p);
  }

  void all_reduce(std::span<float> data, ReduceOp op) override { wait(start_all_reduce(data, op)); }
  void all_reduce(std::span<double> data, ReduceOp op) override {
    wait(start("all_reduce", data.size(), [&] {
      nccl_->all_reduce(data.data(), data.data(), data.size(), NcclType::f64, nccl_op(op));
    }));
  }
  void reduce_scatter(std::span<float> data, ReduceOp op) override { wait(start_reduce_scatter(data, op)); }
  void all_gather(std::span<float> data) override { wait(start_all_gather(data)); }
  void reduce(std::span<float> data, ReduceOp op, int root) override {
    check_root(root, size_);
    wait(start("reduce", data.size(), [&] {
      nccl_->reduce(data.data(), data.data(), data.size(), NcclType::f32, nccl_op(op), root);
    }));
  }
  void broadcast(std::span<float> data, int root) override {
    check_root(root, size_);
    wait(start("broadcast", data.size(),
               [&] { nccl_->broadcast(data.data(), data.data(), data.size(), NcclType::f32, root); }));
  }
  void broadcast(std::span<char> data, int root) override {
    check_root(root, size_);
    wait(start("broadcast", data.size(),
               [&] { nccl_->broadcast(data.data(), data.data(), data.size(), NcclType::int8, root); }));
  }
  // NCCL has no barrier: an all_reduce of one element every rank must enter.
  void barrier() override {
    wait(start("barrier", 1, [&] { nccl_->all_reduce(token_, token_, 1, NcclType::f32, NcclOp::sum); }));
  }
  [[noreturn]] void abort(int exit_code) override {
    nccl_->abort();
    if (bootstrap_ != nullptr) bootstrap_->abort(exit_code);
    std::_Exit(exit_code);
  }

 private:
  static NcclOp nccl_op(ReduceOp op) { return op == ReduceOp::average ? NcclOp::avg : NcclOp::sum; }

  bool reached(const Pending& p) {
    try {
      return nccl_->reached(p.done);
    } catch (const Error& e) {
      fail(p, e);
    }
  }

  [[noreturn]] void fail(const Pending& p, const Error& e) {
    nccl_->abort();
    NANOCHAT_FAIL("NCCL: rank ", rank_, " of ", size_, ": ", p.what, " (collective #", p.collective, ", ", p.elements,
                  " elements) failed: ", e.what(), "; the communicator is aborted");
  }

  void forget_unsettled() {
    if (unsettled_) nccl_->release(unsettled_->done);
    unsettled_.reset();
  }

  // After what the compute stream issued so far (the data is written), on NCCL's stream.
  template <class Enqueue>
  Pending start(const char* what, std::size_t elements, Enqueue&& enqueue) {
    nccl_->comm_waits_for_compute();
    enqueue();
    return {nccl_->record(), what, elements, ++started_};
  }

  NcclRuntime* nccl_;
  cuda::DeviceRuntime* device_;
  int rank_, size_;
  NcclOptions options_;
  Communicator* bootstrap_;
  float* token_ = nullptr;  // the barrier's element, device memory
  std::int64_t started_ = 0;
  std::optional<Pending> unsettled_;  // the latest collective only the compute stream waits for
};

}  // namespace nanochat::dist
