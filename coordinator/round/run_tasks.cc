// RunManager's Fleet side: looking up tasks and taking updates and evaluations.
#include <cmath>
#include <optional>

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "coordinator/round/run_manager.h"
#include "coordinator/round/peer_text.h"
#include "coordinator/round/run_manager_internal.h"
#include "coordinator/round/update_staging.h"
#include "core/base/status_macros.h"

namespace tessera::coordinator {

absl::StatusOr<std::shared_ptr<RunManager::Task>> RunManager::FindTask(
    absl::string_view task_id, absl::string_view client) {
  std::shared_ptr<Task> task;
  {
    absl::MutexLock l(&mu_);
    auto it = tasks_.find(task_id);
    if (it == tasks_.end()) {
      return absl::NotFoundError(absl::StrCat("unknown task \"", PeerText(task_id), "\""));
    }
    task = it->second;
  }
  if (task->client != client) {
    return absl::PermissionDeniedError(absl::StrCat("task ", task_id, " was not assigned to ",
                                                    client, ": it belongs to another client"));
  }
  absl::MutexLock l(&task->round->mu);
  if (!task->round->open) {
    return absl::FailedPreconditionError(absl::StrCat("round ", task->round->number,
                                                      " of run ", task->round->run_id,
                                                      " is closed"));
  }
  return task;
}

absl::StatusOr<std::shared_ptr<const ModelSnapshot>> RunManager::ModelForTask(
    absl::string_view task_id, absl::string_view client) {
  TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<Task> task, FindTask(task_id, client));
  return OpenRoundModel(*task->round);
}

absl::StatusOr<std::shared_ptr<const ModelSnapshot>> RunManager::OpenRoundModel(Round& round) {
  absl::MutexLock l(&round.mu);
  if (!round.open || round.model == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("round ", round.number, " of run ",
                                                      round.run_id, " is closed"));
  }
  return round.model;
}

absl::StatusOr<std::string> RunManager::ArtifactForTask(absl::string_view task_id,
                                                        absl::string_view client) {
  TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<Task> task, FindTask(task_id, client));
  TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<Run> run, FindRun(task->task.run_id()));
  if (run->artifact.empty()) {
    return absl::NotFoundError(absl::StrCat("run ", run->id, " has no TorchScript program"));
  }
  return run->artifact;
}

void RunManager::CountBytesDown(absl::string_view task_id, uint64_t bytes) {
  absl::MutexLock l(&mu_);
  auto it = tasks_.find(task_id);
  if (it != tasks_.end()) it->second->round->bytes_down += bytes;
}

absl::StatusOr<std::shared_ptr<const ModelSnapshot>> RunManager::BeginUpdate(
    absl::string_view task_id, absl::string_view client) {
  TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<Task> task, FindTask(task_id, client));
  if (task->task.type() != wire::v1::TRAIN) {
    return absl::FailedPreconditionError(absl::StrCat("task ", task_id, " is not a training task"));
  }
  if (task->round->secagg != nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "round ", task->round->number, " uses secure aggregation: a plaintext update is "
        "refused; send it masked with SecAggExchange"));
  }
  {
    absl::MutexLock l(&task->round->mu);
    if (task->reported) {
      return absl::AlreadyExistsError(absl::StrCat("task ", task_id, " already has an update"));
    }
  }
  return OpenRoundModel(*task->round);
}

absl::Status RunManager::CheckUpdateEncoding(absl::string_view task_id,
                                             absl::string_view client,
                                             const wire::v1::CompressionConfig& declared) {
  TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<Task> task, FindTask(task_id, client));
  const wire::v1::CompressionConfig& asked = task->task.compression();
  // float32 is always accepted: an older client that does not know the task's setting sends
  // it, and it is the exact update (no smaller, no lossier).
  if (declared.method() == wire::v1::CompressionConfig::NONE) return absl::OkStatus();
  const bool same =
      declared.method() == asked.method() &&
      (asked.method() != wire::v1::CompressionConfig::INT8 ||
       declared.block_size() == asked.block_size()) &&
      (asked.method() != wire::v1::CompressionConfig::TOPK ||
       declared.topk_fraction() == asked.topk_fraction());
  if (!same) {
    auto method = [](wire::v1::CompressionConfig::Method m) {
      const std::string& name = wire::v1::CompressionConfig::Method_Name(m);
      return name.empty() ? absl::StrCat("number ", static_cast<int>(m)) : name;
    };
    return absl::InvalidArgumentError(absl::StrCat(
        "update encoding (compression method ", method(declared.method()), ", block_size ",
        declared.block_size(), ", topk_fraction ", declared.topk_fraction(),
        ") is not the one task ", task_id, " asked for (method ", method(asked.method()),
        ", block_size ", asked.block_size(), ", topk_fraction ", asked.topk_fraction(), ")"));
  }
  return absl::OkStatus();
}

absl::Status RunManager::SubmitUpdate(absl::string_view task_id, absl::string_view client,
                                      uint64_t num_examples,
                                      const std::map<std::string, double>& metrics,
                                      const ArrayRecord& update, uint64_t bytes_up) {
  return AcceptUpdate(task_id, client, num_examples, metrics, &update, bytes_up);
}

absl::Status RunManager::SubmitFoldedUpdate(absl::string_view task_id, absl::string_view client,
                                            uint64_t num_examples,
                                            const std::map<std::string, double>& metrics,
                                            uint64_t bytes_up) {
  return AcceptUpdate(task_id, client, num_examples, metrics, nullptr, bytes_up);
}

absl::StatusOr<std::shared_ptr<UpdateStaging>> RunManager::UploadStaging(
    absl::string_view task_id, absl::string_view client) {
  TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<Task> task, FindTask(task_id, client));
  const Round& round = *task->round;
  if (task->task.type() != wire::v1::TRAIN || round.dp != nullptr) return nullptr;
  return round.staging;  // set before dispatch, never changed
}

absl::Status RunManager::SubmitStagedUpdate(absl::string_view task_id, absl::string_view client,
                                            uint64_t num_examples,
                                            const std::map<std::string, double>& metrics,
                                            StagedFile file, uint64_t bytes_up) {
  return AcceptUpdate(task_id, client, num_examples, metrics, nullptr, bytes_up, &file);
}

absl::Status RunManager::CheckPartialSums(const Round& round) {
  if (round.dp != nullptr || round.secagg != nullptr || round.strategy->HoldsUpdates() ||
      round.staging != nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "round ", round.number, " needs each update (central DP clips each, secure "
        "aggregation masks each, a robust rule compares them, staging writes each to disk): "
        "a partial sum is refused"));
  }
  return absl::OkStatus();
}

absl::Status RunManager::MergePartialUpdate(absl::string_view task_id, absl::string_view client,
                                            const aggregation::WeightedAccumulator& partial) {
  TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<Task> task, FindTask(task_id, client));
  Round& round = *task->round;
  TESSERA_RETURN_IF_ERROR(CheckPartialSums(round));
  absl::MutexLock l(&round.mu);
  if (!round.open) {
    return absl::FailedPreconditionError(absl::StrCat("round ", round.number, " is closed"));
  }
  return round.fold->Merge(partial);
}

absl::Status RunManager::AcceptUpdate(absl::string_view task_id, absl::string_view client,
                                      uint64_t num_examples,
                                      const std::map<std::string, double>& metrics,
                                      const ArrayRecord* values, uint64_t bytes_up,
                                      StagedFile* streamed) {
  TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<Task> task, FindTask(task_id, client));
  if (task->task.type() != wire::v1::TRAIN) {
    return absl::FailedPreconditionError(absl::StrCat("task ", task_id, " is not a training task"));
  }
  if (num_examples == 0 || num_examples > options_.max_update_examples) {
    return absl::InvalidArgumentError(absl::StrCat("num_examples must be in 1..",
                                                   options_.max_update_examples, ", got ",
                                                   num_examples));
  }
  for (const auto& [name, value] : metrics) {
    if (!std::isfinite(value)) {
      return absl::InvalidArgumentError(absl::StrCat("metric \"", name, "\" is not finite"));
    }
  }
  Round& round = *task->round;
  if (streamed != nullptr && (round.staging == nullptr || round.dp != nullptr)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "round ", round.number, " does not take updates streamed to disk"));
  }
  if (values == nullptr && streamed == nullptr) TESSERA_RETURN_IF_ERROR(CheckPartialSums(round));
  static const ArrayRecord kFolded;  // its values are in a merged partial sum
  const ArrayRecord& update = values != nullptr ? *values : kFolded;
  // Validate outside the round lock (concurrent uploads scan in parallel); the fold under
  // the lock then reads the update once.
  for (const Tensor& t : update.tensors) TESSERA_RETURN_IF_ERROR(CheckFinite(t));
  // Central DP: every update weighs 1 and is clipped here too, so the sensitivity bound
  // holds whatever the client did; it reports whether it was within the clip (0 or 1).
  std::optional<RoundPrivacy::ClippedUpdate> clipped;
  if (round.dp != nullptr) {
    TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<const ModelSnapshot> model, OpenRoundModel(round));
    TESSERA_ASSIGN_OR_RETURN(
        clipped, RoundPrivacy::Clip(update, metrics, model->weights, round.dp_clip));
  }
  const ArrayRecord& folded = clipped ? clipped->update : update;
  UpdateWeight weight;  // under central DP every update weighs 1
  weight.num_examples = num_examples;
  if (!clipped) {
    TESSERA_ASSIGN_OR_RETURN(weight, round.strategy->Weigh(num_examples, metrics));
  }
  const bool hold = round.strategy->HoldsUpdates();
  if (hold) {
    TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<const ModelSnapshot> model, OpenRoundModel(round));
    TESSERA_RETURN_IF_ERROR(CheckSameLayout(model->weights, update));
  }
  // A staged fold's file is written here, outside the round's lock (uploads write in
  // parallel); it is removed again if the update is refused below.
  std::optional<StagedFile> staged;
  if (streamed != nullptr) {
    staged.emplace(std::move(*streamed));  // checked finite as it was written
  } else if (round.staging != nullptr && !hold && values != nullptr) {
    TESSERA_ASSIGN_OR_RETURN(StagedFile file, round.staging->Write(folded));
    staged.emplace(std::move(file));
  }
  {
    absl::MutexLock l(&round.mu);
    if (!round.open) {
      return absl::FailedPreconditionError(absl::StrCat("round ", round.number, " is closed"));
    }
    if (task->reported) {
      return absl::AlreadyExistsError(absl::StrCat("task ", task_id, " already has an update"));
    }
    // A rejected update leaves the fold unchanged.
    if (staged) {
      TESSERA_RETURN_IF_ERROR(round.fold->AddStaged(*std::move(staged), weight));
    } else if (values != nullptr) {
      TESSERA_RETURN_IF_ERROR(round.fold->Add(hold ? update : folded, weight));
    } else {
      round.fold->AddFolded(weight);
    }
    if (clipped) round.dp_unclipped += clipped->unclipped;
    round.bytes_up += bytes_up;  // before `reported` moves: the driver reads both at quorum
    task->reported = true;
    ++round.reported;
    // Under DP no example count or loss is kept, so none can reach a released output.
    if (!clipped) {
      round.examples += num_examples;
      auto loss = metrics.find("train_loss");
      if (loss != metrics.end()) round.weighted_loss += loss->second * num_examples;
    }
    round.participants.push_back(std::string(client));
  }
  registry_->CountParticipation(client);
  return absl::OkStatus();
}

absl::Status RunManager::SubmitSecAgg(
    absl::string_view task_id, absl::string_view client, const secagg::v1::ClientToServer& msg,
    std::function<void(absl::StatusOr<secagg::v1::ServerToClient>)> reply) {
  TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<Task> task, FindTask(task_id, client));
  if (task->round->secagg == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("round ", task->round->number, " does not use secure aggregation"));
  }
  task->round->bytes_up += msg.ByteSizeLong();
  absl::Status s = task->round->secagg->Submit(task->index, msg, std::move(reply));
  if (!s.ok()) {
    LOG(WARNING) << "secure aggregation message from " << client << " rejected: " << s;
  }
  return s;
}

absl::Status RunManager::AbandonTask(absl::string_view task_id, absl::string_view client,
                                     absl::string_view reason) {
  TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<Task> task, FindTask(task_id, client));
  Round& round = *task->round;
  {
    absl::MutexLock l(&round.mu);
    if (task->reported) {
      return absl::AlreadyExistsError(absl::StrCat("task ", task_id, " already reported"));
    }
    task->reported = true;
    ++round.abandoned;
  }
  LOG(INFO) << "client " << client << " gave up task " << task_id << " (round "
            << round.number << "): " << PeerText(reason);
  return absl::OkStatus();
}

size_t RunManager::AbandonClientTasks(absl::string_view client, absl::string_view reason) {
  std::vector<std::string> mine;
  {
    absl::MutexLock l(&mu_);
    for (const auto& [id, task] : tasks_) {
      if (task->client == client) mine.push_back(id);
    }
  }
  size_t abandoned = 0;
  for (const std::string& id : mine) abandoned += AbandonTask(id, client, reason).ok() ? 1 : 0;
  return abandoned;
}

absl::Status RunManager::SubmitEvaluation(absl::string_view task_id, absl::string_view client,
                                          uint64_t num_examples, double loss, double accuracy) {
  TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<Task> task, FindTask(task_id, client));
  if (task->task.type() != wire::v1::EVALUATE) {
    return absl::FailedPreconditionError(
        absl::StrCat("task ", task_id, " is not an evaluation task"));
  }
  TESSERA_RETURN_IF_ERROR(
      RoundEvaluation::Validate(num_examples, loss, accuracy, options_.max_update_examples));
  Round& round = *task->round;
  absl::MutexLock l(&round.mu);
  if (task->reported) {
    return absl::AlreadyExistsError(absl::StrCat("task ", task_id, " already reported"));
  }
  task->reported = true;
  ++round.reported;
  round.evaluation->Accept(num_examples, loss, accuracy);
  return absl::OkStatus();
}

absl::Status RunManager::SubmitDataReport(absl::string_view task_id, absl::string_view client,
                                          const wire::v1::DataReport& report) {
  TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<Task> task, FindTask(task_id, client));
  if (!task->task.has_data_report()) {
    return absl::FailedPreconditionError(
        absl::StrCat("task ", task_id, " asked for no data report"));
  }
  TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<Run> run, FindRun(task->task.run_id()));
  return run->governance->AcceptDataReport(client, task->task.data_report(), report);
}

absl::Status RunManager::ReportSitePrivacy(absl::string_view task_id, absl::string_view client,
                                           const wire::v1::SitePrivacyReport& report) {
  TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<Task> task, FindTask(task_id, client));
  if (task->task.type() != wire::v1::TRAIN) {
    return absl::FailedPreconditionError(
        absl::StrCat("task ", task_id, " is not a training task; only training tasks have a "
                     "site privacy report"));
  }
  if (!task->task.dp().record().enabled()) {
    return absl::FailedPreconditionError(
        absl::StrCat("run ", task->task.run_id(), " does not use record-level DP; task ",
                     task_id, " takes no site privacy report"));
  }
  TESSERA_ASSIGN_OR_RETURN(const wire::v1::SitePrivacy site,
                           RecordPrivacy::Validate(client, report));
  TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<Run> run, FindRun(task->task.run_id()));
  Round& round = *task->round;
  {
    absl::MutexLock l(&round.mu);
    if (!round.open) {
      return absl::FailedPreconditionError(
          absl::StrCat("round ", round.number, " of run ", round.run_id, " is closed"));
    }
    if (task->privacy_reported) {
      return absl::AlreadyExistsError(
          absl::StrCat("task ", task_id, " already has a site privacy report"));
    }
    if (report.refused() && task->reported) {
      return absl::FailedPreconditionError(absl::StrCat(
          "task ", task_id, " was already answered; a refusal must come before training"));
    }
    task->privacy_reported = true;
    round.site_privacy.push_back(site);
  }
  run->record_privacy->Accept(round.number, round.attempt, site);
  if (report.refused()) {
    LOG(WARNING) << "run " << run->id << " round " << round.number << ": client " << client
                 << " refused task " << task_id << " (its record-level privacy budget is "
                 << "spent; it is no longer selected): " << PeerText(report.reason());
    const std::string why = absl::StrCat("refused: ", report.reason());
    if (round.secagg != nullptr) {
      {
        absl::MutexLock l(&round.mu);
        task->reported = true;  // answered: never re-sent, never abandoned again
      }
      if (absl::Status s = round.secagg->Withdraw(task->index, absl::ResourceExhaustedError(why));
          !s.ok()) {
        LOG(WARNING) << "cannot withdraw " << client << " from the secure aggregation round: "
                     << s;
      }
    } else if (absl::Status s = AbandonTask(task_id, client, why); !s.ok()) {
      LOG(WARNING) << "cannot drop " << client << " from round " << round.number << ": " << s;
    }
  } else {
    LOG(INFO) << "run " << run->id << " round " << round.number << ": client " << client
              << " reports record-level epsilon " << site.epsilon() << " of "
              << site.epsilon_budget() << " (delta " << site.delta() << ", "
              << site.accountant() << ")";
  }
  Notify(run);
  return absl::OkStatus();
}

size_t RunManager::ResendOpenTasks(const std::string& client) {
  std::vector<std::shared_ptr<Task>> mine;
  {
    absl::MutexLock l(&mu_);
    for (const auto& [id, task] : tasks_) {
      // Not secure-aggregation tasks: a participant that lost its keys cannot rejoin its
      // session, and a fresh start of the task would be refused mid-protocol.
      if (task->client == client && !task->task.has_secagg()) mine.push_back(task);
    }
  }
  size_t sent = 0;
  for (const auto& task : mine) {
    {
      absl::MutexLock l(&task->round->mu);
      if (!task->round->open || task->reported) continue;
    }
    if (registry_->Send(client, task->task)) {
      ++sent;
      LOG(INFO) << "re-sent task " << task->task.task_id() << " (round " << task->task.round()
                << ") to " << client << ", which subscribed again";
    }
  }
  return sent;
}

}  // namespace tessera::coordinator
