// File: server_masked_input_state.h
// Collects masked inputs (validated against the tensor specs and 2^b); on close, refuses a
// survivor set below t or min_survivors, adds the inputs into the masked sum and sends the
// ConsistencyRequest (survivors, dropped).
#ifndef TESSERA_PRIVACY_SECAGG_SERVER_SERVER_MASKED_INPUT_STATE_H_
#define TESSERA_PRIVACY_SECAGG_SERVER_SERVER_MASKED_INPUT_STATE_H_

#include <cstdint>
#include <map>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "privacy/secagg/server/server_state.h"

namespace tessera::secagg {

class ServerMaskedInputState : public ServerState {
 public:
  explicit ServerMaskedInputState(std::unique_ptr<ServerContext> ctx) : ServerState(std::move(ctx)) {}
  absl::Status HandleMessage(uint32_t from, const v1::ClientToServer& msg) override;
  std::unique_ptr<ServerState> Advance() override;
  v1::Phase phase() const override { return v1::MASKED_INPUT_COLLECTION; }
  absl::string_view Name() const override { return "ServerMaskedInputState"; }
  bool Responded(uint32_t client) const override { return accepted_.count(client) > 0; }

 private:
  std::map<uint32_t, v1::MaskedInput> accepted_;  // by client; only alive ones count
};

}  // namespace tessera::secagg

#endif  // TESSERA_PRIVACY_SECAGG_SERVER_SERVER_MASKED_INPUT_STATE_H_
