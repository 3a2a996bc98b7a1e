// Evaluation of a new global model on every connected client that the run's license rules
// accept (RunManager::EvaluateRound).
#include "absl/time/clock.h"
#include "coordinator/round/run_manager.h"
#include "coordinator/round/run_manager_internal.h"

namespace tessera::coordinator {

void RunManager::EvaluateRound(const std::shared_ptr<Run>& run,
                               const std::shared_ptr<const ModelSnapshot>& model,
                               wire::v1::RoundSummary* summary) {
  wire::v1::RunConfig config;
  {
    NoIoMutexLock l(&run->mu);
    config = run->record.config();
  }
  const uint32_t every = config.evaluation().every();
  if (every == 0 || (summary->round() % every != 0 && summary->round() != config.rounds())) {
    return;
  }
  auto round = std::make_shared<Round>();
  round->run_id = run->id;
  round->number = summary->round();
  round->attempt = summary->attempt();
  round->type = wire::v1::EVALUATE;
  round->model = model;
  summary->set_state(wire::v1::ROUND_EVALUATING);
  {
    NoIoMutexLock l(&run->mu);
    run->current = *summary;
  }
  Notify(run);
  // Only clients the run's license rules accept see the model (run_governance.h).
  const size_t delivered =
      DispatchTasks(run, round, run->governance->Select(registry_->Connected()));
  const absl::Time deadline = absl::Now() + Seconds(config.evaluation().deadline_seconds());
  {
    absl::MutexLock l(&round->mu);
    auto all_in = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(round->mu) {
      return round->reported + round->abandoned >= delivered || run->stop.load() ||
             shutting_down_.load();
    };
    while (!all_in() && absl::Now() < deadline) {
      round->mu.AwaitWithDeadline(absl::Condition(&all_in),
                                  std::min(deadline, absl::Now() + absl::Milliseconds(200)));
    }
  }
  CloseRound(round);
  absl::MutexLock l(&round->mu);
  summary->set_evaluated(static_cast<uint32_t>(round->reported));
  summary->set_bytes_down(summary->bytes_down() + round->bytes_down);
  if (round->examples > 0) {
    summary->set_eval_loss(round->weighted_loss / round->examples);
    summary->set_eval_accuracy(round->weighted_accuracy / round->examples);
  }
}

}  // namespace tessera::coordinator
