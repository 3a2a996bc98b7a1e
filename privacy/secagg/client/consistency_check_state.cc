#include "privacy/secagg/client/consistency_check_state.h"

#include <algorithm>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "privacy/secagg/client/unmasking_state.h"

namespace tessera::secagg {

ClientTransition ConsistencyCheckState::HandleMessage(const v1::ServerToClient& msg) {
  if (auto abort =
          CheckIncoming(*ctx_, msg, v1::CONSISTENCY_CHECK, v1::ServerToClient::kUnmaskRequest)) {
    return std::move(*abort);
  }
  const ClientConfig& cfg = ctx_->config;
  const v1::UnmaskRequest& req = msg.unmask_request();
  const std::vector<uint32_t> survivors(req.survivors().begin(), req.survivors().end());
  const std::vector<uint32_t> dropped(req.dropped().begin(), req.dropped().end());
  if (survivors != ctx_->signed_survivors || dropped != ctx_->signed_dropped) {
    return Abort(AbortReason::kInconsistentView,
                 "the unmask request's survivor set is not the one this client signed");
  }
  // At least t signatures over exactly this view, from distinct survivors: any two sets of
  // t signers share an honest client (t > (k + c) / 2), who signs only one view.
  const std::string payload = ConsistencyPayload(cfg.session_id, cfg.round, survivors, dropped);
  std::set<uint32_t> signers;
  for (const v1::SignedSurvivorSet& s : req.signatures()) {
    const uint32_t who = s.client_index();
    if (!std::binary_search(survivors.begin(), survivors.end(), who)) {
      return Abort(AbortReason::kInconsistentView,
                   absl::StrCat("consistency signature of client ", who, ", not a survivor"));
    }
    if (!signers.insert(who).second) {
      return Abort(AbortReason::kInconsistentView,
                   absl::StrCat("two consistency signatures of client ", who));
    }
    absl::Status ok = cfg.verify(who, ctx_->peers.at(who).identity, payload, s.signature());
    if (!ok.ok()) {
      return Abort(AbortReason::kBadSignature,
                   absl::StrCat("consistency signature of client ", who, ": ", ok.message()));
    }
  }
  if (signers.size() < ctx_->threshold_t) {
    return Abort(AbortReason::kInconsistentView,
                 absl::StrCat("only ", signers.size(), " survivors signed the survivor set, t = ",
                              ctx_->threshold_t));
  }

  v1::ClientToServer reply;
  v1::UnmaskResponse* out = reply.mutable_unmask_response();
  *out->mutable_header() = MakeHeader(cfg.session_id, cfg.round, v1::UNMASKING);
  out->set_client_index(cfg.client_index);
  for (const auto& [owner, shares] : ctx_->held) {
    const bool survivor = std::binary_search(survivors.begin(), survivors.end(), owner);
    if (!survivor && !std::binary_search(dropped.begin(), dropped.end(), owner)) continue;
    v1::RevealedShare* r = out->add_shares();
    r->set_owner(owner);
    if (survivor) {
      r->set_b_share(shares.b_share);
    } else {
      r->set_s_sk_share(shares.s_sk_share);
    }
    ctx_->revealed_b_share[owner] = survivor;
  }
  return {std::make_unique<UnmaskingState>(std::move(ctx_)), std::move(reply)};
}

}  // namespace tessera::secagg
