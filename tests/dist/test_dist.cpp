// Data-parallel training. In one process: the single-process communicator against the
// collectives' reference, the launcher bootstrap, and sharded optimizers reduce to today's.
// Under mpirun (skipped when MPI or mpirun is missing): every collective at odd sizes on 2 and 3
// ranks; a hung and a killed rank end the job, named, within the timeout; base_train on 2 and 4
// ranks equals one process trained on the same global batch; resume on the same world size is
// exact and on another is refused; a job whose rank 0 is killed after a checkpoint leaves only
// complete checkpoints and temporary names, and resumes to the uninterrupted run bit for bit;
// mid_train and chat_sft on 2 ranks equal one process on the same global batch (mid_train resumes
// exactly and refuses another world size); base_eval's bits per byte and CORE and chat_eval's
// accuracies on 2 ranks are one process's.

#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <csignal>
#include <filesystem>
#include <future>
#include <latch>
#include <fstream>
#include <iterator>
#include <thread>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "collectives_check.hpp"
#include "nanochat/backend/cpu.hpp"
#include "nanochat/core/depth_dispatch.hpp"
#include "nanochat/backend/cuda/emulated_device.hpp"
#include "nanochat/dist/bootstrap.hpp"
#include "nanochat/dist/emulated_nccl.hpp"
#include "nanochat/dist/nccl_communicator.hpp"
#include "nanochat/dist/single_process_communicator.hpp"
#include "nanochat/tokenizer/tokenizer_file.hpp"
#include "nanochat/core/read_file.hpp"
#include "nanochat/core/upload_rows.hpp"
#include "nanochat/train/checkpoint.hpp"
#include "nanochat/train/mid_stage.hpp"
#include "nanochat/train/sft_stage.hpp"
#include "nanochat/train/stage_mixtures.hpp"
#include "relative_error.hpp"
#include "run_program.hpp"
#include "skip_test.hpp"
#include "train/train_test_util.hpp"

using namespace nanochat;
using namespace nanochat_train_test;
using nanochat::testing::run;
using nanochat::testing::Run;

TEST_CASE("dist: the single-process communicator is the identity the collectives' reference expects") {
  CHECK(nanochat_dist_test::check_collectives(dist::single_process()) == "");
}

TEST_CASE("dist: the launcher's variables give rank, size and local rank, and inconsistent ones are named") {
  auto from = [](std::map<std::string, std::string> env) {
    return dist::placement_from_environment([env](const char* name) -> const char* {
      const auto it = env.find(name);
      return it == env.end() ? nullptr : it->second.c_str();
    });
  };
  CHECK(from({}).size == 1);
  const auto ompi = from({{"OMPI_COMM_WORLD_RANK", "3"}, {"OMPI_COMM_WORLD_SIZE", "8"}, {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}});
  CHECK((ompi.rank == 3 && ompi.size == 8 && ompi.local_rank == 1));
  const auto torchrun = from({{"RANK", "5"}, {"WORLD_SIZE", "6"}, {"LOCAL_RANK", "2"}});
  CHECK((torchrun.rank == 5 && torchrun.size == 6 && torchrun.local_rank == 2));
  // Slurm's variables count in a job step only (a batch script's own SLURM_PROCID is 0 of N).
  CHECK(from({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "4"}}).size == 1);
  const auto srun = from({{"SLURM_PROCID", "2"}, {"SLURM_NTASKS", "4"}, {"SLURM_LOCALID", "0"}, {"SLURM_STEP_ID", "0"}});
  CHECK((srun.rank == 2 && srun.size == 4));
  CHECK_THROWS_WITH(from({{"RANK", "1"}}), doctest::Contains("torchrun launch: WORLD_SIZE is not set but RANK is"));
  CHECK_THROWS_WITH(from({{"RANK", "4"}, {"WORLD_SIZE", "4"}}), doctest::Contains("RANK=4 is not below WORLD_SIZE=4"));
  CHECK_THROWS_WITH(from({{"RANK", "x1"}, {"WORLD_SIZE", "4"}}), doctest::Contains("RANK=x1 is not a non-negative integer"));
  CHECK_THROWS_WITH(from({{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"}, {"RANK", "0"}, {"WORLD_SIZE", "2"}}),
                    doctest::Contains("the launchers disagree"));
}

namespace {

// check_collectives' buffers in an emulated device's memory (host-addressable there).
struct DeviceMemory {
  explicit DeviceMemory(cuda::EmulatedDevice& d) : device(&d) {}
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;
  template <class T>
  std::span<T> get(std::size_t n) {
    blocks.push_back(device->allocate(n * sizeof(T)));
    return {static_cast<T*>(blocks.back()), n};
  }
  ~DeviceMemory() {
    for (void* p : blocks) device->free(p);
  }
  cuda::EmulatedDevice* device;
  std::vector<void*> blocks;
};

// Runs body(rank, communicator, device) on `world` threads, each an emulated rank with its own
// EmulatedDevice and NCCL engine; the unique id goes from rank 0 to the others as MPI would
// carry it. Returns each rank's text (an exception's message, or what body returned).
template <class Body>
std::vector<std::string> on_emulated_ranks(int world, double timeout_s, Body body) {
  dist::EmulatedNcclNetwork network;
  std::promise<dist::NcclUniqueId> id_promise;
  std::shared_future<dist::NcclUniqueId> id = id_promise.get_future().share();
  std::vector<std::string> out(static_cast<std::size_t>(world));
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      cuda::EmulatedDevice device;
      try {
        dist::EmulatedNccl nccl(network, device, timeout_s);
        if (r == 0) id_promise.set_value(nccl.unique_id());
        dist::NcclCommunicator comm(nccl, device, r, world, id.get(), {timeout_s});
        out[static_cast<std::size_t>(r)] = body(r, comm, device);
      } catch (const std::exception& e) {
        out[static_cast<std::size_t>(r)] = cat("error: ", e.what());
      }
      if (device.live_allocations() != 0) out[static_cast<std::size_t>(r)] += " (device memory leaked)";
    });
  }
  for (auto& t : threads) t.join();
  return out;
}

}  // namespace

TEST_CASE("dist: the NCCL engine on 2, 3 and 4 emulated ranks passes the collectives' reference") {
  for (int world : {2, 3, 4}) {
    CAPTURE(world);
    const auto out = on_emulated_ranks(world, 60, [](int, dist::NcclCommunicator& comm, cuda::EmulatedDevice& device) {
      std::string errors = nanochat_dist_test::check_collectives(comm, DeviceMemory(device));
      DeviceMemory memory(device);
      const auto odd = memory.get<float>(static_cast<std::size_t>(comm.size()) + 1);
      try {
        comm.reduce_scatter(odd, dist::ReduceOp::sum);
        errors += "an uneven reduce_scatter was not refused";
      } catch (const Error& e) {
        if (std::string(e.what()).find("does not split into") == std::string::npos) errors += e.what();
      }
      // Two buckets in flight at once, the host free meanwhile; the compute stream orders after both.
      const auto a = memory.get<float>(1001), b = memory.get<float>(7);
      for (std::size_t i = 0; i < a.size(); ++i) a[i] = nanochat_dist_test::input(comm.rank(), i);
      for (std::size_t i = 0; i < b.size(); ++i) b[i] = nanochat_dist_test::input(comm.rank(), i + 5);
      const auto pa = comm.start_all_reduce(a, dist::ReduceOp::sum);
      const auto pb = comm.start_all_reduce(b, dist::ReduceOp::average);
      comm.order_after(pb);
      comm.order_after(pa);
      for (std::size_t i = 0; i < a.size(); ++i)
        if (a[i] != nanochat_dist_test::sum_of_inputs(comm.size(), i)) errors += cat("overlapped bucket a[", i, "] wrong; ");
      for (std::size_t i = 0; i < b.size(); ++i) {
        const float want = nanochat_dist_test::sum_of_inputs(comm.size(), i + 5) / static_cast<float>(comm.size());
        if (std::fabs(b[i] - want) > 1e-6f * want) errors += cat("overlapped bucket b[", i, "] wrong; ");
      }
      return errors;
    });
    for (int r = 0; r < world; ++r) CHECK(out[static_cast<std::size_t>(r)] == "");
  }
  // One rank, its id made and carried over the single-process communicator.
  cuda::EmulatedDevice device;
  dist::EmulatedNcclNetwork network;
  dist::EmulatedNccl nccl(network, device, 10);
  dist::NcclCommunicator comm(nccl, device, 0, 1, dist::unique_id_over(dist::single_process(), nccl), {10});
  CHECK(nanochat_dist_test::check_collectives(comm, DeviceMemory(device)) == "");
  CHECK(comm.describe().find("NCCL (emulated NCCL") == 0);
}

namespace {

// Three emulated ranks joined, driven from one thread (each call returns at once).
struct ThreeRawRanks {
  ThreeRawRanks() {
    const dist::NcclUniqueId id = network.new_id();
    for (int r = 0; r < 3; ++r) {
      devices.push_back(std::make_unique<cuda::EmulatedDevice>());
      ranks.push_back(std::make_unique<dist::EmulatedNccl>(network, *devices.back(), 60));
    }
    std::vector<std::thread> joins;
    for (int r = 0; r < 3; ++r) joins.emplace_back([&, r] { ranks[static_cast<std::size_t>(r)]->init(3, id, r); });
    for (auto& t : joins) t.join();
  }
  template <class T>
  T* buffer(int rank, const std::vector<T>& values) {
    auto* p = static_cast<T*>(devices[static_cast<std::size_t>(rank)]->allocate(values.size() * sizeof(T)));
    std::copy(values.begin(), values.end(), p);
    return p;
  }
  void finish_all() {
    for (auto& r : ranks) r->compute_waits_for(r->record());
  }
  dist::EmulatedNcclNetwork network;
  std::vector<std::unique_ptr<cuda::EmulatedDevice>> devices;
  std::vector<std::unique_ptr<dist::EmulatedNccl>> ranks;
};

}  // namespace

TEST_CASE("dist: the emulated NCCL runs ncclAvg as PreMulSum, rounds bf16 partial sums at every hop, wraps int8, and refuses host buffers and mismatched calls") {
  ThreeRawRanks w;
  // fp32 ncclAvg: every input times float(1/3), summed in rank order; not the sum divided by 3.
  std::vector<std::vector<float>> f32(3);
  for (int r = 0; r < 3; ++r)
    for (int i = 0; i < 64; ++i) f32[static_cast<std::size_t>(r)].push_back(1.0f + 0.37f * static_cast<float>(i * (r + 2)) / 7.0f);
  std::vector<float*> f32_buffers;
  for (int r = 0; r < 3; ++r) f32_buffers.push_back(w.buffer(r, f32[static_cast<std::size_t>(r)]));
  for (int r = 0; r < 3; ++r)
    w.ranks[static_cast<std::size_t>(r)]->all_reduce(f32_buffers[static_cast<std::size_t>(r)], f32_buffers[static_cast<std::size_t>(r)], 64,
                                                     dist::NcclType::f32, dist::NcclOp::avg);
  w.finish_all();
  int differs_from_sum_over_n = 0;
  const float third = 1.0f / 3.0f;
  for (std::size_t i = 0; i < 64; ++i) {
    // volatile: each product rounded, as PreMulSum stores it, not fused into the sum (-ffp-contract).
    const volatile float x0 = f32[0][i] * third, x1 = f32[1][i] * third, x2 = f32[2][i] * third;
    const float premul = (x0 + x1) + x2;
    differs_from_sum_over_n += premul != (f32[0][i] + f32[1][i] + f32[2][i]) / 3.0f;
    for (int r = 0; r < 3; ++r) CHECK(f32_buffers[static_cast<std::size_t>(r)][i] == premul);
  }
  CHECK(differs_from_sum_over_n > 0);  // the values tell the two apart

  // bf16: a partial sum is rounded to bf16 at every hop. 1 + 2^-8 ties to 1 (even), and so does
  // the next + 2^-8, where fp32 accumulation rounded once would give 1 + 2^-7.
  const std::vector<float> bf16_values = {1.0f, 1.0f / 256, 1.0f / 256};
  // ncclAvg on bf16: each input times bf16(1/3), that product and every partial sum rounded.
  const std::vector<float> avg_values = {1.0f, 1.0f / 3.0f, 1000.0f, -2.5f, 0.01f};
  std::vector<bf16*> sums, averages;
  for (int r = 0; r < 3; ++r) {
    sums.push_back(w.buffer(r, std::vector<bf16>{bf16(bf16_values[static_cast<std::size_t>(r)])}));
    std::vector<bf16> mine;
    for (float v : avg_values) mine.push_back(bf16(v * static_cast<float>(r + 1)));
    averages.push_back(w.buffer(r, mine));
  }
  for (int r = 0; r < 3; ++r) {
    auto& nccl = *w.ranks[static_cast<std::size_t>(r)];
    nccl.all_reduce(sums[static_cast<std::size_t>(r)], sums[static_cast<std::size_t>(r)], 1, dist::NcclType::bf16, dist::NcclOp::sum);
    nccl.all_reduce(averages[static_cast<std::size_t>(r)], averages[static_cast<std::size_t>(r)], avg_values.size(),
                    dist::NcclType::bf16, dist::NcclOp::avg);
  }
  w.finish_all();
  for (int r = 0; r < 3; ++r) CHECK(sums[static_cast<std::size_t>(r)][0].bits == bf16(1.0f).bits);
  const float bf16_third = static_cast<float>(bf16(1.0f / 3.0f));
  for (std::size_t i = 0; i < avg_values.size(); ++i) {
    float acc = 0.0f;
    for (int r = 0; r < 3; ++r) {
      const float input = static_cast<float>(bf16(avg_values[i] * static_cast<float>(r + 1)));
      const float x = static_cast<float>(bf16(input * bf16_third));  // exact in fp32, rounded once
      acc = r == 0 ? x : static_cast<float>(bf16(acc + x));
    }
    for (int r = 0; r < 3; ++r) CHECK(averages[static_cast<std::size_t>(r)][i].bits == bf16(acc).bits);
  }

  // int8 sums wrap modulo 256 (100 + 100 + 27 = 227 = -29); ncclAvg divides the wrapped sum.
  std::vector<std::int8_t*> bytes;
  for (int r = 0; r < 3; ++r) bytes.push_back(w.buffer(r, std::vector<std::int8_t>{r == 2 ? std::int8_t{27} : std::int8_t{100}, -90}));
  for (int r = 0; r < 3; ++r)
    w.ranks[static_cast<std::size_t>(r)]->all_reduce(bytes[static_cast<std::size_t>(r)], bytes[static_cast<std::size_t>(r)], 2,
                                                     dist::NcclType::int8, dist::NcclOp::sum);
  w.finish_all();
  for (int r = 0; r < 3; ++r) {
    CHECK(bytes[static_cast<std::size_t>(r)][0] == -29);
    CHECK(bytes[static_cast<std::size_t>(r)][1] == -14);  // -270 wraps to -14
  }
  // ncclAvg on int8 divides the wrapped sum (SumPostDiv, truncating): -29 / 3 and -14 / 3.
  for (int r = 0; r < 3; ++r) {
    auto* b = bytes[static_cast<std::size_t>(r)];
    b[0] = r == 2 ? 27 : 100;
    b[1] = -90;
    w.ranks[static_cast<std::size_t>(r)]->all_reduce(b, b, 2, dist::NcclType::int8, dist::NcclOp::avg);
  }
  w.finish_all();
  for (int r = 0; r < 3; ++r) {
    CHECK(bytes[static_cast<std::size_t>(r)][0] == -9);
    CHECK(bytes[static_cast<std::size_t>(r)][1] == -4);
  }
  auto& ranks = w.ranks;
  auto& devices = w.devices;
  // A host buffer is not device memory; a receive buffer short of NCCL's layout overruns.
  std::vector<float> host(8);
  CHECK_THROWS_WITH(ranks[0]->all_reduce(host.data(), host.data(), 8, dist::NcclType::f32, dist::NcclOp::sum),
                    doctest::Contains("ncclAllReduce send buffer"));
  auto* small = devices[0]->allocate(4 * sizeof(float));
  CHECK_THROWS_WITH(ranks[0]->all_gather(small, small, 2, dist::NcclType::f32),
                    doctest::Contains("ncclAllGather receive buffer of 24 bytes at offset 0 overruns its allocation of 16"));
  devices[0]->free(small);
  for (int r = 0; r < 3; ++r) {
    for (void* p : {static_cast<void*>(f32_buffers[static_cast<std::size_t>(r)]), static_cast<void*>(sums[static_cast<std::size_t>(r)]),
                    static_cast<void*>(averages[static_cast<std::size_t>(r)]), static_cast<void*>(bytes[static_cast<std::size_t>(r)])})
      devices[static_cast<std::size_t>(r)]->free(p);
  }

  // Ranks that call different collectives are told so, not left to hang.
  const auto mismatched = on_emulated_ranks(2, 30, [](int rank, dist::NcclCommunicator& comm, cuda::EmulatedDevice& device) {
    DeviceMemory memory(device);
    comm.all_reduce(memory.get<float>(rank == 0 ? 7 : 8), dist::ReduceOp::sum);
    return std::string();
  });
  for (const auto& o : mismatched) {
    CHECK(o.find("the ranks' calls do not match: rank 0 called ncclAllReduce of 7 elements (ncclFloat32, ncclSum, root 0)") !=
          std::string::npos);
  }
}

TEST_CASE("dist: an aborted emulated NCCL computes nothing: a late rank is told, the aborted rank's reused buffer is untouched") {
  dist::EmulatedNcclNetwork network;
  cuda::EmulatedDevice device0, device1;
  dist::EmulatedNccl rank0(network, device0, 60), rank1(network, device1, 60);
  const dist::NcclUniqueId id = network.new_id();
  std::thread join1([&] { rank1.init(2, id, 1); });
  rank0.init(2, id, 0);
  join1.join();
  auto* mine = static_cast<float*>(device0.allocate(4 * sizeof(float)));
  auto* theirs = static_cast<float*>(device1.allocate(4 * sizeof(float)));
  std::fill(mine, mine + 4, 1.0f);
  std::fill(theirs, theirs + 4, 2.0f);
  rank0.all_reduce(mine, mine, 4, dist::NcclType::f32, dist::NcclOp::sum);
  rank0.abort();
  CHECK_THROWS_WITH(rank0.compute_waits_for(rank0.record()), doctest::Contains("ncclAllReduce abandoned"));
  std::fill(mine, mine + 4, 7.0f);  // rank 0 gave up on the collective and reuses its buffer
  rank1.all_reduce(theirs, theirs, 4, dist::NcclType::f32, dist::NcclOp::sum);
  CHECK_THROWS_WITH(rank1.compute_waits_for(rank1.record()),
                    doctest::Contains("ncclAllReduce abandoned: the communicator was aborted"));
  for (int i = 0; i < 4; ++i) {
    CHECK(mine[i] == 7.0f);
    CHECK(theirs[i] == 2.0f);
  }
  device0.free(mine);
  device1.free(theirs);
}

namespace {

// Counts the latch down however the scope is left (a rank that throws must not leave the
// rank waiting on the latch hung).
struct CountDownOnExit {
  std::latch& latch;
  ~CountDownOnExit() { latch.count_down(); }
};

}  // namespace

TEST_CASE("dist: an emulated NCCL rank that never joins a collective is named by the others' timeout, never a hang") {
  // Init and the first collective get a long bound (the machine may be loaded); only the
  // collective under test the short one.
  std::latch others_done(2);
  const auto t0 = std::chrono::steady_clock::now();
  const auto out = on_emulated_ranks(3, 120, [&](int rank, dist::NcclCommunicator& comm, cuda::EmulatedDevice& device) {
    DeviceMemory memory(device);
    const auto x = memory.get<float>(1000);
    if (rank != 2) {
      CountDownOnExit done{others_done};
      comm.all_reduce(x, dist::ReduceOp::sum);  // everyone is up
      comm.set_timeout(1.0);
      comm.all_reduce(x, dist::ReduceOp::sum);
      return std::string("the second all_reduce completed without rank 2");
    }
    comm.all_reduce(x, dist::ReduceOp::sum);
    others_done.wait();  // stays away from the second, and alive until the others gave up
    return std::string("skipped");
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(seconds < 60);
  // The first of ranks 0 and 1 to time out aborts the (emulated, world-wide) communicator; the
  // other may be woken by that abort before its own timeout, and is told what the first saw.
  int timed_out = 0;
  for (int r = 0; r < 2; ++r) {
    const std::string& said = out[static_cast<std::size_t>(r)];
    CAPTURE(said);
    const bool own = said.find(cat("NCCL: rank ", r, " of 3: all_reduce (collective #2, 1000 elements) did not complete within 1 s")) != std::string::npos;
    timed_out += own;
    if (!own) CHECK(said.find(cat("NCCL: rank ", r, " of 3: all_reduce (collective #2, 1000 elements) failed: emulated NCCL: rank ", r, ": ncclAllReduce abandoned: the communicator was aborted (rank ", 1 - r, " aborted it")) != std::string::npos);
    CHECK(said.find("rank 2 has not joined it") != std::string::npos);
  }
  CHECK(timed_out >= 1);
  CHECK(out[2] == "skipped");
}

TEST_CASE("dist: an overlapped bucket whose collective fails is named by order_after, and the communicator is aborted") {
  // Rank 2 stays away from collective #2; rank 1 waits for it on the host and times out, which
  // aborts the (emulated, world-wide) communicator; rank 0 only ordered its compute stream after
  // it, and is told which collective failed.
  std::latch others_done(2);
  const auto out = on_emulated_ranks(3, 120, [&](int rank, dist::NcclCommunicator& comm, cuda::EmulatedDevice& device) {
    DeviceMemory memory(device);
    const auto x = memory.get<float>(1000);
    if (rank == 2) {
      comm.all_reduce(x, dist::ReduceOp::sum);
      others_done.wait();
      return std::string("skipped");
    }
    CountDownOnExit done{others_done};
    comm.all_reduce(x, dist::ReduceOp::sum);
    comm.set_timeout(1.0);
    if (rank == 1) {
      comm.all_reduce(x, dist::ReduceOp::sum);
    } else {
      comm.order_after(comm.start_all_reduce(x, dist::ReduceOp::average));
      comm.settle();
    }
    return std::string("the second all_reduce completed without rank 2");
  });
  CAPTURE(out[0]);
  CHECK(out[0].find("NCCL: rank 0 of 3: all_reduce (collective #2, 1000 elements) failed: ") != std::string::npos);
  CHECK(out[0].find("ncclAllReduce abandoned: the communicator was aborted") != std::string::npos);
  CHECK(out[0].find("; the communicator is aborted") != std::string::npos);
  CHECK(out[1].find("NCCL: rank 1 of 3: all_reduce (collective #2, 1000 elements) did not complete within 1 s") != std::string::npos);
  CHECK(out[2] == "skipped");
}

#ifdef NANOCHAT_MPIEXEC

namespace {

// mpirun with what this machine needs: as root it must be allowed, more ranks than cores must be
// (--oversubscribe), one OpenMP thread per rank; `timeout` bounds it, so no case can hang.
std::string mpirun(int ranks, int seconds, const std::string& env = "") {
  return cat("timeout -k 10 ", seconds, " ", NANOCHAT_MPIEXEC, " -np ", ranks, " --oversubscribe",
             getuid() == 0 ? " --allow-run-as-root" : "", " -x OMP_NUM_THREADS=1", env, " ");
}

bool mpirun_missing() {
  if (std::filesystem::exists(NANOCHAT_MPIEXEC)) return false;
  nanochat::testing::skip_test(cat("no mpirun at ", NANOCHAT_MPIEXEC));
  return true;
}

}  // namespace

TEST_CASE("dist: MPI collectives at odd sizes equal the reference on 2 and 3 ranks") {
  if (mpirun_missing()) return;
  for (int ranks : {2, 3}) {
    const Run r = run(mpirun(ranks, 120) + NANOCHAT_COLLECTIVES_CHECK + " collectives");
    CAPTURE(r.output);
    CHECK(r.status == 0);
    for (int k = 0; k < ranks; ++k) CHECK(r.output.find(cat("rank ", k, " of ", ranks, " (MPI")) != std::string::npos);
  }
}

TEST_CASE("dist: a hung rank or a killed rank ends the job with a message naming it, within the timeout") {
  if (mpirun_missing()) return;
  for (const char* mode : {"hang", "die"}) {
    CAPTURE(mode);
    const auto t0 = std::chrono::steady_clock::now();
    const Run r = run(mpirun(3, 90, " -x NANOCHAT_DIST_TIMEOUT=3") + NANOCHAT_COLLECTIVES_CHECK + " " + mode + " 1");
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CAPTURE(r.output);
    CHECK(r.status != 0);
    CHECK(r.status != 124);  // not ended by the test's own timeout
    CHECK(seconds < 60);
    CHECK(r.output.find("completed without rank") == std::string::npos);
    if (std::string(mode) == "hang") {
      CHECK(r.output.find("did not complete within 3 s") != std::string::npos);
      CHECK(r.output.find("rank 1 did not answer: dead or hung") != std::string::npos);
    } else {
      CHECK(r.output.find("rank 1") != std::string::npos);  // mpirun's or our watchdog's message
    }
  }
}

#ifdef NANOCHAT_BASE_TRAIN

namespace {

using Cfg = NanochatConfig<2>;
constexpr std::int64_t seq = 16, rows = 2, total = 128, steps = 3;

// One process trained on what `world` ranks read: each step takes every rank's micro-batches
// (rank r's stride of the data, spec §4.4), each scaled by 1 / (all micro-batches), which is
// the averaging of the ranks' gradients. base_train's own schedule, clipping and optimizers.
std::vector<float> reference_weights(const TinySetup& setup, int world) {
  cpu::Cpu cpu;
  Gpt<Cfg, cpu::Cpu> model(cpu, setup.tok.vocab_size(), rows, seq);
  model.init(42);
  NanochatOptimizers<Cfg, cpu::Cpu> optimizers(cpu, model.weights(), model.grads());
  std::vector<std::unique_ptr<data::TokenLoader>> loaders;
  for (int r = 0; r < world; ++r) {
    data::LoaderOptions lo{rows, seq, static_cast<std::size_t>(r), static_cast<std::size_t>(world), 1, 2, {}, nullptr};
    loaders.push_back(std::make_unique<data::TokenLoader>(setup.tok, setup.train_shards, lo));
  }
  const std::int64_t accum = total / (rows * seq * world);
  Tensor<std::int32_t, cpu::Cpu> ids(cpu, {rows, seq}), targets(cpu, {rows, seq});
  std::vector<std::int32_t> x, y;
  for (std::int64_t step = 0; step < steps; ++step) {
    for (auto& loader : loaders) {
      for (std::int64_t m = 0; m < accum; ++m) {
        loader->next(x, y);
        copy_from_host(cpu, ids.view(), std::span<const std::int32_t>(x));
        copy_from_host(cpu, targets.view(), std::span<const std::int32_t>(y));
        model.forward_loss(ids.view(), targets.view());
        model.backward(ids.view(), targets.view(), 1.0f / static_cast<float>(accum * world));
      }
    }
    const float norm = optimizers.averaged_grad_norm();
    optimizers.clip(norm, 1.0f);
    optimizers.step(static_cast<float>(LrSchedule{steps, 0.0, 0.2, 0.0}.multiplier(step)),
                    static_cast<float>(muon_momentum_at(step)));
    model.zero_grad();
  }
  return to_host(cpu, model.weights().flat());
}

std::vector<float> saved_weights(const fs::path& file) {
  cpu::Cpu cpu;
  GptWeights<Cfg, cpu::Cpu> w(cpu, 300);
  load_weights(cpu, w, SafetensorsFile::load(file));
  return to_host(cpu, w.flat());
}

// A corpus with 4096 documents a shard (four loader groups, one per rank of four), its
// tokenizer, and base_train's command line on it.
struct TrainJob {
  TrainJob() : setup("dist_train") {
    std::vector<std::string> docs;
    const auto shards = write_corpus(setup.corpus.path, docs, 4096);
    setup.tok = train_tokenizer(docs);
    setup.train_shards = data::split_shards(shards, data::Split::train);
    setup.val_shards = data::split_shards(shards, data::Split::val);
    REQUIRE(setup.tok.vocab_size() == 300);
    tokenizer::save_tokenizer(setup.tok, setup.corpus.path / "tokenizer");
  }
  // mpirun hands its environment to the ranks it starts on this machine.
  std::string command(const fs::path& base, std::int64_t iterations, std::int64_t resume = -1,
                      const std::string& launcher = "", std::int64_t save_every = 2) const {
    return cat("NANOCHAT_BASE_DIR=", base.string(), " ", launcher, NANOCHAT_BASE_TRAIN, " --depth 2 --max-seq-len ", seq_len,
               " --device-batch-size ", rows, " --total-batch-size ", total, " --num-iterations ", iterations,
               " --eval-every -1 --eval-tokens 128 --sample-every -1 --loader-threads 1 --save-every ", save_every,
               " --resume-from-step ", resume, " --data ", setup.corpus.path.string(), " --tokenizer ",
               (setup.corpus.path / "tokenizer").string());
  }
  TinySetup setup;
  std::int64_t seq_len = seq;
};

fs::path checkpoint_dir(const fs::path& base) { return base / "base_checkpoints" / "d2"; }
fs::path model_file(const fs::path& base, std::int64_t step) {
  return checkpoint_dir(base) / step_file_name("model_", step, ".safetensors");
}

}  // namespace

TEST_CASE("dist: base_train on 2 and 4 ranks equals one process on the same global batch, and resumes exactly") {
  if (mpirun_missing()) return;
  TrainJob job;
  const TinySetup& setup = job.setup;

  // One process: base_train and the reference loop agree bit for bit.
  ScratchDir single("dist_single");
  {
    const Run r = run(job.command(single.path, steps));
    CAPTURE(r.output);
    REQUIRE(r.status == 0);
    CHECK(saved_weights(model_file(single.path, steps)) == reference_weights(setup, 1));
  }
  for (int world : {2, 4}) {
    CAPTURE(world);
    ScratchDir base(cat("dist_world", world));
    const Run r = run(job.command(base.path, steps, -1, mpirun(world, 300)));
    CAPTURE(r.output);
    REQUIRE(r.status == 0);
    CHECK(r.output.find(cat("data-parallel: MPI")) != std::string::npos);
    CHECK(r.output.find(cat("accumulation x ", world, " ranks")) != std::string::npos);
    for (int k = 0; k < world; ++k) {
      CHECK(fs::exists(base.path / "base_checkpoints" / "d2" / cat("optim_000003_rank", k, ".safetensors")));
    }
    const auto got = saved_weights(model_file(base.path, steps));
    const double err = nanochat::testing::relative_error(got, reference_weights(setup, world));
    MESSAGE("world ", world, ": relative error against one process on the same global batch ", err);
    CHECK(err <= 1e-6);

    // Resumed from step 2 on the same world size: the same weights, bit for bit.
    ScratchDir resumed(cat("dist_resumed", world));
    fs::copy(base.path / "base_checkpoints", resumed.path / "base_checkpoints", fs::copy_options::recursive);
    fs::remove(model_file(resumed.path, steps));
    const Run again = run(job.command(resumed.path, steps, 2, mpirun(world, 300)));
    CAPTURE(again.output);
    REQUIRE(again.status == 0);
    CHECK(saved_weights(model_file(resumed.path, steps)) == got);

    // Another world size is refused by name, by every rank, without a hang.
    const Run other = run(job.command(base.path, steps, 2, mpirun(world == 2 ? 4 : 2, 120)));
    CAPTURE(other.output);
    CHECK(other.status != 0);
    CHECK(other.output.find(cat("the checkpoint was saved by ", world, " ranks but this run has ", world == 2 ? 4 : 2)) !=
          std::string::npos);
    CHECK(other.output.find(cat("resume with mpirun -np ", world)) != std::string::npos);
  }
}

namespace {

// Starts `command` without waiting for it, in a process group of its own (the shell, timeout and
// mpirun; OpenMPI puts the ranks in groups of their own), and returns its pid.
pid_t start_job(const std::string& command) {
  const std::string line = command + " >/dev/null 2>&1";  // built before fork: the child only execs
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    setsid();
    execl("/bin/sh", "sh", "-c", line.c_str(), static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  return pid;
}

// Processes whose environment holds every one of `variables` ("NAME=value"): this test's ranks.
std::vector<pid_t> processes_with(const std::vector<std::string>& variables) {
  std::vector<pid_t> found;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "environ", std::ios::binary);
    std::vector<std::string> environment;
    for (std::string v; std::getline(in, v, '\0');) environment.push_back(v);
    const bool all = std::all_of(variables.begin(), variables.end(), [&](const std::string& v) {
      return std::find(environment.begin(), environment.end(), v) != environment.end();
    });
    if (all) found.push_back(static_cast<pid_t>(std::stoi(name)));
  }
  return found;
}

// metrics.jsonl without the timings (dt, tok/s, MFU differ from run to run): step, loss,
// grad_norm, lrm and val_bpb as printed.
std::vector<std::string> metrics_without_timings(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line.substr(0, line.find(", \"dt\"")));
  return lines;
}

}  // namespace

// The kill-and-resume case finds the job's ranks by Open MPI's OMPI_COMM_WORLD_RANK. Open MPI's
// launchers say "mpirun (Open MPI) 4.1.4" or, called mpiexec, "mpiexec (OpenRTE) 4.1.4".
bool mpirun_not_open_mpi() {
  const Run version = run(cat(NANOCHAT_MPIEXEC, " --version"));
  for (const char* name : {"(Open MPI)", "(OpenRTE)"})
    if (version.status == 0 && version.output.find(name) != std::string::npos) return false;
  nanochat::testing::skip_test(cat("mpirun at ", NANOCHAT_MPIEXEC, " is not Open MPI: its ranks carry no OMPI_COMM_WORLD_RANK"));
  return true;
}

TEST_CASE("dist: base_train under mpirun -np 2 killed after a checkpoint resumes to the uninterrupted run's weights") {
  if (mpirun_missing() || mpirun_not_open_mpi()) return;
  // Each of the three runs is bounded (mpirun's timeout, the kill's deadline) so that the whole
  // case stays under ctest's 600 s TIMEOUT: 160 + 150 + 10 + 160 s at worst.
  constexpr int run_seconds = 150;
  TrainJob job;
  constexpr std::int64_t iterations = 60;
  ScratchDir whole("dist_uninterrupted");
  {
    const Run r = run(job.command(whole.path, iterations, -1, mpirun(2, run_seconds)));
    CAPTURE(r.output);
    REQUIRE(r.status == 0);
  }
  const auto want_weights = saved_weights(model_file(whole.path, iterations));
  const auto want_metrics = metrics_without_timings(checkpoint_dir(whole.path) / "metrics.jsonl");
  REQUIRE(want_metrics.size() == iterations + 1);  // every step's loss and the final val_bpb

  // The same job, its rank 0 killed (SIGKILL) as soon as step 4's checkpoint is complete, so
  // that it dies saving or training on; mpirun then ends rank 1.
  ScratchDir killed("dist_killed");
  const fs::path dir = checkpoint_dir(killed.path);
  const std::string this_job = "NANOCHAT_BASE_DIR=" + killed.path.string();
  const pid_t job_pid = start_job(job.command(killed.path, iterations, -1, mpirun(2, run_seconds)));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(run_seconds);
  bool killed_rank = false, job_ended = false;
  while (!killed_rank && !job_ended && std::chrono::steady_clock::now() < deadline) {
    if (fs::exists(dir / step_file_name("meta_", 4, ".json"))) {
      for (const pid_t pid : processes_with({this_job, "OMPI_COMM_WORLD_RANK=0"})) killed_rank = kill(pid, SIGKILL) == 0;
    }
    job_ended = waitpid(job_pid, nullptr, WNOHANG) != 0;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  if (!killed_rank && !job_ended) {
    // Ending the job's process group leaves the ranks (groups of their own) training on.
    kill(-job_pid, SIGKILL);
    for (const pid_t pid : processes_with({this_job})) kill(pid, SIGKILL);
  }
  if (!job_ended) waitpid(job_pid, nullptr, 0);
  REQUIRE_MESSAGE(killed_rank, (job_ended ? std::string("the job ended before its rank 0 could be killed")
                                          : cat("step 4's checkpoint did not appear within ", run_seconds, " s")));
  // No rank survives to write into the directory while it is resumed.
  for (int tries = 0; tries < 200 && !processes_with({this_job}).empty(); ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const auto survivors = processes_with({this_job});
  for (const pid_t pid : survivors) kill(pid, SIGKILL);
  REQUIRE(survivors.empty());

  // What the kill left: complete checkpoints (meta with its model and every shard), files of an
  // interrupted save without their meta (not a checkpoint), temporary names, metrics.jsonl.
  REQUIRE_FALSE(fs::exists(dir / step_file_name("meta_", iterations, ".json")));
  std::int64_t last = -1;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    CAPTURE(name);
    const auto meta_step = parse_step_file_name(name, "meta_", ".json");
    const bool checkpoint_file = meta_step || parse_step_file_name(name, "model_", ".safetensors") ||
                                 (name.starts_with("optim_") && name.ends_with(".safetensors"));
    CHECK((checkpoint_file || name.ends_with(".tmp") || name == "metrics.jsonl"));
    if (!meta_step) continue;
    CHECK(fs::exists(model_file(killed.path, *meta_step)));
    for (int r = 0; r < 2; ++r) CHECK(fs::exists(dir / optim_file_name(*meta_step, r)));
    last = std::max(last, *meta_step);
  }
  REQUIRE(last >= 4);
  MESSAGE("killed after step ", last, "'s checkpoint; resuming from it");

  const Run resumed = run(job.command(killed.path, iterations, last, mpirun(2, run_seconds)));
  CAPTURE(resumed.output);
  REQUIRE(resumed.status == 0);
  CHECK(saved_weights(model_file(killed.path, iterations)) == want_weights);
  CHECK(metrics_without_timings(dir / "metrics.jsonl") == want_metrics);
  for (const auto& entry : fs::directory_iterator(dir)) CHECK_FALSE(entry.path().filename().string().ends_with(".tmp"));
}


namespace {

// One process trained as StageTrainer trains on `world` ranks: each step takes every rank's
// micro-batches (rank r's loader over conversations r, r+W, ...), each scaled by 1 / (all
// micro-batches), which is the ranks' gradient averaging; the Stage's schedules, no clipping.
template <class Loader, class LrAt, class MomentumAt>
std::vector<float> stage_reference_weights(const tokenizer::Tokenizer& tok, const tasks::TaskPtr& train,
                                           const fs::path& source, std::int64_t seq_len, std::int64_t per_step_rows,
                                           int world, std::int64_t updates, double init_lr_frac, LrAt lr_at,
                                           MomentumAt momentum_at) {
  cpu::Cpu cpu;
  Gpt<Cfg, cpu::Cpu> model(cpu, tok.vocab_size(), rows, seq_len);
  load_weights(cpu, model.weights(), SafetensorsFile::load(source));
  NanochatOptimizers<Cfg, cpu::Cpu> optimizers(cpu, model.weights(), model.grads());
  std::vector<std::unique_ptr<Loader>> loaders;
  for (int r = 0; r < world; ++r) {
    const ConversationLoaderOptions lo{rows, static_cast<std::size_t>(seq_len), static_cast<std::size_t>(r),
                                       static_cast<std::size_t>(world), 2048};
    loaders.push_back(std::make_unique<Loader>(tok, train, lo));
  }
  const std::int64_t accum = per_step_rows / (rows * world);
  Tensor<std::int32_t, cpu::Cpu> ids(cpu, {rows, seq_len}), targets(cpu, {rows, seq_len});
  std::vector<std::int32_t> x, y;
  for (std::int64_t step = 0; step < updates; ++step) {
    for (auto& loader : loaders) {
      for (std::int64_t m = 0; m < accum; ++m) {
        loader->next(x, y);
        const auto xv = upload_rows(cpu, ids, std::span<const std::int32_t>(x), rows);
        const auto yv = upload_rows(cpu, targets, std::span<const std::int32_t>(y), rows);
        model.forward_loss(xv, yv);
        model.backward(xv, yv, 1.0f / static_cast<float>(accum * world));
      }
    }
    optimizers.step(static_cast<float>(lr_at(step) * init_lr_frac), static_cast<float>(momentum_at(step)));
    model.zero_grad();
  }
  return to_host(cpu, model.weights().flat());
}

// The stages' command lines on the TrainJob's tokenizer, in base directory `base`.
struct StageJob {
  // mpirun hands its environment to the ranks it starts on this machine.
  std::string mid(const fs::path& base, const std::string& launcher, std::int64_t resume = -1) const {
    return cat("NANOCHAT_BASE_DIR=", base.string(), " ", launcher, NANOCHAT_MID_TRAIN, " --offline --offline-rows ", offline_rows,
               " --max-seq-len ", seq, " --device-batch-size ", rows, " --total-batch-size ", mid_total,
               " --num-iterations ", mid_steps, " --eval-every -1 --eval-tokens 64 --dtype float32 --save-every 2",
               " --resume-from-step ", resume, " --tokenizer ", tokenizer.string());
  }
  std::string sft(const fs::path& base, const std::string& launcher) const {
    return cat("NANOCHAT_BASE_DIR=", base.string(), " ", launcher, NANOCHAT_CHAT_SFT, " --source base --offline --offline-rows ",
               offline_rows, " --max-seq-len ", sft_seq, " --device-batch-size ", rows, " --target-examples-per-step ",
               sft_examples, " --num-iterations ", sft_iterations, " --eval-steps 1 --dtype float32 --tokenizer ",
               tokenizer.string());
  }
  fs::path tokenizer;
  static constexpr std::int64_t offline_rows = 40, mid_total = 128, mid_steps = 4;
  static constexpr std::int64_t sft_seq = 48, sft_examples = 8, sft_iterations = 4;
};

fs::path stage_model(const fs::path& base, const char* stage_dir, std::int64_t step) {
  return base / stage_dir / "d2" / step_file_name("model_", step, ".safetensors");
}

}  // namespace

TEST_CASE("dist: mid_train and chat_sft on 2 ranks equal one process on the same global batch, and mid_train resumes exactly") {
  if (mpirun_missing()) return;
  TrainJob job;
  ScratchDir source("dist_stage_source");
  {
    const Run r = run(job.command(source.path, 1, -1, "", -1));
    CAPTURE(r.output);
    REQUIRE(r.status == 0);
  }
  const fs::path base_model = model_file(source.path, 1);
  const StageJob stages{job.setup.corpus.path / "tokenizer"};
  const StageData mid_data = offline_data(StageJob::offline_rows, true), sft_data = offline_data(StageJob::offline_rows, false);
  const auto mid_reference = [&](int world) {
    const auto n = static_cast<double>(StageJob::mid_steps);
    return stage_reference_weights<MidLoader>(
        job.setup.tok, mid_data.train, base_model, seq, StageJob::mid_total / seq, world, StageJob::mid_steps, 1.0,
        [&](std::int64_t step) { return mid_lr_multiplier(static_cast<double>(step + 1) / n); },
        [](std::int64_t step) { return muon_momentum_at(step); });
  };
  const auto sft_reference = [&](int world) {
    const auto n = static_cast<double>(StageJob::sft_iterations);
    return stage_reference_weights<SftLoader>(
        job.setup.tok, sft_data.train, base_model, StageJob::sft_seq, StageJob::sft_examples, world,
        StageJob::sft_iterations - 1, SftOptions{}.init_lr_frac,
        [&](std::int64_t step) { return 1.0 - static_cast<double>(step) / n; }, [](std::int64_t) { return 0.95; });
  };
  for (int world : {1, 2}) {
    CAPTURE(world);
    ScratchDir base(cat("dist_stages", world));
    fs::copy(source.path / "base_checkpoints", base.path / "base_checkpoints", fs::copy_options::recursive);
    const std::string launcher = world == 1 ? "" : mpirun(world, 300);
    const Run mid = run(stages.mid(base.path, launcher));
    CAPTURE(mid.output);
    REQUIRE(mid.status == 0);
    const Run sft = run(stages.sft(base.path, launcher));
    CAPTURE(sft.output);
    REQUIRE(sft.status == 0);
    const auto mid_got = saved_weights(stage_model(base.path, "mid_checkpoints", StageJob::mid_steps));
    const auto sft_got = saved_weights(stage_model(base.path, "chatsft_checkpoints", StageJob::sft_iterations - 1));
    if (world == 1) {  // the reference loops are the stages' own, bit for bit
      CHECK(mid_got == mid_reference(1));
      CHECK(sft_got == sft_reference(1));
      continue;
    }
    // Rank 0 alone logs: one header and one line per step.
    CHECK(mid.output.find("data-parallel: MPI") != std::string::npos);
    const auto count = [](const std::string& text, const std::string& what) {
      std::size_t n = 0;
      for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
      return n;
    };
    CHECK(count(mid.output, "model: ") == 1);
    CHECK(count(mid.output, "step 00001 (") == 1);
    CHECK(count(sft.output, "Step 00001/00004 | Training loss: ") == 1);
    CHECK(mid.output.find("gradient accumulation steps: 2") != std::string::npos);
    CHECK(sft.output.find("grad accum steps: 2") != std::string::npos);
    for (int k = 0; k < world; ++k) {
      CHECK(fs::exists(base.path / "mid_checkpoints" / "d2" / optim_file_name(StageJob::mid_steps, k)));
      CHECK(fs::exists(base.path / "chatsft_checkpoints" / "d2" / optim_file_name(StageJob::sft_iterations - 1, k)));
    }
    const double mid_err = nanochat::testing::relative_error(mid_got, mid_reference(world));
    const double sft_err = nanochat::testing::relative_error(sft_got, sft_reference(world));
    MESSAGE("world ", world, ": mid_train relative error ", mid_err, ", chat_sft ", sft_err,
            " against one process on the same global batch");
    CHECK(mid_err <= 1e-6);
    CHECK(sft_err <= 1e-6);
    CHECK(mid_got != mid_reference(1));  // the ranks' strides are not one process's own order

    // Resumed from step 2 on the same world size: the same weights, bit for bit.
    fs::remove(stage_model(base.path, "mid_checkpoints", StageJob::mid_steps));
    const Run again = run(stages.mid(base.path, launcher, 2));
    CAPTURE(again.output);
    REQUIRE(again.status == 0);
    CHECK(saved_weights(stage_model(base.path, "mid_checkpoints", StageJob::mid_steps)) == mid_got);
    // One process cannot resume two ranks' shards: refused by name.
    const Run other = run(stages.mid(base.path, "", 2));
    CHECK(other.status != 0);
    CHECK(other.output.find("the checkpoint was saved by 2 ranks but this run has 1") != std::string::npos);
    CHECK(other.output.find("resume with mpirun -np 2") != std::string::npos);
  }
}

TEST_CASE("dist: base_eval's bits per byte and CORE and chat_eval's accuracies on 2 ranks are one process's") {
  if (mpirun_missing()) return;
  TrainJob job;
  job.seq_len = 64;  // base_eval's samples need room for nanochat's prompts
  constexpr std::int64_t eval_tokens = 512;
  ScratchDir base("dist_evals");
  {
    const Run r = run(job.command(base.path, 2, -1, "", -1));
    CAPTURE(r.output);
    REQUIRE(r.status == 0);
  }
  const std::string env = cat("NANOCHAT_BASE_DIR=", base.path.string(), " ");
  const std::string tokenizer = (job.setup.corpus.path / "tokenizer").string();
  const std::string bpb = cat(NANOCHAT_BASE_EVAL, " --device-batch-size ", rows, " --eval-tokens ", eval_tokens, " --interactive no",
                              " --data ", job.setup.corpus.path.string(), " --tokenizer ", tokenizer);
  const std::string core = cat(NANOCHAT_BASE_EVAL, " --core --core-bundle ", NANOCHAT_FIXTURES, "/eval/bundle --tokenizer ", tokenizer);
  const std::string chat = cat(NANOCHAT_CHAT_EVAL, " -i base --tasks 'arithmetic|spelling' --max-problems 7 --max-new-tokens 6",
                               " --dtype float32 -n 2 -t 1.0 --verbose --tokenizer ", tokenizer, " --out ");
  // bits per byte as the ranks read it: rank r's stride of eval_tokens / W, nats and bytes summed.
  const auto reference_bpb = [&](data::Split split, int world) {
    cpu::Cpu cpu;
    Gpt<Cfg, cpu::Cpu> model(cpu, job.setup.tok.vocab_size(), rows, job.seq_len);
    load_weights(cpu, model.weights(), SafetensorsFile::load(model_file(base.path, 2)));
    BitsPerByteTotal total;
    const auto shards = data::split_shards(data::list_shards(job.setup.corpus.path), split);
    for (int r = 0; r < world; ++r) {
      data::LoaderOptions lo{rows, static_cast<std::size_t>(job.seq_len), static_cast<std::size_t>(r),
                             static_cast<std::size_t>(world), 1, 2, {}, nullptr};
      data::TokenLoader loader(job.setup.tok, shards, lo);
      const BitsPerByteTotal part = evaluate_bits_per_byte(cpu, model, [&](auto& x, auto& y) { loader.next(x, y); },
                                                           eval_tokens / (rows * job.seq_len * world), job.setup.tok.token_bytes());
      total.nats += part.nats;
      total.bytes += part.bytes;
    }
    char line[64];
    std::snprintf(line, sizeof line, "%s bpb: %.4f (%lld tokens)", split == data::Split::train ? "train" : "val",
                  total.bits_per_byte(), static_cast<long long>(eval_tokens));
    return std::string(line);
  };
  std::map<int, std::string> core_tables, chat_results;
  for (int world : {1, 2}) {
    CAPTURE(world);
    const std::string launcher = world == 1 ? "" : mpirun(world, 300);
    const Run b = run(env + launcher + bpb);
    CAPTURE(b.output);
    REQUIRE(b.status == 0);
    for (const auto split : {data::Split::train, data::Split::val}) CHECK(b.output.find(reference_bpb(split, world)) != std::string::npos);
    CHECK(b.output.find("sample: ") != std::string::npos);
    if (world > 1) CHECK(b.output.find(reference_bpb(data::Split::val, 1)) == std::string::npos);  // not one rank's stride alone

    const Run c = run(env + launcher + core);
    CAPTURE(c.output);
    REQUIRE(c.status == 0);
    const fs::path csv = base.path / "base_eval" / "base_model_000002.csv";
    REQUIRE(fs::exists(csv));
    core_tables[world] = read_file(csv);
    fs::remove(csv);
    CHECK(c.output.find("Evaluating: mc_task") == c.output.rfind("Evaluating: mc_task"));  // rank 0 alone prints

    const fs::path out = base.path / cat("chat_eval_", world, ".json");
    const Run e = run(env + launcher + chat + out.string());
    CAPTURE(e.output);
    REQUIRE(e.status == 0);
    chat_results[world] = read_file(out);
    // Every problem answered once in all (2 tasks x 7 problems x 2 samples), one line per result.
    const auto count = [&](const std::string& what) {
      std::size_t n = 0;
      for (std::size_t at = e.output.find(what); at != std::string::npos; at = e.output.find(what, at + 1)) ++n;
      return n;
    };
    CHECK(count(" right: ") + count(" wrong: ") == 28);
    CHECK(count("(test) accuracy: ") == 2);  // rank 0 alone prints, once per task
  }
  CHECK(core_tables[2] == core_tables[1]);
  CHECK(chat_results[2] == chat_results[1]);
}


namespace {

// The per-pass losses chat_rl's trainer logs: {step, example step, pass} -> loss.
std::map<std::vector<int>, double> pass_losses(const std::string& log) {
  std::map<std::vector<int>, double> out;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    int step = 0, of = 0, example = 0, pass = 0;
    double loss = 0.0;
    if (std::sscanf(line.c_str(), "Step %d/%d | Example step %d | Pass %d | loss: %lf", &step, &of, &example, &pass,
                    &loss) == 5)
      out[{step, example, pass}] = loss;
  }
  return out;
}

// The lines of `log` that start with `prefix`, up to their first " | dt".
std::vector<std::string> lines_starting(const std::string& log, const std::string& prefix) {
  std::vector<std::string> out;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);)
    if (line.starts_with(prefix)) out.push_back(line.substr(0, line.find(" | dt")));
  return out;
}

}  // namespace

TEST_CASE("dist: chat_rl's trainer on 2 ranks samples each rank's stride of the problems, as one process would") {
  if (mpirun_missing()) return;
  using nanochat_train_test::Tiny;
  TrainJob job;  // for its tokenizer
  ScratchDir dir("dist_rl");
  cpu::Cpu cpu;
  GptWeights<Tiny, cpu::Cpu> source(cpu, job.setup.tok.vocab_size());
  init_weights(cpu, source, 7);
  save_weights(cpu, source, dir.path / "source.safetensors", 48, {});
  const auto trained = [&](const fs::path& file) {
    GptWeights<Tiny, cpu::Cpu> w(cpu, job.setup.tok.vocab_size());
    load_weights(cpu, w, SafetensorsFile::load(file));
    return to_host(cpu, w.flat());
  };
  std::map<int, std::vector<float>> weights;
  std::map<int, std::string> logs;
  for (int world : {1, 2}) {
    CAPTURE(world);
    const fs::path out = dir.path / cat("rl", world);
    const Run r = run(cat(world == 1 ? "" : mpirun(world, 300), NANOCHAT_RL_RANKS_CHECK, " ",
                          (job.setup.corpus.path / "tokenizer").string(), " ", (dir.path / "source.safetensors").string(),
                          " ", out.string()));
    CAPTURE(r.output);
    REQUIRE(r.status == 0);
    CHECK(r.output.find(cat("examples per rank: ", 4 / world, " |")) != std::string::npos);
    for (int k = 0; k < world; ++k) CHECK(fs::exists(out / optim_file_name(2, k)));
    weights[world] = trained(out / step_file_name("model_", 2, ".safetensors"));
    logs[world] = r.output;
  }
  CAPTURE(logs[1]);
  CAPTURE(logs[2]);
  // The world's reward and sequence length per step, and pass@k (problems strided, outcomes
  // shared; rank 0 alone logs): one process's, digit for digit.
  CHECK(lines_starting(logs[2], "Step 0 | Pass@") == lines_starting(logs[1], "Step 0 | Pass@"));
  CHECK(lines_starting(logs[2], "Step 0 | Pass@").size() == 1);
  CHECK(lines_starting(logs[2], "Step 1/2 | Average reward") == lines_starting(logs[1], "Step 1/2 | Average reward"));
  // Rank 0 trains problems 0, 2 | 4, 6, one process 0, 1, 2, 3 | 4, 5, 6, 7: rank 0's e-th is one
  // process's 2e-th, its loss normalised by its 2 problems instead of 4, so twice as large. That
  // holds in step 1 too, where the rollouts come from the first update's weights.
  const auto one = pass_losses(logs[1]), two = pass_losses(logs[2]);
  REQUIRE(two.size() == 8);
  for (const auto& [key, loss] : two) {
    CAPTURE(key[0]);
    CAPTURE(key[1]);
    CAPTURE(key[2]);
    // Printed with 6 decimals: one process's rounding doubled, and rank 0's own.
    CHECK(std::fabs(loss - 2.0 * one.at({key[0], 2 * key[1], key[2]})) <= 1.6e-6);
  }
  CHECK(weights[1] != to_host(cpu, source.flat()));  // the rewards differ, so the updates move the weights
  // The weights agree only loosely: an example's advantages sum to zero and its samples share
  // their first completion position, so that position's contributions cancel to rounding noise,
  // which differs with the order of the sums (per rank, then across the ranks), and AdamW's first
  // update, lr x g / (|g| + 1e-10), moves every element whose gradient is not exactly zero by
  // the whole learning rate (docs/distributed.md).
  const double err = nanochat::testing::relative_error(weights[2], weights[1]);
  MESSAGE("chat_rl's trainer on 2 ranks: relative error of the weights against one process ", err);
  CHECK(err <= 0.2);
}

#endif  // NANOCHAT_BASE_TRAIN
#else
TEST_CASE("dist: the cases under mpirun") {
  nanochat::testing::skip_test("built without MPI (cmake/NanochatMpi.cmake found none): no case runs under mpirun");
}
#endif  // NANOCHAT_MPIEXEC
