// File: privacy_plan.h
// What differential privacy costs a run, round by round (docs/privacy.md): the mechanism's
// per-round Renyi DP at the accountant's orders, the parameters the clients encode with,
// and the arithmetic of the per-dataset budget ledger. Pure functions; RunManager persists
// the ledger (CoordinatorState) and refuses rounds the budget cannot pay for.
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(PrivacyPlan plan, MakePrivacyPlan(config, weights));
//   TESSERA_ASSIGN_OR_RETURN(storage::v1::PrivacyLedgerRecord next,
//                            ChargeRound(ledger, plan, run_id));
//   if (next.epsilon_spent() > next.epsilon_budget()) ... refuse the round ...
#ifndef TESSERA_COORDINATOR_ROUND_PRIVACY_PLAN_H_
#define TESSERA_COORDINATOR_ROUND_PRIVACY_PLAN_H_

#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/model/tensor.h"
#include "privacy/dp/ddg_codec.h"
#include "tessera/storage/v1/records.pb.h"
#include "tessera/wire/v1/control.pb.h"
#include "tessera/wire/v1/run_config.pb.h"

namespace tessera::coordinator {

struct PrivacyPlan {
  wire::v1::DifferentialPrivacyConfig config;
  double sampling_rate = 0;           // q = expected_clients_per_round / population
  std::vector<double> orders;         // dp::DefaultOrders()
  std::vector<double> round_rdp;      // one round's RDP at each order
  double round_epsilon = 0;           // one round alone, at config.delta()
  // CENTRAL: the multiplier of the noise on the update sum. Equal to noise_multiplier
  // unless adaptive clipping spends part of the budget on the clipped count (Andrew et al.
  // 2021: 1/z^2 = 1/z_u^2 + 1/(2 sigma_b)^2).
  double update_noise_multiplier = 0;
  uint64_t dimension = 0;             // float32 values per update
  // CENTRAL with secure aggregation: the most the quantizer's stochastic rounding can move
  // one client's update in L2 norm, sqrt(dimension) / scale (each value by less than one
  // integer unit, 1 / scale real units, at weight 1). The update's sensitivity is
  // clip + this, and the noise is scaled to it (CentralSensitivity). 0 otherwise.
  double quantization_l2_error = 0;
  std::optional<dp::DdgParams> ddg;   // DISTRIBUTED
};

// INVALID_ARGUMENT naming the field when the run's DP cannot work with this model (e.g. the
// distributed mechanism's modulus is too small for it). REQUIRES: a DP mode is set and the
// config passed ValidateRunConfig.
absl::StatusOr<PrivacyPlan> MakePrivacyPlan(const wire::v1::RunConfig& config,
                                            const ArrayRecord& weights);

// CENTRAL: the L2 sensitivity of the sum of updates clipped to `clip`, rounding included:
// clip + quantization_l2_error. The noise on the sum is update_noise_multiplier times this.
double CentralSensitivity(const PrivacyPlan& plan, double clip);

// "central" or "distributed", as RoundSummary.privacy.mode shows the mechanism.
const char* DpModeName(wire::v1::DifferentialPrivacyConfig::Mode mode);

// An empty ledger for the plan's dataset, budget and delta.
storage::v1::PrivacyLedgerRecord NewLedger(const PrivacyPlan& plan);

// FAILED_PRECONDITION with the reason when `ledger` (the dataset's stored one) was opened
// with another budget or delta than the plan's: the first run on a dataset fixes both.
absl::Status CheckSameBudget(const storage::v1::PrivacyLedgerRecord& ledger,
                             const PrivacyPlan& plan);

// `ledger` with one more round of `plan` charged by `run_id`, epsilon_spent recomputed;
// `order`, when set, gets the Renyi order that gives that epsilon.
absl::StatusOr<storage::v1::PrivacyLedgerRecord> ChargeRound(
    const storage::v1::PrivacyLedgerRecord& ledger, const PrivacyPlan& plan,
    absl::string_view run_id, double* order = nullptr);

// The operator's view of `ledger` for a run with `plan`.
absl::StatusOr<wire::v1::PrivacyBudgetStatus> BudgetStatus(
    const storage::v1::PrivacyLedgerRecord& ledger, const PrivacyPlan& plan);

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_ROUND_PRIVACY_PLAN_H_
