// File: round_fold.h
// The accept-update station's set-up (docs/architecture.md "The round loop" and "Coordinator
// memory"): where a training round's accepted updates go. The run's strategy folds them in
// memory, or, when the exact accumulator of a weighted mean (25 bytes per parameter,
// WeightedAccumulator::MemoryBytesFor) would exceed the coordinator's fold budget, each
// accepted update is staged to a file in a directory of the round's own (update_staging.h).
#ifndef TESSERA_COORDINATOR_ROUND_ROUND_FOLD_H_
#define TESSERA_COORDINATOR_ROUND_ROUND_FOLD_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "coordinator/round/round_strategy.h"
#include "coordinator/round/update_staging.h"
#include "core/model/tensor.h"

namespace tessera::coordinator {

struct RoundFold {
  UpdateFold fold;
  std::shared_ptr<UpdateStaging> staging;  // the fold's directory; null in memory
};

// The coordinator's fold budget (RunManagerOptions::staging_dir and fold_memory_bytes) and
// the names of the staging directories it made. Thread-safe.
class FoldBudget {
 public:
  // `staging_root`: where rounds stage their updates (empty: never staged); `memory_bytes`:
  // the largest exact accumulator a round keeps in memory.
  FoldBudget(std::string staging_root, uint64_t memory_bytes)
      : staging_root_(std::move(staging_root)), memory_bytes_(memory_bytes) {}

  uint64_t memory_bytes() const { return memory_bytes_; }

  // Whether a round of `strategy` for updates of `layout` stages them: the strategy computes
  // a weighted mean (robust rules hold every update in memory), there is a staging root, and
  // the mean's exact accumulator would take more than memory_bytes().
  bool Stages(const RoundStrategy& strategy, const ArrayRecord& layout) const;

  // A new round's fold for updates of `layout`: when Stages, in a new directory of the
  // staging root named by a counter (0, 1, ... for each staged fold), else in memory.
  // Errors: those of UpdateStaging::Create (the directory exists already or cannot be made)
  // and of RoundStrategy::NewFold.
  absl::StatusOr<RoundFold> NewFold(const RoundStrategy& strategy, const ArrayRecord& layout);

 private:
  const std::string staging_root_;
  const uint64_t memory_bytes_;
  std::atomic<uint64_t> next_{0};  // names the next staging directory
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_ROUND_ROUND_FOLD_H_
