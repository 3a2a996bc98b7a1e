// Secure aggregation at the round loop's stations (secure_aggregation.h, docs/secagg.md).
#include "coordinator/round/secure_aggregation.h"

#include <algorithm>
#include <optional>

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "coordinator/round/privacy_recovery.h"
#include "coordinator/round/round_phases.h"
#include "core/base/status_macros.h"
#include "privacy/crypto/random.h"
#include "privacy/secagg/secagg_params.h"

namespace tessera::coordinator {
namespace {

secagg::QuantizerOptions QuantizerFor(const wire::v1::SecureAggregationConfig& c,
                                      uint32_t num_clients) {
  return {.clip = c.clip(), .max_weight = c.max_examples(), .max_clients = num_clients,
          .value_bits = c.value_bits()};
}

secagg::ThreatModel ThreatFor(const wire::v1::SecureAggregationConfig& c, uint32_t n) {
  return {.num_clients = n, .dropout_fraction = c.dropout_fraction(),
          .corrupt_fraction = c.corrupt_fraction(), .security_bits = c.security_bits()};
}

absl::Status Field(absl::string_view field, const absl::Status& s) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", s.message()));
}

}  // namespace

absl::Status SecureAggregation::CheckRun(const wire::v1::RunConfig& config,
                                         const ArrayRecord& weights,
                                         uint64_t max_message_bytes) {
  const auto& sa = config.secure_aggregation();
  if (!sa.enabled()) return absl::OkStatus();
  // The round's size: the fixed selection, or (for fractions, whose n is only known per
  // round) a 1000-client round.
  const uint32_t n = config.selection().clients_per_round() > 0
                         ? config.selection().clients_per_round()
                         : 1000;
  if (n < 3) {
    return Field("selection.clients_per_round",
                 absl::InvalidArgumentError("secure aggregation needs at least 3 clients"));
  }
  if (absl::StatusOr<secagg::SecAggParams> p = secagg::DeriveParams(ThreatFor(sa, n)); !p.ok()) {
    return Field("secure_aggregation", p.status());
  }
  absl::StatusOr<secagg::QuantizerParams> q = secagg::MakeQuantizerParams(QuantizerFor(sa, n));
  if (!q.ok()) return Field("secure_aggregation.value_bits", q.status());
  uint64_t values = 0;
  for (const secagg::TensorSpec& t : secagg::SummedTensors(weights)) values += t.length;
  if (values == 0) {
    return absl::InvalidArgumentError("secure_aggregation: the model has no float32 tensors");
  }
  return CheckMaskedInputSize("secure_aggregation: a", values, q->modulus_bits,
                              weights.tensors.size(), max_message_bytes);
}

absl::Status SecureAggregation::AbortInterruptedSessions(CoordinatorState& state) {
  TESSERA_ASSIGN_OR_RETURN(std::vector<storage::v1::SecAggSessionRecord> sessions,
                           state.ListSecAggSessions());
  for (storage::v1::SecAggSessionRecord& s : sessions) {
    if (s.state() != storage::v1::SecAggSessionRecord::ACTIVE) continue;
    // Charge first (idempotent): if it cannot be written the coordinator does not start,
    // and the session stays ACTIVE so that the next start charges it.
    absl::StatusOr<std::optional<storage::v1::PrivacyLedgerRecord>> charge =
        ChargeInterruptedSession(state, s);
    if (charge.ok() && charge->has_value()) {
      if (absl::Status c = state.ChargeRelease(s.run_id(), s.round(), s.attempt(), **charge);
          !c.ok()) {
        charge = c;
      }
    }
    if (!charge.ok()) return SessionChargeError(s, charge.status());
    s.set_state(storage::v1::SecAggSessionRecord::ABORTED);
    s.set_abort_reason(absl::StrCat("the coordinator restarted during ", s.phase(),
                                    "; the session is abandoned, never resumed"));
    s.mutable_status()->set_state("Aborted");
    s.mutable_status()->set_abort_reason(s.abort_reason());
    s.set_updated_unix_ms(absl::ToUnixMillis(absl::Now()));
    TESSERA_RETURN_IF_ERROR(state.PutSecAggSession(s));
    // The interrupted attempt goes into the round's history, so the operator sees it.
    wire::v1::RoundSummary failed;
    failed.set_round(s.round());
    failed.set_attempt(s.attempt());
    failed.set_state(wire::v1::ROUND_FAILED);
    failed.set_selected(static_cast<uint32_t>(s.clients_size()));
    failed.set_failure_reason(s.abort_reason());
    *failed.mutable_secagg() = s.status();
    if (absl::Status r = state.RecordFailedAttempt(s.run_id(), failed,
                                                   charge->has_value() ? &**charge : nullptr);
        !r.ok()) {
      LOG(WARNING) << "cannot record the interrupted attempt: " << r;
    }
    LOG(WARNING) << "run " << s.run_id() << " round " << s.round() << ": secure aggregation "
                 << "session " << s.session_id() << " was interrupted in " << s.phase()
                 << "; marked aborted";
  }
  return absl::OkStatus();
}

bool SecureAggregation::distributed_dp() const {
  return attempt_.dp != nullptr && attempt_.dp->plan().ddg.has_value();
}

absl::StatusOr<std::unique_ptr<SecureAggregation>> SecureAggregation::Open(
    const Services& services, Attempt attempt, std::vector<std::string> clients) {
  const auto& sa = attempt.config.secure_aggregation();
  const uint32_t n = static_cast<uint32_t>(clients.size());
  if (n < 3) {
    return absl::FailedPreconditionError(
        absl::StrCat("secure aggregation needs at least 3 clients, ", n, " selected"));
  }
  TESSERA_ASSIGN_OR_RETURN(secagg::QuantizerParams quantizer,
                           secagg::MakeQuantizerParams(QuantizerFor(sa, n)));
  const PrivacyPlan* dp = attempt.dp != nullptr ? &attempt.dp->plan() : nullptr;
  const bool ddg = dp != nullptr && dp->ddg.has_value();
  std::string rotation_seed;
  if (ddg) {
    TESSERA_ASSIGN_OR_RETURN(rotation_seed, crypto::RandomBytes(32));
  }

  SecAggRound::Options options;
  options.run_id = attempt.run_id;
  options.round = attempt.round;
  options.attempt = attempt.attempt;
  options.session_id = crypto::RandomHexId(16);
  options.clients = clients;
  options.threat_model = ThreatFor(sa, n);
  options.modulus_mask = ddg ? dp->ddg->modulus_mask : quantizer.modulus_mask;
  options.tensors = ddg ? std::vector<secagg::TensorSpec>{{"ddg", dp->ddg->padded_dimension}}
                        : secagg::SummedTensors(attempt.global->weights);
  // The session unmasks no sum of fewer inputs than the run may release.
  options.min_survivors = std::max<uint32_t>(1, attempt.config.selection().min_clients());
  options.verify = services.insecure
                       ? secagg::InsecureVerifier()
                       : secagg::CertificateVerifier(services.peer_trust,
                                                     [clients](uint32_t i) {
                                                       return i < clients.size() ? clients[i]
                                                                                 : "";
                                                     });
  CoordinatorState* state = services.state;
  options.persist = [state](const storage::v1::SecAggSessionRecord& r) {
    return state->PutSecAggSession(r);
  };
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<SecAggRound> session,
                           SecAggRound::Create(std::move(options)));
  std::unique_ptr<SecureAggregation> out(new SecureAggregation(
      services, std::move(attempt), std::move(clients), quantizer, std::move(rotation_seed)));
  out->session_ = std::move(session);
  return out;
}

void SecureAggregation::Dispatch(size_t index, wire::v1::Task& task) const {
  const auto& sa = attempt_.config.secure_aggregation();
  const uint32_t n = num_clients();
  wire::v1::SecAggTask* st = task.mutable_secagg();
  st->set_session_id(session_->Status().session_id());
  st->set_client_index(static_cast<uint32_t>(index));
  st->set_num_clients(n);
  st->set_clip(sa.clip());
  st->set_max_weight(sa.max_examples());
  st->set_value_bits(sa.value_bits());
  st->set_max_clients(n);
  st->set_phase_deadline_seconds(sa.phase_deadline_seconds());
  st->set_require_certificates(!services_.insecure);
  st->set_dropout_fraction(sa.dropout_fraction());
  st->set_corrupt_fraction(sa.corrupt_fraction());
  st->set_security_bits(sa.security_bits());
  if (attempt_.dp != nullptr) {
    attempt_.dp->Dispatch(attempt_.dp_clip, rotation_seed_,
                          attempt_.config.selection().min_clients(), task);
  }
}

absl::Status SecureAggregation::RunPhases(const std::function<bool()>& stop,
                                          const std::function<void()>& publish,
                                          wire::v1::RoundSummary* summary) {
  const auto& sa = attempt_.config.secure_aggregation();
  SecAggRound& secure = *session_;
  // Phase 1 (AdvertiseKeys) comes after local training, so it gets the round deadline; the
  // others get the per-phase deadline.
  absl::Status outcome;
  for (int phase = 1; phase <= 5 && outcome.ok(); ++phase) {
    const absl::Time deadline =
        absl::Now() + Seconds(phase == 1 ? attempt_.config.round().deadline_seconds()
                                         : sa.phase_deadline_seconds());
    std::string last;
    // A phase also closes early once every client it still waits for has disconnected
    // (its task subscription ended): a crashed client cannot answer any more.
    // A brief reconnect (e.g. after a transport reset) does not count: the clients must stay
    // away for kGoneGrace.
    constexpr absl::Duration kGoneGrace = absl::Seconds(3);
    std::optional<absl::Time> gone_since;
    auto all_gone = [&] {
      const std::vector<std::string> pending = secure.Pending();
      const std::vector<std::string> connected = services_.registry->Connected();
      bool gone = !pending.empty();
      for (const std::string& p : pending) {
        if (std::find(connected.begin(), connected.end(), p) != connected.end()) gone = false;
      }
      if (!gone) {
        gone_since.reset();
        return false;
      }
      if (!gone_since) gone_since = absl::Now();
      return absl::Now() - *gone_since >= kGoneGrace;
    };
    while (!secure.AllResponded() && !all_gone() && absl::Now() < deadline && !stop()) {
      secure.WaitForSubmit(std::min(deadline, absl::Now() + absl::Milliseconds(200)));
      wire::v1::SecAggRoundStatus now = secure.Status();
      if (now.SerializeAsString() != last) {
        last = now.SerializeAsString();
        publish();
      }
    }
    if (stop()) {
      secure.Cancel(absl::UnavailableError("the coordinator is stopping the run"));
      return absl::CancelledError("run stopped");
    }
    outcome = secure.Advance();
    static constexpr const char* kPhases[] = {"train_and_advertise_keys", "share_keys",
                                              "masked_input", "consistency_check",
                                              "unmasking"};
    EndPhase(summary, kPhases[phase - 1]);
    publish();
  }
  summary->mutable_secagg()->set_modulus_bits(
      distributed_dp() ? attempt_.dp->plan().config.modulus_bits() : quantizer_.modulus_bits);
  return outcome;
}

absl::StatusOr<ArrayRecord> SecureAggregation::Aggregate(wire::v1::RoundSummary* summary) {
  TESSERA_ASSIGN_OR_RETURN(secagg::SecAggResult result, session_->Result());
  summary->mutable_secagg()->set_sum_sha256(
      secagg::SumDigest(result.sums, result.weight_sum));
  summary->set_reported(static_cast<uint32_t>(result.survivors.size()));
  summary->set_num_examples(result.weight_sum);
  for (uint32_t i : result.survivors) {
    summary->add_participants(clients_[i]);
    services_.registry->CountParticipation(clients_[i]);
  }
  const ArrayRecord& layout = attempt_.global->weights;
  ArrayRecord mean;
  if (distributed_dp()) {
    // The sum the coordinator now holds is already noised: the round has spent privacy.
    summary->mutable_privacy()->set_released(true);
    if (result.sums.size() != 1) return absl::InternalError("distributed DP sum is not 1 tensor");
    TESSERA_ASSIGN_OR_RETURN(
        mean, attempt_.dp->MeanFromSum(result.sums[0].values, rotation_seed_, layout));
  } else {
    TESSERA_ASSIGN_OR_RETURN(mean, secagg::MeanDeltaFromSum(result.sums, result.weight_sum,
                                                           quantizer_, layout));
    if (attempt_.dp != nullptr) {
      TESSERA_RETURN_IF_ERROR(attempt_.dp->NoiseMean(result.weight_sum, 0, mean, summary));
    }
  }
  if (attempt_.dp != nullptr) summary->set_num_examples(0);
  summary->set_dropped(num_clients() - summary->reported());
  return mean;
}

}  // namespace tessera::coordinator
