#include "privacy/secagg/server/server_share_keys_state.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "privacy/secagg/server/server_masked_input_state.h"

namespace tessera::secagg {

absl::Status ServerShareKeysState::HandleMessage(uint32_t from,
                                                 const v1::ClientToServer& msg) {
  const v1::ShareKeys& sk = msg.share_keys();
  const std::vector<uint32_t>& neighbors = ctx_->graph.at(from);
  if (sk.client_index() != from) {
    return absl::InvalidArgumentError(absl::StrCat("ShareKeys names client ", sk.client_index()));
  }
  if (static_cast<size_t>(sk.shares_size()) != neighbors.size()) {
    return absl::InvalidArgumentError(absl::StrCat("client ", from, " sent ", sk.shares_size(),
                                                   " shares for ", neighbors.size(),
                                                   " neighbours"));
  }
  std::set<uint32_t> receivers;
  for (const v1::EncryptedShare& share : sk.shares()) {
    const uint32_t r = share.receiver();
    if (share.sender() != from) {
      return absl::InvalidArgumentError(absl::StrCat("share claims sender ", share.sender()));
    }
    if (ctx_->roster.count(r) == 0) {
      return absl::InvalidArgumentError(absl::StrCat("share for unknown client ", r));
    }
    if (!ctx_->IsNeighbor(from, r)) {
      return absl::InvalidArgumentError(absl::StrCat("share for client ", r,
                                                     ", not a neighbour of ", from));
    }
    if (!receivers.insert(r).second) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate share for client ", r));
    }
    if (share.ciphertext().empty()) {
      return absl::InvalidArgumentError(absl::StrCat("empty share for client ", r));
    }
  }
  accepted_[from] = sk;
  return absl::OkStatus();
}

std::unique_ptr<ServerState> ServerShareKeysState::Advance() {
  ServerContext& c = *ctx_;
  std::set<uint32_t> responded;
  for (const auto& [i, unused] : accepted_) responded.insert(i);
  c.CloseSilent(v1::SHARE_KEYS, responded);
  c.shared = c.alive;
  const uint32_t t = c.threshold_t;
  if (c.shared.size() < t + 1) {
    return Abort(ServerAbortReason::kTooFewClients,
                 absl::StrCat(c.shared.size(), " clients shared keys, t = ", t));
  }
  // Each client's shares must stay reconstructible from neighbours that shared.
  for (uint32_t i : c.shared) {
    size_t left = 0;
    for (uint32_t p : c.graph.at(i)) left += c.shared.count(p);
    if (left < t) {
      return Abort(ServerAbortReason::kTooFewClients,
                   absl::StrCat("client ", i, " has ", left,
                                " neighbours left after ShareKeys, t = ", t));
    }
  }
  std::map<uint32_t, v1::ServerToClient> relays;
  for (uint32_t r : c.shared) {
    v1::RelayedShares* relay = relays[r].mutable_relayed_shares();
    *relay->mutable_header() = MakeHeader(c.config.session_id, c.config.round, phase());
    relay->set_recipient(r);
  }
  for (uint32_t s : c.shared) {
    for (const v1::EncryptedShare& share : accepted_[s].shares()) {
      auto it = relays.find(share.receiver());
      if (it != relays.end()) *it->second.mutable_relayed_shares()->add_shares() = share;
    }
  }
  for (auto& [r, msg] : relays) c.outbox.emplace_back(r, std::move(msg));
  return std::make_unique<ServerMaskedInputState>(std::move(ctx_));
}

}  // namespace tessera::secagg
