#pragma once
// The communicator of a run in one process: rank 0 of 1, every collective the identity (an
// average over one rank is the value itself, so nothing is even scaled). Training through it is
// bitwise the training of before there were communicators.

#include <cstdlib>

#include "nanochat/dist/communicator.hpp"

namespace nanochat::dist {

class SingleProcessCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string describe() const override { return "single process"; }
  void all_reduce(std::span<float>, ReduceOp) override {}
  void all_reduce(std::span<double>, ReduceOp) override {}
  void reduce_scatter(std::span<float>, ReduceOp) override {}
  void all_gather(std::span<float>) override {}
  void reduce(std::span<float>, ReduceOp, int) override {}
  void broadcast(std::span<float>, int) override {}
  void broadcast(std::span<char>, int) override {}
  void barrier() override {}
  [[noreturn]] void abort(int exit_code) override { std::exit(exit_code); }
};

// The communicator of code that does not train distributed (tests, one-process programs).
inline Communicator& single_process() {
  static SingleProcessCommunicator comm;
  return comm;
}

}  // namespace nanochat::dist
