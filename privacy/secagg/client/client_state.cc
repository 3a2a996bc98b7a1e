#include "privacy/secagg/client/client_state.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "privacy/secagg/client/terminal_states.h"

namespace tessera::secagg {

absl::string_view AbortReasonName(AbortReason reason) {
  switch (reason) {
    case AbortReason::kRosterTooSmall: return "ROSTER_TOO_SMALL";
    case AbortReason::kUnsafeParameters: return "UNSAFE_PARAMETERS";
    case AbortReason::kInconsistentView: return "INCONSISTENT_VIEW";
    case AbortReason::kBadSignature: return "BAD_SIGNATURE";
    case AbortReason::kRevealBothShares: return "REVEAL_BOTH_SHARES";
    case AbortReason::kOutOfPhase: return "OUT_OF_PHASE";
    case AbortReason::kWrongSession: return "WRONG_SESSION";
    case AbortReason::kMalformedMessage: return "MALFORMED_MESSAGE";
    case AbortReason::kServerAborted: return "SERVER_ABORTED";
    case AbortReason::kInternal: return "INTERNAL";
  }
  return "UNKNOWN";
}

ClientTransition ClientState::Abort(AbortReason reason, absl::string_view message) {
  return {std::make_unique<AbortedState>(reason, message), std::nullopt};
}

std::optional<ClientTransition> ClientState::CheckIncoming(
    const ClientContext& ctx, const v1::ServerToClient& msg, v1::Phase phase,
    v1::ServerToClient::MessageCase expected_case) {
  const v1::Header& header = HeaderOf(msg);
  absl::Status s = CheckHeader(header, ctx.config.session_id, ctx.config.round, phase);
  if (absl::IsInvalidArgument(s)) return Abort(AbortReason::kWrongSession, s.message());
  if (msg.message_case() == v1::ServerToClient::kAborted) {
    return Abort(AbortReason::kServerAborted, msg.aborted().reason());
  }
  if (!s.ok()) return Abort(AbortReason::kOutOfPhase, s.message());
  if (msg.message_case() != expected_case) {
    return Abort(AbortReason::kMalformedMessage,
                 absl::StrCat("unexpected message kind ", msg.message_case(), " in phase ",
                              v1::Phase_Name(phase)));
  }
  return std::nullopt;
}

ClientTransition CompletedState::HandleMessage(const v1::ServerToClient&) {
  return {std::make_unique<CompletedState>(), std::nullopt};
}

namespace {
absl::Status ReasonStatus(AbortReason reason, absl::string_view message) {
  const std::string text = absl::StrCat("secagg client aborted (", AbortReasonName(reason),
                                        "): ", message);
  switch (reason) {
    case AbortReason::kBadSignature:
    case AbortReason::kUnsafeParameters:
    case AbortReason::kInconsistentView:
    case AbortReason::kRevealBothShares: return absl::PermissionDeniedError(text);
    case AbortReason::kWrongSession:
    case AbortReason::kMalformedMessage: return absl::InvalidArgumentError(text);
    case AbortReason::kOutOfPhase:
    case AbortReason::kRosterTooSmall: return absl::FailedPreconditionError(text);
    case AbortReason::kServerAborted: return absl::AbortedError(text);
    case AbortReason::kInternal: break;
  }
  return absl::InternalError(text);
}
}  // namespace

AbortedState::AbortedState(AbortReason reason, absl::string_view message)
    : reason_(reason), status_(ReasonStatus(reason, message)) {}

ClientTransition AbortedState::HandleMessage(const v1::ServerToClient&) {
  return {std::make_unique<AbortedState>(*this), std::nullopt};
}

}  // namespace tessera::secagg
