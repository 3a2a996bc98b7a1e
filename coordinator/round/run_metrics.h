// File: run_metrics.h
// What the coordinator's Prometheus metrics need of one run, folded from its round history
// one round at a time: counts, sums and the latest attempt's numbers, never a copy of the
// history (a scrape of many long runs stays small). RunManager::Metrics() folds each run under
// its lock; coordinator/service/metrics.h renders the result.
#ifndef TESSERA_COORDINATOR_ROUND_RUN_METRICS_H_
#define TESSERA_COORDINATOR_ROUND_RUN_METRICS_H_

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "tessera/wire/v1/control.pb.h"

namespace tessera::coordinator {

// Upper bounds (seconds) of the round-duration histogram's buckets.
inline constexpr std::array<double, 12> kRoundSecondsBuckets = {0.5, 1,   2,   5,    10,   30,
                                                                60,  120, 300, 600, 1800, 3600};

struct RunMetrics {
  std::string run_id;
  std::string name;
  wire::v1::RunState state = wire::v1::RUN_STATE_UNSPECIFIED;

  uint64_t rounds_started = 0;  // attempts, the one in progress included
  uint64_t rounds_completed = 0;
  uint64_t rounds_failed = 0;
  // Ended (completed or failed) attempts' wall time: count, sum and cumulative buckets.
  uint64_t seconds_count = 0;
  double seconds_sum = 0;
  std::array<uint64_t, kRoundSecondsBuckets.size()> seconds_buckets{};
  struct PhaseTotal {
    double seconds = 0;
    uint64_t count = 0;
  };
  std::map<std::string, PhaseTotal> phases;  // of ended attempts, by phase name
  uint64_t bytes_in = 0;   // update bytes received (RoundSummary.bytes_up)
  uint64_t bytes_out = 0;  // model bytes sent (RoundSummary.bytes_down)
  // The latest attempt (the one in progress, if any).
  struct Clients {
    uint32_t selected = 0;
    uint32_t reported = 0;
    uint32_t dropped = 0;
  };
  std::optional<Clients> latest_clients;
  // Secure aggregation: participants lost (dropped or rejected) per protocol phase, over
  // every attempt; survivors of the latest ended secure attempt.
  std::map<std::string, uint64_t> secagg_dropouts;
  std::optional<uint32_t> secagg_survivors;
  // Differential privacy: the run's dataset budget (RunStatus.privacy), and the latest
  // attempt that released a noised aggregate.
  std::optional<wire::v1::PrivacyBudgetStatus> budget;
  struct Released {
    double unclipped_fraction = 0;
    double clip_norm = 0;
  };
  std::optional<Released> latest_released;
  // Record-level DP: each site's latest reported epsilon (a refusal keeps the last one).
  std::map<std::string, double> site_epsilon;

  // Folds one attempt in; call in history order, the attempt in progress last.
  void AddRound(const wire::v1::RoundSummary& round);
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_ROUND_RUN_METRICS_H_
