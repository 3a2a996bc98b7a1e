// File: server_advertise_keys_state.h
// Collects signed key advertisements (a bad signature is PERMISSION_DENIED); on close, derives k and t for the clients left, draws the graph seed and broadcasts the Roster.
#ifndef TESSERA_PRIVACY_SECAGG_SERVER_SERVER_ADVERTISE_KEYS_STATE_H_
#define TESSERA_PRIVACY_SECAGG_SERVER_SERVER_ADVERTISE_KEYS_STATE_H_

#include <cstdint>
#include <map>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "privacy/secagg/server/server_state.h"

namespace tessera::secagg {

class ServerAdvertiseKeysState : public ServerState {
 public:
  explicit ServerAdvertiseKeysState(std::unique_ptr<ServerContext> ctx) : ServerState(std::move(ctx)) {}
  absl::Status HandleMessage(uint32_t from, const v1::ClientToServer& msg) override;
  std::unique_ptr<ServerState> Advance() override;
  v1::Phase phase() const override { return v1::ADVERTISE_KEYS; }
  absl::string_view Name() const override { return "ServerAdvertiseKeysState"; }
  bool Responded(uint32_t client) const override { return accepted_.count(client) > 0; }

 private:
  std::map<uint32_t, v1::AdvertiseKeys> accepted_;  // by client; only alive ones count
};

}  // namespace tessera::secagg

#endif  // TESSERA_PRIVACY_SECAGG_SERVER_SERVER_ADVERTISE_KEYS_STATE_H_
