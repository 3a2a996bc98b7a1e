// Differential privacy in the round loop (docs/privacy.md): the per-dataset budget ledger,
// Poisson sampling, the DP section of tasks, and turning clipped updates (central) or the
// secure sum of discrete-Gaussian-noised encodings (distributed) into the next model.
#include <algorithm>
#include <cmath>
#include <csignal>

#include <glog/logging.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "coordinator/round/run_manager.h"
#include "coordinator/round/run_manager_internal.h"
#include "core/base/status_macros.h"
#include "privacy/dp/adaptive_clipping.h"
#include "privacy/dp/clipping.h"
#include "privacy/dp/ddg_codec.h"
#include "privacy/dp/random_source.h"
#include "privacy/dp/update_dp.h"

namespace tessera::coordinator {
namespace {

using Dp = wire::v1::DifferentialPrivacyConfig;

const char* ModeName(Dp::Mode mode) { return mode == Dp::DISTRIBUTED ? "distributed" : "central"; }

std::string Eps(double e) { return absl::StrFormat("%.4g", e); }

}  // namespace

absl::StatusOr<std::optional<RunManager::OpenedPrivacy>> RunManager::OpenPrivacy(
    const wire::v1::RunConfig& config, const ArrayRecord& weights) {
  if (config.differential_privacy().mode() == Dp::MODE_UNSPECIFIED) return std::nullopt;
  TESSERA_ASSIGN_OR_RETURN(PrivacyPlan plan, MakePrivacyPlan(config, weights));
  if (plan.ddg.has_value()) {
    TESSERA_RETURN_IF_ERROR(CheckMaskedInputSize("differential_privacy: a distributed-DP",
                                                 plan.ddg->padded_dimension,
                                                 plan.config.modulus_bits(), 1));
  }
  TESSERA_ASSIGN_OR_RETURN(storage::v1::PrivacyLedgerRecord ledger,
                           state_->OpenLedger(NewLedger(plan)));
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
  return OpenedPrivacy{std::move(plan), std::move(ledger)};
}

absl::Status RunManager::InstallPrivacy(const std::shared_ptr<Run>& run, PrivacyPlan plan,
                                        const storage::v1::PrivacyLedgerRecord& ledger,
                                        double clip) {
  TESSERA_ASSIGN_OR_RETURN(wire::v1::PrivacyBudgetStatus budget, BudgetStatus(ledger, plan));
  // Under the run's mutex: EnsureLoaded installs an ended run's plan while status and
  // metrics readers may look at it.
  NoIoMutexLock l(&run->mu);
  run->privacy = std::move(plan);
  run->clip_norm = clip;
  run->budget = std::move(budget);
  return absl::OkStatus();
}

absl::Status RunManager::RestorePrivacy(const std::shared_ptr<Run>& run) {
  wire::v1::RunConfig config;
  std::shared_ptr<const ModelSnapshot> model;
  std::vector<wire::v1::RoundSummary> history;
  uint32_t run_completed_rounds = 0;
  {
    NoIoMutexLock l(&run->mu);
    config = run->record.config();
    model = run->model;
    history = run->history;
    run_completed_rounds = run->record.completed_rounds();
  }
  if (config.differential_privacy().mode() == Dp::MODE_UNSPECIFIED) return absl::OkStatus();
  if (model == nullptr) {  // an ended run loaded lightly: its layout from the stored model
    TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<ModelSnapshot> stored,
                             LoadSnapshot(run->id, run_completed_rounds));
    model = std::move(stored);
  }
  TESSERA_ASSIGN_OR_RETURN(PrivacyPlan plan, MakePrivacyPlan(config, model->weights));
  TESSERA_ASSIGN_OR_RETURN(storage::v1::PrivacyLedgerRecord ledger,
                           state_->OpenLedger(NewLedger(plan)));
  double clip = config.differential_privacy().clip_norm();
  for (const wire::v1::RoundSummary& h : history) {
    if (h.state() == wire::v1::ROUND_COMPLETED && h.privacy().next_clip_norm() > 0) {
      clip = h.privacy().next_clip_norm();
    }
  }
  return InstallPrivacy(run, std::move(plan), ledger, clip);
}

absl::Status RunManager::CheckDatasetFree(const Run& run) {
  if (!run.privacy.has_value()) return absl::OkStatus();
  std::vector<std::shared_ptr<Run>> runs;
  {
    absl::MutexLock l(&mu_);
    for (auto& [id, r] : runs_) runs.push_back(r);
  }
  for (const std::shared_ptr<Run>& other : runs) {
    if (other->id == run.id) continue;
    // A running run's plan is constant (an ended one's may be installed by EnsureLoaded).
    NoIoMutexLock l(&other->mu);
    if (other->record.state() == wire::v1::RUNNING && other->privacy.has_value() &&
        other->privacy->config.dataset() == run.privacy->config.dataset()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "run ", other->id, " is running on dataset \"", run.privacy->config.dataset(),
          "\" and spends its privacy budget; one run at a time may spend a dataset's budget"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<storage::v1::PrivacyLedgerRecord> RunManager::ChargeNextRound(
    const std::shared_ptr<Run>& run, wire::v1::RoundSummary* summary) {
  const PrivacyPlan& plan = *run->privacy;
  TESSERA_ASSIGN_OR_RETURN(std::optional<storage::v1::PrivacyLedgerRecord> ledger,
                           state_->GetLedger(plan.config.dataset()));
  if (!ledger.has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the privacy ledger of dataset ", plan.config.dataset(), " is missing"));
  }
  double order = 0;
  TESSERA_ASSIGN_OR_RETURN(storage::v1::PrivacyLedgerRecord next,
                           ChargeRound(*ledger, plan, run->id, &order));
  if (next.epsilon_spent() > ledger->epsilon_budget()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "privacy budget of dataset \"", ledger->dataset(), "\" spent: epsilon ",
        Eps(ledger->epsilon_spent()), " of ", Eps(ledger->epsilon_budget()), " (delta ",
        ledger->delta(), ") after ", ledger->rounds_charged(), " rounds; round ",
        summary->round(), " would bring it to ", Eps(next.epsilon_spent()),
        ", so the coordinator stopped the run before it"));
  }
  wire::v1::PrivacyRoundStatus* p = summary->mutable_privacy();
  p->set_mode(ModeName(plan.config.mode()));
  p->set_dataset(plan.config.dataset());
  p->set_noise_multiplier(plan.config.noise_multiplier());
  {
    NoIoMutexLock l(&run->mu);
    p->set_clip_norm(run->clip_norm);
  }
  p->set_sampling_rate(plan.sampling_rate);
  p->set_epsilon(next.epsilon_spent());
  p->set_delta(next.delta());
  p->set_epsilon_budget(next.epsilon_budget());
  p->set_round_epsilon(plan.round_epsilon);
  p->set_order(order);
  return next;
}

void RunManager::AfterCharge(const std::shared_ptr<Run>& run,
                             const storage::v1::PrivacyLedgerRecord& ledger,
                             const wire::v1::RoundSummary& summary) {
  absl::StatusOr<wire::v1::PrivacyBudgetStatus> budget = BudgetStatus(ledger, *run->privacy);
  NoIoMutexLock l(&run->mu);
  if (budget.ok()) run->budget = *std::move(budget);
  if (summary.state() == wire::v1::ROUND_COMPLETED && summary.privacy().next_clip_norm() > 0) {
    run->clip_norm = summary.privacy().next_clip_norm();
  }
}

absl::StatusOr<std::vector<std::string>> RunManager::PoissonSample(
    const PrivacyPlan& plan, std::vector<std::string> connected) {
  if (connected.size() > plan.config.population()) {
    return absl::FailedPreconditionError(absl::StrCat(
        connected.size(), " clients are connected, more than differential_privacy.population ",
        "= ", plan.config.population(), "; the run's privacy parameters assume at most that"));
  }
  if (plan.sampling_rate >= 1) return connected;
  TESSERA_ASSIGN_OR_RETURN(dp::SecureRandom rng, dp::SecureRandom::Create());
  std::vector<std::string> chosen;
  for (std::string& c : connected) {
    if (rng.UniformUnit() < plan.sampling_rate) chosen.push_back(std::move(c));
  }
  return chosen;
}

void RunManager::AddDpTask(const PrivacyPlan& plan, double clip, absl::string_view rotation_seed,
                           const wire::v1::RunConfig& config, wire::v1::Task& task) {
  wire::v1::DpTask* d = task.mutable_dp();
  d->set_mode(plan.config.mode());
  d->set_clip_norm(clip);
  if (!plan.ddg.has_value()) return;
  d->set_modulus_bits(plan.config.modulus_bits());
  d->set_noise_stddev(plan.ddg->options.noise_stddev);
  d->set_min_clients(config.selection().min_clients());
  d->set_max_clients(plan.config.population());
  d->set_rotation_seed(std::string(rotation_seed));
}

absl::Status RunManager::FinishCentralDp(const PrivacyPlan& plan, uint64_t count,
                                         double unclipped, ArrayRecord& mean,
                                         wire::v1::RoundSummary* summary) {
  const Dp& c = plan.config;
  const double clip = summary->privacy().clip_norm();
  TESSERA_ASSIGN_OR_RETURN(dp::SecureRandom rng, dp::SecureRandom::Create());
  TESSERA_RETURN_IF_ERROR(dp::NoisedMeanFromMean(mean, count, c.expected_clients_per_round(),
                                                 CentralSensitivity(plan, clip),
                                                 plan.update_noise_multiplier, rng));
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

absl::StatusOr<ArrayRecord> RunManager::DdgMeanFromSum(const PrivacyPlan& plan,
                                                       absl::Span<const uint64_t> sum,
                                                       absl::string_view rotation_seed,
                                                       const ArrayRecord& layout) {
  TESSERA_ASSIGN_OR_RETURN(std::vector<float> total,
                           dp::DecodeDdgSum(sum, *plan.ddg, rotation_seed));
  return dp::UnflattenFloat32(total, layout, 1.0 / plan.config.expected_clients_per_round());
}

absl::StatusOr<std::optional<storage::v1::PrivacyLedgerRecord>> RunManager::ChargeInterrupted(
    const storage::v1::SecAggSessionRecord& session) {
  if (session.phase() != "Unmasking") return std::nullopt;
  TESSERA_ASSIGN_OR_RETURN(storage::v1::RunRecord record, state_->GetRun(session.run_id()));
  if (record.config().differential_privacy().mode() != Dp::DISTRIBUTED) return std::nullopt;
  TESSERA_ASSIGN_OR_RETURN(storage::v1::PrivacyLedgerRecord charge, ChargeForStoredRun(record));
  LOG(WARNING) << "run " << session.run_id() << " round " << session.round()
               << ": charging the interrupted distributed-DP round (its noised sum may have "
               << "been revealed); dataset " << charge.dataset() << " epsilon now "
               << charge.epsilon_spent();
  return charge;
}

absl::StatusOr<storage::v1::PrivacyLedgerRecord> RunManager::ChargeForStoredRun(
    const storage::v1::RunRecord& record) {
  TESSERA_ASSIGN_OR_RETURN(ArrayRecord weights,
                           state_->LoadModel(record.run_id(), record.completed_rounds()));
  TESSERA_ASSIGN_OR_RETURN(PrivacyPlan plan, MakePrivacyPlan(record.config(), weights));
  TESSERA_ASSIGN_OR_RETURN(storage::v1::PrivacyLedgerRecord ledger,
                           state_->OpenLedger(NewLedger(plan)));
  return ChargeRound(ledger, plan, record.run_id());
}

absl::Status RunManager::ChargeRelease(const std::shared_ptr<Run>& run,
                                       const wire::v1::RoundSummary& summary,
                                       const storage::v1::PrivacyLedgerRecord& charge) {
  TESSERA_RETURN_IF_ERROR(
      state_->ChargeRelease(run->id, summary.round(), summary.attempt(), charge));
  AfterCharge(run, charge, summary);
  return absl::OkStatus();
}

absl::Status SessionChargeError(const storage::v1::SecAggSessionRecord& session,
                                const absl::Status& why) {
  return absl::Status(why.code(),
                      absl::StrCat("cannot charge the privacy cost of run ", session.run_id(),
                                   " round ", session.round(), " (its secure aggregation "
                                   "session was in ", session.phase(), "): ", why.message()));
}

absl::Status RunManager::RecoverReleases() {
  // A run that cannot be read is skipped here and by Recover: it never resumes, so nothing
  // of it is released after this start (what it released before was charged first).
  TESSERA_ASSIGN_OR_RETURN(std::vector<storage::v1::RunRecord> records,
                           state_->ListReadableRuns(nullptr));
  TESSERA_ASSIGN_OR_RETURN(std::vector<storage::v1::SecAggSessionRecord> sessions,
                           state_->ListSecAggSessions());
  for (const storage::v1::RunRecord& record : records) {
    if (record.config().differential_privacy().mode() == Dp::MODE_UNSPECIFIED) continue;
    const uint32_t open_round = record.completed_rounds() + 1;
    absl::StatusOr<std::vector<wire::v1::RoundSummary>> listed =
        state_->ListRounds(record.run_id());
    if (!listed.ok()) continue;  // Recover reports the run as unreadable
    const std::vector<wire::v1::RoundSummary>& rounds = *listed;
    TESSERA_ASSIGN_OR_RETURN(std::vector<CoordinatorState::ReleaseCharge> charges,
                             state_->ListReleaseCharges(record.run_id()));
    auto stored = [&](uint32_t attempt) {
      return std::any_of(rounds.begin(), rounds.end(), [&](const wire::v1::RoundSummary& r) {
        return r.round() == open_round && r.attempt() == attempt;
      });
    };
    auto charged = [&](uint32_t attempt) {
      return std::any_of(charges.begin(), charges.end(),
                         [&](const CoordinatorState::ReleaseCharge& c) {
                           return c.round == open_round && c.attempt == attempt;
                         });
    };
    // A distributed-DP sum the previous process computed (its session completed) but
    // stopped before charging: charge it now, with its failed attempt.
    for (const storage::v1::SecAggSessionRecord& s : sessions) {
      if (s.run_id() != record.run_id() || s.round() != open_round ||
          s.state() != storage::v1::SecAggSessionRecord::COMPLETED ||
          record.config().differential_privacy().mode() != Dp::DISTRIBUTED ||
          stored(s.attempt()) || charged(s.attempt())) {
        continue;
      }
      absl::StatusOr<storage::v1::PrivacyLedgerRecord> charge = ChargeForStoredRun(record);
      absl::Status stored_charge =
          charge.ok() ? state_->ChargeRelease(record.run_id(), s.round(), s.attempt(), *charge)
                      : charge.status();
      if (!stored_charge.ok()) return SessionChargeError(s, stored_charge);
      LOG(WARNING) << "run " << record.run_id() << " round " << s.round() << " attempt "
                   << s.attempt() << ": its distributed-DP sum was computed before the "
                   << "restart and is charged now; dataset " << charge->dataset()
                   << " epsilon " << charge->epsilon_spent();
      charges.push_back({s.round(), s.attempt(), *charge});
    }
    // Charged releases that were never committed: stored as failed attempts, so history
    // shows them and the next attempt gets a new number (and a charge of its own).
    for (const CoordinatorState::ReleaseCharge& c : charges) {
      if (c.round != open_round || stored(c.attempt)) continue;
      wire::v1::RoundSummary failed;
      failed.set_round(c.round);
      failed.set_attempt(c.attempt);
      failed.set_state(wire::v1::ROUND_FAILED);
      failed.set_failure_reason(
          "the coordinator stopped after this attempt's release was charged and before its "
          "round was committed");
      wire::v1::PrivacyRoundStatus* p = failed.mutable_privacy();
      p->set_mode(ModeName(record.config().differential_privacy().mode()));
      p->set_dataset(c.ledger.dataset());
      p->set_noise_multiplier(record.config().differential_privacy().noise_multiplier());
      // q as MakePrivacyPlan derives it (the charge used it): the history states it too.
      const Dp& dp = record.config().differential_privacy();
      p->set_sampling_rate(std::min(1.0, dp.expected_clients_per_round() / dp.population()));
      p->set_released(true);
      p->set_epsilon(c.ledger.epsilon_spent());
      p->set_delta(c.ledger.delta());
      p->set_epsilon_budget(c.ledger.epsilon_budget());
      TESSERA_RETURN_IF_ERROR(state_->RecordFailedAttempt(record.run_id(), failed));
      LOG(WARNING) << "run " << record.run_id() << " round " << c.round << " attempt "
                   << c.attempt << " was released and charged (dataset " << c.ledger.dataset()
                   << " epsilon " << c.ledger.epsilon_spent()
                   << ") but not committed before the restart; recorded as failed";
    }
  }
  return absl::OkStatus();
}

void RunManager::FaultPoint(const std::shared_ptr<Run>& run, uint32_t round) {
  const std::string& spec = options_.fault_crash_at;
  const size_t colon = spec.rfind(':');
  uint32_t at = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(spec.substr(colon + 1), &at) ||
      at != round) {
    return;
  }
  const std::string station = spec.substr(0, colon);
  if (station == "cancel" || station == "shutdown") {
    // Hold the released, uncommitted round until the operator stops it.
    while (!run->stop && !shutting_down_) absl::SleepFor(absl::Milliseconds(20));
    if ((station == "shutdown") != shutting_down_.load()) return;
  } else if (station != "before-commit") {
    return;
  }
  LOG(ERROR) << "--fault-crash-at=" << spec << ": killing the coordinator (testing only)";
  google::FlushLogFiles(google::GLOG_INFO);
  raise(SIGKILL);
}

}  // namespace tessera::coordinator
