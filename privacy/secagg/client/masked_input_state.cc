#include "privacy/secagg/client/masked_input_state.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "privacy/secagg/client/consistency_check_state.h"

namespace tessera::secagg {
namespace {

bool StrictlyAscending(const std::vector<uint32_t>& v) {
  return std::adjacent_find(v.begin(), v.end(), std::greater_equal<uint32_t>()) == v.end();
}

}  // namespace

ClientTransition MaskedInputState::HandleMessage(const v1::ServerToClient& msg) {
  if (auto abort = CheckIncoming(*ctx_, msg, v1::MASKED_INPUT_COLLECTION,
                                 v1::ServerToClient::kConsistencyRequest)) {
    return std::move(*abort);
  }
  const ClientConfig& cfg = ctx_->config;
  const v1::ConsistencyRequest& req = msg.consistency_request();
  const std::vector<uint32_t> survivors(req.survivors().begin(), req.survivors().end());
  const std::vector<uint32_t> dropped(req.dropped().begin(), req.dropped().end());
  if (!StrictlyAscending(survivors) || !StrictlyAscending(dropped)) {
    return Abort(AbortReason::kMalformedMessage,
                 "the survivor and dropped sets must be strictly ascending");
  }
  for (uint32_t d : dropped) {
    if (std::binary_search(survivors.begin(), survivors.end(), d)) {
      return Abort(AbortReason::kRevealBothShares,
                   absl::StrCat("client ", d, " is listed as both survivor and dropped"));
    }
  }
  for (const std::vector<uint32_t>* set : {&survivors, &dropped}) {
    for (uint32_t i : *set) {
      if (ctx_->peers.count(i) == 0) {
        return Abort(AbortReason::kMalformedMessage,
                     absl::StrCat("the survivor set names client ", i, ", not on the roster"));
      }
    }
  }
  if (!std::binary_search(survivors.begin(), survivors.end(), cfg.client_index)) {
    return Abort(AbortReason::kMalformedMessage, "we are not listed as a survivor");
  }
  const size_t need = std::max<size_t>(ctx_->threshold_t, cfg.min_survivors);
  if (survivors.size() < need) {
    return Abort(AbortReason::kRosterTooSmall,
                 absl::StrCat(survivors.size(), " survivors; this client unmasks no sum of "
                              "fewer than ", need, " inputs (t = ", ctx_->threshold_t,
                              ", min_survivors = ", cfg.min_survivors, ")"));
  }
  absl::StatusOr<std::string> signature =
      cfg.sign(ConsistencyPayload(cfg.session_id, cfg.round, survivors, dropped));
  if (!signature.ok()) return Abort(AbortReason::kInternal, signature.status().message());
  ctx_->signed_survivors = survivors;
  ctx_->signed_dropped = dropped;

  v1::ClientToServer reply;
  v1::ConsistencySignature* out = reply.mutable_consistency_signature();
  *out->mutable_header() = MakeHeader(cfg.session_id, cfg.round, v1::CONSISTENCY_CHECK);
  out->set_client_index(cfg.client_index);
  out->set_signature(*std::move(signature));
  return {std::make_unique<ConsistencyCheckState>(std::move(ctx_)), std::move(reply)};
}

}  // namespace tessera::secagg
