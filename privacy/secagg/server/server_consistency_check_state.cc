#include "privacy/secagg/server/server_consistency_check_state.h"

#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "privacy/secagg/server/server_unmasking_state.h"

namespace tessera::secagg {
namespace {

std::string Payload(const ServerContext& c) {
  const std::vector<uint32_t> survivors(c.survivors.begin(), c.survivors.end());
  const std::vector<uint32_t> dropped(c.dropped.begin(), c.dropped.end());
  return ConsistencyPayload(c.config.session_id, c.config.round, survivors, dropped);
}

}  // namespace

ServerConsistencyCheckState::ServerConsistencyCheckState(std::unique_ptr<ServerContext> ctx)
    : ServerState(std::move(ctx)), payload_(Payload(*ctx_)) {}

absl::Status ServerConsistencyCheckState::HandleMessage(uint32_t from,
                                                        const v1::ClientToServer& msg) {
  const v1::ConsistencySignature& sig = msg.consistency_signature();
  const ServerContext& c = *ctx_;
  if (sig.client_index() != from) {
    return absl::InvalidArgumentError(
        absl::StrCat("ConsistencySignature names client ", sig.client_index()));
  }
  if (c.survivors.count(from) == 0) {
    return absl::FailedPreconditionError(absl::StrCat("client ", from, " is not a survivor"));
  }
  absl::Status ok =
      c.config.verify(from, c.roster.at(from).identity(), payload_, sig.signature());
  if (!ok.ok()) {
    return absl::PermissionDeniedError(
        absl::StrCat("consistency signature of client ", from, ": ", ok.message()));
  }
  accepted_[from] = sig.signature();
  return absl::OkStatus();
}

std::unique_ptr<ServerState> ServerConsistencyCheckState::Advance() {
  ServerContext& c = *ctx_;
  std::set<uint32_t> responded;
  for (const auto& [i, unused] : accepted_) responded.insert(i);
  c.CloseSilent(v1::CONSISTENCY_CHECK, responded);
  if (c.alive.size() < c.threshold_t) {
    return Abort(ServerAbortReason::kTooFewClients,
                 absl::StrCat(c.alive.size(), " survivors signed the survivor set, t = ",
                              c.threshold_t));
  }
  v1::ServerToClient msg;
  v1::UnmaskRequest* req = msg.mutable_unmask_request();
  *req->mutable_header() = MakeHeader(c.config.session_id, c.config.round, phase());
  req->mutable_survivors()->Add(c.survivors.begin(), c.survivors.end());
  req->mutable_dropped()->Add(c.dropped.begin(), c.dropped.end());
  for (uint32_t i : c.alive) {
    v1::SignedSurvivorSet* s = req->add_signatures();
    s->set_client_index(i);
    s->set_signature(accepted_[i]);
  }
  c.Broadcast(msg);
  return std::make_unique<ServerUnmaskingState>(std::move(ctx_));
}

}  // namespace tessera::secagg
