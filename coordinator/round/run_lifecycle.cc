// Run lifecycle (docs/operations.md, "Runs and retention"): loading stored runs (ended ones
// lightly), the retention policy for round models, pinning exported rounds, archiving and
// deleting runs.
#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "coordinator/round/peer_text.h"
#include "coordinator/round/run_manager.h"
#include "coordinator/round/run_manager_internal.h"
#include "core/base/status_macros.h"
#include "glog/logging.h"

namespace tessera::coordinator {
namespace {

bool Ended(wire::v1::RunState state) {
  return state != wire::v1::CREATED && state != wire::v1::RUNNING;
}

std::vector<uint32_t> Pinned(const storage::v1::RunRecord& record) {
  return {record.pinned_rounds().begin(), record.pinned_rounds().end()};
}

}  // namespace

absl::StatusOr<std::shared_ptr<RunManager::Run>> RunManager::LoadRun(
    storage::v1::RunRecord record, bool full) {
  auto run = std::make_shared<Run>();
  run->id = record.run_id();
  run->governance = std::make_unique<RunGovernance>(GovernanceServices(), run->id, record.config());
  run->record_privacy =
      std::make_unique<RecordPrivacy>(record.config().differential_privacy().record());
  TESSERA_ASSIGN_OR_RETURN(std::vector<wire::v1::RoundSummary> history,
                           state_->ListRounds(run->id));
  std::shared_ptr<ModelSnapshot> model;
  if (full) {
    if (record.has_artifact()) {
      TESSERA_ASSIGN_OR_RETURN(run->artifact, state_->LoadArtifact(run->id));
    }
    TESSERA_ASSIGN_OR_RETURN(model, LoadSnapshot(run->id, record.completed_rounds()));
    TESSERA_ASSIGN_OR_RETURN(RoundStrategy strategy,
                             RoundStrategy::Create(record.config().strategy(), model->weights,
                                                   &model->server_state));
    run->strategy = std::make_shared<RoundStrategy>(std::move(strategy));
  }
  // A site that refused a task of this run stays unselected after a restart.
  run->record_privacy->RestoreRefusals(history);
  {
    NoIoMutexLock l(&run->mu);
    run->record = std::move(record);
    run->history = std::move(history);
    run->model = std::move(model);
  }
  if (full) {
    TESSERA_RETURN_IF_ERROR(RestorePrivacy(run));
    TESSERA_RETURN_IF_ERROR(run->governance->Restore(/*add_this_build=*/true));
  } else {
    absl::MutexLock l(&run->load_mu);
    run->loaded = false;
  }
  return run;
}

absl::Status RunManager::RestorePrivacy(const std::shared_ptr<Run>& run) {
  wire::v1::RunConfig config;
  std::shared_ptr<const ModelSnapshot> model;
  std::vector<wire::v1::RoundSummary> history;
  uint32_t run_completed_rounds = 0;
  {
    NoIoMutexLock l(&run->mu);
    config = run->record.config();
    model = run->model;
    history = run->history;
    run_completed_rounds = run->record.completed_rounds();
  }
  if (config.differential_privacy().mode() ==
      wire::v1::DifferentialPrivacyConfig::MODE_UNSPECIFIED) {
    return absl::OkStatus();
  }
  if (model == nullptr) {  // an ended run loaded lightly: its layout from the stored model
    TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<ModelSnapshot> stored,
                             LoadSnapshot(run->id, run_completed_rounds));
    model = std::move(stored);
  }
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<RoundPrivacy> privacy,
                           RoundPrivacy::Restore(config, model->weights, history, state_));
  // Under the run's mutex: EnsureLoaded installs an ended run's privacy while status and
  // metrics readers may look at it.
  NoIoMutexLock l(&run->mu);
  run->privacy = std::move(privacy);
  return absl::OkStatus();
}

absl::Status RunManager::EnsureLoaded(const std::shared_ptr<Run>& run) {
  absl::MutexLock l(&run->load_mu);
  if (run->loaded) return absl::OkStatus();
  TESSERA_RETURN_IF_ERROR(RestorePrivacy(run));
  TESSERA_RETURN_IF_ERROR(run->governance->Restore(/*add_this_build=*/false));
  run->loaded = true;
  return absl::OkStatus();
}

std::vector<uint32_t> RunManager::StoredModelRounds(const storage::v1::RunRecord& record) {
  std::vector<uint32_t> out;
  const uint32_t completed = record.completed_rounds();
  const std::vector<uint32_t> pinned = Pinned(record);
  const wire::v1::RetentionConfig& policy = record.config().retention();
  // Only candidates are visited: a long run keeps few models.
  std::vector<uint32_t> candidates = pinned;
  candidates.push_back(completed);
  if (!record.archived()) {
    if (policy.keep_last() == 0) {
      for (uint32_t r = 0; r <= completed; ++r) candidates.push_back(r);
    } else {
      candidates.push_back(0);
      for (uint32_t k = 0; k < policy.keep_last() && k <= completed; ++k) {
        candidates.push_back(completed - k);
      }
      if (policy.keep_every() > 0) {
        for (uint32_t r = policy.keep_every(); r <= completed; r += policy.keep_every()) {
          candidates.push_back(r);
        }
      }
    }
  }
  std::sort(candidates.begin(), candidates.end());
  candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
  for (uint32_t r : candidates) {
    if (r <= completed && KeepsModel(r, completed, policy, pinned, record.archived())) {
      out.push_back(r);
    }
  }
  return out;
}

void RunManager::ApplyRetention(const std::shared_ptr<Run>& run) {
  storage::v1::RunRecord record;
  {
    NoIoMutexLock l(&run->mu);
    record = run->record;
  }
  absl::StatusOr<std::vector<uint32_t>> stored = state_->ListModelRounds(run->id);
  absl::Status deleted = stored.status();
  if (stored.ok()) {
    deleted = state_->DeleteModels(
        run->id, ModelsToDelete(*stored, record.completed_rounds(), record.config().retention(),
                                Pinned(record), record.archived()));
  }
  if (!deleted.ok()) {
    LOG(WARNING) << "run " << run->id << ": applying the retention policy failed (the models "
                 << "stay until the next round commit): " << deleted;
  }
}

absl::Status RunManager::PinRound(const std::shared_ptr<Run>& run, uint32_t round) {
  // The commit sequence: no round commit or state change copies the record meanwhile.
  absl::MutexLock sequence(&run->commit_mu);
  storage::v1::RunRecord updated;
  {
    NoIoMutexLock l(&run->mu);
    const auto& pinned = run->record.pinned_rounds();
    if (std::find(pinned.begin(), pinned.end(), round) != pinned.end()) {
      return absl::OkStatus();
    }
    updated = run->record;
  }
  updated.add_pinned_rounds(round);
  TESSERA_RETURN_IF_ERROR(state_->UpdateRun(updated));
  NoIoMutexLock l(&run->mu);
  run->record.add_pinned_rounds(round);
  return absl::OkStatus();
}

absl::StatusOr<wire::v1::RunStatus> RunManager::ArchiveRun(absl::string_view run_id,
                                                           const Actor& actor) {
  TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<Run> run, FindRun(run_id));
  absl::MutexLock sequence(&run->commit_mu);
  storage::v1::RunRecord updated;
  {
    NoIoMutexLock l(&run->mu);
    if (!Ended(run->record.state())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "run ", run->id, " is ", wire::v1::RunState_Name(run->record.state()),
          "; only an ended run (COMPLETED, CANCELLED or FAILED) can be archived"));
    }
    updated = run->record;
  }
  if (!updated.archived()) {
    updated.set_archived(true);
    TESSERA_RETURN_IF_ERROR(state_->UpdateRun(updated));
    {
      NoIoMutexLock l(&run->mu);
      run->record.set_archived(true);
      // The final model is read from disk on export, like any ended run's.
      run->model.reset();
    }
    audit_.Record(AuditTrail::OperatorActor(actor.name), "run.archived", run->id, 0, {});
  }
  ApplyRetention(run);
  return GetRunStatus(run_id);
}

absl::StatusOr<uint64_t> RunManager::DeleteRun(absl::string_view run_id, const Actor& actor) {
  storage::v1::DeletedRunRecord tombstone;
  tombstone.set_run_id(std::string(run_id));
  tombstone.set_deleted_unix_ms(absl::ToUnixMillis(absl::Now()));
  tombstone.set_deleted_by(AuditTrail::OperatorActor(actor.name));
  std::shared_ptr<Run> run;
  {
    absl::MutexLock l(&mu_);
    auto it = runs_.find(std::string(run_id));
    if (it != runs_.end()) run = it->second;
  }
  if (run == nullptr) {
    bool unreadable;
    {
      absl::MutexLock l(&mu_);
      unreadable = unreadable_.count(std::string(run_id)) > 0;
    }
    if (!unreadable) return FindRun(run_id).status();  // NOT_FOUND, saying if it was deleted
  }
  if (run != nullptr) {
    NoIoMutexLock l(&run->mu);
    if (run->record.state() == wire::v1::RUNNING) {
      return absl::FailedPreconditionError(absl::StrCat(
          "run ", run->id, " is RUNNING; cancel it (tessera run cancel) before deleting it"));
    }
    tombstone.set_name(run->record.config().name());
    tombstone.set_created_unix_ms(run->record.created_unix_ms());
    tombstone.set_completed_rounds(run->record.completed_rounds());
    tombstone.set_state(run->record.state());
  }
  absl::StatusOr<std::vector<uint32_t>> models = state_->ListModelRounds(run_id);
  TESSERA_RETURN_IF_ERROR(state_->DeleteRun(tombstone));
  {
    absl::MutexLock l(&mu_);
    runs_.erase(std::string(run_id));
    unreadable_.erase(std::string(run_id));
  }
  // An ended run's driver thread has returned or is returning: join it before the last
  // reference to the run goes (a joinable std::thread must not be destroyed).
  if (run != nullptr && run->driver.joinable()) run->driver.join();
  audit_.Record(AuditTrail::OperatorActor(actor.name), "run.deleted", run_id, 0,
        {{"name", tombstone.name()},
         {"completed_rounds", absl::StrCat(tombstone.completed_rounds())},
         {"state", wire::v1::RunState_Name(tombstone.state())}});
  return models.ok() ? models->size() : 0;
}

}  // namespace tessera::coordinator
