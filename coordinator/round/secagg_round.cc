#include "coordinator/round/secagg_round.h"

#include <utility>

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/base/status_macros.h"
#include "core/crypto/sha256.h"

namespace tessera::coordinator {
namespace {

constexpr const char* kPhaseNames[] = {"AdvertiseKeys", "ShareKeys", "MaskedInput",
                                       "ConsistencyCheck", "Unmasking"};

}  // namespace

absl::StatusOr<std::unique_ptr<SecAggRound>> SecAggRound::Create(Options options) {
  secagg::ServerConfig config;
  config.session_id = options.session_id;
  config.round = options.round;
  config.threat_model = options.threat_model;
  config.threat_model.num_clients = static_cast<uint32_t>(options.clients.size());
  config.modulus_mask = options.modulus_mask;
  config.tensors = options.tensors;
  config.verify = options.verify;
  config.min_survivors = options.min_survivors;
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<secagg::SecAggServer> server,
                           secagg::SecAggServer::Create(std::move(config)));
  std::unique_ptr<SecAggRound> round(new SecAggRound(std::move(options), std::move(server)));
  absl::MutexLock sequence(&round->persist_mu_);
  storage::v1::SecAggSessionRecord record;
  {
    NoIoMutexLock l(&round->mu_);
    record = round->RecordLocked(storage::v1::SecAggSessionRecord::ACTIVE);
  }
  TESSERA_RETURN_IF_ERROR(round->Store(record));
  return round;
}

SecAggRound::~SecAggRound() {
  Answers answers;
  {
    NoIoMutexLock l(&mu_);
    TakeWaitingLocked(absl::UnavailableError("the secure aggregation session ended"), answers);
  }
  Answer(std::move(answers));
}

absl::Status SecAggRound::Submit(uint32_t index, const secagg::v1::ClientToServer& msg,
                                 Reply reply) {
  // Hashed outside the lock: masked inputs are megabytes and clients submit concurrently.
  std::string digest = crypto::Sha256Digest(msg.SerializeAsString());
  Answers answers;  // the superseded call of a retry, answered after unlocking
  {
    NoIoMutexLock l(&mu_);
    if (cancelled_) {
      return absl::FailedPreconditionError(
          absl::StrCat("secure aggregation session ended: ", cancel_reason_));
    }
    if (auto w = waiting_.find(index); w != waiting_.end() && last_digest_[index] == digest) {
      answers.emplace_back(std::move(w->second),
                           absl::CancelledError("superseded by a retry of the same message"));
      w->second = std::move(reply);
    } else {
      if (waiting_.count(index) > 0) {
        return absl::AlreadyExistsError(
            "a different message of this client is already waiting");
      }
      TESSERA_RETURN_IF_ERROR(server_->HandleMessage(index, msg));
      waiting_[index] = std::move(reply);
      last_digest_[index] = std::move(digest);
      ++submits_;
    }
  }
  Answer(std::move(answers));
  return absl::OkStatus();
}

absl::Status SecAggRound::Withdraw(uint32_t index, const absl::Status& why) {
  Answers answers;
  {
    NoIoMutexLock l(&mu_);
    if (cancelled_) {
      return absl::FailedPreconditionError(
          absl::StrCat("secure aggregation session ended: ", cancel_reason_));
    }
    TESSERA_RETURN_IF_ERROR(server_->Withdraw(index, why));
    if (auto w = waiting_.find(index); w != waiting_.end()) {
      answers.emplace_back(std::move(w->second),
                           absl::AbortedError(absl::StrCat(
                               "withdrew from the secure aggregation round: ", why.message())));
      waiting_.erase(w);
    }
    ++submits_;  // the phase may now be complete: wake the driver
  }
  Answer(std::move(answers));
  return absl::OkStatus();
}

bool SecAggRound::AllResponded() const { return server_->AllResponded(); }

std::vector<std::string> SecAggRound::Pending() const {
  std::vector<std::string> names;
  for (uint32_t i : server_->Pending()) {
    if (i < options_.clients.size()) names.push_back(options_.clients[i]);
  }
  return names;
}

void SecAggRound::WaitForSubmit(absl::Time until) {
  NoIoMutexLock l(&mu_);
  const uint64_t seen = submits_;
  auto changed = [this, seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return submits_ != seen || cancelled_;
  };
  mu_.AwaitWithDeadline(absl::Condition(&changed), until);
}

absl::Status SecAggRound::Advance() {
  // The phase closes under mu_; its trace is written with mu_ released (status calls and
  // submits go on meanwhile) and before any client hears of the new phase; the replies run
  // after mu_ is released again.
  absl::MutexLock sequence(&persist_mu_);
  absl::Status advanced;
  std::vector<std::pair<uint32_t, secagg::v1::ServerToClient>> out;
  storage::v1::SecAggSessionRecord record;
  {
    NoIoMutexLock l(&mu_);
    if (cancelled_) return absl::FailedPreconditionError("the session was cancelled");
    if (server_->Status().phase == secagg::v1::PHASE_UNSPECIFIED) {
      return absl::FailedPreconditionError("the session is already over");
    }
    advanced = server_->AdvancePhase();
    out = server_->TakeOutgoing();
    for (const auto& [to, m] : out) {
      // The survivor set goes out first in the ConsistencyRequest; the UnmaskRequest repeats
      // it (with the signatures).
      if (m.has_consistency_request()) {
        unmask_survivors_.assign(m.consistency_request().survivors().begin(),
                                 m.consistency_request().survivors().end());
        unmask_dropped_.assign(m.consistency_request().dropped().begin(),
                               m.consistency_request().dropped().end());
        break;
      }
    }
    using Record = storage::v1::SecAggSessionRecord;
    const secagg::SecAggStatus status = server_->Status();
    const Record::State state = status.phase != secagg::v1::PHASE_UNSPECIFIED ? Record::ACTIVE
                                : advanced.ok()                              ? Record::COMPLETED
                                                                             : Record::ABORTED;
    record = RecordLocked(state);
  }
  // The trace is durable before any client hears of the new phase: after a crash the
  // session is known to be interrupted, and never resumed (docs/secagg.md, "Restarts").
  const absl::Status persisted = Store(record);
  Answers answers;
  {
    NoIoMutexLock l(&mu_);
    if (!persisted.ok()) {
      LOG(ERROR) << "secagg session " << options_.session_id
                 << ": cannot store trace: " << persisted;
      cancelled_ = true;
      cancel_reason_ = "the coordinator cannot store the session trace";
      TakeWaitingLocked(absl::UnavailableError(cancel_reason_), answers);
    } else {
      for (auto& [to, m] : out) {
        auto it = waiting_.find(to);
        if (it == waiting_.end()) continue;  // the call is gone; the client drops next phase
        answers.emplace_back(std::move(it->second), std::move(m));
        waiting_.erase(it);
      }
      TakeWaitingLocked(absl::AbortedError(advanced.ok()
                                               ? "dropped from the secure aggregation round"
                                               : advanced.message()),
                        answers);
    }
  }
  Answer(std::move(answers));
  if (!persisted.ok()) {
    return absl::InternalError(absl::StrCat("cannot store the secure aggregation trace: ",
                                            persisted.message()));
  }
  return advanced;
}

bool SecAggRound::Done() const {
  NoIoMutexLock l(&mu_);
  return cancelled_ || server_->Status().phase == secagg::v1::PHASE_UNSPECIFIED;
}

void SecAggRound::Cancel(const absl::Status& why) {
  absl::MutexLock sequence(&persist_mu_);
  Answers answers;
  storage::v1::SecAggSessionRecord record;
  {
    NoIoMutexLock l(&mu_);
    const secagg::v1::Phase phase = server_->Status().phase;
    if (cancelled_ || phase == secagg::v1::PHASE_UNSPECIFIED) return;  // already over
    cancelled_phase_ = kPhaseNames[static_cast<int>(phase) - 1];
    cancelled_ = true;
    cancel_reason_ = std::string(why.message());
    TakeWaitingLocked(why, answers);
    record = RecordLocked(storage::v1::SecAggSessionRecord::ABORTED);
  }
  if (absl::Status s = Store(record); !s.ok()) {
    LOG(ERROR) << "secagg session " << options_.session_id << ": cannot store abort: " << s;
  }
  Answer(std::move(answers));
}

absl::StatusOr<secagg::SecAggResult> SecAggRound::Result() const { return server_->Result(); }

wire::v1::SecAggRoundStatus SecAggRound::Status() const {
  NoIoMutexLock l(&mu_);
  return StatusLocked();
}

wire::v1::SecAggRoundStatus SecAggRound::StatusLocked() const {
  const secagg::SecAggStatus s = server_->Status();
  auto name = [this](uint32_t i) {
    return i < options_.clients.size() ? options_.clients[i] : absl::StrCat("#", i);
  };
  wire::v1::SecAggRoundStatus out;
  out.set_session_id(options_.session_id);
  // The phase collecting, by the names of docs/secagg.md; "Completed" or "Aborted" after.
  out.set_state(cancelled_ ? "Aborted"
                : s.phase != secagg::v1::PHASE_UNSPECIFIED
                    ? kPhaseNames[static_cast<int>(s.phase) - 1]
                    : s.state);
  out.set_degree_k(s.degree_k);
  out.set_threshold_t(s.threshold_t);
  for (size_t p = 0; p < s.phases.size(); ++p) {
    const secagg::PhaseStats& stats = s.phases[p];
    if (stats.expected == 0) continue;  // not reached
    wire::v1::SecAggPhaseStatus* phase = out.add_phases();
    phase->set_phase(kPhaseNames[p]);
    phase->set_expected(stats.expected);
    phase->set_responded(stats.responded);
    for (uint32_t i : stats.dropped) phase->add_dropped(name(i));
    for (const auto& [i, why] : stats.rejected) {
      phase->add_rejected(absl::StrCat(name(i), ": ", why.message()));
    }
  }
  out.set_survivors(s.survivors);
  if (cancelled_) {
    out.set_abort_reason(cancel_reason_);
  } else if (s.abort_reason.has_value()) {
    out.set_abort_reason(std::string(s.abort_status.message()));
  }
  return out;
}

storage::v1::SecAggSessionRecord SecAggRound::RecordLocked(
    storage::v1::SecAggSessionRecord::State state) const {
  storage::v1::SecAggSessionRecord record;
  record.set_run_id(options_.run_id);
  record.set_round(options_.round);
  record.set_attempt(options_.attempt);
  record.set_session_id(options_.session_id);
  record.set_state(state);
  *record.mutable_status() = StatusLocked();
  record.set_phase(cancelled_ ? cancelled_phase_ : record.status().state());
  for (const std::string& c : options_.clients) record.add_clients(c);
  record.set_degree_k(record.status().degree_k());
  record.set_threshold_t(record.status().threshold_t());
  for (uint32_t i : unmask_survivors_) record.add_unmask_survivors(i);
  for (uint32_t i : unmask_dropped_) record.add_unmask_dropped(i);
  record.set_abort_reason(record.status().abort_reason());
  record.set_updated_unix_ms(absl::ToUnixMillis(absl::Now()));
  return record;
}

absl::Status SecAggRound::Store(const storage::v1::SecAggSessionRecord& record) {
  return options_.persist ? options_.persist(record) : absl::OkStatus();
}

void SecAggRound::TakeWaitingLocked(const absl::Status& why, Answers& answers) {
  for (auto& [index, reply] : waiting_) answers.emplace_back(std::move(reply), why);
  waiting_.clear();
}

void SecAggRound::Answer(Answers answers) {
  // A reply finishes a gRPC call: under a no-I/O mutex it would stall every status call
  // (and may re-enter this session). Mechanical guard for core/base/no_io_mutex.h's rule.
  CHECK_EQ(NoIoMutexesHeld(), 0) << "a secure aggregation reply under a no-I/O mutex";
  for (auto& [reply, message] : answers) reply(std::move(message));
}

absl::Status CheckMaskedInputSize(absl::string_view what, uint64_t values, uint32_t bits,
                                  size_t tensors, uint64_t max_message_bytes) {
  // Packed varints of b bits, plus per-tensor framing.
  const uint64_t bytes = values * ((bits + 6) / 7) + 64 * tensors + 4096;
  if (bytes <= max_message_bytes) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      what, " masked input of this model (", values, " values of ", bits, " bits) takes about ",
      bytes, " bytes, over the coordinator's ", max_message_bytes,
      "-byte message limit (--max-message-bytes)"));
}

}  // namespace tessera::coordinator
