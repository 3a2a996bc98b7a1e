// Private state of RunManager, shared by run_manager.cc and round_driver.cc.
#ifndef TESSERA_COORDINATOR_ROUND_RUN_MANAGER_INTERNAL_H_
#define TESSERA_COORDINATOR_ROUND_RUN_MANAGER_INTERNAL_H_

#include <atomic>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "aggregation/fed_avg.h"
#include "aggregation/server_optimizer.h"
#include "coordinator/round/privacy_plan.h"
#include "coordinator/round/run_manager.h"
#include "coordinator/round/secagg_round.h"
#include "core/base/no_io_mutex.h"

namespace tessera::coordinator {

inline absl::Duration Seconds(double s) {
  return absl::Milliseconds(static_cast<int64_t>(s * 1000));
}

// The global model after a round: `global` plus the weighted mean update `mean_delta`
// (summed in mean_delta's buffers). INTERNAL if the result is not finite.
absl::StatusOr<std::shared_ptr<const ModelSnapshot>> NextModel(ArrayRecord mean_delta,
                                                               const ModelSnapshot& global,
                                                               uint32_t round);

// ---- Strategies (strategy_driver.cc, docs/strategies.md) ----
bool IsRobustRule(const wire::v1::StrategyConfig& s);
// SCAFFOLD: appends a zero control variate "scaffold.c/X" for every float32 tensor X.
absl::Status AddScaffoldVariate(const wire::v1::StrategyConfig& s, ArrayRecord& weights);
// The accumulator weight of an update: its example count; 1 for SCAFFOLD; examples / local
// steps for FedNova (then *local_steps is set; INVALID_ARGUMENT without "local_steps").
absl::StatusOr<double> StrategyWeight(const wire::v1::StrategyConfig& s, uint64_t num_examples,
                                      const std::map<std::string, double>& metrics,
                                      double* local_steps);
// A robust rule over every update of the round.
absl::StatusOr<ArrayRecord> CombineHeld(const wire::v1::StrategyConfig& s,
                                        const std::vector<ArrayRecord>& held);
// FedNova's sums over a round's updates (p = examples, tau = local steps).
struct RoundSums {
  double p = 0, p_tau = 0, p_over_tau = 0;
};
// Turns the p/tau-weighted mean into FedNova's tau_eff-scaled normalized update.
absl::Status FinishFedNova(const RoundSums& sums, ArrayRecord& mean);
struct ServerStrategy {
  std::shared_ptr<aggregation::ServerOptimizer> optimizer;  // null: plain global += mean
};
// The run's server optimizer (none for strategies without one), restored from `stored_state`.
absl::StatusOr<ServerStrategy> MakeServerStrategy(const wire::v1::StrategyConfig& s,
                                                  const ArrayRecord& layout,
                                                  const ArrayRecord* stored_state);
// A stored model split into served weights and server state ("server_opt." tensors).
std::pair<ArrayRecord, ArrayRecord> SplitStoredModel(ArrayRecord stored);
// What CommitRound stores: the weights plus the server state under "server_opt." names.
absl::StatusOr<ArrayRecord> StoredModel(const ModelSnapshot& model);
// The next global model: SCAFFOLD's server step sizes, then the server optimizer (or
// NextModel). `reported` of `population` connected clients contributed.
absl::StatusOr<std::shared_ptr<const ModelSnapshot>> StrategyNextModel(
    const wire::v1::StrategyConfig& s, ServerStrategy& server, ArrayRecord mean_delta,
    const ModelSnapshot& global, uint32_t round, uint32_t reported, uint64_t population);
// The model without SCAFFOLD's control variate (what an export holds).
std::shared_ptr<const ModelSnapshot> ModelForExport(std::shared_ptr<const ModelSnapshot> model);

struct RunManager::Run {
  std::string id;
  std::string artifact;  // TorchScript program, empty for built-in architectures
  std::atomic<bool> stop{false};
  std::thread driver;
  // Lifecycle (run_lifecycle.cc): an ended run loaded at start-up has only its record and
  // history until EnsureLoaded reads its privacy state and provenance (under load_mu).
  absl::Mutex load_mu;
  bool loaded ABSL_GUARDED_BY(load_mu) = true;

  // The run's commit sequence: held by whoever changes what the run stores (its record,
  // round commits, its provenance) from reading the current value to publishing the new
  // one, across the durable write. Readers never take it, so a commit of a large model
  // delays other writers of this run only.
  absl::Mutex commit_mu ABSL_ACQUIRED_BEFORE(mu);
  // The run's in-memory state, read by status calls and metrics: held for copies only,
  // never across disk or network I/O (NoIoMutex counts it; CoordinatorState's writes
  // refuse to run under it). A change to stored fields is prepared under it, written
  // holding commit_mu alone, then published under it.
  NoIoMutex mu;
  storage::v1::RunRecord record ABSL_GUARDED_BY(mu);
  std::vector<wire::v1::RoundSummary> history ABSL_GUARDED_BY(mu);
  std::optional<wire::v1::RoundSummary> current ABSL_GUARDED_BY(mu);
  std::shared_ptr<const ModelSnapshot> model ABSL_GUARDED_BY(mu);  // last committed
  // Differential privacy (dp_driver.cc): set before the driver starts, then constant.
  std::optional<PrivacyPlan> privacy;
  wire::v1::PrivacyBudgetStatus budget ABSL_GUARDED_BY(mu);
  double clip_norm ABSL_GUARDED_BY(mu) = 0;  // the next round's (adaptive clipping moves it)
  // Strategy state: set before the driver starts, then used by the driver thread only.
  ServerStrategy server;
  // Governance (governance_driver.cc): base model, builds, participants and data cards.
  wire::v1::RunProvenance provenance ABSL_GUARDED_BY(mu);
  // Record-level DP (site_privacy.cc): what the sites of the training attempt in progress
  // reported (shown in `current` until the attempt's summary holds them), and the clients
  // that refused a task because their own budget is spent (never selected again).
  struct LiveSitePrivacy {
    uint32_t round = 0;
    uint32_t attempt = 0;
    std::vector<wire::v1::SitePrivacy> sites;
  };
  LiveSitePrivacy site_privacy ABSL_GUARDED_BY(mu);
  std::set<std::string> budget_exhausted ABSL_GUARDED_BY(mu);
};

// One attempt of one round (training or evaluation).
struct RunManager::Round {
  std::string run_id;
  uint32_t number = 0;
  uint32_t attempt = 0;
  wire::v1::TaskType type = wire::v1::TRAIN;
  std::shared_ptr<const ModelSnapshot> model;  // what this round's tasks fetch

  absl::Mutex mu;
  bool open ABSL_GUARDED_BY(mu) = true;
  size_t dispatched ABSL_GUARDED_BY(mu) = 0;
  size_t reported ABSL_GUARDED_BY(mu) = 0;
  std::optional<aggregation::WeightedAccumulator> accumulator ABSL_GUARDED_BY(mu);
  double weighted_loss ABSL_GUARDED_BY(mu) = 0;      // sum of loss * examples
  double weighted_accuracy ABSL_GUARDED_BY(mu) = 0;  // sum of accuracy * examples
  uint64_t examples ABSL_GUARDED_BY(mu) = 0;
  std::atomic<uint64_t> bytes_down{0};
  std::atomic<uint64_t> bytes_up{0};
  std::vector<std::string> participants ABSL_GUARDED_BY(mu);
  size_t abandoned ABSL_GUARDED_BY(mu) = 0;  // tasks their clients gave up (AbandonTask)
  // Strategy: the run's config, every update for robust rules, FedNova's sums, and the
  // connected clients at selection (SCAFFOLD's N).
  wire::v1::StrategyConfig strategy;
  std::vector<ArrayRecord> held ABSL_GUARDED_BY(mu);
  RoundSums sums ABSL_GUARDED_BY(mu);
  uint64_t population = 0;
  std::shared_ptr<SecAggRound> secagg;  // set before dispatch in secure aggregation rounds
  // Central DP without secure aggregation: uploads are clipped to dp_clip and weigh 1.
  const PrivacyPlan* dp = nullptr;
  double dp_clip = 0;
  double dp_unclipped ABSL_GUARDED_BY(mu) = 0;  // uploads within the clip (adaptive clipping)
  // Record-level DP: the sites' reports (ReportSitePrivacy), in arrival order.
  std::vector<wire::v1::SitePrivacy> site_privacy ABSL_GUARDED_BY(mu);
};

struct RunManager::Task {
  wire::v1::Task task;
  std::string client;
  std::shared_ptr<Round> round;
  uint32_t index = 0;     // position among the round's selected clients
  bool reported = false;  // guarded by round->mu
  bool privacy_reported = false;  // ReportSitePrivacy was accepted; guarded by round->mu
};

// The error that stops a restart when the charge of a distributed-DP session's possibly
// revealed sum cannot be written: `why`'s code, naming run, round and the session's phase.
absl::Status SessionChargeError(const storage::v1::SecAggSessionRecord& session,
                                const absl::Status& why);

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_ROUND_RUN_MANAGER_INTERNAL_H_
