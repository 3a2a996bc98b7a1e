// A run's organization-level differential privacy at the round loop's stations
// (round_privacy.h, docs/privacy.md).
#include "coordinator/round/round_privacy.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "coordinator/round/secagg_round.h"
#include "core/base/status_macros.h"
#include "privacy/dp/adaptive_clipping.h"
#include "privacy/dp/clipping.h"
#include "privacy/dp/ddg_codec.h"
#include "privacy/dp/random_source.h"
#include "privacy/dp/update_dp.h"

namespace tessera::coordinator {
namespace {

using Dp = wire::v1::DifferentialPrivacyConfig;

std::string Eps(double e) { return absl::StrFormat("%.4g", e); }

}  // namespace

RoundPrivacy::RoundPrivacy(PrivacyPlan plan, CoordinatorState* state, double clip,
                           wire::v1::PrivacyBudgetStatus budget)
    : state_(state), plan_(std::move(plan)), clip_norm_(clip), budget_(std::move(budget)) {}

absl::StatusOr<std::unique_ptr<RoundPrivacy>> RoundPrivacy::Make(
    PrivacyPlan plan, CoordinatorState* state, const storage::v1::PrivacyLedgerRecord& ledger,
    double clip) {
  TESSERA_ASSIGN_OR_RETURN(wire::v1::PrivacyBudgetStatus budget, BudgetStatus(ledger, plan));
  return std::unique_ptr<RoundPrivacy>(
      new RoundPrivacy(std::move(plan), state, clip, std::move(budget)));
}

absl::StatusOr<std::unique_ptr<RoundPrivacy>> RoundPrivacy::Open(
    const wire::v1::RunConfig& config, const ArrayRecord& weights, CoordinatorState* state,
    uint64_t max_message_bytes) {
  TESSERA_ASSIGN_OR_RETURN(PrivacyPlan plan, MakePrivacyPlan(config, weights));
  if (plan.ddg.has_value()) {
    TESSERA_RETURN_IF_ERROR(CheckMaskedInputSize("differential_privacy: a distributed-DP",
                                                 plan.ddg->padded_dimension,
                                                 plan.config.modulus_bits(), 1,
                                                 max_message_bytes));
  }
  TESSERA_ASSIGN_OR_RETURN(storage::v1::PrivacyLedgerRecord ledger,
                           state->OpenLedger(NewLedger(plan)));
  TESSERA_RETURN_IF_ERROR(CheckSameBudget(ledger, plan));
  TESSERA_ASSIGN_OR_RETURN(storage::v1::PrivacyLedgerRecord next,
                           ChargeRound(ledger, plan, "new"));
  if (next.epsilon_spent() > ledger.epsilon_budget()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "differential_privacy: the budget of dataset \"", ledger.dataset(),
        "\" cannot pay for one round of this run: epsilon spent ", Eps(ledger.epsilon_spent()),
        " of ", Eps(ledger.epsilon_budget()), " (delta ", ledger.delta(), ") over ",
        ledger.rounds_charged(), " rounds; one more round would reach ",
        Eps(next.epsilon_spent()), ". Raise noise_multiplier or lower the sampling rate"));
  }
  const double clip = config.differential_privacy().clip_norm();
  return Make(std::move(plan), state, ledger, clip);
}

absl::StatusOr<std::unique_ptr<RoundPrivacy>> RoundPrivacy::Restore(
    const wire::v1::RunConfig& config, const ArrayRecord& layout,
    const std::vector<wire::v1::RoundSummary>& history, CoordinatorState* state) {
  TESSERA_ASSIGN_OR_RETURN(PrivacyPlan plan, MakePrivacyPlan(config, layout));
  TESSERA_ASSIGN_OR_RETURN(storage::v1::PrivacyLedgerRecord ledger,
                           state->OpenLedger(NewLedger(plan)));
  double clip = config.differential_privacy().clip_norm();
  for (const wire::v1::RoundSummary& h : history) {
    if (h.state() == wire::v1::ROUND_COMPLETED && h.privacy().next_clip_norm() > 0) {
      clip = h.privacy().next_clip_norm();
    }
  }
  return Make(std::move(plan), state, ledger, clip);
}

wire::v1::PrivacyBudgetStatus RoundPrivacy::Budget() const {
  NoIoMutexLock l(&mu_);
  return budget_;
}

absl::StatusOr<storage::v1::PrivacyLedgerRecord> RoundPrivacy::PlanRound(
    absl::string_view run_id, wire::v1::RoundSummary* summary) const {
  TESSERA_ASSIGN_OR_RETURN(std::optional<storage::v1::PrivacyLedgerRecord> ledger,
                           state_->GetLedger(plan_.config.dataset()));
  if (!ledger.has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the privacy ledger of dataset ", plan_.config.dataset(), " is missing"));
  }
  double order = 0;
  TESSERA_ASSIGN_OR_RETURN(storage::v1::PrivacyLedgerRecord next,
                           ChargeRound(*ledger, plan_, run_id, &order));
  if (next.epsilon_spent() > ledger->epsilon_budget()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "privacy budget of dataset \"", ledger->dataset(), "\" spent: epsilon ",
        Eps(ledger->epsilon_spent()), " of ", Eps(ledger->epsilon_budget()), " (delta ",
        ledger->delta(), ") after ", ledger->rounds_charged(), " rounds; round ",
        summary->round(), " would bring it to ", Eps(next.epsilon_spent()),
        ", so the coordinator stopped the run before it"));
  }
  wire::v1::PrivacyRoundStatus* p = summary->mutable_privacy();
  p->set_mode(DpModeName(plan_.config.mode()));
  p->set_dataset(plan_.config.dataset());
  p->set_noise_multiplier(plan_.config.noise_multiplier());
  {
    NoIoMutexLock l(&mu_);
    p->set_clip_norm(clip_norm_);
  }
  p->set_sampling_rate(plan_.sampling_rate);
  p->set_epsilon(next.epsilon_spent());
  p->set_delta(next.delta());
  p->set_epsilon_budget(next.epsilon_budget());
  p->set_round_epsilon(plan_.round_epsilon);
  p->set_order(order);
  return next;
}

absl::StatusOr<std::vector<std::string>> RoundPrivacy::Sample(
    std::vector<std::string> connected) const {
  if (connected.size() > plan_.config.population()) {
    return absl::FailedPreconditionError(absl::StrCat(
        connected.size(), " clients are connected, more than differential_privacy.population ",
        "= ", plan_.config.population(), "; the run's privacy parameters assume at most that"));
  }
  if (plan_.sampling_rate >= 1) return connected;
  TESSERA_ASSIGN_OR_RETURN(dp::SecureRandom rng, dp::SecureRandom::Create());
  std::vector<std::string> chosen;
  for (std::string& c : connected) {
    if (rng.UniformUnit() < plan_.sampling_rate) chosen.push_back(std::move(c));
  }
  return chosen;
}

void RoundPrivacy::Dispatch(double clip, absl::string_view rotation_seed, uint32_t min_clients,
                            wire::v1::Task& task) const {
  wire::v1::DpTask* d = task.mutable_dp();
  d->set_mode(plan_.config.mode());
  d->set_clip_norm(clip);
  if (!plan_.ddg.has_value()) return;
  d->set_modulus_bits(plan_.config.modulus_bits());
  d->set_noise_stddev(plan_.ddg->options.noise_stddev);
  d->set_min_clients(min_clients);
  d->set_max_clients(plan_.config.population());
  d->set_rotation_seed(std::string(rotation_seed));
}

absl::StatusOr<RoundPrivacy::ClippedUpdate> RoundPrivacy::Clip(
    const ArrayRecord& update, const std::map<std::string, double>& metrics,
    const ArrayRecord& layout, double clip) {
  ClippedUpdate out;
  auto bit = metrics.find("dp_unclipped");
  if (bit != metrics.end()) {
    if (bit->second != 0 && bit->second != 1) {
      return absl::InvalidArgumentError("metric \"dp_unclipped\" must be 0 or 1");
    }
    out.unclipped = bit->second;
  }
  out.update = update;
  TESSERA_RETURN_IF_ERROR(CheckSameLayout(layout, out.update));
  dp::ClipUpdate(out.update, clip);
  return out;
}

absl::Status RoundPrivacy::NoiseMean(uint64_t count, double unclipped, ArrayRecord& mean,
                                     wire::v1::RoundSummary* summary) const {
  const Dp& c = plan_.config;
  const double clip = summary->privacy().clip_norm();
  TESSERA_ASSIGN_OR_RETURN(dp::SecureRandom rng, dp::SecureRandom::Create());
  TESSERA_RETURN_IF_ERROR(dp::NoisedMeanFromMean(mean, count, c.expected_clients_per_round(),
                                                 CentralSensitivity(plan_, clip),
                                                 plan_.update_noise_multiplier, rng));
  wire::v1::PrivacyRoundStatus* p = summary->mutable_privacy();
  p->set_released(true);
  if (!c.adaptive_clipping().enabled()) return absl::OkStatus();
  // Andrew et al. 2021: b = (sum (b_i - 1/2) + N(0, sigma_b^2)) / E + 1/2, sensitivity 1/2.
  const auto& a = c.adaptive_clipping();
  TESSERA_ASSIGN_OR_RETURN(
      const double b,
      dp::NoisedUnclippedFraction(static_cast<uint64_t>(unclipped), count,
                                  c.expected_clients_per_round(),
                                  a.clipped_count_stddev(), rng));
  p->set_unclipped_fraction(b);
  p->set_next_clip_norm(dp::NextClipNorm(clip, b, a.learning_rate(), a.target_quantile()));
  return absl::OkStatus();
}

absl::StatusOr<ArrayRecord> RoundPrivacy::MeanFromSum(absl::Span<const uint64_t> sum,
                                                      absl::string_view rotation_seed,
                                                      const ArrayRecord& layout) const {
  TESSERA_ASSIGN_OR_RETURN(std::vector<float> total,
                           dp::DecodeDdgSum(sum, *plan_.ddg, rotation_seed));
  return dp::UnflattenFloat32(total, layout, 1.0 / plan_.config.expected_clients_per_round());
}

absl::Status RoundPrivacy::Release(absl::string_view run_id,
                                   const wire::v1::RoundSummary& summary,
                                   const storage::v1::PrivacyLedgerRecord& charge) {
  TESSERA_RETURN_IF_ERROR(
      state_->ChargeRelease(run_id, summary.round(), summary.attempt(), charge));
  Commit(charge, summary);
  return absl::OkStatus();
}

void RoundPrivacy::Commit(const storage::v1::PrivacyLedgerRecord& charge,
                          const wire::v1::RoundSummary& summary) {
  absl::StatusOr<wire::v1::PrivacyBudgetStatus> budget = BudgetStatus(charge, plan_);
  NoIoMutexLock l(&mu_);
  if (budget.ok()) budget_ = *std::move(budget);
  if (summary.state() == wire::v1::ROUND_COMPLETED && summary.privacy().next_clip_norm() > 0) {
    clip_norm_ = summary.privacy().next_clip_norm();
  }
}

}  // namespace tessera::coordinator
