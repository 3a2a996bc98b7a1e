// File: unmasking_state.h
// Phase 4. Sent UnmaskResponse; awaits RoundCompleted. A second UnmaskRequest asking for the other share of a peer already revealed is refused (kRevealBothShares).
#ifndef TESSERA_PRIVACY_SECAGG_CLIENT_UNMASKING_STATE_H_
#define TESSERA_PRIVACY_SECAGG_CLIENT_UNMASKING_STATE_H_

#include <memory>

#include "absl/strings/string_view.h"
#include "privacy/secagg/client/client_state.h"

namespace tessera::secagg {

class UnmaskingState : public ClientState {
 public:
  explicit UnmaskingState(std::unique_ptr<ClientContext> ctx) : ctx_(std::move(ctx)) {}
  ClientTransition HandleMessage(const v1::ServerToClient& msg) override;
  absl::string_view Name() const override { return "UnmaskingState"; }

 private:
  std::unique_ptr<ClientContext> ctx_;
};

}  // namespace tessera::secagg

#endif  // TESSERA_PRIVACY_SECAGG_CLIENT_UNMASKING_STATE_H_
