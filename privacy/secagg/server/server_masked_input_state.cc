#include "privacy/secagg/server/server_masked_input_state.h"

#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "privacy/secagg/server/server_consistency_check_state.h"

namespace tessera::secagg {

absl::Status ServerMaskedInputState::HandleMessage(uint32_t from,
                                                   const v1::ClientToServer& msg) {
  const v1::MaskedInput& in = msg.masked_input();
  const ServerConfig& cfg = ctx_->config;
  if (in.client_index() != from) {
    return absl::InvalidArgumentError(absl::StrCat("MaskedInput names client ",
                                                   in.client_index()));
  }
  if (static_cast<size_t>(in.tensors_size()) != cfg.tensors.size()) {
    return absl::InvalidArgumentError(absl::StrCat("client ", from, " sent ",
                                                   in.tensors_size(), " tensors, expected ",
                                                   cfg.tensors.size()));
  }
  for (size_t i = 0; i < cfg.tensors.size(); ++i) {
    const v1::MaskedTensor& t = in.tensors(static_cast<int>(i));
    if (t.name() != cfg.tensors[i].name ||
        static_cast<size_t>(t.values_size()) != cfg.tensors[i].length) {
      return absl::InvalidArgumentError(
          absl::StrCat("client ", from, " tensor ", i, ": '", t.name(), "' of length ",
                       t.values_size(), ", expected '", cfg.tensors[i].name, "' of length ",
                       cfg.tensors[i].length));
    }
    for (uint64_t v : t.values()) {
      if (v > cfg.modulus_mask) {
        return absl::InvalidArgumentError(
            absl::StrCat("client ", from, " tensor '", t.name(), "' has a value >= 2^b"));
      }
    }
  }
  if (in.masked_weight() > cfg.modulus_mask) {
    return absl::InvalidArgumentError(absl::StrCat("client ", from, ": weight >= 2^b"));
  }
  accepted_[from] = in;
  return absl::OkStatus();
}

std::unique_ptr<ServerState> ServerMaskedInputState::Advance() {
  ServerContext& c = *ctx_;
  std::set<uint32_t> responded;
  for (const auto& [i, unused] : accepted_) responded.insert(i);
  c.CloseSilent(v1::MASKED_INPUT_COLLECTION, responded);
  c.survivors = c.alive;
  for (uint32_t i : c.shared) {
    if (c.survivors.count(i) == 0) c.dropped.insert(i);
  }
  const uint32_t t = c.threshold_t;
  if (c.survivors.size() < t) {
    return Abort(ServerAbortReason::kTooFewClients,
                 absl::StrCat(c.survivors.size(), " clients sent masked input, t = ", t));
  }
  // Never even ask to unmask a sum of fewer inputs than may be released (e.g. the noise
  // shares of distributed DP need min_survivors inputs); the survivor set is not sent out.
  if (c.survivors.size() < c.config.min_survivors) {
    return Abort(ServerAbortReason::kTooFewClients,
                 absl::StrCat(c.survivors.size(), " clients sent masked input, fewer than the ",
                              c.config.min_survivors,
                              " the run needs (selection.min_clients); the sum is not unmasked"));
  }
  // Survivors need t surviving neighbours for b; dropped clients a survivor masked with
  // need t for s_sk.
  for (uint32_t i : c.shared) {
    size_t left = 0;
    for (uint32_t p : c.graph.at(i)) left += c.survivors.count(p);
    if (left > 0 && left < t) {
      return Abort(ServerAbortReason::kTooFewClients,
                   absl::StrCat("client ", i, " has ", left,
                                " surviving neighbours after MaskedInput, t = ", t));
    }
    if (left == 0 && c.survivors.count(i) > 0) {
      return Abort(ServerAbortReason::kTooFewClients,
                   absl::StrCat("survivor ", i, " has no surviving neighbours"));
    }
  }
  // Only the masked sum is kept.
  const size_t num_tensors = c.config.tensors.size();
  c.sum.assign(num_tensors + 1, {});
  for (size_t i = 0; i < num_tensors; ++i) c.sum[i].assign(c.config.tensors[i].length, 0);
  c.sum[num_tensors].assign(1, 0);
  const uint64_t mask = c.config.modulus_mask;
  for (uint32_t s : c.survivors) {
    const v1::MaskedInput& in = accepted_[s];
    for (size_t i = 0; i < num_tensors; ++i) {
      const auto& values = in.tensors(static_cast<int>(i)).values();
      for (size_t j = 0; j < c.sum[i].size(); ++j) {
        c.sum[i][j] = (c.sum[i][j] + values[static_cast<int>(j)]) & mask;
      }
    }
    c.sum[num_tensors][0] = (c.sum[num_tensors][0] + in.masked_weight()) & mask;
  }
  accepted_.clear();

  v1::ServerToClient msg;
  v1::ConsistencyRequest* req = msg.mutable_consistency_request();
  *req->mutable_header() = MakeHeader(c.config.session_id, c.config.round, phase());
  req->mutable_survivors()->Add(c.survivors.begin(), c.survivors.end());
  req->mutable_dropped()->Add(c.dropped.begin(), c.dropped.end());
  c.Broadcast(msg);
  return std::make_unique<ServerConsistencyCheckState>(std::move(ctx_));
}

}  // namespace tessera::secagg
