// The evaluate station (RunManager::EvaluateRound): the new global model goes to every
// connected client that the run's license rules accept; RoundEvaluation decides which rounds
// are evaluated and folds the results (round_evaluation.h).
#include "absl/time/clock.h"
#include "coordinator/round/round_evaluation.h"
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
  if (!RoundEvaluation::Due(config.evaluation(), config.rounds(), summary->round())) return;
  auto round = std::make_shared<Round>();
  round->run_id = run->id;
  round->number = summary->round();
  round->attempt = summary->attempt();
  round->type = wire::v1::EVALUATE;
  round->model = model;
  {
    absl::MutexLock l(&round->mu);
    round->evaluation.emplace();
  }
  summary->set_state(wire::v1::ROUND_EVALUATING);
  {
    NoIoMutexLock l(&run->mu);
    run->current = *summary;
  }
  Notify(run);
  // Only clients the run's license rules accept see the model (run_governance.h).
  const size_t delivered =
      DispatchTasks(run, round, run->governance->Select(registry_->Connected()));
  AwaitTasks(run, round, delivered,
             absl::Now() + Seconds(config.evaluation().deadline_seconds()));
  CloseRound(round);
  absl::MutexLock l(&round->mu);
  round->evaluation->Summarize(summary);
  summary->set_bytes_down(summary->bytes_down() + round->bytes_down);
}

}  // namespace tessera::coordinator
