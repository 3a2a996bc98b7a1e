#include "coordinator/round/run_manager.h"

#include <cmath>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "glog/logging.h"
#include "coordinator/round/peer_text.h"
#include "coordinator/round/privacy_recovery.h"
#include "coordinator/round/secure_aggregation.h"
#include "coordinator/round/run_manager_internal.h"
#include "core/base/status_macros.h"
#include "core/config/run_config.h"
#include "core/crypto/sha256.h"
#include "core/serde/tensor_stream.h"
#include "privacy/crypto/random.h"

namespace tessera::coordinator {

RunManager::RunManager(RunManagerOptions options, CoordinatorState* state,
                       ClientRegistry* registry)
    : options_(options),
      state_(state),
      registry_(registry),
      audit_(state, options.signer),
      folds_(options.staging_dir, options.fold_memory_bytes) {}

RunGovernance::Services RunManager::GovernanceServices() const {
  return {state_, registry_, &audit_, options_.coordinator_version};
}

RunManager::~RunManager() { Shutdown(); }

void RunManager::Shutdown() {
  shutting_down_ = true;
  std::vector<std::shared_ptr<Run>> runs;
  {
    absl::MutexLock l(&mu_);
    for (auto& [id, run] : runs_) runs.push_back(run);
  }
  for (auto& run : runs) {
    run->stop = true;
    if (run->driver.joinable()) run->driver.join();
  }
}

absl::Status RunManager::Recover() {
  // No round survives a restart: staged updates of interrupted rounds are garbage.
  if (!options_.staging_dir.empty()) {
    TESSERA_RETURN_IF_ERROR(ResetStagingRoot(options_.staging_dir));
  }
  TESSERA_RETURN_IF_ERROR(SecureAggregation::AbortInterruptedSessions(*state_));
  // An interrupted release is charged (and recorded) before any run resumes.
  TESSERA_RETURN_IF_ERROR(RecoverReleases(*state_));
  std::vector<CoordinatorState::UnreadableRun> unreadable;
  TESSERA_ASSIGN_OR_RETURN(std::vector<storage::v1::RunRecord> records,
                           state_->ListReadableRuns(&unreadable));
  for (storage::v1::RunRecord& record : records) {
    const std::string id = record.run_id();
    const int64_t created = record.created_unix_ms();
    const bool running = record.state() == wire::v1::RUNNING;
    const bool active = running || record.state() == wire::v1::CREATED;
    absl::StatusOr<std::shared_ptr<Run>> run = LoadRun(std::move(record), /*full=*/active);
    if (!run.ok()) {
      unreadable.push_back({id, run.status()});
      absl::MutexLock l(&mu_);
      unreadable_[id].created_unix_ms = created;
      continue;
    }
    {
      absl::MutexLock l(&mu_);
      runs_[id] = *run;
    }
    if (running) StartDriver(*run);
  }
  for (const CoordinatorState::UnreadableRun& u : unreadable) {
    LOG(ERROR) << "run " << PeerText(u.run_id) << " cannot be read and is skipped (its stored "
               << "data is kept; `tessera run delete` removes it): " << u.error;
    absl::MutexLock l(&mu_);
    unreadable_[u.run_id].error = std::string(u.error.message());
  }
  TESSERA_ASSIGN_OR_RETURN(std::vector<storage::v1::ClientRecord> clients,
                           state_->ListClients());
  for (const auto& c : clients) {
    wire::v1::ClientInfo info;
    info.set_name(c.name());
    info.set_last_seen_unix_ms(c.last_seen_unix_ms());
    info.set_device(c.device());
    info.set_version(c.version());
    info.set_rounds_participated(c.rounds_participated());
    info.set_organization(c.organization());
    if (c.has_data_card()) *info.mutable_data_card() = c.data_card();
    registry_->Restore(info);
  }
  return absl::OkStatus();
}

absl::StatusOr<wire::v1::RunStatus> RunManager::CreateRun(const wire::v1::RunConfig& config,
                                                          ArrayRecord initial_weights,
                                                          std::string artifact,
                                                          const Actor& actor) {
  TESSERA_RETURN_IF_ERROR(ValidateRunConfig(config));
  if (initial_weights.tensors.empty()) {
    return absl::InvalidArgumentError("initial weights: no tensors");
  }
  TESSERA_RETURN_IF_ERROR(CheckUniqueNames(initial_weights));
  for (const Tensor& t : initial_weights.tensors) TESSERA_RETURN_IF_ERROR(CheckFinite(t));
  if (config.model().has_causal_lm()) {
    // A language model: the clients hold the base; the coordinator only the adapters.
    if (!artifact.empty()) {
      return absl::InvalidArgumentError(
          "model: a [model.causal_lm] run has no program artifact (clients load the base "
          "checkpoint themselves)");
    }
  } else if (config.model().architecture().empty()) {
    if (artifact.empty()) {
      return absl::InvalidArgumentError(
          "model: a run without model.architecture needs its TorchScript program");
    }
    if (crypto::Sha256Digest(artifact) != config.model().torchscript_sha256()) {
      return absl::InvalidArgumentError("model.torchscript_sha256 does not match the program");
    }
  } else if (!artifact.empty()) {
    return absl::InvalidArgumentError(
        "model: give either model.architecture or a TorchScript program, not both");
  }
  TESSERA_RETURN_IF_ERROR(RoundStrategy::PrepareInitialModel(config.strategy(), initial_weights));
  TESSERA_ASSIGN_OR_RETURN(RoundStrategy strategy,
                           RoundStrategy::Create(config.strategy(), initial_weights, nullptr));
  TESSERA_RETURN_IF_ERROR(
      SecureAggregation::CheckRun(config, initial_weights, options_.max_message_bytes));
  // Opens the dataset's privacy ledger: refuses a budget that differs from the dataset's or
  // cannot pay for one more round.
  std::unique_ptr<RoundPrivacy> privacy;
  if (config.differential_privacy().mode() !=
      wire::v1::DifferentialPrivacyConfig::MODE_UNSPECIFIED) {
    TESSERA_ASSIGN_OR_RETURN(privacy, RoundPrivacy::Open(config, initial_weights, state_,
                                                         options_.max_message_bytes));
  }
  {
    absl::MutexLock l(&mu_);
    size_t active = 0;
    for (const auto& [id, other] : runs_) {
      NoIoMutexLock ol(&other->mu);
      const wire::v1::RunState st = other->record.state();
      active += st == wire::v1::CREATED || st == wire::v1::RUNNING;
    }
    if (active >= options_.max_runs) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the coordinator has ", active, " runs created or running; its limit is ",
          options_.max_runs, " (--max-runs); cancel or finish one first"));
    }
  }
  auto run = std::make_shared<Run>();
  run->id = crypto::RandomHexId(8);
  run->artifact = std::move(artifact);
  run->strategy = std::make_shared<RoundStrategy>(std::move(strategy));
  storage::v1::RunRecord record;
  record.set_run_id(run->id);
  *record.mutable_config() = config;
  if (config.retention().keep_last() == 0) {
    *record.mutable_config()->mutable_retention() = options_.retention;
  }
  record.set_state(wire::v1::CREATED);
  const int64_t created_unix_ms = absl::ToUnixMillis(absl::Now());
  record.set_created_unix_ms(created_unix_ms);
  run->governance = std::make_unique<RunGovernance>(GovernanceServices(), run->id, record.config());
  run->record_privacy =
      std::make_unique<RecordPrivacy>(record.config().differential_privacy().record());
  record.set_has_artifact(!run->artifact.empty());
  TESSERA_RETURN_IF_ERROR(state_->CreateRun(record, initial_weights, run->artifact));
  TESSERA_ASSIGN_OR_RETURN(storage::v1::ModelManifest manifest,
                           state_->GetModelManifest(run->id, 0));
  auto model = std::make_shared<ModelSnapshot>();
  model->digest = manifest.sha256();
  model->weights = std::move(initial_weights);
  {
    NoIoMutexLock l(&run->mu);
    run->record = std::move(record);
    run->model = model;
  }
  TESSERA_RETURN_IF_ERROR(run->governance->Create(actor.name, actor.cli_version,
                                                   created_unix_ms, *model));
  if (privacy != nullptr) {
    NoIoMutexLock l(&run->mu);
    run->privacy = std::move(privacy);
  }
  wire::v1::RunStatus status;
  {
    NoIoMutexLock l(&run->mu);
    status = StatusOf(*run);
  }
  absl::MutexLock l(&mu_);
  runs_[run->id] = run;
  return status;
}

absl::Status RunManager::CheckDatasetFree(const Run& run) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  // The run is starting: its privacy was set by CreateRun or LoadRun and stays.
  if (run.privacy == nullptr) return absl::OkStatus();
  const std::string& dataset = run.privacy->dataset();
  std::vector<std::shared_ptr<Run>> runs;
  {
    absl::MutexLock l(&mu_);
    for (auto& [id, r] : runs_) runs.push_back(r);
  }
  for (const std::shared_ptr<Run>& other : runs) {
    if (other->id == run.id) continue;
    // A running run's privacy is constant (an ended one's may be installed by EnsureLoaded).
    NoIoMutexLock l(&other->mu);
    if (other->record.state() == wire::v1::RUNNING && other->privacy != nullptr &&
        other->privacy->dataset() == dataset) {
      return absl::FailedPreconditionError(absl::StrCat(
          "run ", other->id, " is running on dataset \"", dataset,
          "\" and spends its privacy budget; one run at a time may spend a dataset's budget"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<RunManager::Run>> RunManager::FindRun(absl::string_view run_id) {
  {
    absl::MutexLock l(&mu_);
    auto it = runs_.find(std::string(run_id));
    if (it != runs_.end()) return it->second;
    auto bad = unreadable_.find(std::string(run_id));
    if (bad != unreadable_.end()) {
      return absl::DataLossError(absl::StrCat("run ", PeerText(run_id),
                                              " could not be read at start-up: ",
                                              bad->second.error));
    }
  }
  absl::StatusOr<std::optional<storage::v1::DeletedRunRecord>> deleted =
      state_->GetDeletedRun(run_id);
  if (deleted.ok() && deleted->has_value()) {
    return absl::NotFoundError(absl::StrCat(
        "run ", PeerText(run_id), " was deleted at ",
        absl::FormatTime("%Y-%m-%d %H:%M:%S UTC",
                         absl::FromUnixMillis((*deleted)->deleted_unix_ms()),
                         absl::UTCTimeZone()),
        (*deleted)->deleted_by().empty() ? "" : " by ",
        PeerText((*deleted)->deleted_by()),
        " (its audit entries and provenance are kept)"));
  }
  return absl::NotFoundError(absl::StrCat("run \"", PeerText(run_id), "\" not found"));
}

absl::StatusOr<std::shared_ptr<RunManager::Run>> RunManager::FindLoadedRun(
    absl::string_view run_id) {
  TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<Run> run, FindRun(run_id));
  TESSERA_RETURN_IF_ERROR(EnsureLoaded(run));
  return run;
}

absl::StatusOr<std::shared_ptr<ModelSnapshot>> RunManager::LoadSnapshot(
    absl::string_view run_id, uint32_t round) {
  TESSERA_ASSIGN_OR_RETURN(ArrayRecord stored, state_->LoadModel(run_id, round));
  TESSERA_ASSIGN_OR_RETURN(storage::v1::ModelManifest manifest,
                           state_->GetModelManifest(run_id, round));
  auto model = std::make_shared<ModelSnapshot>();
  model->round = round;
  std::tie(model->weights, model->server_state) = SplitStoredModel(std::move(stored));
  // The manifest's digest covers what was stored; clients get the weights alone.
  model->digest = model->server_state.tensors.empty() ? manifest.sha256()
                                                      : DigestArrayRecord(model->weights);
  return model;
}

absl::StatusOr<wire::v1::RunStatus> RunManager::StartRun(absl::string_view run_id,
                                                         const Actor& actor) {
  TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<Run> run, FindRun(run_id));
  {
    absl::MutexLock start(&start_mu_);
    TESSERA_RETURN_IF_ERROR(CheckDatasetFree(*run));
    absl::MutexLock sequence(&run->commit_mu);
    storage::v1::RunRecord updated;
    {
      NoIoMutexLock l(&run->mu);
      if (run->record.state() != wire::v1::CREATED) {
        return absl::FailedPreconditionError(
            absl::StrCat("run ", run_id, " is ", wire::v1::RunState_Name(run->record.state()),
                         "; only a CREATED run can be started"));
      }
      updated = run->record;
    }
    updated.set_state(wire::v1::RUNNING);
    TESSERA_RETURN_IF_ERROR(state_->UpdateRun(updated));
    NoIoMutexLock l(&run->mu);
    run->record = std::move(updated);
  }
  audit_.Record(AuditTrail::OperatorActor(actor.name), "run.started", run->id, 0, {});
  StartDriver(run);
  Notify(run);
  return GetRunStatus(run_id);
}

absl::StatusOr<wire::v1::RunStatus> RunManager::CancelRun(absl::string_view run_id,
                                                          const Actor& actor) {
  TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<Run> run, FindRun(run_id));
  {
    absl::MutexLock sequence(&run->commit_mu);
    storage::v1::RunRecord updated;
    {
      NoIoMutexLock l(&run->mu);
      const auto s = run->record.state();
      if (s != wire::v1::CREATED && s != wire::v1::RUNNING) {
        return absl::FailedPreconditionError(
            absl::StrCat("run ", run_id, " already ended (", wire::v1::RunState_Name(s), ")"));
      }
      updated = run->record;
    }
    updated.set_state(wire::v1::CANCELLED);
    updated.set_message("cancelled by the operator");
    TESSERA_RETURN_IF_ERROR(state_->UpdateRun(updated));
    NoIoMutexLock l(&run->mu);
    run->record = std::move(updated);
    run->current.reset();
  }
  audit_.Record(AuditTrail::OperatorActor(actor.name), "run.cancelled", run->id, 0, {});
  run->stop = true;
  Notify(run);
  return GetRunStatus(run_id);
}

void RunManager::StartDriver(const std::shared_ptr<Run>& run) {
  run->stop = false;
  run->driver = std::thread([this, run] { Drive(run); });
}

void RunManager::SetRunState(const std::shared_ptr<Run>& run, wire::v1::RunState state,
                             absl::string_view message) {
  {
    absl::MutexLock sequence(&run->commit_mu);
    storage::v1::RunRecord updated;
    {
      NoIoMutexLock l(&run->mu);
      updated = run->record;
    }
    updated.set_state(state);
    updated.set_message(std::string(message));
    if (absl::Status s = state_->UpdateRun(updated); !s.ok()) {
      updated.set_message(absl::StrCat(message, " (not persisted: ", s.message(), ")"));
    }
    // Audited before the state is published: whoever sees the run ended finds its entry.
    audit_.Record("coordinator", state == wire::v1::COMPLETED ? "run.completed" : "run.failed",
          run->id, 0, {{"message", std::string(message)}});
    NoIoMutexLock l(&run->mu);
    run->record = std::move(updated);
    run->current.reset();
  }
  Notify(run);
}

absl::StatusOr<wire::v1::RunStatus> RunManager::GetRunStatus(absl::string_view run_id) {
  TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<Run> run, FindLoadedRun(run_id));
  NoIoMutexLock l(&run->mu);
  return StatusOf(*run);
}

std::vector<wire::v1::RunStatus> RunManager::ListRuns(bool include_archived) {
  std::vector<std::shared_ptr<Run>> runs;
  std::vector<wire::v1::RunStatus> out;
  {
    absl::MutexLock l(&mu_);
    for (auto& [id, run] : runs_) runs.push_back(run);
    for (const auto& [id, u] : unreadable_) {
      wire::v1::RunStatus& s = out.emplace_back();
      s.set_run_id(id);
      s.set_state(wire::v1::FAILED);
      s.set_created_unix_ms(u.created_unix_ms);
      s.set_message(absl::StrCat("the coordinator could not read this run at start-up and "
                                 "skipped it (`tessera run delete` removes it): ", u.error));
    }
  }
  for (auto& run : runs) {
    NoIoMutexLock l(&run->mu);
    if (run->record.archived() && !include_archived) continue;
    wire::v1::RunStatus s = StatusOf(*run);
    s.clear_rounds();
    out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.created_unix_ms() < b.created_unix_ms();
  });
  return out;
}

wire::v1::RunStatus RunManager::StatusOf(const Run& run) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  // REQUIRES: run.mu held.
  wire::v1::RunStatus s;
  s.set_run_id(run.id);
  s.set_name(run.record.config().name());
  s.set_state(run.record.state());
  s.set_total_rounds(run.record.config().rounds());
  s.set_completed_rounds(run.record.completed_rounds());
  s.set_message(run.record.message());
  s.set_created_unix_ms(run.record.created_unix_ms());
  s.set_archived(run.record.archived());
  for (uint32_t round : StoredModelRounds(run.record)) s.add_stored_model_rounds(round);
  *s.mutable_config() = run.record.config();
  if (run.privacy != nullptr) *s.mutable_privacy() = run.privacy->Budget();
  run.governance->AddRefusedClients(s);
  run.record_privacy->AddExhaustedClients(s);
  for (const auto& r : run.history) *s.add_rounds() = r;
  if (run.current.has_value()) *s.add_rounds() = CurrentRound(run);
  return s;
}

wire::v1::RoundSummary RunManager::CurrentRound(const Run& run) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  wire::v1::RoundSummary current = *run.current;
  // The attempt in progress shows its site reports as they arrive.
  run.record_privacy->AddLiveSites(current);
  return current;
}

std::vector<RunMetrics> RunManager::Metrics() {
  std::vector<std::shared_ptr<Run>> runs;
  {
    absl::MutexLock l(&mu_);
    for (auto& [id, run] : runs_) runs.push_back(run);
  }
  std::vector<std::pair<int64_t, RunMetrics>> out;  // by creation time
  out.reserve(runs.size());
  for (auto& run : runs) {
    NoIoMutexLock l(&run->mu);
    RunMetrics m;
    m.run_id = run->id;
    m.name = run->record.config().name();
    m.state = run->record.state();
    if (run->privacy != nullptr) m.budget = run->privacy->Budget();
    for (const auto& r : run->history) m.AddRound(r);
    if (run->current.has_value()) m.AddRound(CurrentRound(*run));
    out.emplace_back(run->record.created_unix_ms(), std::move(m));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<RunMetrics> sorted;
  sorted.reserve(out.size());
  for (auto& [created, m] : out) sorted.push_back(std::move(m));
  return sorted;
}

absl::StatusOr<uint64_t> RunManager::AddWatcher(
    absl::string_view run_id, std::function<void(const wire::v1::RunStatus&)> fn) {
  TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<Run> run, FindRun(run_id));
  absl::MutexLock l(&mu_);
  const uint64_t id = next_watcher_++;
  watchers_[id] = Watcher{std::string(run_id), std::move(fn)};
  return id;
}

void RunManager::RemoveWatcher(uint64_t id) {
  absl::MutexLock l(&mu_);
  watchers_.erase(id);
}

void RunManager::Notify(const std::shared_ptr<Run>& run) {
  wire::v1::RunStatus status;
  {
    NoIoMutexLock l(&run->mu);
    status = StatusOf(*run);
  }
  std::vector<std::function<void(const wire::v1::RunStatus&)>> fns;
  {
    absl::MutexLock l(&mu_);
    for (auto& [id, w] : watchers_) {
      if (w.run_id == run->id) fns.push_back(w.fn);
    }
  }
  for (auto& fn : fns) fn(status);
}

absl::StatusOr<RunManager::Export> RunManager::ExportModel(absl::string_view run_id,
                                                           int32_t round) {
  absl::StatusOr<Export> out = ExportModelOnce(run_id, round);
  // The last completed round's model is read from disk while the driver has taken the
  // in-memory one (from the aggregate to the commit, train_round.cc); if that round commits
  // meanwhile, retention may remove the model being read. The new last round is then read.
  if (round < 0 && absl::IsNotFound(out.status())) out = ExportModelOnce(run_id, round);
  return out;
}

absl::StatusOr<RunManager::Export> RunManager::ExportModelOnce(absl::string_view run_id,
                                                               int32_t round) {
  TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<Run> run, FindRun(run_id));
  Export out;
  uint32_t completed;
  bool has_artifact;
  storage::v1::RunRecord record;
  {
    NoIoMutexLock l(&run->mu);
    record = run->record;
    completed = record.completed_rounds();
    has_artifact = record.has_artifact();
    if (round < 0 || static_cast<uint32_t>(round) == completed) {
      out.round = completed;
      out.model = run->model;  // null for an ended run loaded lightly: read below
    }
  }
  out.config = record.config();
  const uint32_t wanted = round < 0 ? completed : static_cast<uint32_t>(round);
  if (out.model == nullptr) {
    if (wanted > completed) {
      return absl::NotFoundError(absl::StrCat("run ", run_id, " has completed ", completed,
                                              " rounds; round ", round, " does not exist"));
    }
    const std::vector<uint32_t> pinned(record.pinned_rounds().begin(),
                                       record.pinned_rounds().end());
    if (!KeepsModel(wanted, completed, record.config().retention(), pinned,
                    record.archived())) {
      const wire::v1::RetentionConfig& p = record.config().retention();
      return absl::NotFoundError(absl::StrCat(
          "the model of round ", wanted, " of run ", run_id, " is no longer stored: ",
          record.archived() ? "the run is archived (it keeps its final and exported models)"
                            : absl::StrCat("the run's retention policy keeps round 0, the "
                                           "last ", p.keep_last(), " rounds",
                                           p.keep_every() > 0
                                               ? absl::StrCat(", every ", p.keep_every(),
                                                              "th round")
                                               : "",
                                           " and exported rounds")));
    }
    TESSERA_ASSIGN_OR_RETURN(out.model, LoadSnapshot(run_id, wanted));
    out.round = wanted;
  }
  out.model = ModelForExport(std::move(out.model));
  out.artifact = run->artifact;
  if (out.artifact.empty() && has_artifact) {
    TESSERA_ASSIGN_OR_RETURN(out.artifact, state_->LoadArtifact(run_id));
  }
  return out;
}

std::shared_ptr<RunManager::Round> RunManager::NewTrainRound(
    const std::shared_ptr<Run>& run, const wire::v1::RoundSummary& summary,
    std::shared_ptr<const ModelSnapshot> global) {
  auto round = std::make_shared<Round>();
  round->run_id = run->id;
  round->number = summary.round();
  round->attempt = summary.attempt();
  round->type = wire::v1::TRAIN;
  round->model = std::move(global);
  return round;
}

}  // namespace tessera::coordinator
