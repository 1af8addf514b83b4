#pragma once
// The NCCL engine's whole contact with NCCL and the CUDA streams it runs on, as one thin
// interface, as DeviceRuntime is for cudart and cuBLASLt. Two implementations: RealNccl
// (real_nccl.hpp: libnccl on the device's streams, built where nanochat::nccl exists) and
// EmulatedNccl (emulated_nccl.hpp: ranks as threads, each with its own EmulatedDevice, the
// collectives computed by a reference). The engine above it (nccl_communicator.hpp) is the same
// code for both, so its setup, buffer layouts and stream ordering run in CI without GPUs.
//
// One object is one rank's communicator. Collectives are enqueued on its communication stream
// and return at once; events mark points on that stream.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace nanochat::dist {

// ncclDataType_t and ncclRedOp_t, with nccl.h's numeric values so the real side passes them through.
enum class NcclType : int { int8 = 0, f32 = 7, f64 = 8, bf16 = 9 };
enum class NcclOp : int { sum = 0, avg = 4 };

// nccl.h's names, for messages.
inline const char* type_name(NcclType t) {
  switch (t) {
    case NcclType::int8: return "ncclInt8";
    case NcclType::f32: return "ncclFloat32";
    case NcclType::f64: return "ncclFloat64";
    case NcclType::bf16: return "ncclBfloat16";
  }
  return "an unknown ncclDataType_t";
}
inline const char* op_name(NcclOp op) {
  switch (op) {
    case NcclOp::sum: return "ncclSum";
    case NcclOp::avg: return "ncclAvg";
  }
  return "an unknown ncclRedOp_t";
}

inline std::size_t element_bytes(NcclType t) {
  switch (t) {
    case NcclType::int8: return 1;
    case NcclType::bf16: return 2;
    case NcclType::f32: return 4;
    case NcclType::f64: return 8;
  }
  return 0;
}

// ncclUniqueId: NCCL_UNIQUE_ID_BYTES opaque bytes, made by one rank and handed to all.
struct NcclUniqueId {
  std::array<char, 128> bytes{};
};

// A point on the communication stream (a cudaEvent on the real side).
using NcclEvent = std::uint64_t;

class NcclRuntime {
 public:
  virtual ~NcclRuntime() = default;
  virtual std::string name() const = 0;
  // ncclGetUniqueId: called by rank 0 only.
  virtual NcclUniqueId unique_id() = 0;
  // ncclCommInitRank: returns once all `ranks` have joined the id's communicator.
  virtual void init(int ranks, const NcclUniqueId& id, int rank) = 0;

  // The collectives with NCCL's arguments and layouts (counts are elements): in place when
  // recv == send for all_reduce, broadcast and reduce; recv == send + rank * recv_count for
  // reduce_scatter; send == recv + rank * send_count for all_gather.
  virtual void all_reduce(const void* send, void* recv, std::size_t count, NcclType type, NcclOp op) = 0;
  virtual void reduce_scatter(const void* send, void* recv, std::size_t recv_count, NcclType type, NcclOp op) = 0;
  virtual void all_gather(const void* send, void* recv, std::size_t send_count, NcclType type) = 0;
  virtual void broadcast(const void* send, void* recv, std::size_t count, NcclType type, int root) = 0;
  virtual void reduce(const void* send, void* recv, std::size_t count, NcclType type, NcclOp op, int root) = 0;

  // Stream ordering. The communication stream waits for what the device's compute stream has
  // issued so far (the backward that wrote a gradient), without blocking the host.
  virtual void comm_waits_for_compute() = 0;
  // Marks the communication stream's current end.
  virtual NcclEvent record() = 0;
  // The compute stream waits for the event (the optimizer reads what NCCL wrote).
  virtual void compute_waits_for(NcclEvent event) = 0;
  // Whether the stream has passed the event (cudaEventQuery); never blocks.
  virtual bool reached(NcclEvent event) = 0;
  virtual void release(NcclEvent event) = 0;
  // What is known about a collective that does not complete: ncclCommGetAsyncError's text, or
  // (emulated) the ranks that never joined it. "" when nothing is known.
  virtual std::string diagnose() = 0;
  // ncclCommAbort: pending collectives are abandoned, the communicator is unusable after.
  virtual void abort() = 0;
};

}  // namespace nanochat::dist
