#include "privacy/secagg/server/server_unmasking_state.h"

#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "privacy/crypto/shamir.h"
#include "privacy/crypto/x25519.h"
#include "privacy/secagg/masking.h"

namespace tessera::secagg {

absl::Status ServerUnmaskingState::HandleMessage(uint32_t from,
                                                 const v1::ClientToServer& msg) {
  const v1::UnmaskResponse& resp = msg.unmask_response();
  const ServerContext& c = *ctx_;
  if (resp.client_index() != from) {
    return absl::InvalidArgumentError(absl::StrCat("UnmaskResponse names client ",
                                                   resp.client_index()));
  }
  std::set<uint32_t> owners;
  for (const v1::RevealedShare& r : resp.shares()) {
    const uint32_t o = r.owner();
    if (!owners.insert(o).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "client ", from, " revealed two shares of client ", o, " (never both kinds)"));
    }
    if (c.shared.count(o) == 0 || !c.IsNeighbor(from, o)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "client ", from, " revealed a share of client ", o, ", not a neighbour that shared"));
    }
    const bool survivor = c.survivors.count(o) > 0;
    if (survivor != (r.share_case() == v1::RevealedShare::kBShare)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "client ", from, " revealed the wrong kind of share of client ", o, " (",
          survivor ? "survivor: b-share expected" : "dropped: s_sk-share expected", ")"));
    }
    auto share = crypto::ParseShamirShare(survivor ? r.b_share() : r.s_sk_share());
    if (!share.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("client ", from, " share of ", o, ": ",
                                                     share.status().message()));
    }
  }
  accepted_[from] = resp;
  return absl::OkStatus();
}

std::unique_ptr<ServerState> ServerUnmaskingState::Advance() {
  ServerContext& c = *ctx_;
  std::set<uint32_t> responded;
  for (const auto& [i, unused] : accepted_) responded.insert(i);
  c.CloseSilent(v1::UNMASKING, responded);
  const uint32_t t = c.threshold_t;
  std::map<uint32_t, std::vector<crypto::ShamirShare>> shares;  // by owner
  for (uint32_t holder : c.alive) {
    for (const v1::RevealedShare& r : accepted_[holder].shares()) {
      auto share = crypto::ParseShamirShare(r.has_b_share() ? r.b_share() : r.s_sk_share());
      if (share.ok()) shares[r.owner()].push_back(*std::move(share));
    }
  }
  const ServerConfig& cfg = c.config;
  const size_t num_tensors = cfg.tensors.size();
  auto name = [&](size_t i) -> absl::string_view {
    return i < num_tensors ? absl::string_view(cfg.tensors[i].name) : kWeightTensorName;
  };
  // A secret from the first t shares, once every further share is checked to lie on the
  // same polynomial: otherwise some holder sent a wrong share and the sum would silently be
  // garbage. DATA_LOSS then.
  auto reconstruct = [&](uint32_t owner) -> absl::StatusOr<std::string> {
    const std::vector<crypto::ShamirShare>& s = shares[owner];
    if (s.size() < t) {
      return absl::FailedPreconditionError(
          absl::StrCat("client ", owner, " has ", s.size(), " revealed shares, t = ", t));
    }
    if (absl::Status c = crypto::ShamirVerifyConsistent(s, t); !c.ok()) {
      return absl::DataLossError(absl::StrCat("the revealed shares of client ", owner,
                                              " are inconsistent (a holder sent a wrong "
                                              "share): ", c.message()));
    }
    return crypto::ShamirReconstruct(s, t, 32);
  };
  auto failure = [](const absl::Status& s) {
    return absl::IsDataLoss(s) ? ServerAbortReason::kReconstructionFailed
                               : ServerAbortReason::kTooFewShares;
  };
  for (uint32_t owner : c.survivors) {
    auto seed = reconstruct(owner);
    if (!seed.ok()) return Abort(failure(seed.status()), seed.status().message());
    for (size_t i = 0; i <= num_tensors; ++i) {
      absl::Status s = RemoveSelfMask(absl::MakeSpan(c.sum[i]), *seed, cfg.session_id,
                                      cfg.round, name(i), cfg.modulus_mask);
      if (!s.ok()) return Abort(ServerAbortReason::kInternal, s.message());
    }
  }
  for (uint32_t owner : c.dropped) {
    std::vector<SurvivingPeer> peers;
    for (uint32_t p : c.graph.at(owner)) {
      if (c.survivors.count(p) > 0) peers.push_back({p, c.roster.at(p).s_pk()});
    }
    if (peers.empty()) continue;  // nobody masked with it
    auto key = reconstruct(owner);
    if (!key.ok()) return Abort(failure(key.status()), key.status().message());
    auto pair = crypto::X25519KeyPair::FromPrivate(*key);
    if (!pair.ok() || pair->public_key() != c.roster.at(owner).s_pk()) {
      return Abort(ServerAbortReason::kReconstructionFailed,
                   absl::StrCat("reconstructed s_sk of client ", owner,
                                " does not match its s_pk"));
    }
    for (size_t i = 0; i <= num_tensors; ++i) {
      absl::Status s = RemovePairwiseMaskOfDropped(absl::MakeSpan(c.sum[i]), owner, *key,
                                                   peers, cfg.session_id, cfg.round, name(i),
                                                   cfg.modulus_mask);
      if (!s.ok()) return Abort(ServerAbortReason::kInternal, s.message());
    }
  }
  v1::ServerToClient msg;
  *msg.mutable_completed()->mutable_header() =
      MakeHeader(cfg.session_id, cfg.round, phase());
  msg.mutable_completed()->set_num_survivors(static_cast<uint32_t>(c.survivors.size()));
  c.Broadcast(msg);
  return std::make_unique<ServerCompletedState>(std::move(ctx_));
}

}  // namespace tessera::secagg
