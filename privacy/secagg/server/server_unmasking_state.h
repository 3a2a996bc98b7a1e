// File: server_unmasking_state.h
// Collects revealed shares (only of neighbours, one kind per owner, the kind the owner's fate calls for); on close, reconstructs b of survivors and s_sk of dropped clients and unmasks the sum.
#ifndef TESSERA_PRIVACY_SECAGG_SERVER_SERVER_UNMASKING_STATE_H_
#define TESSERA_PRIVACY_SECAGG_SERVER_SERVER_UNMASKING_STATE_H_

#include <cstdint>
#include <map>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "privacy/secagg/server/server_state.h"

namespace tessera::secagg {

class ServerUnmaskingState : public ServerState {
 public:
  explicit ServerUnmaskingState(std::unique_ptr<ServerContext> ctx) : ServerState(std::move(ctx)) {}
  absl::Status HandleMessage(uint32_t from, const v1::ClientToServer& msg) override;
  std::unique_ptr<ServerState> Advance() override;
  v1::Phase phase() const override { return v1::UNMASKING; }
  absl::string_view Name() const override { return "ServerUnmaskingState"; }
  bool Responded(uint32_t client) const override { return accepted_.count(client) > 0; }

 private:
  std::map<uint32_t, v1::UnmaskResponse> accepted_;  // by client; only alive ones count
};

}  // namespace tessera::secagg

#endif  // TESSERA_PRIVACY_SECAGG_SERVER_SERVER_UNMASKING_STATE_H_
