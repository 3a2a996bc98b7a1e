// Private state of RunManager: a run with the stages of its round loop, one round attempt,
// one task. Only RunManager's own files include it; the stages (round_strategy.h,
// round_privacy.h, record_privacy.h, run_governance.h, secagg_round.h, round_evaluation.h)
// never do (tests/include_policy_test.sh).
#ifndef TESSERA_COORDINATOR_ROUND_RUN_MANAGER_INTERNAL_H_
#define TESSERA_COORDINATOR_ROUND_RUN_MANAGER_INTERNAL_H_

#include <atomic>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/round/record_privacy.h"
#include "coordinator/round/round_evaluation.h"
#include "coordinator/round/round_phases.h"
#include "coordinator/round/round_privacy.h"
#include "coordinator/round/round_strategy.h"
#include "coordinator/round/run_governance.h"
#include "coordinator/round/run_manager.h"
#include "coordinator/round/secagg_round.h"
#include "core/base/no_io_mutex.h"

namespace tessera::coordinator {

struct RunManager::Run {
  std::string id;
  std::string artifact;  // TorchScript program, empty for built-in architectures
  std::atomic<bool> stop{false};
  std::thread driver;
  // Lifecycle (run_lifecycle.cc): an ended run loaded at start-up has only its record and
  // history until EnsureLoaded reads its privacy state and provenance (under load_mu).
  absl::Mutex load_mu;
  bool loaded ABSL_GUARDED_BY(load_mu) = true;

  // The run's commit sequence: held by whoever changes the run's record (state changes,
  // round commits, retention) from reading the current value to publishing the new
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
  // Organization-level differential privacy (round_privacy.h); null without DP. Set before
  // the driver starts (CreateRun, LoadRun), or for an ended run by EnsureLoaded under mu:
  // readers other than the driver take it under mu.
  std::shared_ptr<RoundPrivacy> privacy;
  // The run's strategy (round_strategy.h): set before the driver starts, then used by the
  // driver thread only (rounds get a const view). Null for a run loaded lightly.
  std::shared_ptr<RoundStrategy> strategy;
  // Governance (run_governance.h): base model, builds, participants and data cards, the
  // license rules and the round audit entries. Set before the run is shared, never null.
  std::unique_ptr<RunGovernance> governance;
  // Record-level DP (record_privacy.h): the sites' reports of the attempt in progress and
  // the sites whose own budget is spent. Set before the run is shared, never null.
  std::unique_ptr<RecordPrivacy> record_privacy;
};

// One attempt of one round (training or evaluation).
struct RunManager::Round {
  std::string run_id;
  uint32_t number = 0;
  uint32_t attempt = 0;
  wire::v1::TaskType type = wire::v1::TRAIN;
  // What this round's tasks fetch. Set before dispatch; a training round's aggregate may
  // clear it, under `mu`, once the round is closed: other threads read it under `mu`
  // (RunManager::OpenRoundModel).
  std::shared_ptr<const ModelSnapshot> model;

  absl::Mutex mu;
  bool open ABSL_GUARDED_BY(mu) = true;
  size_t dispatched ABSL_GUARDED_BY(mu) = 0;
  size_t reported ABSL_GUARDED_BY(mu) = 0;
  // The strategy's fold of this round's updates (training rounds without secure
  // aggregation).
  std::optional<UpdateFold> fold ABSL_GUARDED_BY(mu);
  // Set before dispatch when the fold is staged (RunManagerOptions::fold_memory_bytes):
  // SubmitUpdate writes each update here outside `mu`. Its directory goes with the round.
  std::shared_ptr<UpdateStaging> staging;
  // Training rounds: the reported training loss and examples.
  double weighted_loss ABSL_GUARDED_BY(mu) = 0;  // sum of loss * examples
  uint64_t examples ABSL_GUARDED_BY(mu) = 0;
  // Evaluation rounds: the clients' results (set before dispatch).
  std::optional<RoundEvaluation> evaluation ABSL_GUARDED_BY(mu);
  std::atomic<uint64_t> bytes_down{0};
  std::atomic<uint64_t> bytes_up{0};
  std::vector<std::string> participants ABSL_GUARDED_BY(mu);
  size_t abandoned ABSL_GUARDED_BY(mu) = 0;  // tasks their clients gave up (AbandonTask)
  // The run's strategy (how an update weighs), and the connected clients at selection
  // (SCAFFOLD's N).
  std::shared_ptr<const RoundStrategy> strategy;
  uint64_t population = 0;
  std::shared_ptr<SecAggRound> secagg;  // set before dispatch in secure aggregation rounds
  // Central DP without secure aggregation: uploads are clipped to dp_clip and weigh 1.
  std::shared_ptr<const RoundPrivacy> dp;
  double dp_clip = 0;
  double dp_unclipped ABSL_GUARDED_BY(mu) = 0;  // uploads within the clip (adaptive clipping)
  // Record-level DP: the sites' reports (ReportSitePrivacy), in arrival order.
  std::vector<wire::v1::SitePrivacy> site_privacy ABSL_GUARDED_BY(mu);
  std::vector<wire::v1::SitePrivacy> SiteReports() {
    absl::MutexLock l(&mu);
    return site_privacy;
  }
};

struct RunManager::Task {
  wire::v1::Task task;
  std::string client;
  std::shared_ptr<Round> round;
  uint32_t index = 0;     // position among the round's selected clients
  bool reported = false;  // guarded by round->mu
  bool privacy_reported = false;  // ReportSitePrivacy was accepted; guarded by round->mu
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_ROUND_RUN_MANAGER_INTERNAL_H_
