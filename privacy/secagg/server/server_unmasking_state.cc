#include "privacy/secagg/server/server_unmasking_state.h"

#include <algorithm>
#include <set>
#include <thread>
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

namespace {

// One owner's masks to remove: its self mask (survivor, `peers` empty) or the pairwise masks
// its surviving neighbours added with it (dropped).
struct UnmaskJob {
  uint32_t owner = 0;
  std::string secret;  // b (survivor) or s_sk (dropped)
  std::vector<SurvivingPeer> peers;
};

// Removes the masks of `jobs` from c.sum. The jobs are spread over up to
// kMaxUnmaskThreads threads, each summing its removals into its own zeroed copy of the sum's
// shape; the copies are then added into c.sum mod 2^b (all operations commute).
constexpr unsigned kMaxUnmaskThreads = 8;

absl::Status RunUnmaskJobs(const std::vector<UnmaskJob>& jobs, ServerContext& c) {
  const ServerConfig& cfg = c.config;
  const size_t num_tensors = cfg.tensors.size();
  auto name = [&](size_t i) -> absl::string_view {
    return i < num_tensors ? absl::string_view(cfg.tensors[i].name) : kWeightTensorName;
  };
  auto run = [&](size_t first, size_t step, std::vector<std::vector<uint64_t>>& sum) {
    for (size_t j = first; j < jobs.size(); j += step) {
      const UnmaskJob& job = jobs[j];
      for (size_t i = 0; i <= num_tensors; ++i) {
        absl::Status s =
            job.peers.empty()
                ? RemoveSelfMask(absl::MakeSpan(sum[i]), job.secret, cfg.session_id, cfg.round,
                                 name(i), cfg.modulus_mask)
                : RemovePairwiseMaskOfDropped(absl::MakeSpan(sum[i]), job.owner, job.secret,
                                              job.peers, cfg.session_id, cfg.round, name(i),
                                              cfg.modulus_mask);
        if (!s.ok()) return s;
      }
    }
    return absl::OkStatus();
  };
  const unsigned threads = static_cast<unsigned>(std::min<size_t>(
      {std::max(1u, std::thread::hardware_concurrency()), kMaxUnmaskThreads, jobs.size()}));
  if (threads <= 1) return run(0, 1, c.sum);
  std::vector<std::vector<std::vector<uint64_t>>> partial(threads - 1);
  std::vector<absl::Status> status(threads);
  std::vector<std::thread> pool;
  for (unsigned w = 1; w < threads; ++w) {
    pool.emplace_back([&, w] {
      auto& mine = partial[w - 1];
      for (const auto& t : c.sum) mine.emplace_back(t.size(), 0);
      status[w] = run(w, threads, mine);
    });
  }
  status[0] = run(0, threads, c.sum);
  for (auto& t : pool) t.join();
  for (const absl::Status& s : status) {
    if (!s.ok()) return s;
  }
  for (const auto& mine : partial) {
    for (size_t i = 0; i < c.sum.size(); ++i) {
      for (size_t k = 0; k < c.sum[i].size(); ++k) {
        c.sum[i][k] = (c.sum[i][k] + mine[i][k]) & cfg.modulus_mask;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

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
  // First every secret (cheap; any failure aborts before the expensive part), then the
  // mask removal, which regenerates one keystream per survivor and per (dropped, surviving
  // neighbour) pair over every tensor.
  std::vector<UnmaskJob> jobs;
  for (uint32_t owner : c.survivors) {
    auto seed = reconstruct(owner);
    if (!seed.ok()) return Abort(failure(seed.status()), seed.status().message());
    jobs.push_back({owner, *std::move(seed), {}});
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
    jobs.push_back({owner, *std::move(key), std::move(peers)});
  }
  if (absl::Status s = RunUnmaskJobs(jobs, c); !s.ok()) {
    return Abort(ServerAbortReason::kInternal, s.message());
  }
  v1::ServerToClient msg;
  *msg.mutable_completed()->mutable_header() =
      MakeHeader(cfg.session_id, cfg.round, phase());
  msg.mutable_completed()->set_num_survivors(static_cast<uint32_t>(c.survivors.size()));
  c.Broadcast(msg);
  return std::make_unique<ServerCompletedState>(std::move(ctx_));
}

}  // namespace tessera::secagg
