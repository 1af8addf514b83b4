#pragma once
// EmulatedNccl: an NcclRuntime without GPUs or libnccl. Ranks are threads of one process, each
// with its own EmulatedDevice; an EmulatedNcclNetwork stands for the interconnect and knows the
// communicators by unique id. Each rank's communication stream is a worker thread that runs the
// enqueued collectives in order, so the host (the compute stream: an emulated device runs work
// as it is issued) goes on while a collective waits for its peers, as on a GPU. A collective
// completes when every rank has entered it; the last to arrive computes every rank's result
// (nccl_reference below), after checking that all ranks called the same collective with the same
// count, type, operation and root. Buffers must be device memory of the rank's EmulatedDevice,
// large enough for NCCL's layout. Once the communicator is aborted no collective is computed:
// the buffers of an aborted rank may already be freed or reused.
//
// What the reference computes: sums in the type's arithmetic, accumulated in rank order and
// rounded to the type after every addition, as one ring hop after another stores its partial
// sum (bf16 partials are rounded at every hop); ncclAvg on floating types as NCCL runs it,
// PreMulSum: every input times the type's 1/n (bf16(1/n) for bf16), then summed; ncclAvg on
// integers as SumPostDiv (the wrapped sum, divided). Int8 sums wrap modulo 256.
//
// Limits: NCCL's rings start each chunk at a different rank and its trees sum in another order,
// so bf16 (and, rarely, fp32) results can differ from a GPU's in the last bits; no NCCL protocol,
// channel or bandwidth is emulated.

#include <algorithm>
#include <bit>
#include <cmath>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "nanochat/backend/cuda/emulated_device.hpp"
#include "nanochat/core/bf16.hpp"
#include "nanochat/core/error.hpp"
#include "nanochat/dist/nccl_runtime.hpp"

namespace nanochat::dist {

namespace nccl_reference {

enum class Collective { all_reduce, reduce_scatter, all_gather, broadcast, reduce };

inline const char* collective_name(Collective c) {
  switch (c) {
    case Collective::all_reduce: return "ncclAllReduce";
    case Collective::reduce_scatter: return "ncclReduceScatter";
    case Collective::all_gather: return "ncclAllGather";
    case Collective::broadcast: return "ncclBroadcast";
    case Collective::reduce: return "ncclReduce";
  }
  return "?";
}

// One rank's call, with NCCL's arguments.
struct Call {
  Collective kind;
  const void* send;
  void* recv;
  std::size_t count;  // recvcount for reduce_scatter, sendcount for all_gather
  NcclType type;
  NcclOp op;
  int root;
};

inline double load(NcclType type, const void* base, std::size_t i) {
  switch (type) {
    case NcclType::int8: return static_cast<const std::int8_t*>(base)[i];
    case NcclType::bf16: return static_cast<float>(static_cast<const bf16*>(base)[i]);
    case NcclType::f32: return static_cast<const float*>(base)[i];
    case NcclType::f64: return static_cast<const double*>(base)[i];
  }
  return 0;
}

// v is already a value of the type (reduce_element rounds it so); int8 wraps modulo 256.
inline void store(NcclType type, void* base, std::size_t i, double v) {
  switch (type) {
    case NcclType::int8:
      static_cast<std::int8_t*>(base)[i] =
          static_cast<std::int8_t>(static_cast<std::uint8_t>(static_cast<std::int64_t>(v) & 0xff));
      break;
    case NcclType::bf16: static_cast<bf16*>(base)[i] = bf16(static_cast<float>(v)); break;
    case NcclType::f32: static_cast<float*>(base)[i] = static_cast<float>(v); break;
    case NcclType::f64: static_cast<double*>(base)[i] = v; break;
  }
}

// a + b and a * b as T's arithmetic on a GPU computes them: one rounding to T of the exact result
// (a and b are values of T, so the double sum and product of two bf16 are exact, and a float
// landing on a bf16 halfway point is moved toward the exact value first).
inline double round_exact_to_bf16(double exact) {
  float f = static_cast<float>(exact);
  if ((std::bit_cast<std::uint32_t>(f) & 0xffffu) == 0x8000u && static_cast<double>(f) != exact) {
    f = std::nextafter(f, static_cast<double>(f) < exact ? INFINITY : -INFINITY);
  }
  return round_to_bf16(f);
}
template <class T>
double round_as(double v) {
  if constexpr (std::is_same_v<T, bf16>) return round_exact_to_bf16(v);
  else return static_cast<T>(v);
}
template <class T>
double add_as(double a, double b) {
  if constexpr (std::is_same_v<T, bf16>) return round_exact_to_bf16(a + b);
  else return static_cast<T>(static_cast<T>(a) + static_cast<T>(b));
}
template <class T>
double multiply_as(double a, double b) {
  if constexpr (std::is_same_v<T, bf16>) {
    return round_exact_to_bf16(a * b);
  } else {
    // volatile: the product is rounded to T, not fused into the next addition (-ffp-contract).
    const volatile T product = static_cast<T>(a) * static_cast<T>(b);
    return product;
  }
}

// The reduction of element i of every rank's `at(r)` in T's arithmetic, as NCCL computes it:
// rank order, each partial sum rounded to T (a ring hop stores it in the buffer's type). ncclAvg:
// floating types premultiply every input by T(1/n) (PreMulSum), integers divide the sum (SumPostDiv).
template <class T, class At>
double reduce_as(std::size_t n, NcclOp op, At at) {
  if constexpr (std::is_integral_v<T>) {
    std::int64_t acc = 0;  // wide, then wrapped: the same as wrapping at every hop
    for (std::size_t r = 0; r < n; ++r) acc += static_cast<std::int64_t>(at(r));
    const auto wrapped = static_cast<T>(static_cast<std::make_unsigned_t<T>>(acc));
    return op == NcclOp::avg ? static_cast<double>(wrapped / static_cast<std::int64_t>(n)) : wrapped;
  } else {
    const double scale = round_as<T>(1.0 / static_cast<double>(n));
    double acc = 0;
    for (std::size_t r = 0; r < n; ++r) {
      const double x = op == NcclOp::avg ? multiply_as<T>(at(r), scale) : at(r);
      acc = r == 0 ? x : add_as<T>(acc, x);
    }
    return acc;
  }
}

template <class At>
double reduce_element(const std::vector<Call>& calls, At at) {
  const std::size_t n = calls.size();
  const NcclOp op = calls[0].op;
  switch (calls[0].type) {
    case NcclType::int8: return reduce_as<std::int8_t>(n, op, at);
    case NcclType::bf16: return reduce_as<bf16>(n, op, at);
    case NcclType::f32: return reduce_as<float>(n, op, at);
    case NcclType::f64: return reduce_as<double>(n, op, at);
  }
  return 0;
}

// Every rank's result from every rank's input (calls[r] is rank r's). All inputs are read before
// any output is written, so in-place layouts are right whatever they overlap.
inline void compute(const std::vector<Call>& calls) {
  const std::size_t n = calls.size(), count = calls[0].count;
  const Call& first = calls[0];
  std::vector<double> out;
  switch (first.kind) {
    case Collective::all_reduce:
    case Collective::reduce:
      out.resize(count);
      for (std::size_t i = 0; i < count; ++i)
        out[i] = reduce_element(calls, [&](std::size_t r) { return load(first.type, calls[r].send, i); });
      for (std::size_t r = 0; r < n; ++r) {
        if (first.kind == Collective::reduce && static_cast<int>(r) != first.root) continue;
        for (std::size_t i = 0; i < count; ++i) store(first.type, calls[r].recv, i, out[i]);
      }
      break;
    case Collective::reduce_scatter:  // rank r gets the reduction of everyone's chunk r
      out.resize(n * count);
      for (std::size_t j = 0; j < n * count; ++j)
        out[j] = reduce_element(calls, [&](std::size_t r) { return load(first.type, calls[r].send, j); });
      for (std::size_t r = 0; r < n; ++r)
        for (std::size_t i = 0; i < count; ++i) store(first.type, calls[r].recv, i, out[r * count + i]);
      break;
    case Collective::all_gather:  // chunk q of every rank's output is rank q's input
      out.resize(n * count);
      for (std::size_t q = 0; q < n; ++q)
        for (std::size_t i = 0; i < count; ++i) out[q * count + i] = load(first.type, calls[q].send, i);
      for (std::size_t r = 0; r < n; ++r)
        for (std::size_t j = 0; j < n * count; ++j) store(first.type, calls[r].recv, j, out[j]);
      break;
    case Collective::broadcast:
      out.resize(count);
      for (std::size_t i = 0; i < count; ++i) out[i] = load(first.type, calls[static_cast<std::size_t>(first.root)].send, i);
      for (std::size_t r = 0; r < n; ++r)
        for (std::size_t i = 0; i < count; ++i) store(first.type, calls[r].recv, i, out[i]);
      break;
  }
}

// "" when the calls agree, else what differs (NCCL itself would hang or corrupt memory).
inline std::string mismatch(const std::vector<Call>& calls) {
  const Call& a = calls[0];
  for (std::size_t r = 1; r < calls.size(); ++r) {
    const Call& b = calls[r];
    if (b.kind != a.kind || b.count != a.count || b.type != a.type || b.op != a.op || b.root != a.root) {
      return cat("the ranks' calls do not match: rank 0 called ", collective_name(a.kind), " of ", a.count,
                 " elements (", type_name(a.type), ", ", op_name(a.op), ", root ", a.root, "), rank ", r, " ",
                 collective_name(b.kind), " of ", b.count, " elements (", type_name(b.type), ", ", op_name(b.op),
                 ", root ", b.root, ")");
    }
  }
  return "";
}

}  // namespace nccl_reference

// The interconnect of one process's emulated ranks: communicators by unique id.
class EmulatedNcclNetwork {
 public:
  struct Slot {  // one collective of a communicator, as its ranks arrive
    std::vector<std::optional<nccl_reference::Call>> calls;
    int arrived = 0, left = 0;
    bool done = false;
    std::string error;
  };
  struct World {
    int ranks = 0;
    std::mutex mutex;
    std::condition_variable changed;
    std::vector<bool> joined;
    std::vector<std::int64_t> entered;  // per rank: collectives it has entered
    std::map<std::int64_t, Slot> slots;
    bool aborted = false;
    std::string abort_reason;  // who aborted and what it was waiting for, told to abandoned ranks
  };

  NcclUniqueId new_id() {
    NcclUniqueId id;
    std::lock_guard lock(mutex_);
    std::uniform_int_distribution<int> byte(0, 255);
    for (char& c : id.bytes) c = static_cast<char>(byte(random_));
    return id;
  }

  // The id's communicator of `ranks`; the first rank to join creates it, the others must agree.
  std::shared_ptr<World> world(const NcclUniqueId& id, int ranks) {
    std::lock_guard lock(mutex_);
    auto& w = worlds_[std::string(id.bytes.data(), id.bytes.size())];
    if (!w) {
      w = std::make_shared<World>();
      w->ranks = ranks;
      w->joined.assign(static_cast<std::size_t>(ranks), false);
      w->entered.assign(static_cast<std::size_t>(ranks), 0);
    }
    NANOCHAT_CHECK(w->ranks == ranks, "ncclCommInitRank: this rank says ", ranks, " ranks but another said ", w->ranks,
                   " for the same unique id");
    return w;
  }

 private:
  std::mutex mutex_;
  std::mt19937_64 random_{std::random_device{}()};
  std::map<std::string, std::shared_ptr<World>> worlds_;
};

class EmulatedNccl final : public NcclRuntime {
 public:
  // timeout_s bounds what blocks the host: init waiting for the other ranks, and
  // compute_waits_for (the compute stream is the host thread here).
  EmulatedNccl(EmulatedNcclNetwork& network, cuda::EmulatedDevice& device, double timeout_s)
      : network_(&network), device_(&device), timeout_s_(timeout_s), stream_([this] { run_stream(); }) {}
  EmulatedNccl(const EmulatedNccl&) = delete;
  EmulatedNccl& operator=(const EmulatedNccl&) = delete;
  ~EmulatedNccl() override {
    if (world_) abort();  // a stream blocked on a peer that will never come must end
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    work_ready_.notify_all();
    stream_.join();
  }

  std::string name() const override { return "emulated NCCL (ranks as threads, a reference computes the collectives)"; }

  NcclUniqueId unique_id() override { return network_->new_id(); }

  void init(int ranks, const NcclUniqueId& id, int rank) override {
    NANOCHAT_CHECK(ranks >= 1 && rank >= 0 && rank < ranks, "ncclCommInitRank: rank ", rank, " of ", ranks,
                   " is not a rank of the communicator");
    NANOCHAT_CHECK(!world_, "ncclCommInitRank: this runtime already joined a communicator");
    auto world = network_->world(id, ranks);
    std::unique_lock lock(world->mutex);
    NANOCHAT_CHECK(!world->joined[static_cast<std::size_t>(rank)], "ncclCommInitRank: rank ", rank,
                   " joined the communicator twice");
    world->joined[static_cast<std::size_t>(rank)] = true;
    world->changed.notify_all();
    const auto all_joined = [&] { return std::all_of(world->joined.begin(), world->joined.end(), [](bool j) { return j; }); };
    if (!world->changed.wait_for(lock, std::chrono::duration<double>(timeout_s_), all_joined)) {
      std::string missing;
      for (int r = 0; r < ranks; ++r)
        if (!world->joined[static_cast<std::size_t>(r)]) missing += cat(missing.empty() ? "" : ", ", r);
      NANOCHAT_FAIL("ncclCommInitRank: rank ", rank, " of ", ranks, ": rank(s) ", missing, " did not join within ",
                    timeout_s_, " s");
    }
    lock.unlock();
    world_ = std::move(world);
    rank_ = rank;
  }

  void all_reduce(const void* send, void* recv, std::size_t count, NcclType type, NcclOp op) override {
    enqueue({nccl_reference::Collective::all_reduce, send, recv, count, type, op, 0}, count, count);
  }
  void reduce_scatter(const void* send, void* recv, std::size_t recv_count, NcclType type, NcclOp op) override {
    enqueue({nccl_reference::Collective::reduce_scatter, send, recv, recv_count, type, op, 0},
            recv_count * ranks(), recv_count);
  }
  void all_gather(const void* send, void* recv, std::size_t send_count, NcclType type) override {
    enqueue({nccl_reference::Collective::all_gather, send, recv, send_count, type, NcclOp::sum, 0}, send_count,
            send_count * ranks());
  }
  void broadcast(const void* send, void* recv, std::size_t count, NcclType type, int root) override {
    enqueue({nccl_reference::Collective::broadcast, send, recv, count, type, NcclOp::sum, root},
            rank_ == root ? count : 0, count);
  }
  void reduce(const void* send, void* recv, std::size_t count, NcclType type, NcclOp op, int root) override {
    enqueue({nccl_reference::Collective::reduce, send, recv, count, type, op, root}, count, rank_ == root ? count : 0);
  }

  // The emulated device finishes work as it is issued: what the compute stream issued is done.
  void comm_waits_for_compute() override {}

  NcclEvent record() override {
    std::lock_guard lock(mutex_);
    return enqueued_;
  }

  void compute_waits_for(NcclEvent event) override {
    std::unique_lock lock(mutex_);
    if (!stream_progress_.wait_for(lock, std::chrono::duration<double>(timeout_s_),
                                   [&] { return completed_ >= event || !error_.empty(); })) {
      lock.unlock();
      NANOCHAT_FAIL("emulated NCCL: rank ", rank_, ": the compute stream waited ", timeout_s_,
                    " s for the communication stream: ", diagnose());
    }
    NANOCHAT_CHECK(error_.empty(), "emulated NCCL: rank ", rank_, ": ", error_);
  }

  bool reached(NcclEvent event) override {
    std::lock_guard lock(mutex_);
    NANOCHAT_CHECK(error_.empty(), "emulated NCCL: rank ", rank_, ": ", error_);
    return completed_ >= event;
  }

  void release(NcclEvent) override {}  // events are counters

  // Names the ranks that have not entered the collective this rank waits in.
  std::string diagnose() override {
    std::int64_t waiting_in = 0;
    {
      std::lock_guard lock(mutex_);
      if (!error_.empty()) return error_;
      waiting_in = static_cast<std::int64_t>(completed_) + 1;
    }
    if (!world_) return "";
    std::lock_guard lock(world_->mutex);
    std::string missing;
    for (int r = 0; r < world_->ranks; ++r) {
      if (world_->entered[static_cast<std::size_t>(r)] < waiting_in) {
        missing += cat(missing.empty() ? "" : "; ", "rank ", r, " has not joined it (it entered ",
                       world_->entered[static_cast<std::size_t>(r)], " collectives)");
      }
    }
    return cat("collective #", waiting_in, " of the communicator: ", missing.empty() ? "every rank joined it" : missing);
  }

  void abort() override {
    if (!world_) return;
    const std::string waiting_for = diagnose();  // before taking the world's lock, which it takes
    std::lock_guard lock(world_->mutex);
    if (!world_->aborted) world_->abort_reason = cat("rank ", rank_, " aborted it, waiting in ", waiting_for);
    world_->aborted = true;
    world_->changed.notify_all();
  }

 private:
  int ranks() const {
    NANOCHAT_CHECK(world_ != nullptr, "emulated NCCL: a collective before ncclCommInitRank");
    return world_->ranks;
  }

  // Checks the buffers as a GPU would need them (device memory of this rank, large enough for
  // the layout), then queues the collective on the communication stream.
  void enqueue(const nccl_reference::Call& call, std::size_t send_elements, std::size_t recv_elements) {
    ranks();
    const std::size_t bytes = element_bytes(call.type);
    const char* name = nccl_reference::collective_name(call.kind);
    if (send_elements > 0) device_->check_range(call.send, send_elements * bytes, cat(name, " send buffer").c_str());
    if (recv_elements > 0) device_->check_range(call.recv, recv_elements * bytes, cat(name, " receive buffer").c_str());
    if (call.kind == nccl_reference::Collective::broadcast || call.kind == nccl_reference::Collective::reduce) {
      NANOCHAT_CHECK(call.root >= 0 && call.root < world_->ranks, name, ": root ", call.root, " is not a rank of ",
                     world_->ranks);
    }
    {
      std::lock_guard lock(mutex_);
      work_.push_back(call);
      ++enqueued_;
    }
    work_ready_.notify_all();
  }

  // The communication stream: runs the queued collectives in order.
  void run_stream() {
    for (std::int64_t sequence = 0;; ++sequence) {
      nccl_reference::Call call{};
      {
        std::unique_lock lock(mutex_);
        work_ready_.wait(lock, [&] { return stopping_ || !work_.empty(); });
        if (work_.empty()) return;
        call = work_.front();
        work_.pop_front();
      }
      std::string error = join(sequence, call);
      {
        std::lock_guard lock(mutex_);
        if (!error.empty() && error_.empty()) error_ = std::move(error);
        ++completed_;
      }
      stream_progress_.notify_all();
    }
  }

  // Enters collective `sequence` of the communicator; the last rank in computes it for all.
  // Nothing is computed once the communicator is aborted: an aborted rank may have freed or
  // reused its buffers, and a late rank must be told, not handed a result.
  std::string join(std::int64_t sequence, const nccl_reference::Call& call) {
    World& w = *world_;
    std::unique_lock lock(w.mutex);
    const auto abandoned = [&] {
      return cat(nccl_reference::collective_name(call.kind), " abandoned: the communicator was aborted (", w.abort_reason, ")");
    };
    if (w.aborted) return abandoned();
    Slot& slot = w.slots[sequence];
    if (slot.calls.empty()) slot.calls.resize(static_cast<std::size_t>(w.ranks));
    slot.calls[static_cast<std::size_t>(rank_)] = call;
    w.entered[static_cast<std::size_t>(rank_)] = sequence + 1;
    if (++slot.arrived == w.ranks) {
      std::vector<nccl_reference::Call> calls;
      for (const auto& c : slot.calls) calls.push_back(*c);
      slot.error = nccl_reference::mismatch(calls);
      if (slot.error.empty()) nccl_reference::compute(calls);
      slot.done = true;
      w.changed.notify_all();
    }
    w.changed.wait(lock, [&] { return slot.done || w.aborted; });
    // done before the abort: every buffer was written while all ranks still owned them.
    const std::string error = slot.done ? slot.error : abandoned();
    if (++slot.left == w.ranks) w.slots.erase(sequence);
    return error;
  }

  using Slot = EmulatedNcclNetwork::Slot;
  using World = EmulatedNcclNetwork::World;

  EmulatedNcclNetwork* network_;
  cuda::EmulatedDevice* device_;
  double timeout_s_;
  std::shared_ptr<World> world_;
  int rank_ = 0;

  std::mutex mutex_;  // the stream's queue and progress
  std::condition_variable work_ready_, stream_progress_;
  std::deque<nccl_reference::Call> work_;
  NcclEvent enqueued_ = 0, completed_ = 0;
  std::string error_;
  bool stopping_ = false;
  std::thread stream_;  // last: it starts once everything it uses exists
};

}  // namespace nanochat::dist
