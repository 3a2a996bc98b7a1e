// The round loop of one run (RunManager::Drive and helpers). See docs/architecture.md.
#include <algorithm>
#include <cmath>

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "coordinator/round/round_phases.h"
#include "coordinator/round/run_manager.h"
#include "coordinator/round/run_manager_internal.h"
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

    std::optional<storage::v1::PrivacyLedgerRecord> charge;
    if (run->privacy.has_value()) {
      absl::StatusOr<storage::v1::PrivacyLedgerRecord> next = ChargeNextRound(run, &summary);
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
    // Charge, then release: a noised aggregate now exists, so its charge is durable before
    // evaluation tasks, status, metrics or an export can carry anything derived from it,
    // and whatever happens next (cancel, shutdown, an error, a crash) it stays charged.
    if (charge && summary.privacy().released()) {
      if (absl::Status s = ChargeRelease(run, summary, *charge); !s.ok()) {
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
        absl::StatusOr<ArrayRecord> stored = StoredModel(**model);
        commit = stored.ok() ? state_->CommitRound(updated, summary, *stored,
                                                   charge ? &*charge : nullptr)
                             : stored.status();
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
      if (charge) AfterCharge(run, *charge, summary);
      AuditRound(run, summary);
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
      AfterCharge(run, *charge, summary);
    }
    AuditRound(run, summary);
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
  if (config.strategy().kind() == wire::v1::StrategyConfig::FEDPROX) {
    proto.mutable_strategy()->set_proximal_mu(config.strategy().proximal_mu());
  }
  if (config.strategy().kind() == wire::v1::StrategyConfig::SCAFFOLD) {
    proto.mutable_strategy()->set_scaffold(true);
  }
  // Record-level DP-SGD rides on every training task, with or without the organization-level
  // mechanism (whose fields `customize` adds).
  AddRecordDpTask(config, proto);
  std::vector<std::shared_ptr<Task>> tasks;
  for (size_t i = 0; i < clients.size(); ++i) {
    const std::string& client = clients[i];
    auto task = std::make_shared<Task>();
    task->task = proto;
    task->task.set_task_id(crypto::RandomHexId(12));
    task->index = static_cast<uint32_t>(i);
    RequestDataReport(*run, client, task->task);
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
  const size_t min_clients = std::max<uint32_t>(1, config.selection().min_clients());
  absl::StatusOr<std::vector<std::string>> selected = SelectClients(run, config, *summary);
  if (!selected.ok()) return selected.status();
  std::vector<std::string> candidates = *std::move(selected);
  EndPhase(summary, "select");

  std::shared_ptr<Round> round = NewTrainRound(run, *summary, global);
  BeginSitePrivacy(*run, *summary);
  round->strategy = config.strategy();
  round->population = registry_->NumConnected();
  if (IsRobustRule(round->strategy)) {
    const uint64_t held = candidates.size() * global->weights.TotalBytes();
    if (held > options_.max_held_update_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "strategy \"", StrategyName(round->strategy.kind()), "\" would hold ",
          candidates.size(), " updates of ", global->weights.TotalBytes(), " bytes (", held,
          " bytes), over the coordinator's limit of ", options_.max_held_update_bytes,
          " bytes; select fewer clients per round"));
    }
  }
  if (run->privacy.has_value()) {
    round->dp = &*run->privacy;
    round->dp_clip = summary->privacy().clip_norm();
  }
  {
    absl::StatusOr<aggregation::WeightedAccumulator> acc =
        aggregation::WeightedAccumulator::Create(global->weights);
    if (!acc.ok()) return acc.status();
    absl::MutexLock l(&round->mu);
    round->accumulator.emplace(std::move(*acc));
  }
  summary->set_state(wire::v1::ROUND_TRAINING);
  summary->set_selected(static_cast<uint32_t>(candidates.size()));
  {
    NoIoMutexLock l(&run->mu);
    run->current = *summary;
  }
  Notify(run);
  std::function<void(size_t, wire::v1::Task&)> customize;
  if (round->dp != nullptr) {
    customize = [&](size_t, wire::v1::Task& task) {
      AddDpTask(*round->dp, round->dp_clip, "", config, task);
    };
  }
  const size_t delivered = DispatchTasks(run, round, candidates, customize);

  // Wait for every delivered task, the deadline, or a stop; publish progress every 100 ms at
  // most (a status carries the run's history: one per report would cost O(rounds x clients)).
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
  TakeSitePrivacy(*round, summary);
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
  if (round->strategy.kind() == wire::v1::StrategyConfig::FEDNOVA && round->sums.p_over_tau > 0) {
    // FedNova's sum of examples / local_steps is the accumulator's weight sum: take its exact
    // value, not the running double (whose last bit depends on the arrival order).
    round->sums.p_over_tau = round->accumulator->total_weight();
  }
  absl::StatusOr<ArrayRecord> mean_delta =
      IsRobustRule(round->strategy) ? CombineHeld(round->strategy, round->held)
                                    : std::move(*round->accumulator).Average();
  round->accumulator.reset();
  round->held.clear();
  if (!mean_delta.ok()) return mean_delta.status();
  if (round->strategy.kind() == wire::v1::StrategyConfig::FEDNOVA) {
    TESSERA_RETURN_IF_ERROR(FinishFedNova(round->sums, *mean_delta));
  }
  if (round->dp != nullptr) {
    // Only the noised model leaves the mechanism: no per-round training loss or counts.
    summary->set_train_loss(0);
    summary->set_num_examples(0);
    TESSERA_RETURN_IF_ERROR(FinishCentralDp(*round->dp, round->reported, round->dp_unclipped,
                                            *mean_delta, summary));
  }
  auto next = StrategyNextModel(config.strategy(), run->server, *std::move(mean_delta), *global,
                                summary->round(), summary->reported(), round->population);
  EndPhase(summary, "aggregate");
  return next;
}

}  // namespace tessera::coordinator
