// The training stations of one round attempt (RunManager::TrainRound, TrainRoundSecure):
// select, dispatch, accept update (run_tasks.cc, on the Fleet's threads) and aggregate, with
// the stages of the run acting at each (docs/architecture.md "The round loop").
#include <algorithm>

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "aggregation/fed_avg.h"
#include "coordinator/round/round_fold.h"
#include "coordinator/round/round_phases.h"
#include "coordinator/round/run_manager.h"
#include "coordinator/round/run_manager_internal.h"
#include "coordinator/round/secure_aggregation.h"
#include "core/base/free_memory.h"
#include "core/base/status_macros.h"
#include "core/serde/tensor_stream.h"

namespace tessera::coordinator {

absl::StatusOr<std::shared_ptr<const ModelSnapshot>> RunManager::TrainRound(
    const std::shared_ptr<Run>& run, wire::v1::RoundSummary* summary) {
  wire::v1::RunConfig config;
  std::shared_ptr<const ModelSnapshot> global;
  uint32_t completed = 0;
  {
    NoIoMutexLock l(&run->mu);
    config = run->record.config();
    global = run->model;
    completed = run->record.completed_rounds();
  }
  if (global == nullptr) {
    // An earlier attempt's aggregate took the global model's buffers (below) and then
    // failed: read it back from storage.
    TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<const ModelSnapshot> stored,
                             LoadSnapshot(run->id, completed));
    NoIoMutexLock l(&run->mu);
    if (run->model == nullptr) run->model = stored;
    global = run->model;
  }
  if (config.secure_aggregation().enabled()) return TrainRoundSecure(run, config, global, summary);
  // Station select.
  const size_t min_clients = std::max<uint32_t>(1, config.selection().min_clients());
  absl::StatusOr<std::vector<std::string>> selected = SelectClients(run, config, *summary);
  if (!selected.ok()) return selected.status();
  std::vector<std::string> candidates = *std::move(selected);
  EndPhase(summary, "select");

  std::shared_ptr<Round> round = NewTrainRound(run, *summary, global);
  run->record_privacy->BeginAttempt(summary->round(), summary->attempt());
  round->strategy = run->strategy;
  round->population = registry_->NumConnected();
  TESSERA_RETURN_IF_ERROR(run->strategy->CheckHeldBytes(
      candidates.size(), global->weights.TotalBytes(), options_.max_held_update_bytes));
  if (run->privacy != nullptr) {
    round->dp = run->privacy;
    round->dp_clip = summary->privacy().clip_norm();
  }
  {
    // Where accepted updates go: the strategy's fold, in memory or staged (round_fold.h).
    absl::StatusOr<RoundFold> fold = folds_.NewFold(*run->strategy, global->weights);
    if (!fold.ok()) return fold.status();
    round->staging = std::move(fold->staging);
    if (round->staging != nullptr) {
      LOG(INFO) << "run " << run->id << " round " << summary->round() << ": updates staged in "
                << round->staging->dir() << " (an exact accumulator would take "
                << aggregation::WeightedAccumulator::MemoryBytesFor(global->weights)
                << " bytes, over the fold budget of " << folds_.memory_bytes() << ")";
    }
    absl::MutexLock l(&round->mu);
    round->fold.emplace(std::move(fold->fold));
  }
  summary->set_state(wire::v1::ROUND_TRAINING);
  summary->set_selected(static_cast<uint32_t>(candidates.size()));
  {
    NoIoMutexLock l(&run->mu);
    run->current = *summary;
  }
  Notify(run);
  // Station dispatch (DispatchTasks adds the strategy's, record-level DP's and governance's
  // sections to every task).
  std::function<void(size_t, wire::v1::Task&)> customize;
  if (round->dp != nullptr) {
    customize = [&](size_t, wire::v1::Task& task) {
      round->dp->Dispatch(round->dp_clip, "", config.selection().min_clients(), task);
    };
  }
  const size_t delivered = DispatchTasks(run, round, candidates, customize);

  // Station accept update (run_tasks.cc, on the Fleet's threads): wait for every delivered
  // task, the deadline, or a stop, publishing the progress.
  AwaitTasks(run, round, delivered, absl::Now() + Seconds(config.round().deadline_seconds()),
             [&](size_t reported) {
               summary->set_reported(static_cast<uint32_t>(reported));
               summary->set_bytes_down(round->bytes_down);
               summary->set_bytes_up(round->bytes_up);
               {
                 NoIoMutexLock l(&run->mu);
                 run->current = *summary;
               }
               Notify(run);
             });
  CloseRound(round);
  if (run->stop || shutting_down_) return absl::CancelledError("run stopped");
  RecordPrivacy::Summarize(round->SiteReports(), summary);
  EndPhase(summary, "train");

  absl::MutexLock l(&round->mu);
  summary->set_reported(static_cast<uint32_t>(round->reported));
  summary->set_dropped(static_cast<uint32_t>(candidates.size() - round->reported));
  summary->set_num_examples(round->examples);
  summary->set_bytes_down(round->bytes_down);
  summary->set_bytes_up(round->bytes_up);
  for (const auto& p : round->participants) summary->add_participants(p);
  std::sort(summary->mutable_participants()->begin(), summary->mutable_participants()->end());
  if (round->reported < min_clients) {
    return absl::DeadlineExceededError(absl::StrCat(
        round->reported, " of ", candidates.size(), " selected clients reported (", round->abandoned,
        " gave up) by the ", config.round().deadline_seconds(), " s deadline; need ", min_clients));
  }
  summary->set_train_loss(round->examples ? round->weighted_loss / round->examples : 0.0);
  // Station aggregate: the strategy's fold, central DP's noise, the strategy's server step.
  // The mean is the round's largest allocation; what the upload streams freed goes back to
  // the kernel first, or the process would hold both (core/base/free_memory.h).
  ReleaseFreeMemory();
  if (round->dp == nullptr && round->staging != nullptr && run->strategy->AddsMeanToGlobal()) {
    // The next model is global + mean: computed block by block in the global's own buffers,
    // so the mean is never whole beside it (docs/architecture.md, "Coordinator memory").
    // Nobody needs the global in memory now: the round is closed (no task fetches it again),
    // an export reads the stored copy while run->model is empty, and if this attempt fails
    // the next one reads it back from storage (above). It is copied instead when something
    // else still holds it (TakeWeights).
    round->model.reset();
    {
      NoIoMutexLock l(&run->mu);
      run->model.reset();
    }
    ArrayRecord next_weights = TakeWeights(std::move(global));
    absl::Status added = std::move(*round->fold).AddMeanTo(next_weights);
    round->fold.reset();
    if (!added.ok()) return added;
    auto next = std::make_shared<ModelSnapshot>();
    next->round = summary->round();
    next->digest = DigestArrayRecord(next_weights);
    next->weights = std::move(next_weights);
    EndPhase(summary, "aggregate");
    return next;
  }
  absl::StatusOr<ArrayRecord> mean_delta = std::move(*round->fold).Aggregate();
  round->fold.reset();
  if (!mean_delta.ok()) return mean_delta.status();
  if (round->dp != nullptr) {
    // Only the noised model leaves the mechanism: no per-round training loss or counts.
    summary->set_train_loss(0);
    summary->set_num_examples(0);
    TESSERA_RETURN_IF_ERROR(
        round->dp->NoiseMean(round->reported, round->dp_unclipped, *mean_delta, summary));
  }
  auto next = run->strategy->NextModel(*std::move(mean_delta), *global, summary->round(),
                                       summary->reported(), round->population);
  EndPhase(summary, "aggregate");
  return next;
}

absl::StatusOr<std::shared_ptr<const ModelSnapshot>> RunManager::TrainRoundSecure(
    const std::shared_ptr<Run>& run, const wire::v1::RunConfig& config,
    const std::shared_ptr<const ModelSnapshot>& global, wire::v1::RoundSummary* summary) {
  TESSERA_ASSIGN_OR_RETURN(std::vector<std::string> clients,
                           SelectClients(run, config, *summary));
  EndPhase(summary, "select");
  const uint64_t population = registry_->NumConnected();
  SecureAggregation::Attempt attempt;
  attempt.run_id = run->id;
  attempt.round = summary->round();
  attempt.attempt = summary->attempt();
  attempt.config = config;
  attempt.global = global;
  attempt.dp = run->privacy.get();
  attempt.dp_clip = attempt.dp != nullptr ? summary->privacy().clip_norm() : 0;
  TESSERA_ASSIGN_OR_RETURN(
      std::unique_ptr<SecureAggregation> secure,
      SecureAggregation::Open({state_, registry_, options_.peer_trust, options_.insecure},
                              std::move(attempt), clients));

  std::shared_ptr<Round> round = NewTrainRound(run, *summary, global);
  run->record_privacy->BeginAttempt(summary->round(), summary->attempt());
  round->secagg = secure->session();
  auto publish = [&] {
    *summary->mutable_secagg() = round->secagg->Status();
    summary->set_bytes_down(round->bytes_down);
    summary->set_bytes_up(round->bytes_up);
    {
      NoIoMutexLock l(&run->mu);
      run->current = *summary;
    }
    Notify(run);
  };
  summary->set_state(wire::v1::ROUND_TRAINING);
  summary->set_selected(secure->num_clients());
  publish();
  DispatchTasks(run, round, clients,
                [&](size_t i, wire::v1::Task& task) { secure->Dispatch(i, task); });
  const absl::Status outcome = secure->RunPhases(
      [&] { return run->stop || shutting_down_; }, publish, summary);
  CloseRound(round);
  if (absl::IsCancelled(outcome)) return outcome;
  RecordPrivacy::Summarize(round->SiteReports(), summary);
  if (!outcome.ok()) {
    return absl::Status(outcome.code(),
                        absl::StrCat("secure aggregation aborted: ", outcome.message()));
  }
  TESSERA_ASSIGN_OR_RETURN(ArrayRecord mean, secure->Aggregate(summary));
  TESSERA_ASSIGN_OR_RETURN(
      std::shared_ptr<const ModelSnapshot> next,
      run->strategy->NextModel(std::move(mean), *global, summary->round(),
                               summary->reported(), population));
  LOG(INFO) << "run " << run->id << " round " << summary->round() << ": secure sum of "
            << summary->reported() << "/" << secure->num_clients()
            << " clients (k=" << summary->secagg().degree_k()
            << ", t=" << summary->secagg().threshold_t() << ")";
  EndPhase(summary, "aggregate");
  return next;
}

}  // namespace tessera::coordinator
