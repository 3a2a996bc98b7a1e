#include "coordinator/round/privacy_plan.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/base/status_macros.h"
#include "privacy/dp/rdp_accountant.h"
#include "privacy/secagg/quantizer.h"
#include "privacy/secagg/update_codec.h"

namespace tessera::coordinator {
namespace {

using Dp = wire::v1::DifferentialPrivacyConfig;

absl::StatusOr<dp::EpsilonResult> Epsilon(const std::vector<double>& orders,
                                          absl::Span<const double> rdp, double delta) {
  return dp::EpsilonFromRdp(orders, rdp, delta, dp::Conversion::kImproved);
}

// sqrt(dimension) / scale for the quantizer the secure aggregation session uses at weight
// 1. The scale does not depend on max_clients (only the modulus does), so 1 is passed.
absl::StatusOr<double> QuantizationL2Error(const wire::v1::SecureAggregationConfig& sa,
                                           uint64_t dimension) {
  absl::StatusOr<secagg::QuantizerParams> q = secagg::MakeQuantizerParams(
      {.clip = sa.clip(), .max_weight = sa.max_examples(), .max_clients = 1,
       .value_bits = sa.value_bits()});
  if (!q.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("secure_aggregation: ", q.status().message()));
  }
  return std::sqrt(static_cast<double>(dimension)) / q->scale;
}

}  // namespace

double CentralSensitivity(const PrivacyPlan& plan, double clip) {
  return clip + plan.quantization_l2_error;
}

absl::StatusOr<PrivacyPlan> MakePrivacyPlan(const wire::v1::RunConfig& config,
                                            const ArrayRecord& weights) {
  PrivacyPlan plan;
  plan.config = config.differential_privacy();
  const Dp& c = plan.config;
  plan.sampling_rate = std::min(1.0, c.expected_clients_per_round() / c.population());
  plan.orders = dp::DefaultOrders();
  for (const secagg::TensorSpec& t : secagg::SummedTensors(weights)) plan.dimension += t.length;
  if (plan.dimension == 0) {
    return absl::InvalidArgumentError(
        "differential_privacy: the model has no float32 tensors to protect");
  }
  const double z = c.noise_multiplier();
  if (c.mode() == Dp::CENTRAL) {
    plan.update_noise_multiplier = z;
    if (c.adaptive_clipping().enabled()) {
      const double zb = 2 * c.adaptive_clipping().clipped_count_stddev();
      plan.update_noise_multiplier = 1 / std::sqrt(1 / (z * z) - 1 / (zb * zb));
    }
    if (config.secure_aggregation().enabled()) {
      TESSERA_ASSIGN_OR_RETURN(plan.quantization_l2_error,
                               QuantizationL2Error(config.secure_aggregation(), plan.dimension));
      if (plan.quantization_l2_error > c.clip_norm()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "differential_privacy: secure aggregation's rounding can move an update by up to ",
            plan.quantization_l2_error, " in L2 norm, more than clip_norm = ", c.clip_norm(),
            "; raise secure_aggregation.value_bits or lower secure_aggregation.clip"));
      }
    }
    // The noise is a discrete Gaussian (dp::NoisedMeanFromMean): rho = 1/(2 z^2)-zCDP, with
    // Zhu & Wang's general bound when clients are sampled (q = 1: exactly alpha / (2 z^2)).
    TESSERA_ASSIGN_OR_RETURN(plan.round_rdp, dp::DistributedDiscreteGaussianRdp(
                                                 plan.sampling_rate, 0.5 / (z * z), plan.orders));
  } else {
    dp::DdgOptions o;
    o.clip = c.clip_norm();
    o.dimension = plan.dimension;
    o.modulus_bits = c.modulus_bits();
    o.noise_stddev = z * c.clip_norm();
    o.min_clients = config.selection().min_clients();
    o.max_clients = c.population();
    absl::StatusOr<dp::DdgParams> ddg = dp::MakeDdgParams(o);
    if (!ddg.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "differential_privacy (distributed, modulus_bits = ", c.modulus_bits(),
          ", model of ", plan.dimension, " values): ", ddg.status().message()));
    }
    plan.ddg = *std::move(ddg);
    // Any survivor count from min_clients to the population may be released: the bound
    // takes the noise at min_clients and tau at the population (docs/privacy.md).
    TESSERA_ASSIGN_OR_RETURN(
        double rho, dp::DistributedDiscreteGaussianRho(
                        plan.ddg->l2_sensitivity, plan.ddg->sigma2_per_client,
                        o.min_clients, o.max_clients, plan.ddg->padded_dimension));
    TESSERA_ASSIGN_OR_RETURN(plan.round_rdp, dp::DistributedDiscreteGaussianRdp(
                                                 plan.sampling_rate, rho, plan.orders));
  }
  TESSERA_ASSIGN_OR_RETURN(dp::EpsilonResult one, Epsilon(plan.orders, plan.round_rdp,
                                                          c.delta()));
  plan.round_epsilon = one.epsilon;
  return plan;
}

const char* DpModeName(wire::v1::DifferentialPrivacyConfig::Mode mode) {
  return mode == wire::v1::DifferentialPrivacyConfig::DISTRIBUTED ? "distributed" : "central";
}

storage::v1::PrivacyLedgerRecord NewLedger(const PrivacyPlan& plan) {
  storage::v1::PrivacyLedgerRecord l;
  l.set_dataset(plan.config.dataset());
  l.set_epsilon_budget(plan.config.epsilon_budget());
  l.set_delta(plan.config.delta());
  for (double order : plan.orders) {
    l.add_orders(order);
    l.add_rdp(0);
  }
  l.set_updated_unix_ms(absl::ToUnixMillis(absl::Now()));
  return l;
}

absl::Status CheckSameBudget(const storage::v1::PrivacyLedgerRecord& ledger,
                             const PrivacyPlan& plan) {
  if (ledger.epsilon_budget() == plan.config.epsilon_budget() &&
      ledger.delta() == plan.config.delta()) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "differential_privacy: dataset \"", ledger.dataset(), "\" has a budget of epsilon = ",
      ledger.epsilon_budget(), ", delta = ", ledger.delta(),
      ", fixed by its first run; this run asks for epsilon = ", plan.config.epsilon_budget(),
      ", delta = ", plan.config.delta(),
      ". A dataset's budget cannot be changed or reset by creating another run"));
}

absl::StatusOr<storage::v1::PrivacyLedgerRecord> ChargeRound(
    const storage::v1::PrivacyLedgerRecord& ledger, const PrivacyPlan& plan,
    absl::string_view run_id, double* order) {
  if (ledger.orders_size() != static_cast<int>(plan.orders.size()) ||
      ledger.rdp_size() != ledger.orders_size()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "privacy ledger of ", ledger.dataset(), " was kept at other RDP orders"));
  }
  storage::v1::PrivacyLedgerRecord next = ledger;
  for (size_t i = 0; i < plan.orders.size(); ++i) {
    if (ledger.orders(static_cast<int>(i)) != plan.orders[i]) {
      return absl::FailedPreconditionError(absl::StrCat(
          "privacy ledger of ", ledger.dataset(), " was kept at other RDP orders"));
    }
    next.set_rdp(static_cast<int>(i), ledger.rdp(static_cast<int>(i)) + plan.round_rdp[i]);
  }
  next.set_rounds_charged(ledger.rounds_charged() + 1);
  if (next.run_ids_size() == 0 || next.run_ids(next.run_ids_size() - 1) != run_id) {
    next.add_run_ids(std::string(run_id));
  }
  TESSERA_ASSIGN_OR_RETURN(dp::EpsilonResult e,
                           Epsilon(plan.orders, next.rdp(), ledger.delta()));
  next.set_epsilon_spent(e.epsilon);
  if (order != nullptr) *order = e.order;
  next.set_updated_unix_ms(absl::ToUnixMillis(absl::Now()));
  return next;
}

absl::StatusOr<wire::v1::PrivacyBudgetStatus> BudgetStatus(
    const storage::v1::PrivacyLedgerRecord& ledger, const PrivacyPlan& plan) {
  wire::v1::PrivacyBudgetStatus s;
  s.set_dataset(ledger.dataset());
  s.set_epsilon_budget(ledger.epsilon_budget());
  s.set_delta(ledger.delta());
  s.set_epsilon_spent(ledger.epsilon_spent());
  s.set_rounds_charged(ledger.rounds_charged());
  for (const std::string& id : ledger.run_ids()) s.add_run_ids(id);
  TESSERA_ASSIGN_OR_RETURN(storage::v1::PrivacyLedgerRecord next,
                           ChargeRound(ledger, plan, "next"));
  s.set_next_round_epsilon(next.epsilon_spent());
  return s;
}

}  // namespace tessera::coordinator
