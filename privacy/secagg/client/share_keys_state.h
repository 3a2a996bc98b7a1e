// File: share_keys_state.h
// Phase 1. Sent ShareKeys; awaits RelayedShares, decrypts and keeps the neighbours' shares, masks its input with exactly those neighbours and replies MaskedInput.
#ifndef TESSERA_PRIVACY_SECAGG_CLIENT_SHARE_KEYS_STATE_H_
#define TESSERA_PRIVACY_SECAGG_CLIENT_SHARE_KEYS_STATE_H_

#include <memory>

#include "absl/strings/string_view.h"
#include "privacy/secagg/client/client_state.h"

namespace tessera::secagg {

class ShareKeysState : public ClientState {
 public:
  explicit ShareKeysState(std::unique_ptr<ClientContext> ctx) : ctx_(std::move(ctx)) {}
  ClientTransition HandleMessage(const v1::ServerToClient& msg) override;
  absl::string_view Name() const override { return "ShareKeysState"; }

 private:
  std::unique_ptr<ClientContext> ctx_;
};

}  // namespace tessera::secagg

#endif  // TESSERA_PRIVACY_SECAGG_CLIENT_SHARE_KEYS_STATE_H_
