// The round loop of one run (RunManager::Drive and helpers): the stations plan, select,
// dispatch, accept update (run_tasks.cc), aggregate, release and commit, where the run's
// stages act (docs/architecture.md "The round loop: stations and stages").
#include <algorithm>
#include <cmath>
#include <csignal>

#include <glog/logging.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "aggregation/fed_avg.h"
#include "coordinator/round/round_phases.h"
#include "coordinator/round/run_manager.h"
#include "coordinator/round/run_manager_internal.h"
#include "coordinator/round/secure_aggregation.h"
#include "coordinator/round/update_staging.h"
#include "core/base/status_macros.h"
#include "core/config/run_config.h"
#include "core/serde/tensor_stream.h"
#include "privacy/crypto/random.h"

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

size_t RunManager::DispatchTasks(const std::shared_ptr<Run>& run,
                                 const std::shared_ptr<Round>& round,
                                 const std::vector<std::string>& clients,
                                 const std::function<void(size_t, wire::v1::Task&)>& customize) {
  wire::v1::Task proto;
  wire::v1::RunConfig config;
  {
    NoIoMutexLock l(&run->mu);
    config = run->record.config();
  }
  proto.set_type(round->type);
  proto.set_run_id(run->id);
  proto.set_round(round->number);
  proto.set_model_round(round->model->round);
  proto.set_total_rounds(config.rounds());
  *proto.mutable_model() = config.model();
  *proto.mutable_train() = config.train();
  proto.set_model_sha256(round->model->digest);
  proto.set_model_bytes(round->model->weights.TotalBytes());
  proto.set_deadline_seconds(round->type == wire::v1::TRAIN
                                 ? config.round().deadline_seconds()
                                 : config.evaluation().deadline_seconds());
  proto.set_seed(config.seed() * 1000003ull + round->number);
  if (run->strategy != nullptr) run->strategy->Dispatch(proto);
  // Record-level DP-SGD rides on every training task, with or without the organization-level
  // mechanism (whose fields `customize` adds).
  run->record_privacy->Dispatch(proto);
  // How the client encodes its update (docs/compression.md); decoded in push_update.cc.
  if (round->type == wire::v1::TRAIN) *proto.mutable_compression() = config.compression();
  std::vector<std::shared_ptr<Task>> tasks;
  for (size_t i = 0; i < clients.size(); ++i) {
    const std::string& client = clients[i];
    auto task = std::make_shared<Task>();
    task->task = proto;
    task->task.set_task_id(crypto::RandomHexId(12));
    task->index = static_cast<uint32_t>(i);
    run->governance->Dispatch(client, task->task);
    if (customize) customize(i, task->task);
    task->client = client;
    task->round = round;
    tasks.push_back(task);
  }
  {
    absl::MutexLock l(&mu_);
    for (auto& t : tasks) tasks_[t->task.task_id()] = t;
  }
  size_t delivered = 0;
  for (auto& t : tasks) {
    if (registry_->Send(t->client, t->task)) {
      ++delivered;
    } else {
      LOG(WARNING) << "client " << t->client << " disconnected before task "
                   << t->task.task_id();
    }
  }
  absl::MutexLock l(&round->mu);
  round->dispatched = delivered;
  return delivered;
}

void RunManager::CloseRound(const std::shared_ptr<Round>& round) {
  {
    absl::MutexLock l(&round->mu);
    round->open = false;
  }
  absl::MutexLock l(&mu_);
  for (auto it = tasks_.begin(); it != tasks_.end();) {
    if (it->second->round == round) {
      tasks_.erase(it++);
    } else {
      ++it;
    }
  }
}

absl::StatusOr<std::shared_ptr<const ModelSnapshot>> RunManager::TrainRound(
    const std::shared_ptr<Run>& run, wire::v1::RoundSummary* summary) {
  wire::v1::RunConfig config;
  std::shared_ptr<const ModelSnapshot> global;
  {
    NoIoMutexLock l(&run->mu);
    config = run->record.config();
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
  if (!options_.staging_dir.empty() && !run->strategy->HoldsUpdates() &&
      aggregation::WeightedAccumulator::MemoryBytesFor(global->weights) >
          options_.fold_memory_bytes) {
    absl::StatusOr<std::shared_ptr<UpdateStaging>> staging = UpdateStaging::Create(
        absl::StrCat(options_.staging_dir, "/", staging_seq_.fetch_add(1)), global->weights);
    if (!staging.ok()) return staging.status();
    round->staging = *std::move(staging);
    LOG(INFO) << "run " << run->id << " round " << summary->round() << ": updates staged in "
              << round->staging->dir() << " (an exact accumulator would take "
              << aggregation::WeightedAccumulator::MemoryBytesFor(global->weights)
              << " bytes, over the fold budget of " << options_.fold_memory_bytes << ")";
  }
  {
    absl::StatusOr<UpdateFold> fold = run->strategy->NewFold(global->weights, round->staging);
    if (!fold.ok()) return fold.status();
    absl::MutexLock l(&round->mu);
    round->fold.emplace(*std::move(fold));
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

  // Station accept update (run_tasks.cc, on the Fleet's threads). Wait for every delivered
  // task, the deadline, or a stop; publish progress every 100 ms at most (a status carries
  // the run's history: one per report would cost O(rounds x clients)).
  const absl::Time deadline = absl::Now() + Seconds(config.round().deadline_seconds());
  size_t seen = 0;
  while (true) {
    size_t reported, abandoned;
    {
      absl::MutexLock l(&round->mu);
      auto settled = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(round->mu) {
        return round->reported + round->abandoned >= delivered || run->stop || shutting_down_;
      };
      round->mu.AwaitWithDeadline(absl::Condition(&settled),
                                  std::min(deadline, absl::Now() + absl::Milliseconds(100)));
      reported = round->reported;
      abandoned = round->abandoned;
    }
    if (reported != seen) {
      seen = reported;
      summary->set_reported(static_cast<uint32_t>(reported));
      summary->set_bytes_down(round->bytes_down);
      summary->set_bytes_up(round->bytes_up);
      {
        NoIoMutexLock l(&run->mu);
        run->current = *summary;
      }
      Notify(run);
    }
    if (reported + abandoned >= delivered || run->stop || shutting_down_ ||
        absl::Now() >= deadline) {
      break;
    }
  }
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
