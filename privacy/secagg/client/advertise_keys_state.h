// File: advertise_keys_state.h
// Phase 0. Sent AdvertiseKeys; awaits the Roster, verifies it (signatures, size against t), Shamir-shares s_sk and b to its neighbours and replies ShareKeys.
#ifndef TESSERA_PRIVACY_SECAGG_CLIENT_ADVERTISE_KEYS_STATE_H_
#define TESSERA_PRIVACY_SECAGG_CLIENT_ADVERTISE_KEYS_STATE_H_

#include <memory>

#include "absl/strings/string_view.h"
#include "privacy/secagg/client/client_state.h"

namespace tessera::secagg {

class AdvertiseKeysState : public ClientState {
 public:
  explicit AdvertiseKeysState(std::unique_ptr<ClientContext> ctx) : ctx_(std::move(ctx)) {}
  ClientTransition HandleMessage(const v1::ServerToClient& msg) override;
  absl::string_view Name() const override { return "AdvertiseKeysState"; }

 private:
  std::unique_ptr<ClientContext> ctx_;
};

}  // namespace tessera::secagg

#endif  // TESSERA_PRIVACY_SECAGG_CLIENT_ADVERTISE_KEYS_STATE_H_
