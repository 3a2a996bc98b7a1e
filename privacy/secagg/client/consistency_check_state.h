// File: consistency_check_state.h
// Phase 3 (ConsistencyCheck). Signed the survivor set; awaits the UnmaskRequest, which must
// list exactly the signed sets and carry at least t valid signatures over them from distinct
// survivors, and only then reveals, per neighbour it holds shares of, the b-share
// (survivor) or the s_sk-share (dropped), never both.
#ifndef TESSERA_PRIVACY_SECAGG_CLIENT_CONSISTENCY_CHECK_STATE_H_
#define TESSERA_PRIVACY_SECAGG_CLIENT_CONSISTENCY_CHECK_STATE_H_

#include <memory>

#include "absl/strings/string_view.h"
#include "privacy/secagg/client/client_state.h"

namespace tessera::secagg {

class ConsistencyCheckState : public ClientState {
 public:
  explicit ConsistencyCheckState(std::unique_ptr<ClientContext> ctx) : ctx_(std::move(ctx)) {}
  ClientTransition HandleMessage(const v1::ServerToClient& msg) override;
  absl::string_view Name() const override { return "ConsistencyCheckState"; }

 private:
  std::unique_ptr<ClientContext> ctx_;
};

}  // namespace tessera::secagg

#endif  // TESSERA_PRIVACY_SECAGG_CLIENT_CONSISTENCY_CHECK_STATE_H_
