// File: sim_output.h
// Per-round metrics of a simulation: the terminal progress line, metrics.csv,
// metrics.json and metrics.png (gnuplot) in the output directory (docs/simulation.md).
#ifndef TESSERA_TOOLS_SIM_SIM_OUTPUT_H_
#define TESSERA_TOOLS_SIM_SIM_OUTPUT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace tessera::sim {

struct RoundRow {
  uint32_t round = 0;
  uint32_t selected = 0;
  uint32_t completed = 0;
  uint32_t dropped = 0;
  double train_loss = 0;     // NaN when not released (DP, secure aggregation)
  double test_loss = 0;      // NaN when not evaluated this round
  double test_accuracy = 0;  // NaN when not evaluated this round
  double epsilon = 0;        // NaN without DP
  uint64_t bytes_up = 0;
  uint64_t bytes_down = 0;
  double wall_seconds = 0;
  double virtual_seconds = 0;
  double train_seconds = 0;  // local training summed over clients
  uint64_t examples = 0;     // examples processed in local training
  uint64_t steps = 0;        // local optimizer steps (examples / steps = mean batch)
};

struct RunSummary {
  std::string name;
  std::string strategy;
  std::string partition;
  uint32_t clients = 0;
  uint32_t threads = 0;
  uint64_t seed = 0;
  std::string state;  // the run's final state and message
  double wall_seconds = 0;
  double virtual_seconds = 0;
  uint64_t peak_rss_bytes = 0;
  uint32_t ranks = 1;                     // MPI ranks (1: one process)
  uint64_t peak_rss_bytes_all_ranks = 0;  // every rank's peak RSS, summed
  uint64_t updates_in_partial_sums = 0;   // MPI: updates whose values came in a rank's sum
  std::string model_sha256;               // the final global model's safetensors, hex
};

// "round 3/20  10/10 clients (0 dropped)  loss 0.532  test acc 81.2% ..."
std::string ProgressLine(const RoundRow& row, uint32_t rounds);
// Writes metrics.csv and metrics.json into `dir` (created if missing).
absl::Status WriteMetrics(const std::string& dir, const RunSummary& run,
                          const std::vector<RoundRow>& rows);
// metrics.png: test accuracy, and train/test loss, over rounds. FAILED_PRECONDITION when
// gnuplot is not installed (the CSV and JSON are still there).
absl::Status PlotMetrics(const std::string& dir, const std::string& title);
// VmHWM of this process.
uint64_t PeakRssBytes();

}  // namespace tessera::sim

#endif  // TESSERA_TOOLS_SIM_SIM_OUTPUT_H_
