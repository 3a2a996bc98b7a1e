// A round's tasks on the driver's side (RunManager::DispatchTasks, AwaitTasks, CloseRound):
// pushed to the selected clients at the dispatch station with every stage's section, waited
// for until answered, abandoned or late, then withdrawn. The Fleet side of the same tasks
// (fetch, updates, results, abandons) is run_tasks.cc.
#include <algorithm>

#include <glog/logging.h>

#include "absl/time/clock.h"
#include "coordinator/round/run_manager.h"
#include "coordinator/round/run_manager_internal.h"
#include "privacy/crypto/random.h"

namespace tessera::coordinator {

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

void RunManager::AwaitTasks(const std::shared_ptr<Run>& run, const std::shared_ptr<Round>& round,
                            size_t delivered, absl::Time deadline,
                            const std::function<void(size_t)>& progress) {
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
    if (progress && reported != seen) {
      seen = reported;
      progress(reported);
    }
    if (reported + abandoned >= delivered || run->stop || shutting_down_ ||
        absl::Now() >= deadline) {
      return;
    }
  }
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

}  // namespace tessera::coordinator
