// File: round_privacy.h
// A run's organization-level differential privacy at the round loop's stations
// (docs/privacy.md, docs/architecture.md "The round loop"): the round's charge planned
// against the dataset's ledger before selection, Poisson sampling at select, the DP section
// of tasks at dispatch, clipping at accept update, noise at aggregate, the durable charge
// at release ("charge, then release"), and the budget view and adaptive clip at commit.
// The mechanism is central (the coordinator clips and noises) or distributed (clients add
// discrete Gaussian noise under secure aggregation); the arithmetic is privacy_plan.h's.
#ifndef TESSERA_COORDINATOR_ROUND_ROUND_PRIVACY_H_
#define TESSERA_COORDINATOR_ROUND_ROUND_PRIVACY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "coordinator/round/privacy_plan.h"
#include "coordinator/state/coordinator_state.h"
#include "core/base/no_io_mutex.h"
#include "core/model/tensor.h"
#include "tessera/storage/v1/records.pb.h"
#include "tessera/wire/v1/control.pb.h"
#include "tessera/wire/v1/fleet.pb.h"

namespace tessera::coordinator {

// Thread-safe: the plan is constant; the clip norm and budget view are read under a
// NoIoMutex held for copies only. Writes to the ledger happen without it.
class RoundPrivacy {
 public:
  // CreateRun: the privacy of a new run with `config` (a DP mode set) and initial `weights`,
  // and its dataset's ledger, opened now. FAILED_PRECONDITION when the dataset has another
  // budget or cannot pay for one round; INVALID_ARGUMENT when a distributed encoding would
  // not fit `max_message_bytes`. `state` must outlive the result.
  static absl::StatusOr<std::unique_ptr<RoundPrivacy>> Open(const wire::v1::RunConfig& config,
                                                            const ArrayRecord& weights,
                                                            CoordinatorState* state,
                                                            uint64_t max_message_bytes);
  // Recover: the privacy of a stored run whose model has `layout`; the clip norm continues
  // from the last completed round of `history` that moved it (adaptive clipping).
  static absl::StatusOr<std::unique_ptr<RoundPrivacy>> Restore(
      const wire::v1::RunConfig& config, const ArrayRecord& layout,
      const std::vector<wire::v1::RoundSummary>& history, CoordinatorState* state);

  const PrivacyPlan& plan() const { return plan_; }
  const std::string& dataset() const { return plan_.config.dataset(); }
  // The dataset's budget as of the last charge this run saw.
  wire::v1::PrivacyBudgetStatus Budget() const;

  // ---- Stations ----
  // Before select: the dataset's ledger with this round charged (not stored), and
  // summary->privacy filled in (mode, clip norm of this round, epsilon after it, ...).
  // RESOURCE_EXHAUSTED, saying why, when the budget cannot pay for the round.
  absl::StatusOr<storage::v1::PrivacyLedgerRecord> PlanRound(
      absl::string_view run_id, wire::v1::RoundSummary* summary) const;
  // Select: the population the accountant assumes (the round waits for all of it), and
  // Poisson sampling of `connected` with the plan's rate. FAILED_PRECONDITION when more
  // than the population are connected.
  uint64_t population() const { return plan_.config.population(); }
  absl::StatusOr<std::vector<std::string>> Sample(std::vector<std::string> connected) const;
  // Dispatch: the DP section of a training task with this round's `clip`; distributed DP
  // adds its encoding parameters, `rotation_seed` and the selection's `min_clients`.
  void Dispatch(double clip, absl::string_view rotation_seed, uint32_t min_clients,
                wire::v1::Task& task) const;
  // Accept update (central DP without secure aggregation): `update` clipped to `clip`, and
  // the client's "dp_unclipped" metric (0 or 1, absent: 0) for adaptive clipping.
  // INVALID_ARGUMENT for another metric value or a layout other than `layout`'s.
  struct ClippedUpdate {
    ArrayRecord update;
    double unclipped = 0;
  };
  static absl::StatusOr<ClippedUpdate> Clip(const ArrayRecord& update,
                                            const std::map<std::string, double>& metrics,
                                            const ArrayRecord& layout, double clip);
  // Aggregate (central): noise on the mean of `count` clipped updates with the fixed
  // denominator, and the adaptive clip's update from `unclipped` (how many were within the
  // clip); marks the summary's privacy released.
  absl::Status NoiseMean(uint64_t count, double unclipped, ArrayRecord& mean,
                         wire::v1::RoundSummary* summary) const;
  // Aggregate (distributed): the noisy mean update from the secure sum of the clients'
  // encodings.
  absl::StatusOr<ArrayRecord> MeanFromSum(absl::Span<const uint64_t> sum,
                                          absl::string_view rotation_seed,
                                          const ArrayRecord& layout) const;
  // Release: when `summary`'s attempt released a noised aggregate, stores `charge` (synced,
  // once per run/round/attempt) before anything derived from it leaves the coordinator,
  // then Commit. On error the caller fails the run.
  absl::Status Release(absl::string_view run_id, const wire::v1::RoundSummary& summary,
                       const storage::v1::PrivacyLedgerRecord& charge);
  // Commit (after the attempt's charge is stored): the budget view and, after a completed
  // round with adaptive clipping, the next round's clip norm.
  void Commit(const storage::v1::PrivacyLedgerRecord& charge,
              const wire::v1::RoundSummary& summary);

 private:
  RoundPrivacy(PrivacyPlan plan, CoordinatorState* state, double clip,
               wire::v1::PrivacyBudgetStatus budget);
  static absl::StatusOr<std::unique_ptr<RoundPrivacy>> Make(
      PrivacyPlan plan, CoordinatorState* state, const storage::v1::PrivacyLedgerRecord& ledger,
      double clip);

  CoordinatorState* const state_;
  const PrivacyPlan plan_;
  mutable NoIoMutex mu_;
  double clip_norm_ ABSL_GUARDED_BY(mu_);  // the next round's
  wire::v1::PrivacyBudgetStatus budget_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_ROUND_ROUND_PRIVACY_H_
