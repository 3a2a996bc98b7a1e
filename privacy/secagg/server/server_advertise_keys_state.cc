#include "privacy/secagg/server/server_advertise_keys_state.h"

#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "privacy/crypto/x25519.h"
#include "privacy/secagg/server/server_share_keys_state.h"

namespace tessera::secagg {

absl::Status ServerAdvertiseKeysState::HandleMessage(uint32_t from,
                                                     const v1::ClientToServer& msg) {
  const v1::AdvertiseKeys& adv = msg.advertise_keys();
  const ServerConfig& cfg = ctx_->config;
  if (adv.client_index() != from) {
    return absl::InvalidArgumentError(
        absl::StrCat("advertisement names client ", adv.client_index()));
  }
  if (adv.c_pk().size() != crypto::kX25519KeyBytes ||
      adv.s_pk().size() != crypto::kX25519KeyBytes || adv.c_pk() == adv.s_pk()) {
    return absl::InvalidArgumentError("c_pk and s_pk must be distinct 32-byte X25519 keys");
  }
  absl::Status verified = cfg.verify(
      from, adv.identity(), AdvertisePayload(cfg.session_id, cfg.round, from, adv.c_pk(), adv.s_pk()),
      adv.signature());
  if (!verified.ok()) {
    return absl::PermissionDeniedError(
        absl::StrCat("advertisement signature of client ", from, ": ", verified.message()));
  }
  accepted_[from] = adv;
  return absl::OkStatus();
}

std::unique_ptr<ServerState> ServerAdvertiseKeysState::Advance() {
  ServerContext& c = *ctx_;
  std::set<uint32_t> responded;
  for (const auto& [i, unused] : accepted_) responded.insert(i);
  c.CloseSilent(v1::ADVERTISE_KEYS, responded);
  const uint32_t n = static_cast<uint32_t>(c.alive.size());
  if (n < 3) {
    return Abort(ServerAbortReason::kTooFewClients,
                 absl::StrCat(n, " clients advertised keys, at least 3 are needed"));
  }
  ThreatModel model = c.config.threat_model;
  model.num_selected = c.config.threat_model.num_clients;
  model.num_clients = n;
  auto params = DeriveParams(model);
  if (!params.ok()) {
    return Abort(ServerAbortReason::kTooFewClients,
                 absl::StrCat(n, " clients advertised keys: ", params.status().message()));
  }
  c.degree_k = params->degree_k;
  c.threshold_t = params->threshold_t;
  std::vector<uint32_t> indices(c.alive.begin(), c.alive.end());

  v1::ServerToClient msg;
  v1::Roster* roster = msg.mutable_roster();
  *roster->mutable_header() = MakeHeader(c.config.session_id, c.config.round, phase());
  for (uint32_t i : indices) {
    const v1::AdvertiseKeys& adv = accepted_[i];
    v1::RosterEntry entry;
    entry.set_client_index(i);
    entry.set_c_pk(adv.c_pk());
    entry.set_s_pk(adv.s_pk());
    entry.set_signature(adv.signature());
    *entry.mutable_identity() = adv.identity();
    c.roster[i] = entry;
    *roster->add_entries() = std::move(entry);
  }
  // The graph is a function of the advertised keys, which every client recomputes.
  const std::string seed = GraphSeed(c.config.session_id, c.config.round, roster->entries());
  auto graph = RosterGraph(indices, c.degree_k, seed);
  if (!graph.ok()) return Abort(ServerAbortReason::kInternal, graph.status().message());
  c.graph = *std::move(graph);
  roster->set_degree_k(c.degree_k);
  roster->set_threshold_t(c.threshold_t);
  roster->set_graph_seed(seed);
  c.Broadcast(msg);
  return std::make_unique<ServerShareKeysState>(std::move(ctx_));
}

}  // namespace tessera::secagg
