#pragma once
// RealNccl: the NcclRuntime of actual GPUs, libnccl on a communication stream of its own beside
// the RealDevice's compute stream, ordered by CUDA events. Needs nanochat::nccl (which defines
// NANOCHAT_HAS_NCCL); one GPU per process, the device chosen by local rank (RealDevice(ordinal)).
//
// The communicator is nonblocking (ncclConfig_t::blocking = 0): ncclCommInitRankConfig and each
// enqueue may return ncclInProgress while libnccl connects to its peers in the background, and
// are polled (ncclCommGetAsyncError) against the timeout, so a peer that never joins ends this
// rank with an error naming it instead of a hang. ncclCommAbort is local: the peers learn of it
// at their own timeout.

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "nanochat/backend/cuda/real_device.hpp"
#include "nanochat/core/error.hpp"
#include "nanochat/dist/communicator.hpp"
#include "nanochat/dist/nccl_runtime.hpp"

namespace nanochat::dist {

static_assert(sizeof(ncclUniqueId) == sizeof(NcclUniqueId::bytes), "NcclUniqueId must hold an ncclUniqueId");
static_assert(static_cast<int>(NcclType::int8) == ncclInt8 && static_cast<int>(NcclType::f32) == ncclFloat32 &&
              static_cast<int>(NcclType::f64) == ncclFloat64 && static_cast<int>(NcclType::bf16) == ncclBfloat16);
static_assert(static_cast<int>(NcclOp::sum) == ncclSum && static_cast<int>(NcclOp::avg) == ncclAvg);

class RealNccl final : public NcclRuntime {
 public:
  // timeout_s bounds what libnccl does before a wait can poll it: joining the communicator and
  // each collective's enqueue (the first sets up the connections to the peers).
  RealNccl(cuda::RealDevice& device, double timeout_s) : device_(&device), timeout_s_(timeout_s) {
    cuda::check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate (NCCL)");
    cuda::check_cuda(cudaEventCreateWithFlags(&compute_done_, cudaEventDisableTiming), "cudaEventCreate");
  }
  RealNccl(const RealNccl&) = delete;
  RealNccl& operator=(const RealNccl&) = delete;
  // ncclCommDestroy waits for the peers' part of unfinished work and can hang while a failure
  // unwinds: then, and whenever work may be outstanding or a call failed, the communicator is
  // aborted instead. An orderly end finalizes it first (bounded), then destroys it.
  ~RealNccl() override {
    const bool orderly = comm_ != nullptr && std::uncaught_exceptions() == 0 && !failed_ &&
                         free_events_.size() == events_.size() && cudaStreamQuery(stream_) == cudaSuccess;
    if (orderly && finalized()) {
      ncclCommDestroy(comm_);
      comm_ = nullptr;
    }
    abort();
    for (cudaEvent_t event : events_) cudaEventDestroy(event);
    cudaEventDestroy(compute_done_);
    cudaStreamDestroy(stream_);
  }

  std::string name() const override {
    int version = 0;
    ncclGetVersion(&version);
    return cat("libnccl ", version / 10000, ".", version / 100 % 100, ".", version % 100);
  }

  NcclUniqueId unique_id() override {
    ncclUniqueId raw;
    check(ncclGetUniqueId(&raw), "ncclGetUniqueId");
    NcclUniqueId id;
    std::memcpy(id.bytes.data(), &raw, sizeof(raw));
    return id;
  }

  void init(int ranks, const NcclUniqueId& id, int rank) override {
    NANOCHAT_CHECK(comm_ == nullptr, "NCCL: this runtime already joined a communicator");
    rank_ = rank;
    ranks_ = ranks;
    ncclUniqueId raw;
    std::memcpy(&raw, id.bytes.data(), sizeof(raw));
    // libnccl binds the communicator to the current device.
    cuda::check_cuda(cudaSetDevice(device_->ordinal()), "cudaSetDevice (NCCL)");
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    const ncclResult_t status = ncclCommInitRankConfig(&comm_, ranks, raw, rank, &config);
    if (status != ncclSuccess && status != ncclInProgress) {
      if (comm_ != nullptr) ncclCommAbort(comm_);
      comm_ = nullptr;
      check(status, "ncclCommInitRankConfig");
    }
    complete("ncclCommInitRankConfig (every rank must join)");
  }

  void all_reduce(const void* send, void* recv, std::size_t count, NcclType type, NcclOp op) override {
    enqueued(ncclAllReduce(send, recv, count, data_type(type), red_op(op), comm("ncclAllReduce"), stream_),
             "ncclAllReduce");
  }
  void reduce_scatter(const void* send, void* recv, std::size_t recv_count, NcclType type, NcclOp op) override {
    enqueued(ncclReduceScatter(send, recv, recv_count, data_type(type), red_op(op), comm("ncclReduceScatter"), stream_),
             "ncclReduceScatter");
  }
  void all_gather(const void* send, void* recv, std::size_t send_count, NcclType type) override {
    enqueued(ncclAllGather(send, recv, send_count, data_type(type), comm("ncclAllGather"), stream_), "ncclAllGather");
  }
  void broadcast(const void* send, void* recv, std::size_t count, NcclType type, int root) override {
    enqueued(ncclBroadcast(send, recv, count, data_type(type), root, comm("ncclBroadcast"), stream_), "ncclBroadcast");
  }
  void reduce(const void* send, void* recv, std::size_t count, NcclType type, NcclOp op, int root) override {
    enqueued(ncclReduce(send, recv, count, data_type(type), red_op(op), root, comm("ncclReduce"), stream_),
             "ncclReduce");
  }

  void comm_waits_for_compute() override {
    cuda::check_cuda(cudaEventRecord(compute_done_, device_->stream()), "cudaEventRecord (compute)");
    cuda::check_cuda(cudaStreamWaitEvent(stream_, compute_done_, 0), "cudaStreamWaitEvent (NCCL after compute)");
  }
  // Events come from a pool that grows only when more are in flight than ever before: a
  // collective's enqueue allocates nothing once training runs.
  NcclEvent record() override {
    if (free_events_.empty()) {
      cudaEvent_t event = nullptr;
      cuda::check_cuda(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), "cudaEventCreate");
      events_.push_back(event);
      in_flight_.push_back(false);
      free_events_.reserve(events_.size());
      free_events_.push_back(events_.size() - 1);
    }
    const std::size_t slot = free_events_.back();
    cuda::check_cuda(cudaEventRecord(events_[slot], stream_), "cudaEventRecord (NCCL)");
    free_events_.pop_back();
    in_flight_[slot] = true;
    return slot + 1;
  }
  void compute_waits_for(NcclEvent e) override {
    cuda::check_cuda(cudaStreamWaitEvent(device_->stream(), event(e), 0), "cudaStreamWaitEvent (compute after NCCL)");
  }
  bool reached(NcclEvent e) override {
    const cudaError_t status = cudaEventQuery(event(e));
    if (status == cudaErrorNotReady) {
      ncclResult_t async = ncclSuccess;
      check(ncclCommGetAsyncError(comm("ncclCommGetAsyncError"), &async), "ncclCommGetAsyncError");
      if (async != ncclInProgress) check(async, "a collective (asynchronous error)");
      return false;
    }
    cuda::check_cuda(status, "cudaEventQuery (NCCL)");
    return true;
  }
  void release(NcclEvent e) override {
    event(e);
    in_flight_[static_cast<std::size_t>(e - 1)] = false;
    free_events_.push_back(static_cast<std::size_t>(e - 1));
  }
  std::string diagnose() override {
    ncclResult_t async = ncclSuccess;
    if (comm_ == nullptr || ncclCommGetAsyncError(comm_, &async) != ncclSuccess) return "";
    if (async == ncclSuccess || async == ncclInProgress) {
      return "NCCL reports no error: a rank never joined the collective or is stalled";
    }
    return cat("NCCL's asynchronous error: ", ncclGetErrorString(async));
  }
  void abort() override {
    if (comm_ != nullptr) ncclCommAbort(comm_);
    comm_ = nullptr;
  }

 private:
  static ncclDataType_t data_type(NcclType t) { return static_cast<ncclDataType_t>(t); }
  static ncclRedOp_t red_op(NcclOp op) { return static_cast<ncclRedOp_t>(op); }

  ncclComm_t comm(const char* what) const {
    NANOCHAT_CHECK(comm_ != nullptr, "NCCL: rank ", rank_, " of ", ranks_, ": ", what,
                   " on a communicator that was aborted or never joined");
    return comm_;
  }

  void check(ncclResult_t status, const char* what) {
    if (status == ncclSuccess) return;
    failed_ = true;
    NANOCHAT_FAIL("NCCL: rank ", rank_, " of ", ranks_, ": ", what, " failed: ", ncclGetErrorString(status), " (",
                  ncclGetLastError(nullptr), ")");
  }

  // A nonblocking call's result: ncclInProgress is polled until libnccl is done with it.
  void enqueued(ncclResult_t status, const char* what) {
    if (status == ncclInProgress) {
      complete(what);
    } else {
      check(status, what);
    }
  }

  // Polls the communicator's state until it leaves ncclInProgress, never past the timeout: then
  // the communicator is aborted and the error names this rank and the world's size.
  void complete(const char* what) {
    ncclResult_t state = ncclInProgress;
    poll_until(
        timeout_s_,
        [&] {
          check(ncclCommGetAsyncError(comm(what), &state), "ncclCommGetAsyncError");
          return state != ncclInProgress;
        },
        [&] {
          failed_ = true;
          abort();
          NANOCHAT_FAIL("NCCL: rank ", rank_, " of ", ranks_, ": ", what, " did not complete within ", timeout_s_,
                        " s (NANOCHAT_DIST_TIMEOUT); the communicator is aborted");
        });
    check(state, what);
  }

  // ncclCommFinalize flushes this rank's part of the communicator, bounded like every other wait.
  bool finalized() noexcept {
    try {
      enqueued(ncclCommFinalize(comm_), "ncclCommFinalize");
      return true;
    } catch (const Error&) {
      return false;
    }
  }

  cudaEvent_t event(NcclEvent e) const {
    NANOCHAT_CHECK(e >= 1 && e <= events_.size() && in_flight_[static_cast<std::size_t>(e - 1)], "NCCL: event ", e,
                   " is not in flight (never recorded, or released already)");
    return events_[static_cast<std::size_t>(e - 1)];
  }

  cuda::RealDevice* device_;
  double timeout_s_;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t compute_done_ = nullptr;
  ncclComm_t comm_ = nullptr;
  int rank_ = -1, ranks_ = 0;
  bool failed_ = false;  // a call failed: the destructor aborts rather than destroys
  std::vector<cudaEvent_t> events_;      // the pool
  std::vector<bool> in_flight_;           // per event of the pool: recorded and not yet released
  std::vector<std::size_t> free_events_;  // indices into events_ not in flight
};

}  // namespace nanochat::dist
