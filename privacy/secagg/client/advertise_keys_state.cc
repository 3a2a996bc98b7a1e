#include "privacy/secagg/client/advertise_keys_state.h"

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "privacy/crypto/aes_gcm.h"
#include "privacy/crypto/shamir.h"
#include "privacy/crypto/x25519.h"
#include "privacy/secagg/client/share_keys_state.h"

namespace tessera::secagg {

ClientTransition AdvertiseKeysState::HandleMessage(const v1::ServerToClient& msg) {
  if (auto abort = CheckIncoming(*ctx_, msg, v1::ADVERTISE_KEYS, v1::ServerToClient::kRoster)) {
    return std::move(*abort);
  }
  const v1::Roster& roster = msg.roster();
  const ClientConfig& cfg = ctx_->config;
  const uint32_t self = cfg.client_index;

  // One identity, one slot: a coordinator colluding with a client must not be able to fill
  // several roster slots with that client's keys (and so lower the honest share count).
  std::set<std::string> identities;
  for (const v1::RosterEntry& e : roster.entries()) {
    if (!identities.insert(e.identity().SerializeAsString()).second) {
      return Abort(AbortReason::kMalformedMessage,
                   absl::StrCat("roster entry of client ", e.client_index(),
                                " repeats another client's identity"));
    }
  }
  std::vector<uint32_t> indices;
  bool self_listed = false;
  for (const v1::RosterEntry& e : roster.entries()) {
    if (e.c_pk().size() != crypto::kX25519KeyBytes ||
        e.s_pk().size() != crypto::kX25519KeyBytes) {
      return Abort(AbortReason::kMalformedMessage,
                   absl::StrCat("roster keys of client ", e.client_index(), " are not 32 bytes"));
    }
    absl::Status verified = cfg.verify(
        e.client_index(), e.identity(),
        AdvertisePayload(cfg.session_id, cfg.round, e.client_index(), e.c_pk(), e.s_pk()),
        e.signature());
    if (!verified.ok()) {
      return Abort(AbortReason::kBadSignature,
                   absl::StrCat("advertisement of client ", e.client_index(), ": ",
                                verified.message()));
    }
    if (e.client_index() == self) {
      if (e.c_pk() != ctx_->c_keys.public_key() || e.s_pk() != ctx_->s_keys.public_key()) {
        return Abort(AbortReason::kMalformedMessage, "the roster lists other keys for us");
      }
      self_listed = true;
    }
    indices.push_back(e.client_index());
    ctx_->peers[e.client_index()] = {e.c_pk(), e.s_pk(), e.identity()};
  }
  if (!self_listed) return Abort(AbortReason::kMalformedMessage, "we are not on the roster");

  const uint32_t n = static_cast<uint32_t>(indices.size());
  const uint32_t k = roster.degree_k(), t = roster.threshold_t();
  if (n < 3 || (cfg.max_clients > 0 && n > cfg.max_clients)) {
    return Abort(AbortReason::kRosterTooSmall,
                 absl::StrCat("roster of ", n, " clients (need 3..", cfg.max_clients, ")"));
  }
  // k and t come from the agreed threat model and the roster's size, never from the
  // coordinator's word; so does the graph (a hash of every advertised key).
  ThreatModel model = cfg.threat_model;
  model.num_selected = cfg.max_clients;
  model.num_clients = n;
  absl::StatusOr<SecAggParams> want = DeriveParams(model);
  if (!want.ok()) {
    return Abort(AbortReason::kUnsafeParameters,
                 absl::StrCat("roster of ", n, " clients: ", want.status().message()));
  }
  const uint32_t corrupt_neighbors = want->complete_graph ? std::min(CorruptCount(model), k) : 0;
  if (k != want->degree_k || t != want->threshold_t || t > k ||
      t < MinMaliciousThreshold(k, corrupt_neighbors)) {
    return Abort(AbortReason::kUnsafeParameters,
                 absl::StrCat("roster of ", n, " clients with k = ", k, ", t = ", t,
                              "; the agreed threat model (dropout ", model.dropout_fraction,
                              ", corrupt ", model.corrupt_fraction, ", ",
                              model.security_bits, " bits) gives k = ", want->degree_k,
                              ", t = ", want->threshold_t));
  }
  if (roster.graph_seed() !=
      GraphSeed(cfg.session_id, cfg.round, roster.entries())) {
    return Abort(AbortReason::kUnsafeParameters,
                 "the roster's graph seed is not the hash of the advertised keys");
  }
  auto graph = RosterGraph(indices, k, roster.graph_seed());
  if (!graph.ok()) return Abort(AbortReason::kMalformedMessage, graph.status().message());
  ctx_->neighbors = (*graph)[self];
  ctx_->threshold_t = t;

  // Shamir-share s_sk and b over the neighbours, share j+1 to neighbors[j].
  auto key_shares = crypto::ShamirSplit(ctx_->s_keys.private_key(), t, k);
  auto seed_shares = crypto::ShamirSplit(ctx_->self_seed, t, k);
  if (!key_shares.ok() || !seed_shares.ok()) {
    return Abort(AbortReason::kInternal, "Shamir split failed");
  }
  v1::ClientToServer reply;
  v1::ShareKeys* out = reply.mutable_share_keys();
  *out->mutable_header() = MakeHeader(cfg.session_id, cfg.round, v1::SHARE_KEYS);
  out->set_client_index(self);
  for (uint32_t j = 0; j < k; ++j) {
    const uint32_t peer = ctx_->neighbors[j];
    v1::SharePlaintext plain;
    plain.set_sender(self);
    plain.set_receiver(peer);
    plain.set_s_sk_share(crypto::SerializeShamirShare((*key_shares)[j]));
    plain.set_b_share(crypto::SerializeShamirShare((*seed_shares)[j]));
    auto secret = ctx_->c_keys.SharedSecret(ctx_->peers[peer].c_pk);
    if (!secret.ok()) {
      return Abort(AbortReason::kMalformedMessage,
                   absl::StrCat("c_pk of client ", peer, ": ", secret.status().message()));
    }
    auto key = DeriveShareKey(*secret, cfg.session_id, cfg.round);
    if (!key.ok()) return Abort(AbortReason::kInternal, key.status().message());
    auto sealed = crypto::AesGcmEncrypt(*key, plain.SerializeAsString(),
                                        ShareAad(cfg.session_id, cfg.round, self, peer));
    if (!sealed.ok()) return Abort(AbortReason::kInternal, sealed.status().message());
    v1::EncryptedShare* share = out->add_shares();
    share->set_sender(self);
    share->set_receiver(peer);
    share->set_ciphertext(*std::move(sealed));
  }
  return {std::make_unique<ShareKeysState>(std::move(ctx_)), std::move(reply)};
}

}  // namespace tessera::secagg
