#pragma once
// RealNccl: the NcclRuntime of actual GPUs, libnccl on a communication stream of its own beside
// the RealDevice's compute stream, ordered by CUDA events. Needs nanochat::nccl (which defines
// NANOCHAT_HAS_NCCL); one GPU per process, the device chosen by local rank (RealDevice(ordinal)).

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <cstring>
#include <map>
#include <string>

#include "nanochat/backend/cuda/real_device.hpp"
#include "nanochat/core/error.hpp"
#include "nanochat/dist/nccl_runtime.hpp"

namespace nanochat::dist {

static_assert(sizeof(ncclUniqueId) == sizeof(NcclUniqueId::bytes), "NcclUniqueId must hold an ncclUniqueId");
static_assert(static_cast<int>(NcclType::int8) == ncclInt8 && static_cast<int>(NcclType::f32) == ncclFloat32 &&
              static_cast<int>(NcclType::f64) == ncclFloat64 && static_cast<int>(NcclType::bf16) == ncclBfloat16);
static_assert(static_cast<int>(NcclOp::sum) == ncclSum && static_cast<int>(NcclOp::avg) == ncclAvg);

inline void check_nccl(ncclResult_t status, const char* what) {
  NANOCHAT_CHECK(status == ncclSuccess, "NCCL: ", what, " failed: ", ncclGetErrorString(status), " (",
                 ncclGetLastError(nullptr), ")");
}

class RealNccl final : public NcclRuntime {
 public:
  explicit RealNccl(cuda::RealDevice& device) : device_(&device) {
    cuda::check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate (NCCL)");
    cuda::check_cuda(cudaEventCreateWithFlags(&compute_done_, cudaEventDisableTiming), "cudaEventCreate");
  }
  RealNccl(const RealNccl&) = delete;
  RealNccl& operator=(const RealNccl&) = delete;
  ~RealNccl() override {
    if (comm_ != nullptr) ncclCommDestroy(comm_);
    for (auto& [id, event] : events_) cudaEventDestroy(event);
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
    check_nccl(ncclGetUniqueId(&raw), "ncclGetUniqueId");
    NcclUniqueId id;
    std::memcpy(id.bytes.data(), &raw, sizeof(raw));
    return id;
  }

  void init(int ranks, const NcclUniqueId& id, int rank) override {
    ncclUniqueId raw;
    std::memcpy(&raw, id.bytes.data(), sizeof(raw));
    check_nccl(ncclCommInitRank(&comm_, ranks, raw, rank), "ncclCommInitRank");
  }

  void all_reduce(const void* send, void* recv, std::size_t count, NcclType type, NcclOp op) override {
    check_nccl(ncclAllReduce(send, recv, count, data_type(type), red_op(op), comm_, stream_), "ncclAllReduce");
  }
  void reduce_scatter(const void* send, void* recv, std::size_t recv_count, NcclType type, NcclOp op) override {
    check_nccl(ncclReduceScatter(send, recv, recv_count, data_type(type), red_op(op), comm_, stream_),
               "ncclReduceScatter");
  }
  void all_gather(const void* send, void* recv, std::size_t send_count, NcclType type) override {
    check_nccl(ncclAllGather(send, recv, send_count, data_type(type), comm_, stream_), "ncclAllGather");
  }
  void broadcast(const void* send, void* recv, std::size_t count, NcclType type, int root) override {
    check_nccl(ncclBroadcast(send, recv, count, data_type(type), root, comm_, stream_), "ncclBroadcast");
  }
  void reduce(const void* send, void* recv, std::size_t count, NcclType type, NcclOp op, int root) override {
    check_nccl(ncclReduce(send, recv, count, data_type(type), red_op(op), root, comm_, stream_), "ncclReduce");
  }

  void comm_waits_for_compute() override {
    cuda::check_cuda(cudaEventRecord(compute_done_, device_->stream()), "cudaEventRecord (compute)");
    cuda::check_cuda(cudaStreamWaitEvent(stream_, compute_done_, 0), "cudaStreamWaitEvent (NCCL after compute)");
  }
  NcclEvent record() override {
    cudaEvent_t event = nullptr;
    cuda::check_cuda(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), "cudaEventCreate");
    cuda::check_cuda(cudaEventRecord(event, stream_), "cudaEventRecord (NCCL)");
    events_[++last_event_] = event;
    return last_event_;
  }
  void compute_waits_for(NcclEvent e) override {
    cuda::check_cuda(cudaStreamWaitEvent(device_->stream(), event(e), 0), "cudaStreamWaitEvent (compute after NCCL)");
  }
  bool reached(NcclEvent e) override {
    const cudaError_t status = cudaEventQuery(event(e));
    if (status == cudaErrorNotReady) {
      ncclResult_t async = ncclSuccess;
      check_nccl(ncclCommGetAsyncError(comm_, &async), "ncclCommGetAsyncError");
      check_nccl(async, "a collective (asynchronous error)");
      return false;
    }
    cuda::check_cuda(status, "cudaEventQuery (NCCL)");
    return true;
  }
  void release(NcclEvent e) override {
    cudaEventDestroy(event(e));
    events_.erase(e);
  }
  std::string diagnose() override {
    ncclResult_t async = ncclSuccess;
    if (comm_ == nullptr || ncclCommGetAsyncError(comm_, &async) != ncclSuccess) return "";
    if (async == ncclSuccess) return "NCCL reports no error: a rank never joined the collective or is stalled";
    return cat("NCCL's asynchronous error: ", ncclGetErrorString(async));
  }
  void abort() override {
    if (comm_ != nullptr) ncclCommAbort(comm_);
    comm_ = nullptr;
  }

 private:
  static ncclDataType_t data_type(NcclType t) { return static_cast<ncclDataType_t>(t); }
  static ncclRedOp_t red_op(NcclOp op) { return static_cast<ncclRedOp_t>(op); }
  cudaEvent_t event(NcclEvent e) const {
    const auto it = events_.find(e);
    NANOCHAT_CHECK(it != events_.end(), "NCCL: event ", e, " is not live (released twice?)");
    return it->second;
  }

  cuda::RealDevice* device_;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t compute_done_ = nullptr;
  ncclComm_t comm_ = nullptr;
  std::map<NcclEvent, cudaEvent_t> events_;
  NcclEvent last_event_ = 0;
};

}  // namespace nanochat::dist
