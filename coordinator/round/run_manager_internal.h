// Private state of RunManager, shared by run_manager.cc and round_driver.cc.
#ifndef TESSERA_COORDINATOR_ROUND_RUN_MANAGER_INTERNAL_H_
#define TESSERA_COORDINATOR_ROUND_RUN_MANAGER_INTERNAL_H_

#include <atomic>
#include <optional>
#include <thread>

#include "aggregation/fed_avg.h"
#include "coordinator/round/privacy_plan.h"
#include "coordinator/round/run_manager.h"
#include "coordinator/round/secagg_round.h"

namespace tessera::coordinator {

inline absl::Duration Seconds(double s) {
  return absl::Milliseconds(static_cast<int64_t>(s * 1000));
}

// The global model after a round: `global` plus the weighted mean update `mean_delta`
// (summed in mean_delta's buffers). INTERNAL if the result is not finite.
absl::StatusOr<std::shared_ptr<const ModelSnapshot>> NextModel(ArrayRecord mean_delta,
                                                               const ModelSnapshot& global,
                                                               uint32_t round);

struct RunManager::Run {
  std::string id;
  std::string artifact;  // TorchScript program, empty for built-in architectures
  std::atomic<bool> stop{false};
  std::thread driver;

  absl::Mutex mu;
  storage::v1::RunRecord record ABSL_GUARDED_BY(mu);
  std::vector<wire::v1::RoundSummary> history ABSL_GUARDED_BY(mu);
  std::optional<wire::v1::RoundSummary> current ABSL_GUARDED_BY(mu);
  std::shared_ptr<const ModelSnapshot> model ABSL_GUARDED_BY(mu);  // last committed
  // Differential privacy (dp_driver.cc): set before the driver starts, then constant.
  std::optional<PrivacyPlan> privacy;
  wire::v1::PrivacyBudgetStatus budget ABSL_GUARDED_BY(mu);
  double clip_norm ABSL_GUARDED_BY(mu) = 0;  // the next round's (adaptive clipping moves it)
};

// One attempt of one round (training or evaluation).
struct RunManager::Round {
  std::string run_id;
  uint32_t number = 0;
  uint32_t attempt = 0;
  wire::v1::TaskType type = wire::v1::TRAIN;
  std::shared_ptr<const ModelSnapshot> model;  // what this round's tasks fetch

  absl::Mutex mu;
  bool open ABSL_GUARDED_BY(mu) = true;
  size_t dispatched ABSL_GUARDED_BY(mu) = 0;
  size_t reported ABSL_GUARDED_BY(mu) = 0;
  std::optional<aggregation::WeightedAccumulator> accumulator ABSL_GUARDED_BY(mu);
  double weighted_loss ABSL_GUARDED_BY(mu) = 0;      // sum of loss * examples
  double weighted_accuracy ABSL_GUARDED_BY(mu) = 0;  // sum of accuracy * examples
  uint64_t examples ABSL_GUARDED_BY(mu) = 0;
  std::atomic<uint64_t> bytes_down{0};
  std::atomic<uint64_t> bytes_up{0};
  std::vector<std::string> participants ABSL_GUARDED_BY(mu);
  std::shared_ptr<SecAggRound> secagg;  // set before dispatch in secure aggregation rounds
  // Central DP without secure aggregation: uploads are clipped to dp_clip and weigh 1.
  const PrivacyPlan* dp = nullptr;
  double dp_clip = 0;
  double dp_unclipped ABSL_GUARDED_BY(mu) = 0;  // uploads within the clip (adaptive clipping)
};

struct RunManager::Task {
  wire::v1::Task task;
  std::string client;
  std::shared_ptr<Round> round;
  uint32_t index = 0;     // position among the round's selected clients
  bool reported = false;  // guarded by round->mu
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_ROUND_RUN_MANAGER_INTERNAL_H_
