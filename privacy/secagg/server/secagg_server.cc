#include "privacy/secagg/server/secagg_server.h"

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "privacy/secagg/server/server_advertise_keys_state.h"

namespace tessera::secagg {
namespace {

v1::ClientToServer::MessageCase CaseOf(v1::Phase phase) {
  switch (phase) {
    case v1::ADVERTISE_KEYS: return v1::ClientToServer::kAdvertiseKeys;
    case v1::SHARE_KEYS: return v1::ClientToServer::kShareKeys;
    case v1::MASKED_INPUT_COLLECTION: return v1::ClientToServer::kMaskedInput;
    case v1::CONSISTENCY_CHECK: return v1::ClientToServer::kConsistencySignature;
    case v1::UNMASKING: return v1::ClientToServer::kUnmaskResponse;
    default: return v1::ClientToServer::MESSAGE_NOT_SET;
  }
}

// The phase- and session-level checks every message passes before its state sees it.
absl::Status CheckEnvelope(const ServerState& state, uint32_t from,
                           const v1::ClientToServer& msg) {
  const ServerContext& c = state.ctx();
  const v1::Header& h = HeaderOf(msg);
  const v1::Phase current = state.phase();
  absl::Status s = CheckHeader(h, c.config.session_id, c.config.round, current);
  if (absl::IsInvalidArgument(s)) return s;
  if (h.phase() < current || (h.phase() == current && state.Responded(from))) {
    return absl::AlreadyExistsError(absl::StrCat("client ", from, " replayed a ",
                                                 v1::Phase_Name(h.phase()), " message during ",
                                                 v1::Phase_Name(current)));
  }
  if (!s.ok()) return s;  // a later phase: reordered
  if (msg.message_case() != CaseOf(current)) {
    return absl::InvalidArgumentError(absl::StrCat("message kind ", msg.message_case(),
                                                   " does not match phase ",
                                                   v1::Phase_Name(current)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<SecAggServer>> SecAggServer::Create(ServerConfig config) {
  const uint64_t m = config.modulus_mask;
  if (config.session_id.empty()) return absl::InvalidArgumentError("empty session_id");
  if (m == 0 || (m & (m + 1)) != 0) {
    return absl::InvalidArgumentError("modulus_mask is not 2^b - 1");
  }
  if (config.tensors.empty()) return absl::InvalidArgumentError("no tensors");
  if (!config.verify) return absl::InvalidArgumentError("verify is required");
  TESSERA_RETURN_IF_ERROR(DeriveParams(config.threat_model).status());
  auto ctx = std::make_unique<ServerContext>();
  for (uint32_t i = 0; i < config.threat_model.num_clients; ++i) ctx->alive.insert(i);
  ctx->config = std::move(config);
  ctx->Stats(v1::ADVERTISE_KEYS).expected = static_cast<uint32_t>(ctx->alive.size());
  return std::unique_ptr<SecAggServer>(
      new SecAggServer(std::make_unique<ServerAdvertiseKeysState>(std::move(ctx))));
}

absl::Status SecAggServer::HandleMessage(uint32_t from, const v1::ClientToServer& msg) {
  absl::MutexLock l(&mu_);
  ServerContext& c = state_->ctx();
  if (from >= c.config.threat_model.num_clients) {
    return absl::NotFoundError(absl::StrCat("no client ", from, " in this round"));
  }
  if (state_->IsTerminal()) return absl::FailedPreconditionError("secagg round is over");
  if (c.alive.count(from) == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("client ", from, " is no longer in the round"));
  }
  absl::Status s = CheckEnvelope(*state_, from, msg);
  if (s.ok()) s = state_->HandleMessage(from, msg);
  if (!s.ok()) c.Reject(from, state_->phase(), s);
  return s;
}

absl::Status SecAggServer::Withdraw(uint32_t index, const absl::Status& why) {
  absl::MutexLock l(&mu_);
  ServerContext& c = state_->ctx();
  if (index >= c.config.threat_model.num_clients) {
    return absl::NotFoundError(absl::StrCat("no client ", index, " in this round"));
  }
  if (state_->IsTerminal()) return absl::FailedPreconditionError("secagg round is over");
  if (c.alive.count(index) == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("client ", index, " is no longer in the round"));
  }
  c.Reject(index, state_->phase(), why);
  return absl::OkStatus();
}

absl::Status SecAggServer::AdvancePhase() {
  absl::MutexLock l(&mu_);
  if (state_->IsTerminal()) return absl::FailedPreconditionError("secagg round is over");
  state_ = state_->Advance();
  ServerContext& c = state_->ctx();
  if (auto* aborted = dynamic_cast<ServerAbortedState*>(state_.get())) {
    return aborted->status();
  }
  if (!state_->IsTerminal()) {
    c.Stats(state_->phase()).expected = static_cast<uint32_t>(c.alive.size());
  }
  return absl::OkStatus();
}

bool SecAggServer::AllResponded() const {
  absl::MutexLock l(&mu_);
  if (state_->IsTerminal()) return false;
  for (uint32_t i : state_->ctx().alive) {
    if (!state_->Responded(i)) return false;
  }
  return true;
}

std::vector<uint32_t> SecAggServer::Pending() const {
  absl::MutexLock l(&mu_);
  std::vector<uint32_t> pending;
  if (state_->IsTerminal()) return pending;
  for (uint32_t i : state_->ctx().alive) {
    if (!state_->Responded(i)) pending.push_back(i);
  }
  return pending;
}

std::vector<std::pair<uint32_t, v1::ServerToClient>> SecAggServer::TakeOutgoing() {
  absl::MutexLock l(&mu_);
  std::vector<std::pair<uint32_t, v1::ServerToClient>> out;
  out.swap(state_->ctx().outbox);
  return out;
}

SecAggStatus SecAggServer::Status() const {
  absl::MutexLock l(&mu_);
  const ServerContext& c = state_->ctx();
  SecAggStatus s;
  s.phase = state_->phase();
  s.state = std::string(state_->Name());
  s.phases = c.stats;
  s.alive = static_cast<uint32_t>(c.alive.size());
  if (!state_->IsTerminal()) {  // live progress of the phase collecting
    uint32_t answered = 0;
    for (uint32_t i : c.alive) answered += state_->Responded(i) ? 1 : 0;
    s.phases[static_cast<size_t>(s.phase) - 1].responded = answered;
  }
  s.degree_k = c.degree_k;
  s.threshold_t = c.threshold_t;
  if (auto* aborted = dynamic_cast<const ServerAbortedState*>(state_.get())) {
    s.abort_reason = aborted->reason();
    s.abort_status = aborted->status();
  } else if (state_->IsTerminal()) {
    s.survivors = static_cast<uint32_t>(c.survivors.size());
  }
  return s;
}

absl::StatusOr<SecAggResult> SecAggServer::Result() const {
  absl::MutexLock l(&mu_);
  if (auto* aborted = dynamic_cast<const ServerAbortedState*>(state_.get())) {
    return aborted->status();
  }
  if (!state_->IsTerminal()) return absl::FailedPreconditionError("secagg round not over");
  const ServerContext& c = state_->ctx();
  SecAggResult r;
  for (size_t i = 0; i < c.config.tensors.size(); ++i) {
    r.sums.push_back({c.config.tensors[i].name, c.sum[i]});
  }
  r.weight_sum = c.sum.back()[0];
  r.survivors.assign(c.survivors.begin(), c.survivors.end());
  return r;
}

}  // namespace tessera::secagg
