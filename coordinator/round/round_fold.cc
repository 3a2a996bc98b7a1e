#include "coordinator/round/round_fold.h"

#include "absl/strings/str_cat.h"
#include "aggregation/fed_avg.h"

namespace tessera::coordinator {

bool FoldBudget::Stages(const RoundStrategy& strategy, const ArrayRecord& layout) const {
  return !staging_root_.empty() && !strategy.HoldsUpdates() &&
         aggregation::WeightedAccumulator::MemoryBytesFor(layout) > memory_bytes_;
}

absl::StatusOr<RoundFold> FoldBudget::NewFold(const RoundStrategy& strategy,
                                              const ArrayRecord& layout) {
  std::shared_ptr<UpdateStaging> staging;
  if (Stages(strategy, layout)) {
    absl::StatusOr<std::shared_ptr<UpdateStaging>> created =
        UpdateStaging::Create(absl::StrCat(staging_root_, "/", next_.fetch_add(1)), layout);
    if (!created.ok()) return created.status();
    staging = *std::move(created);
  }
  absl::StatusOr<UpdateFold> fold = strategy.NewFold(layout, staging);
  if (!fold.ok()) return fold.status();
  return RoundFold{*std::move(fold), std::move(staging)};
}

}  // namespace tessera::coordinator
