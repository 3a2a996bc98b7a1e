// File: run_manager.h
// The coordinator's domain core: runs, their rounds, and the tasks handed to clients.
// gRPC-free; the services in coordinator/service translate RPCs into these calls.
//
// A running run has one driver thread that loops: wait for clients, select, push TRAIN
// tasks, fold each verified update into a streaming weighted accumulator as it arrives,
// aggregate at quorum or deadline (or fail the attempt and retry), optionally evaluate the
// new global model on every connected client, then commit the round atomically to the
// CoordinatorState. RunManager owns the runs, their threads, locks and state access; each
// concern of a round is a stage the loop calls at fixed stations (round_strategy.h,
// round_fold.h, round_privacy.h, record_privacy.h, run_governance.h, secure_aggregation.h,
// round_evaluation.h). See docs/architecture.md "The round loop: stations and stages".
#ifndef TESSERA_COORDINATOR_ROUND_RUN_MANAGER_H_
#define TESSERA_COORDINATOR_ROUND_RUN_MANAGER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "aggregation/fed_avg.h"
#include "coordinator/round/audit_trail.h"
#include "coordinator/round/client_registry.h"
#include "coordinator/round/model_snapshot.h"
#include "coordinator/round/privacy_plan.h"
#include "coordinator/round/round_fold.h"
#include "coordinator/round/run_governance.h"
#include "coordinator/round/run_retention.h"
#include "coordinator/round/update_staging.h"
#include "coordinator/round/run_metrics.h"
#include "coordinator/state/coordinator_state.h"
#include "core/model/tensor.h"
#include "privacy/provenance/signer.h"
#include "privacy/secagg/identity.h"
#include "tessera/secagg/v1/secagg.pb.h"
#include "tessera/storage/v1/records.pb.h"
#include "tessera/wire/v1/control.pb.h"
#include "tessera/wire/v1/fleet.pb.h"
#include "tessera/wire/v1/governance.pb.h"

namespace tessera::coordinator {

struct RunManagerOptions {
  uint64_t max_update_examples = 1ull << 32;  // per update
  // Runs that are CREATED or RUNNING at once (ended runs do not count).
  uint32_t max_runs = 1000;
  // The retention policy of runs whose config has none (keep_last 0): docs/operations.md.
  wire::v1::RetentionConfig retention = [] {
    wire::v1::RetentionConfig r;
    r.set_keep_last(kDefaultRetainLast);
    r.set_keep_every(kDefaultRetainEvery);
    return r;
  }();
  // Secure aggregation identities: under mTLS, clients' advertised certificates must chain
  // to this source's CA and not be on its CRL (looked up per session, so a new CRL applies
  // to the next session); with `insecure`, Ed25519 identities are accepted instead.
  secagg::TrustSource peer_trust;
  bool insecure = false;
  // The largest gRPC message; CreateRun refuses secure aggregation runs whose masked input
  // could not fit.
  uint64_t max_message_bytes = 4 << 20;
  // Robust rules (median, trimmed mean, Krum) hold every update of a round in memory: an
  // attempt whose updates could exceed this many bytes fails before dispatch.
  uint64_t max_held_update_bytes = 8ull << 30;
  // Weighted means whose exact accumulator (25 bytes per parameter,
  // WeightedAccumulator::MemoryBytesFor) would exceed this many bytes stage each accepted
  // update to a file under `staging_dir` and average them block by block at the end of the
  // round (update_staging.h); smaller ones fold in memory. Empty `staging_dir`: always in
  // memory. Recover() empties `staging_dir` (docs/architecture.md, "Coordinator memory").
  uint64_t fold_memory_bytes = 32ull << 20;
  std::string staging_dir;
  // Provenance (docs/governance.md): the build recorded with every run, and the key that
  // signs bills of materials and audit heads (exports and audit exports fail without one).
  std::string coordinator_version;
  std::shared_ptr<const provenance::ProvenanceSigner> signer;
  // Testing only (tessera-coordinator --fault-crash-at, the ledger crash tests): "STATION:R"
  // kills the process with SIGKILL in round R of a run, after its evaluation tasks were
  // answered and before the round's commit. STATION is "before-commit" (at once), "cancel"
  // (once the run is cancelled) or "shutdown" (once the coordinator shuts down). Empty: off.
  std::string fault_crash_at;
};

// Who asked for an operator action: recorded in the audit log and the run's provenance.
struct Actor {
  std::string name;         // the operator certificate's CN ("" when --insecure)
  std::string cli_version;  // CreateRun: the CLI's build
};

// Thread-safe.
class RunManager {
 public:
  // `state` and `registry` must outlive the manager.
  RunManager(RunManagerOptions options, CoordinatorState* state, ClientRegistry* registry);
  ~RunManager();  // stops drivers (runs stay RUNNING on disk and resume on restart)
  RunManager(const RunManager&) = delete;
  RunManager& operator=(const RunManager&) = delete;

  // Loads stored runs and resumes the RUNNING ones at their last completed round. Ended
  // runs are loaded lightly (record and round history; their privacy state and provenance
  // are read when first needed, their models and program on each export). A run that cannot
  // be read is logged, listed as unreadable and skipped; it never stops the start-up.
  absl::Status Recover();
  // Stops every driver thread; idempotent.
  void Shutdown();

  // Errors: INVALID_ARGUMENT (config or weights), RESOURCE_EXHAUSTED (max_runs active runs).
  absl::StatusOr<wire::v1::RunStatus> CreateRun(const wire::v1::RunConfig& config,
                                                ArrayRecord initial_weights,
                                                std::string artifact, const Actor& actor = {});
  // NOT_FOUND; FAILED_PRECONDITION unless the run is CREATED.
  absl::StatusOr<wire::v1::RunStatus> StartRun(absl::string_view run_id,
                                               const Actor& actor = {});
  // NOT_FOUND; FAILED_PRECONDITION if the run already ended.
  absl::StatusOr<wire::v1::RunStatus> CancelRun(absl::string_view run_id,
                                                const Actor& actor = {});
  absl::StatusOr<wire::v1::RunStatus> GetRunStatus(absl::string_view run_id);
  // Every run without its round history (ListRuns RPC), by creation time; archived runs
  // only with `include_archived`. Runs that could not be read at start-up are listed as
  // FAILED with the reason.
  std::vector<wire::v1::RunStatus> ListRuns(bool include_archived = false);

  // ---- Run lifecycle (run_lifecycle.cc, docs/operations.md "Runs and retention") ----
  // An ended run keeps only its final and pinned (exported) models and leaves the default
  // list. NOT_FOUND; FAILED_PRECONDITION while the run is CREATED or RUNNING.
  absl::StatusOr<wire::v1::RunStatus> ArchiveRun(absl::string_view run_id,
                                                 const Actor& actor = {});
  // Deletes an ended (or never started) run: its record, round history, models, program
  // and secure aggregation traces. Its audit entries, provenance and privacy charges stay
  // (exports remain verifiable; deleting never gives privacy budget back). Returns how many
  // round models were removed. NOT_FOUND; FAILED_PRECONDITION while RUNNING. A run that
  // could not be read at start-up can be deleted.
  absl::StatusOr<uint64_t> DeleteRun(absl::string_view run_id, const Actor& actor = {});
  // Every run's numbers for the Prometheus metrics (run_metrics.h), folded from its round
  // history and the attempt in progress without copying them; by creation time.
  std::vector<RunMetrics> Metrics();

  // Calls `fn` with the status after every change of the run until RemoveWatcher.
  absl::StatusOr<uint64_t> AddWatcher(absl::string_view run_id,
                                      std::function<void(const wire::v1::RunStatus&)> fn);
  void RemoveWatcher(uint64_t id);

  // ---- Fleet side. `client` is the authenticated caller. ----
  struct TaskModel {
    std::shared_ptr<const ModelSnapshot> model;
  };
  // The model a task refers to. NOT_FOUND (unknown task), PERMISSION_DENIED (another
  // client's task), FAILED_PRECONDITION (the task's round is closed).
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> ModelForTask(absl::string_view task_id,
                                                                    absl::string_view client);
  absl::StatusOr<std::string> ArtifactForTask(absl::string_view task_id,
                                              absl::string_view client);
  void CountBytesDown(absl::string_view task_id, uint64_t bytes);
  // The layout an update for this task must have (same checks as ModelForTask, plus
  // FAILED_PRECONDITION for non-TRAIN tasks and ALREADY_EXISTS for a second update).
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> BeginUpdate(absl::string_view task_id,
                                                                   absl::string_view client);
  // INVALID_ARGUMENT unless `declared` (an upload's UpdateHeader.compression) is float32 or the
  // encoding the task asked for: the run's method, and its block_size (int8) or topk_fraction
  // (top-k). A client cannot pick another encoding than the run's (docs/compression.md). Same
  // lookup errors as BeginUpdate.
  absl::Status CheckUpdateEncoding(absl::string_view task_id, absl::string_view client,
                                   const wire::v1::CompressionConfig& declared);
  // Folds a verified update into the round. Same errors as BeginUpdate, plus
  // INVALID_ARGUMENT for a bad example count or metric. Nothing changes on error.
  absl::Status SubmitUpdate(absl::string_view task_id, absl::string_view client,
                            uint64_t num_examples, const std::map<std::string, double>& metrics,
                            const ArrayRecord& update, uint64_t bytes_up);
  // Partial sums (tessera-sim across MPI ranks, docs/simulation.md): folds `partial`, the
  // exact weighted sum of updates of training tasks of the round of `task_id` (a task of
  // `client`'s), folded by another process with the run's strategy weights
  // (RoundStrategy::Weigh). Each of those tasks must then report with SubmitFoldedUpdate; the
  // caller is trusted to fold only updates SubmitUpdate would accept. Errors: as FindTask;
  // FAILED_PRECONDITION for a round under central DP or secure aggregation or with a robust
  // rule (each update is needed) and for a closed round; UpdateFold::Merge's. Nothing
  // changes on error.
  absl::Status MergePartialUpdate(absl::string_view task_id, absl::string_view client,
                                  const aggregation::WeightedAccumulator& partial);
  // SubmitUpdate for an update whose values came in a MergePartialUpdate: the same checks,
  // counts and metrics, without folding values. Errors: as SubmitUpdate, and
  // FAILED_PRECONDITION where MergePartialUpdate refuses.
  absl::Status SubmitFoldedUpdate(absl::string_view task_id, absl::string_view client,
                                  uint64_t num_examples,
                                  const std::map<std::string, double>& metrics,
                                  uint64_t bytes_up);
  // Upload staging (push_update.cc): the directory an update for `task_id` may stream into
  // tensor by tensor (UpdateStaging::Begin) when its round stages updates
  // (RunManagerOptions::fold_memory_bytes) without central DP (which clips the whole update
  // first); null otherwise. Errors: as BeginUpdate.
  absl::StatusOr<std::shared_ptr<UpdateStaging>> UploadStaging(absl::string_view task_id,
                                                               absl::string_view client);
  // SubmitUpdate for an update that streamed into `file` (a StagedWriter of UploadStaging's
  // directory, finished once the stream's SHA-256 verified). Same errors as SubmitUpdate, and
  // FAILED_PRECONDITION when the round does not take streamed updates. The file is removed
  // unless the update is accepted.
  absl::Status SubmitStagedUpdate(absl::string_view task_id, absl::string_view client,
                                  uint64_t num_examples,
                                  const std::map<std::string, double>& metrics, StagedFile file,
                                  uint64_t bytes_up);
  // Hands a secure aggregation message of a TRAIN task's client to its round; on OK,
  // `reply` gets the coordinator's answer when the phase closes. Errors: as BeginUpdate
  // (FAILED_PRECONDITION also for a run without secure aggregation), and those of
  // SecAggRound::Submit (the client is then dropped from the round).
  absl::Status SubmitSecAgg(absl::string_view task_id, absl::string_view client,
                            const secagg::v1::ClientToServer& message,
                            std::function<void(absl::StatusOr<secagg::v1::ServerToClient>)> reply);
  // The client gives up on its task (it could not train, or is leaving): the round stops
  // waiting for it and counts it as dropped. Same errors as BeginUpdate (evaluation tasks
  // are accepted too).
  absl::Status AbandonTask(absl::string_view task_id, absl::string_view client,
                           absl::string_view reason);
  // AbandonTask for every task of `client` in an open round that it has not answered (its
  // certificate was revoked: it will not answer). Returns how many.
  size_t AbandonClientTasks(absl::string_view client, absl::string_view reason);
  absl::Status SubmitEvaluation(absl::string_view task_id, absl::string_view client,
                                uint64_t num_examples, double loss, double accuracy);
  // The client's answer to a TRAIN task's data_report request (docs/governance.md). Same
  // errors as AbandonTask, plus FAILED_PRECONDITION when the task asked for no report and
  // INVALID_ARGUMENT for a report other than the one asked for (another bucket, a histogram
  // the run did not ask for or the data card does not allow, too many classes).
  absl::Status SubmitDataReport(absl::string_view task_id, absl::string_view client,
                                const wire::v1::DataReport& report);
  // Record-level DP (record_privacy.h, docs/privacy.md): what a TRAIN task costs the site's
  // own privacy budget, sent before it trains, or its refusal. The report goes into the
  // round's summary (site_privacy); a refusal drops the client from the round at once (as
  // AbandonTask, or withdrawn from the secure aggregation session) and the run no longer
  // selects it (RunStatus.budget_exhausted_clients). Errors: as FindTask (NOT_FOUND,
  // PERMISSION_DENIED, FAILED_PRECONDITION for a closed round); FAILED_PRECONDITION for a
  // task that is not TRAIN or has no dp.record, or a refusal after the task's update;
  // INVALID_ARGUMENT naming the field (epsilon, delta, epsilon_budget, sampling_rate,
  // reason, accountant); ALREADY_EXISTS for a second report of the task.
  absl::Status ReportSitePrivacy(absl::string_view task_id, absl::string_view client,
                                 const wire::v1::SitePrivacyReport& report);
  // Sends `client` again every task of an open round it has not answered: a task pushed
  // down a subscription that died on the way never arrived, and the client subscribes anew
  // after reconnecting. Clients ignore a task id they already have. Secure-aggregation tasks
  // are not re-sent (a participant cannot rejoin its session). Returns how many.
  size_t ResendOpenTasks(const std::string& client);

  // The model of `round` (-1: last completed) with the run's config and artifact.
  struct Export {
    wire::v1::RunConfig config;
    uint32_t round = 0;
    std::shared_ptr<const ModelSnapshot> model;
    std::string artifact;
  };
  absl::StatusOr<Export> ExportModel(absl::string_view run_id, int32_t round);

  // What goes next to exported weights (export_documents.cc, docs/governance.md): the
  // safetensors metadata the file must carry, the model card, and the bill of materials
  // signed by options.signer. Records "model.exported" in the audit log first, so the bill
  // of materials names the audit head that holds its export. FAILED_PRECONDITION without a
  // signer; INVALID_ARGUMENT for a weights file name that is not a plain base name.
  struct ExportDocuments {
    std::map<std::string, std::string> safetensors_metadata;
    std::string model_card;
    std::string bill_of_materials;
  };
  absl::StatusOr<ExportDocuments> DocumentExport(absl::string_view run_id,
                                                 const Export& exported,
                                                 absl::string_view weights_file_name,
                                                 const Actor& actor);

  // ---- Audit log (docs/governance.md) ----
  // Appends an operator action done elsewhere ("certificate.issued", "certificate.revoked").
  // INVALID_ARGUMENT for another action or details over the limits (16 entries, keys of at
  // most 64 bytes, values of at most 1024).
  absl::StatusOr<wire::v1::AuditEntry> RecordOperatorEvent(
      const Actor& actor, absl::string_view action,
      const std::map<std::string, std::string>& details);
  // The whole log in order and its head signed now. FAILED_PRECONDITION without a signer.
  using AuditLog = SignedAuditLog;
  absl::StatusOr<AuditLog> ExportAudit();

 private:
  struct Round;
  struct Task;
  struct Run;

  // SubmitUpdate (`update` set), SubmitStagedUpdate (`streamed` set) or SubmitFoldedUpdate
  // (neither).
  absl::Status AcceptUpdate(absl::string_view task_id, absl::string_view client,
                            uint64_t num_examples, const std::map<std::string, double>& metrics,
                            const ArrayRecord* update, uint64_t bytes_up,
                            StagedFile* streamed = nullptr);
  // FAILED_PRECONDITION when `round` needs each update itself (MergePartialUpdate).
  static absl::Status CheckPartialSums(const Round& round);

  void Drive(std::shared_ptr<Run> run);
  // One attempt of training round `round` (train_round.cc); returns the new model or why the
  // attempt failed.
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> TrainRound(const std::shared_ptr<Run>& run,
                                                                   wire::v1::RoundSummary* summary);
  // The evaluate station (evaluate_round.cc): when RoundEvaluation::Due, `model` goes to the
  // clients the run's governance accepts and their results into `summary`.
  void EvaluateRound(const std::shared_ptr<Run>& run,
                     const std::shared_ptr<const ModelSnapshot>& model,
                     wire::v1::RoundSummary* summary);
  // ---- A round's tasks, driver side (round_tasks.cc) ----
  // Pushes tasks of `round` to `clients`; returns how many were delivered.
  // `customize`, when set, adjusts client i's task before it is sent.
  size_t DispatchTasks(const std::shared_ptr<Run>& run, const std::shared_ptr<Round>& round,
                       const std::vector<std::string>& clients,
                       const std::function<void(size_t, wire::v1::Task&)>& customize = nullptr);
  // Waits until each of the `delivered` tasks of `round` is answered or abandoned, the run
  // stops, the coordinator shuts down, or `deadline` passes. `progress`, when set, gets the
  // number of reports whenever it changed, at most every 100 ms (a status carries the run's
  // history: one per report would cost O(rounds x clients)).
  void AwaitTasks(const std::shared_ptr<Run>& run, const std::shared_ptr<Round>& round,
                  size_t delivered, absl::Time deadline,
                  const std::function<void(size_t)>& progress = nullptr);
  // The connected clients the run may select: those its governance accepts without those
  // whose record-level budget is spent (`*exhausted` gets how many of those were connected).
  std::vector<std::string> SelectableClients(const std::shared_ptr<Run>& run,
                                             size_t* exhausted);
  // Waits for enough connected clients and picks this round's, sorted by name.
  absl::StatusOr<std::vector<std::string>> SelectClients(const std::shared_ptr<Run>& run,
                                                         const wire::v1::RunConfig& config,
                                                         const wire::v1::RoundSummary& summary);
  // TrainRound for runs with secure aggregation (secure_aggregation.h).
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> TrainRoundSecure(
      const std::shared_ptr<Run>& run, const wire::v1::RunConfig& config,
      const std::shared_ptr<const ModelSnapshot>& global, wire::v1::RoundSummary* summary);
  // A training round of `run` for `summary`'s round and attempt that fetches `global`.
  static std::shared_ptr<Round> NewTrainRound(const std::shared_ptr<Run>& run,
                                              const wire::v1::RoundSummary& summary,
                                              std::shared_ptr<const ModelSnapshot> global);
  // Closes `round` and forgets its tasks: later calls for them fail.
  void CloseRound(const std::shared_ptr<Round>& round);

  // ---- Differential privacy (round_privacy.h, docs/privacy.md) ----
  // Recover, EnsureLoaded: the RoundPrivacy of a stored DP run, installed under run->mu.
  absl::Status RestorePrivacy(const std::shared_ptr<Run>& run);
  // StartRun: FAILED_PRECONDITION while another running run spends the same dataset.
  absl::Status CheckDatasetFree(const Run& run);
  // Testing only: options_.fault_crash_at (see RunManagerOptions).
  void FaultPoint(const std::shared_ptr<Run>& run, uint32_t round);
  absl::StatusOr<std::shared_ptr<Task>> FindTask(absl::string_view task_id,
                                                 absl::string_view client);
  // ExportModel without its retry.
  absl::StatusOr<Export> ExportModelOnce(absl::string_view run_id, int32_t round);
  // The model an open round's tasks fetch; FAILED_PRECONDITION once the round is closed.
  static absl::StatusOr<std::shared_ptr<const ModelSnapshot>> OpenRoundModel(Round& round);

  // NOT_FOUND (saying when a deleted run was deleted, or why an unreadable one is missing).
  absl::StatusOr<std::shared_ptr<Run>> FindRun(absl::string_view run_id);
  // FindRun, then EnsureLoaded.
  absl::StatusOr<std::shared_ptr<Run>> FindLoadedRun(absl::string_view run_id);

  // ---- Run lifecycle (run_lifecycle.cc) ----
  // A stored run in memory: everything when `full` (a run that may still train), else the
  // record and round history only (an ended run; EnsureLoaded reads the rest).
  absl::StatusOr<std::shared_ptr<Run>> LoadRun(storage::v1::RunRecord record, bool full);
  // The privacy state and provenance of a lightly loaded run, read once.
  absl::Status EnsureLoaded(const std::shared_ptr<Run>& run);
  // Deletes the stored models the run's retention policy no longer keeps. Failures are
  // logged (the models stay; the next commit tries again), never fail the round.
  void ApplyRetention(const std::shared_ptr<Run>& run);
  // Keeps `round`'s model whatever the policy says (an exported round).
  absl::Status PinRound(const std::shared_ptr<Run>& run, uint32_t round);
  // The rounds whose model the run still has, by its policy (for RunStatus).
  static std::vector<uint32_t> StoredModelRounds(const storage::v1::RunRecord& record);
  // A stored model with the digest its manifest holds (LoadModel already verified it).
  absl::StatusOr<std::shared_ptr<ModelSnapshot>> LoadSnapshot(absl::string_view run_id,
                                                              uint32_t round);
  wire::v1::RunStatus StatusOf(const Run& run);
  // The attempt in progress with its live site reports (REQUIRES: run.mu held, run.current).
  static wire::v1::RoundSummary CurrentRound(const Run& run);
  void Notify(const std::shared_ptr<Run>& run);
  void SetRunState(const std::shared_ptr<Run>& run, wire::v1::RunState state,
                   absl::string_view message);
  void StartDriver(const std::shared_ptr<Run>& run);
  // What every run's governance uses (run_governance.h).
  RunGovernance::Services GovernanceServices() const;

  const RunManagerOptions options_;
  CoordinatorState* const state_;
  ClientRegistry* const registry_;
  const AuditTrail audit_;

  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Run>> runs_ ABSL_GUARDED_BY(mu_);
  // Runs that could not be read at start-up, by id.
  struct UnreadableRun {
    int64_t created_unix_ms = 0;
    std::string error;
  };
  std::map<std::string, UnreadableRun> unreadable_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::shared_ptr<Task>> tasks_ ABSL_GUARDED_BY(mu_);
  struct Watcher {
    std::string run_id;
    std::function<void(const wire::v1::RunStatus&)> fn;
  };
  std::map<uint64_t, Watcher> watchers_ ABSL_GUARDED_BY(mu_);
  uint64_t next_watcher_ ABSL_GUARDED_BY(mu_) = 1;
  std::atomic<bool> shutting_down_{false};
  FoldBudget folds_;  // the fold of each training round, in memory or staged (round_fold.h)
  // Serializes StartRun's dataset check with the state change it guards.
  absl::Mutex start_mu_;
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_ROUND_RUN_MANAGER_H_
