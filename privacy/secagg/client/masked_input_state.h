// File: masked_input_state.h
// Phase 2. Sent MaskedInput; awaits the ConsistencyRequest (the survivor and dropped sets),
// checks it and signs it (Bonawitz et al. CCS 2017, round 3).
#ifndef TESSERA_PRIVACY_SECAGG_CLIENT_MASKED_INPUT_STATE_H_
#define TESSERA_PRIVACY_SECAGG_CLIENT_MASKED_INPUT_STATE_H_

#include <memory>

#include "absl/strings/string_view.h"
#include "privacy/secagg/client/client_state.h"

namespace tessera::secagg {

class MaskedInputState : public ClientState {
 public:
  explicit MaskedInputState(std::unique_ptr<ClientContext> ctx) : ctx_(std::move(ctx)) {}
  ClientTransition HandleMessage(const v1::ServerToClient& msg) override;
  absl::string_view Name() const override { return "MaskedInputState"; }

 private:
  std::unique_ptr<ClientContext> ctx_;
};

}  // namespace tessera::secagg

#endif  // TESSERA_PRIVACY_SECAGG_CLIENT_MASKED_INPUT_STATE_H_
