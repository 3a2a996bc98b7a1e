// File: simulation.h
// tessera-sim's driver: one run config with a [simulation] table in, per-round metrics out.
// It stands up the real coordinator core (CoordinatorState on RocksDB, ClientRegistry,
// RunManager: selection, strategy, secure aggregation, DP and its ledger) in-process,
// connects a VirtualFleet to it, and evaluates each new global model on the dataset's test
// split on the server side. See docs/simulation.md.
#ifndef TESSERA_TOOLS_SIM_SIMULATION_H_
#define TESSERA_TOOLS_SIM_SIMULATION_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/config/simulation_config.h"
#include "tools/sim/rank_link.h"
#include "tools/sim/sim_output.h"

namespace tessera::sim {

struct SimulationOptions {
  std::string config_path;
  // Overrides of the [simulation] table (empty / 0: keep the file's).
  std::string output;
  uint32_t threads = 0;
  std::string device;
  std::string transport;  // "in_process" or "grpc"
  uint64_t limit = 0;
  uint32_t rounds = 0;
  bool plot = true;
  // Called with each round's row as it completes (progress).
  std::function<void(const RoundRow&, uint32_t rounds)> on_round;
  // Under mpirun/srun (JoinRanks): this rank's link to the others; null in one process.
  // Every rank calls RunSimulation with the same config and overrides; rank 0 runs the
  // coordinator, evaluation and its own shard of the clients, the others train theirs
  // (docs/simulation.md, "Across machines with Open MPI").
  RankLink* link = nullptr;
};

struct SimulationResult {
  RunSummary run;
  std::vector<RoundRow> rows;
};

// Runs the simulation to the end of the run and writes metrics.csv/json/png into the
// output directory. Errors: the config's (naming the field), the dataset's, and a run that
// ends FAILED (with its message). Across ranks also: an option that runs in one process only,
// and a rank whose config, overrides or dataset differ from rank 0's (FAILED_PRECONDITION);
// a rank other than 0 returns an empty result once rank 0 has ended it.
absl::StatusOr<SimulationResult> RunSimulation(const SimulationOptions& options);

}  // namespace tessera::sim

#endif  // TESSERA_TOOLS_SIM_SIMULATION_H_
