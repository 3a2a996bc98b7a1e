// The round loop of one run (RunManager::Drive): the stations plan, train (select, dispatch,
// accept update, aggregate: train_round.cc), release, evaluate (evaluate_round.cc) and
// commit, where the run's stages act (docs/architecture.md "The round loop: stations and
// stages").
#include <algorithm>
#include <csignal>

#include <glog/logging.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "coordinator/round/round_phases.h"
#include "coordinator/round/run_manager.h"
#include "coordinator/round/run_manager_internal.h"

namespace tessera::coordinator {

void RunManager::Drive(std::shared_ptr<Run> run) {
  // Continue the attempt numbering of the round in progress: a previous process may have
  // stored failed attempts of it (or an attempt interrupted by a restart).
  uint32_t attempt = 0;
  uint32_t last_round = 0;
  {
    NoIoMutexLock l(&run->mu);
    const uint32_t next = run->record.completed_rounds() + 1;
    for (const wire::v1::RoundSummary& h : run->history) {
      if (h.round() == next) attempt = std::max(attempt, h.attempt());
    }
    if (attempt > 0) last_round = next;
  }
  while (!run->stop && !shutting_down_) {
    uint32_t completed, total, max_retries;
    {
      NoIoMutexLock l(&run->mu);
      if (run->record.state() != wire::v1::RUNNING) return;
      completed = run->record.completed_rounds();
      total = run->record.config().rounds();
      max_retries = run->record.config().round().max_retries();
    }
    if (completed >= total) {
      SetRunState(run, wire::v1::COMPLETED, absl::StrCat("completed ", total, " rounds"));
      return;
    }
    const uint32_t number = completed + 1;
    attempt = number == last_round ? attempt + 1 : 1;
    last_round = number;

    wire::v1::RoundSummary summary;
    summary.set_round(number);
    summary.set_attempt(attempt);
    summary.set_state(wire::v1::ROUND_WAITING);
    const absl::Time started = absl::Now();
    StartPhases(&summary);
    {
      NoIoMutexLock l(&run->mu);
      run->current = summary;
    }
    Notify(run);

    // Station plan: the round's privacy charge, not stored yet.
    std::optional<storage::v1::PrivacyLedgerRecord> charge;
    if (run->privacy != nullptr) {
      absl::StatusOr<storage::v1::PrivacyLedgerRecord> next =
          run->privacy->PlanRound(run->id, &summary);
      if (!next.ok()) {
        const bool spent = next.status().code() == absl::StatusCode::kResourceExhausted;
        LOG(WARNING) << "run " << run->id << ": " << next.status().message();
        SetRunState(run, spent ? wire::v1::COMPLETED : wire::v1::FAILED,
                    next.status().message());
        return;
      }
      charge = *std::move(next);
    }
    absl::StatusOr<std::shared_ptr<const ModelSnapshot>> model = TrainRound(run, &summary);
    // Station release. Charge, then release: a noised aggregate now exists, so its charge
    // is durable before evaluation tasks, status, metrics or an export can carry anything
    // derived from it, and whatever happens next (cancel, shutdown, an error, a crash) it
    // stays charged.
    if (charge && summary.privacy().released()) {
      if (absl::Status s = run->privacy->Release(run->id, summary, *charge); !s.ok()) {
        LOG(ERROR) << "run " << run->id << " round " << number << ": " << s;
        SetRunState(run, wire::v1::FAILED,
                    absl::StrCat("cannot write the privacy ledger charge of round ", number,
                                 " attempt ", attempt, ", so nothing derived from it was ",
                                 "released: ", s.message()));
        return;
      }
    }
    if (run->stop || shutting_down_) return;
    if (model.ok()) {
      EvaluateRound(run, *model, &summary);
      FaultPoint(run, number);
      if (run->stop || shutting_down_) return;
      EndPhase(&summary, "evaluate");
      summary.set_state(wire::v1::ROUND_COMPLETED);
      summary.set_model_sha256((*model)->digest);
      summary.set_seconds(absl::ToDoubleSeconds(absl::Now() - started));
      // Station commit.
      absl::Status commit;
      {
        // The commit sequence keeps other writers of the run (cancel, state changes) out
        // from the copy of the record to its publication; status calls take run->mu only
        // for the copy and the publication, never while the model is written.
        absl::MutexLock sequence(&run->commit_mu);
        storage::v1::RunRecord updated;
        {
          NoIoMutexLock l(&run->mu);
          updated = run->record;
        }
        updated.set_completed_rounds(number);
        // The previous global is no longer needed in memory: the next model is made, and the
        // previous one is stored. Released before the commit, so the old and the new model
        // are never both held while the new one is encoded and written (docs/architecture.md,
        // "Coordinator memory"); an export meanwhile reads it from disk, as for an ended run.
        // If the commit fails, the run fails and stays so.
        {
          NoIoMutexLock l(&run->mu);
          run->model.reset();
        }
        // Without server state the weights are stored as they are: a copy would be one more
        // model in memory at the commit (docs/architecture.md, "Coordinator memory").
        const ArrayRecord* stored = &(*model)->weights;
        absl::StatusOr<ArrayRecord> with_state;
        if (!(*model)->server_state.tensors.empty()) {
          with_state = StoredModel(**model);
          stored = with_state.ok() ? &*with_state : nullptr;
        }
        commit = stored != nullptr ? state_->CommitRound(updated, summary, *stored,
                                                         charge ? &*charge : nullptr)
                                   : with_state.status();
        if (commit.ok()) {  // published only once durable
          NoIoMutexLock l(&run->mu);
          run->record = std::move(updated);
          run->history.push_back(summary);
          run->model = *model;
          run->current.reset();
        }
      }
      if (!commit.ok()) {
        LOG(ERROR) << "run " << run->id << ": cannot commit round " << number << ": "
                   << commit;
        SetRunState(run, wire::v1::FAILED,
                    absl::StrCat("cannot store round ", number, ": ", commit.message()));
        return;
      }
      if (charge) run->privacy->Commit(*charge, summary);
      run->governance->Commit(summary);
      ApplyRetention(run);  // models the run's retention policy no longer keeps
      LOG(INFO) << "run " << run->id << " round " << number << " completed: "
                << summary.reported() << "/" << summary.selected() << " clients, train_loss "
                << summary.train_loss() << ", eval_accuracy " << summary.eval_accuracy()
                << (charge ? absl::StrCat(", epsilon ", charge->epsilon_spent(), " of ",
                                          charge->epsilon_budget())
                           : "");
      Notify(run);
      continue;
    }
    summary.set_state(wire::v1::ROUND_FAILED);
    summary.set_failure_reason(std::string(model.status().message()));
    summary.set_seconds(absl::ToDoubleSeconds(absl::Now() - started));
    LOG(WARNING) << "run " << run->id << " round " << number << " attempt " << attempt
                 << " failed: " << model.status().message();
    // An attempt that released a noised aggregate before failing still spent privacy.
    const bool charged = charge && summary.privacy().released();
    if (absl::Status s = state_->RecordFailedAttempt(run->id, summary,
                                                     charged ? &*charge : nullptr);
        !s.ok()) {
      LOG(ERROR) << "cannot record failed attempt: " << s;
    } else if (charged) {
      run->privacy->Commit(*charge, summary);
    }
    run->governance->Commit(summary);
    {
      NoIoMutexLock l(&run->mu);
      run->history.push_back(summary);
      run->current.reset();
    }
    if (attempt > max_retries) {
      SetRunState(run, wire::v1::FAILED,
                  absl::StrCat("round ", number, " failed ", attempt,
                               " times; last reason: ", model.status().message()));
      return;
    }
    Notify(run);
  }
}

void RunManager::FaultPoint(const std::shared_ptr<Run>& run, uint32_t round) {
  const std::string& spec = options_.fault_crash_at;
  const size_t colon = spec.rfind(':');
  uint32_t at = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(spec.substr(colon + 1), &at) ||
      at != round) {
    return;
  }
  const std::string station = spec.substr(0, colon);
  if (station == "cancel" || station == "shutdown") {
    // Hold the released, uncommitted round until the operator stops it.
    while (!run->stop && !shutting_down_) absl::SleepFor(absl::Milliseconds(20));
    if ((station == "shutdown") != shutting_down_.load()) return;
  } else if (station != "before-commit") {
    return;
  }
  LOG(ERROR) << "--fault-crash-at=" << spec << ": killing the coordinator (testing only)";
  google::FlushLogFiles(google::GLOG_INFO);
  raise(SIGKILL);
}

}  // namespace tessera::coordinator
