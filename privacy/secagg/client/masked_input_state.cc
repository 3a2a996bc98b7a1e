#include "privacy/secagg/client/masked_input_state.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "privacy/secagg/client/unmasking_state.h"

namespace tessera::secagg {

ClientTransition MaskedInputState::HandleMessage(const v1::ServerToClient& msg) {
  if (auto abort = CheckIncoming(*ctx_, msg, v1::MASKED_INPUT_COLLECTION,
                                 v1::ServerToClient::kUnmaskRequest)) {
    return std::move(*abort);
  }
  const ClientConfig& cfg = ctx_->config;
  const v1::UnmaskRequest& req = msg.unmask_request();
  const std::set<uint32_t> survivors(req.survivors().begin(), req.survivors().end());
  const std::set<uint32_t> dropped(req.dropped().begin(), req.dropped().end());
  for (uint32_t d : dropped) {
    if (survivors.count(d) > 0) {
      return Abort(AbortReason::kRevealBothShares,
                   absl::StrCat("client ", d, " is listed as both survivor and dropped"));
    }
  }
  for (const std::set<uint32_t>* set : {&survivors, &dropped}) {
    for (uint32_t i : *set) {
      if (ctx_->peers.count(i) == 0) {
        return Abort(AbortReason::kMalformedMessage,
                     absl::StrCat("unmask request names client ", i, ", not on the roster"));
      }
    }
  }
  if (survivors.count(cfg.client_index) == 0) {
    return Abort(AbortReason::kMalformedMessage, "we are not listed as a survivor");
  }
  if (survivors.size() < ctx_->threshold_t) {
    return Abort(AbortReason::kRosterTooSmall,
                 absl::StrCat(survivors.size(), " survivors, t = ", ctx_->threshold_t));
  }

  v1::ClientToServer reply;
  v1::UnmaskResponse* out = reply.mutable_unmask_response();
  *out->mutable_header() = MakeHeader(cfg.session_id, cfg.round, v1::UNMASKING);
  out->set_client_index(cfg.client_index);
  for (const auto& [owner, shares] : ctx_->held) {
    const bool survivor = survivors.count(owner) > 0;
    if (!survivor && dropped.count(owner) == 0) continue;
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
