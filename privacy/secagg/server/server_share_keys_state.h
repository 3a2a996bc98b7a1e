// File: server_share_keys_state.h
// Collects encrypted shares (exactly one per neighbour, no unknown peers or duplicates); on close, relays to each client the shares addressed to it by clients that completed the phase.
#ifndef TESSERA_PRIVACY_SECAGG_SERVER_SERVER_SHARE_KEYS_STATE_H_
#define TESSERA_PRIVACY_SECAGG_SERVER_SERVER_SHARE_KEYS_STATE_H_

#include <cstdint>
#include <map>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "privacy/secagg/server/server_state.h"

namespace tessera::secagg {

class ServerShareKeysState : public ServerState {
 public:
  explicit ServerShareKeysState(std::unique_ptr<ServerContext> ctx) : ServerState(std::move(ctx)) {}
  absl::Status HandleMessage(uint32_t from, const v1::ClientToServer& msg) override;
  std::unique_ptr<ServerState> Advance() override;
  v1::Phase phase() const override { return v1::SHARE_KEYS; }
  absl::string_view Name() const override { return "ServerShareKeysState"; }
  bool Responded(uint32_t client) const override { return accepted_.count(client) > 0; }

 private:
  std::map<uint32_t, v1::ShareKeys> accepted_;  // by client; only alive ones count
};

}  // namespace tessera::secagg

#endif  // TESSERA_PRIVACY_SECAGG_SERVER_SERVER_SHARE_KEYS_STATE_H_
