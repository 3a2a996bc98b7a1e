// File: server_consistency_check_state.h
// Phase 3 (ConsistencyCheck, Bonawitz et al. CCS 2017 round 3): collects each survivor's
// identity signature over the survivor and dropped sets (verified against its roster
// identity); on close, needs at least t of them and sends the UnmaskRequest with the sets
// and the signatures, which every client checks before revealing any share.
#ifndef TESSERA_PRIVACY_SECAGG_SERVER_SERVER_CONSISTENCY_CHECK_STATE_H_
#define TESSERA_PRIVACY_SECAGG_SERVER_SERVER_CONSISTENCY_CHECK_STATE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "privacy/secagg/server/server_state.h"

namespace tessera::secagg {

class ServerConsistencyCheckState : public ServerState {
 public:
  explicit ServerConsistencyCheckState(std::unique_ptr<ServerContext> ctx);
  absl::Status HandleMessage(uint32_t from, const v1::ClientToServer& msg) override;
  std::unique_ptr<ServerState> Advance() override;
  v1::Phase phase() const override { return v1::CONSISTENCY_CHECK; }
  absl::string_view Name() const override { return "ServerConsistencyCheckState"; }
  bool Responded(uint32_t client) const override { return accepted_.count(client) > 0; }

 private:
  std::string payload_;                        // what every survivor signs
  std::map<uint32_t, std::string> accepted_;  // signatures, by client
};

}  // namespace tessera::secagg

#endif  // TESSERA_PRIVACY_SECAGG_SERVER_SERVER_CONSISTENCY_CHECK_STATE_H_
