#pragma once
// Where this process stands in a data-parallel job, from the launcher's environment: mpirun
// (OpenMPI's OMPI_COMM_WORLD_*), MPICH/Hydra and Intel MPI (PMI_RANK, PMI_SIZE, MPI_LOCALRANKID),
// PMIx (PMIX_RANK), Slurm's srun (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID) and torchrun's
// RANK, WORLD_SIZE, LOCAL_RANK. Several launchers may set theirs at once (srun under a batch
// script, mpirun inside an allocation): what they say must agree, and a launcher's variables
// must be complete and in range, else the run stops with an error naming them. A variable set
// inside a Slurm allocation without srun (SLURM_PROCID of the batch step) is not a launch:
// SLURM_* counts only when SLURM_STEP_ID marks a job step.

#include <charconv>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/core/error.hpp"

namespace nanochat::dist {

struct Placement {
  int rank = 0, size = 1, local_rank = 0;
  std::string source = "no launcher";  // which variables said so
};

namespace bootstrap_detail {

struct Launcher {
  const char* name;
  const char* rank;
  const char* size;
  const char* local_rank;  // nullptr: this launcher does not say
};

// An environment lookup, replaceable for tests.
using Getenv = std::function<const char*(const char*)>;

inline std::optional<int> integer(const Getenv& getenv, const char* name) {
  const char* text = getenv(name);
  if (text == nullptr) return std::nullopt;
  const std::string_view s(text);
  int value = -1;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  NANOCHAT_CHECK(ec == std::errc() && end == s.data() + s.size() && value >= 0, "environment variable ", name, "=",
                 s, " is not a non-negative integer");
  return value;
}

}  // namespace bootstrap_detail

// The placement the environment describes; rank 0 of 1 when no launcher set anything.
inline Placement placement_from_environment(const bootstrap_detail::Getenv& getenv = std::getenv) {
  using bootstrap_detail::integer;
  static constexpr bootstrap_detail::Launcher launchers[] = {
      {"OpenMPI", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"},
      {"PMI", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"},
      {"Slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"},
      {"torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK"},
  };
  std::optional<Placement> found;
  for (const auto& l : launchers) {
    if (std::string_view(l.name) == "Slurm" && getenv("SLURM_STEP_ID") == nullptr) continue;
    const auto rank = integer(getenv, l.rank), size = integer(getenv, l.size);
    const auto local = integer(getenv, l.local_rank);
    if (!rank && !size && !local) continue;
    NANOCHAT_CHECK(rank && size, l.name, " launch: ", rank ? l.size : l.rank, " is not set but ",
                   rank ? l.rank : (size ? l.size : l.local_rank), " is: set both or neither");
    NANOCHAT_CHECK(*size >= 1 && *rank < *size, l.name, " launch: ", l.rank, "=", *rank, " is not below ", l.size,
                   "=", *size);
    Placement p{*rank, *size, local.value_or(0), cat(l.rank, "/", l.size)};
    NANOCHAT_CHECK(p.local_rank < p.size, l.name, " launch: ", l.local_rank, "=", p.local_rank, " is not below ",
                   l.size, "=", p.size);
    if (!found) {
      found = p;
      continue;
    }
    NANOCHAT_CHECK(found->rank == p.rank && found->size == p.size, "the launchers disagree: ", found->source,
                   " say rank ", found->rank, " of ", found->size, " but ", p.source, " say rank ", p.rank, " of ",
                   p.size, "; unset the stale variables");
  }
  return found.value_or(Placement{});
}

}  // namespace nanochat::dist
