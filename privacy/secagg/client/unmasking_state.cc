#include "privacy/secagg/client/unmasking_state.h"

#include "absl/strings/str_cat.h"
#include "privacy/secagg/client/terminal_states.h"

namespace tessera::secagg {

ClientTransition UnmaskingState::HandleMessage(const v1::ServerToClient& msg) {
  // A second unmask request that asks for the other share of a peer already revealed would
  // let the server unmask that peer's individual input: refuse it by name.
  if (msg.message_case() == v1::ServerToClient::kUnmaskRequest) {
    const v1::UnmaskRequest& req = msg.unmask_request();
    for (const auto& [owner, revealed_b] : ctx_->revealed_b_share) {
      const auto& other = revealed_b ? req.dropped() : req.survivors();
      for (uint32_t i : other) {
        if (i == owner) {
          return Abort(AbortReason::kRevealBothShares,
                       absl::StrCat("already revealed the ", revealed_b ? "b" : "s_sk",
                                    "-share of client ", owner));
        }
      }
    }
  }
  if (auto abort =
          CheckIncoming(*ctx_, msg, v1::UNMASKING, v1::ServerToClient::kCompleted)) {
    return std::move(*abort);
  }
  return {std::make_unique<CompletedState>(), std::nullopt};
}

}  // namespace tessera::secagg
