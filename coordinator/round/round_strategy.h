// File: round_strategy.h
// The run's strategy at the round loop's stations (docs/strategies.md,
// docs/architecture.md "The round loop"): what a training task carries (dispatch), how much
// an update weighs and how it is folded (accept update), how a round's updates combine
// (aggregate), and how the combined update moves the global model (server optimizers,
// SCAFFOLD's control variate). State kept across rounds (optimizer moments) is stored with
// each round's model under "server_opt." names (StoredModel), so a restarted coordinator
// continues exactly where it stopped.
#ifndef TESSERA_COORDINATOR_ROUND_ROUND_STRATEGY_H_
#define TESSERA_COORDINATOR_ROUND_ROUND_STRATEGY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "aggregation/fed_avg.h"
#include "aggregation/server_optimizer.h"
#include "coordinator/round/model_snapshot.h"
#include "coordinator/round/update_staging.h"
#include "core/model/tensor.h"
#include "tessera/wire/v1/control.pb.h"
#include "tessera/wire/v1/fleet.pb.h"

namespace tessera::coordinator {

// How an accepted update enters the round, decided before the round's lock is taken.
struct UpdateWeight {
  double weight = 1;        // its weight in the mean
  double local_steps = 0;   // FedNova's tau_i (0 for other strategies)
  uint64_t num_examples = 0;
};

// One round's updates under the run's strategy: a streaming weighted mean (exact whatever
// the arrival order), or for robust rules every update held until aggregation. A fold made
// with an UpdateStaging (NewFold) keeps no accumulator: each update is a file, and Aggregate
// computes the same exact mean block by block (update_staging.h). Not thread-safe: the
// round's lock guards it.
class UpdateFold {
 public:
  // Accept update: folds `update` with `w`. A streaming mean checks layout and weight
  // first, so a rejected update leaves the fold unchanged; a held update's layout is
  // checked by the caller (CheckSameLayout with the round's model, outside the lock). A
  // staged fold writes `update` to its staging directory (under the caller's lock: the
  // round loop stages outside it, then calls AddStaged).
  absl::Status Add(const ArrayRecord& update, const UpdateWeight& w);
  // Accept update for a staged fold: `file` was written by staging()->Write. On error the
  // file is removed and the fold is unchanged. FAILED_PRECONDITION for a fold that is not
  // staged; INVALID_ARGUMENT for a weight WeightedAccumulator would refuse.
  absl::Status AddStaged(StagedFile file, const UpdateWeight& w);
  // The staging directory of a staged fold; null otherwise.
  const std::shared_ptr<UpdateStaging>& staging() const { return staging_; }
  // Partial sums (tessera-sim across MPI ranks): folds `partial`, the exact weighted sum of
  // updates another process folded with this strategy's weights, as if each had been Add()ed
  // (bit for bit: WeightedAccumulator::Merge); each of them then enters with AddFolded.
  // Errors: FAILED_PRECONDITION for a robust rule (it needs every update) or a staged fold;
  // Merge's errors (layout, count), leaving the fold unchanged.
  absl::Status Merge(const aggregation::WeightedAccumulator& partial);
  // Add() for an update whose values came in a Merge()d partial: its weight's bookkeeping
  // only (FedNova's sums; the weight itself is in the partial).
  void AddFolded(const UpdateWeight& w) { CountSteps(w); }
  // Aggregate: the combined update of everything added (the weighted mean, FedNova's
  // normalized update, or the robust rule's result). The fold is spent; a staged fold's
  // files are removed.
  absl::StatusOr<ArrayRecord> Aggregate() &&;
  // Aggregate for a staged weighted mean: base += the mean, block by block in base's buffers
  // (UpdateStaging::AddWeightedMeanTo: ApplyDelta's bits, the mean never whole). The fold is
  // spent and its files removed. FAILED_PRECONDITION for a fold that is not staged or whose
  // combined update is not added to the global as it is (FedNova, SCAFFOLD, robust rules);
  // AddWeightedMeanTo's errors, after which base is to be discarded. REQUIRES: the strategy
  // has no server optimizer (RoundStrategy::AddsMeanToGlobal, which the fold cannot see).
  absl::Status AddMeanTo(ArrayRecord& base) &&;

 private:
  friend class RoundStrategy;
  UpdateFold(wire::v1::StrategyConfig config,
             std::optional<aggregation::WeightedAccumulator> accumulator,
             std::shared_ptr<UpdateStaging> staging)
      : config_(std::move(config)), accumulator_(std::move(accumulator)),
        staging_(std::move(staging)) {}
  // FedNova's sums over the round.
  void CountSteps(const UpdateWeight& w);

  wire::v1::StrategyConfig config_;
  std::optional<aggregation::WeightedAccumulator> accumulator_;  // a streaming mean in memory
  std::vector<ArrayRecord> held_;  // robust rules
  std::shared_ptr<UpdateStaging> staging_;  // a staged mean
  std::vector<StagedFile> staged_;
  std::vector<double> staged_weights_;
  // FedNova's sums over the round (p = examples, tau = local steps).
  double p_ = 0, p_tau_ = 0, p_over_tau_ = 0;
};

// A run's strategy and the server-side state it keeps across rounds. Used by the run's
// driver thread only (its config may be read from any thread).
class RoundStrategy {
 public:
  RoundStrategy() = default;  // FedAvg without state
  // The strategy of a run whose model has `layout`; its server optimizer (if any) restored
  // from `stored_state` (null or empty: fresh).
  static absl::StatusOr<RoundStrategy> Create(const wire::v1::StrategyConfig& config,
                                              const ArrayRecord& layout,
                                              const ArrayRecord* stored_state);
  // CreateRun: SCAFFOLD appends a zero control variate "scaffold.c/X" for every float32
  // tensor X of the initial model; other strategies leave it as it is.
  static absl::Status PrepareInitialModel(const wire::v1::StrategyConfig& config,
                                          ArrayRecord& weights);

  const wire::v1::StrategyConfig& config() const { return config_; }
  // Robust rules (median, trimmed mean, Krum) hold every update of a round.
  bool HoldsUpdates() const;

  // Select: RESOURCE_EXHAUSTED when holding `clients` updates of `update_bytes` bytes
  // would exceed `limit` bytes (robust rules only).
  absl::Status CheckHeldBytes(size_t clients, uint64_t update_bytes, uint64_t limit) const;
  // Dispatch: the strategy section of a training task (FedProx's mu, SCAFFOLD).
  void Dispatch(wire::v1::Task& task) const;
  // Accept update: the weight of an update of `num_examples` examples with `metrics`: its
  // example count; 1 for SCAFFOLD; examples / local steps for FedNova (INVALID_ARGUMENT
  // without a valid "local_steps" metric).
  absl::StatusOr<UpdateWeight> Weigh(uint64_t num_examples,
                                     const std::map<std::string, double>& metrics) const;
  // A new round's fold for updates of `layout`: staged in `staging` when given and the
  // strategy computes a weighted mean (robust rules always hold their updates in memory).
  absl::StatusOr<UpdateFold> NewFold(const ArrayRecord& layout,
                                     std::shared_ptr<UpdateStaging> staging = nullptr) const;
  // Whether the next global model is global + the weighted mean of the updates: no robust
  // rule, no FedNova or SCAFFOLD scaling, no server optimizer (UpdateFold::AddMeanTo).
  bool AddsMeanToGlobal() const;
  // Aggregate: the next global model from the round's combined update: SCAFFOLD's server
  // step sizes, then the server optimizer (whose state advances) or global += mean.
  // `reported` of `population` connected clients contributed.
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> NextModel(ArrayRecord mean_delta,
                                                                 const ModelSnapshot& global,
                                                                 uint32_t round,
                                                                 uint32_t reported,
                                                                 uint64_t population);

 private:
  wire::v1::StrategyConfig config_;
  std::shared_ptr<aggregation::ServerOptimizer> optimizer_;  // null: plain global += mean
};

// The weights of `model` for a next model to be computed in: its own buffers, moved out, when
// `model` is the snapshot's only owner (no task, stream, run or export holds it, and none can
// take it again); a copy otherwise. REQUIRES: no weak_ptr to the snapshot exists, and it was
// made as a non-const ModelSnapshot (make_shared<ModelSnapshot>, as every snapshot is).
ArrayRecord TakeWeights(std::shared_ptr<const ModelSnapshot> model);

// The global model after a round: `global` plus the mean update `mean_delta` (summed in
// mean_delta's buffers). INTERNAL if the result is not finite.
absl::StatusOr<std::shared_ptr<const ModelSnapshot>> NextModel(ArrayRecord mean_delta,
                                                               const ModelSnapshot& global,
                                                               uint32_t round);
// A stored model split into served weights and server state ("server_opt." tensors).
std::pair<ArrayRecord, ArrayRecord> SplitStoredModel(ArrayRecord stored);
// What the commit stores: the weights plus the server state under "server_opt." names.
absl::StatusOr<ArrayRecord> StoredModel(const ModelSnapshot& model);
// The model without SCAFFOLD's control variate (what an export holds).
std::shared_ptr<const ModelSnapshot> ModelForExport(std::shared_ptr<const ModelSnapshot> model);

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_ROUND_ROUND_STRATEGY_H_
