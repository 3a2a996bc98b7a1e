// File: simulation_config.h
// The [simulation] table of a tessera-sim config (docs/simulation.md). The rest of the file
// is an ordinary run config (core/config/run_config.h): rounds, seed, selection, strategy,
// secure aggregation and DP mean the same as in a real run; round.deadline_seconds is
// applied on the simulator's virtual clock.
#ifndef TESSERA_CORE_CONFIG_SIMULATION_CONFIG_H_
#define TESSERA_CORE_CONFIG_SIMULATION_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera {

struct SimulationConfig {
  // "idx:DIR", "csv:FILE", or "jsonl:FILE" (the text of a [model.causal_lm] run: its records
  // are partitioned among the virtual clients).
  std::string dataset = "idx:/usr/share/datasets/fashion-mnist";
  std::string partition = "iid";  // a client/data/partition.h spec, checked by the simulator
  // [model.causal_lm] runs: the base checkpoint directory every virtual client shares (its
  // SHA-256 must be the run's base_sha256). Loaded once; each worker thread trains its own
  // adapters on it.
  std::string base_checkpoint;
  uint32_t clients = 100;   // virtual clients
  uint32_t threads = 0;     // training threads; 0 = one per core
  std::string device = "cpu";
  uint64_t limit = 0;       // examples used of each split (0 = all)
  uint32_t test_every = 1;  // server-side evaluation on the test split every N rounds
  // Heterogeneity (docs/simulation.md, "Virtual clock").
  double availability = 1.0;      // probability a client is online in a round
  std::string availability_trace; // CSV "client,start_seconds,end_seconds" of online intervals
  double dropout = 0.0;           // probability a selected client drops out mid-round
  double speed_sigma = 0.0;       // log-normal spread of per-client compute speed
  double examples_per_second = 1000.0;  // virtual training rate of a speed-1 client
  double bandwidth_mbps = 100.0;        // virtual link rate, each direction
  std::string output = "sim-out";
  // Record-level DP: every virtual client's own budget, "epsilon=E,delta=D" (empty: none, and
  // virtual clients refuse record-level DP tasks). Their ledgers live in memory for the run.
  std::string privacy_budget;
  // How virtual clients reach the coordinator: "in_process" (direct calls) or "grpc" (the
  // Fleet service on a loopback port: serialization, streaming and limits of a real run).
  std::string transport = "in_process";
};

inline constexpr uint32_t kMaxVirtualClients = 100000;

// Parses the [simulation] table of `toml_text` (the other tables are the run config's).
// Relative paths resolve against `base_dir`. Errors: INVALID_ARGUMENT naming the field
// ("simulation.clients: must be in [1, 100000], got 0").
absl::StatusOr<SimulationConfig> ParseSimulationConfig(absl::string_view toml_text,
                                                       absl::string_view base_dir);

}  // namespace tessera

#endif  // TESSERA_CORE_CONFIG_SIMULATION_CONFIG_H_
