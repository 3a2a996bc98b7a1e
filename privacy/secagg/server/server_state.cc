#include "privacy/secagg/server/server_state.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace tessera::secagg {

absl::string_view ServerAbortReasonName(ServerAbortReason reason) {
  switch (reason) {
    case ServerAbortReason::kTooFewClients: return "TOO_FEW_CLIENTS";
    case ServerAbortReason::kTooFewShares: return "TOO_FEW_SHARES";
    case ServerAbortReason::kReconstructionFailed: return "RECONSTRUCTION_FAILED";
    case ServerAbortReason::kInternal: return "INTERNAL";
  }
  return "UNKNOWN";
}

bool ServerContext::IsNeighbor(uint32_t a, uint32_t b) const {
  auto it = graph.find(a);
  return it != graph.end() && std::binary_search(it->second.begin(), it->second.end(), b);
}

void ServerContext::Reject(uint32_t client, v1::Phase phase, const absl::Status& why) {
  alive.erase(client);
  Stats(phase).rejected.emplace_back(client, why);
}

void ServerContext::CloseSilent(v1::Phase phase, const std::set<uint32_t>& responded) {
  PhaseStats& s = Stats(phase);
  for (auto it = alive.begin(); it != alive.end();) {
    if (responded.count(*it) == 0) {
      s.dropped.push_back(*it);
      it = alive.erase(it);
    } else {
      ++it;
    }
  }
  s.responded = static_cast<uint32_t>(alive.size());
}

void ServerContext::Broadcast(const v1::ServerToClient& msg) {
  for (uint32_t c : alive) outbox.emplace_back(c, msg);
}

std::unique_ptr<ServerState> ServerState::Abort(ServerAbortReason reason,
                                                absl::string_view message) {
  v1::ServerToClient msg;
  *msg.mutable_aborted()->mutable_header() =
      MakeHeader(ctx_->config.session_id, ctx_->config.round, phase());
  msg.mutable_aborted()->set_reason(
      absl::StrCat(ServerAbortReasonName(reason), ": ", message));
  ctx_->Broadcast(msg);
  return std::make_unique<ServerAbortedState>(std::move(ctx_), reason, message);
}

absl::Status ServerCompletedState::HandleMessage(uint32_t, const v1::ClientToServer&) {
  return absl::FailedPreconditionError("secagg round already completed");
}

std::unique_ptr<ServerState> ServerCompletedState::Advance() {
  return std::make_unique<ServerCompletedState>(std::move(ctx_));
}

ServerAbortedState::ServerAbortedState(std::unique_ptr<ServerContext> ctx,
                                       ServerAbortReason reason, absl::string_view message)
    : ServerState(std::move(ctx)),
      reason_(reason),
      status_(absl::AbortedError(absl::StrCat("secagg round aborted (",
                                              ServerAbortReasonName(reason), "): ",
                                              message))) {}

absl::Status ServerAbortedState::HandleMessage(uint32_t, const v1::ClientToServer&) {
  return status_;
}

std::unique_ptr<ServerState> ServerAbortedState::Advance() {
  return std::make_unique<ServerAbortedState>(std::move(ctx_), reason_, status_.message());
}

}  // namespace tessera::secagg
