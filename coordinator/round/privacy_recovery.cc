// Privacy after a restart (privacy_recovery.h, docs/privacy.md "Crashes and restarts").
#include "coordinator/round/privacy_recovery.h"

#include <algorithm>

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "coordinator/round/privacy_plan.h"
#include "core/base/status_macros.h"

namespace tessera::coordinator {
namespace {

using Dp = wire::v1::DifferentialPrivacyConfig;

// The ledger of `record`'s dataset with one more round of its run charged.
absl::StatusOr<storage::v1::PrivacyLedgerRecord> ChargeForStoredRun(
    CoordinatorState& state, const storage::v1::RunRecord& record) {
  TESSERA_ASSIGN_OR_RETURN(ArrayRecord weights,
                           state.LoadModel(record.run_id(), record.completed_rounds()));
  TESSERA_ASSIGN_OR_RETURN(PrivacyPlan plan, MakePrivacyPlan(record.config(), weights));
  TESSERA_ASSIGN_OR_RETURN(storage::v1::PrivacyLedgerRecord ledger,
                           state.OpenLedger(NewLedger(plan)));
  return ChargeRound(ledger, plan, record.run_id());
}

}  // namespace

absl::StatusOr<std::optional<storage::v1::PrivacyLedgerRecord>> ChargeInterruptedSession(
    CoordinatorState& state, const storage::v1::SecAggSessionRecord& session) {
  if (session.phase() != "Unmasking") return std::nullopt;
  TESSERA_ASSIGN_OR_RETURN(storage::v1::RunRecord record, state.GetRun(session.run_id()));
  if (record.config().differential_privacy().mode() != Dp::DISTRIBUTED) return std::nullopt;
  TESSERA_ASSIGN_OR_RETURN(storage::v1::PrivacyLedgerRecord charge,
                           ChargeForStoredRun(state, record));
  LOG(WARNING) << "run " << session.run_id() << " round " << session.round()
               << ": charging the interrupted distributed-DP round (its noised sum may have "
               << "been revealed); dataset " << charge.dataset() << " epsilon now "
               << charge.epsilon_spent();
  return charge;
}

absl::Status SessionChargeError(const storage::v1::SecAggSessionRecord& session,
                                const absl::Status& why) {
  return absl::Status(why.code(),
                      absl::StrCat("cannot charge the privacy cost of run ", session.run_id(),
                                   " round ", session.round(), " (its secure aggregation "
                                   "session was in ", session.phase(), "): ", why.message()));
}

absl::Status RecoverReleases(CoordinatorState& state) {
  // A run that cannot be read is skipped here and by Recover: it never resumes, so nothing
  // of it is released after this start (what it released before was charged first).
  TESSERA_ASSIGN_OR_RETURN(std::vector<storage::v1::RunRecord> records,
                           state.ListReadableRuns(nullptr));
  TESSERA_ASSIGN_OR_RETURN(std::vector<storage::v1::SecAggSessionRecord> sessions,
                           state.ListSecAggSessions());
  for (const storage::v1::RunRecord& record : records) {
    if (record.config().differential_privacy().mode() == Dp::MODE_UNSPECIFIED) continue;
    const uint32_t open_round = record.completed_rounds() + 1;
    absl::StatusOr<std::vector<wire::v1::RoundSummary>> listed =
        state.ListRounds(record.run_id());
    if (!listed.ok()) continue;  // Recover reports the run as unreadable
    const std::vector<wire::v1::RoundSummary>& rounds = *listed;
    TESSERA_ASSIGN_OR_RETURN(std::vector<CoordinatorState::ReleaseCharge> charges,
                             state.ListReleaseCharges(record.run_id()));
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
      absl::StatusOr<storage::v1::PrivacyLedgerRecord> charge = ChargeForStoredRun(state, record);
      absl::Status stored_charge =
          charge.ok() ? state.ChargeRelease(record.run_id(), s.round(), s.attempt(), *charge)
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
      p->set_mode(DpModeName(record.config().differential_privacy().mode()));
      p->set_dataset(c.ledger.dataset());
      p->set_noise_multiplier(record.config().differential_privacy().noise_multiplier());
      // q as MakePrivacyPlan derives it (the charge used it): the history states it too.
      const Dp& dp = record.config().differential_privacy();
      p->set_sampling_rate(std::min(1.0, dp.expected_clients_per_round() / dp.population()));
      p->set_released(true);
      p->set_epsilon(c.ledger.epsilon_spent());
      p->set_delta(c.ledger.delta());
      p->set_epsilon_budget(c.ledger.epsilon_budget());
      TESSERA_RETURN_IF_ERROR(state.RecordFailedAttempt(record.run_id(), failed));
      LOG(WARNING) << "run " << record.run_id() << " round " << c.round << " attempt "
                   << c.attempt << " was released and charged (dataset " << c.ledger.dataset()
                   << " epsilon " << c.ledger.epsilon_spent()
                   << ") but not committed before the restart; recorded as failed";
    }
  }
  return absl::OkStatus();
}

}  // namespace tessera::coordinator
