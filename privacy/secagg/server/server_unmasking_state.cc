#include "privacy/secagg/server/server_unmasking_state.h"

#include <algorithm>
#include <random>
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

// Both shared secrets (the self-mask seed b and the X25519 private key s_sk) are 32 bytes.
constexpr size_t kSecretBytes = 32;

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
    // The share's form: x is the holder's slot among the owner's neighbours (share j + 1
    // went to neighbour j), one field element (< p, checked by the parser) per limb of a
    // 32-byte secret. A bad share drops only its sender, here, on arrival.
    auto share = crypto::ParseShamirShare(survivor ? r.b_share() : r.s_sk_share());
    if (!share.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("client ", from, " share of ", o, ": ",
                                                     share.status().message()));
    }
    const std::vector<uint32_t>& peers = c.graph.at(o);
    const uint32_t slot = static_cast<uint32_t>(
        std::lower_bound(peers.begin(), peers.end(), from) - peers.begin());
    if (share->x != slot + 1) {
      return absl::InvalidArgumentError(absl::StrCat("client ", from, " share of ", o,
                                                     " has x = ", share->x, ", its slot is ",
                                                     slot + 1));
    }
    if (share->y.size() != crypto::ShamirNumLimbs(kSecretBytes)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "client ", from, " share of ", o, " has ", share->y.size(), " limbs, expected ",
          crypto::ShamirNumLimbs(kSecretBytes)));
    }
  }
  accepted_[from] = resp;
  return absl::OkStatus();
}

namespace {

struct HeldShare {
  uint32_t holder = 0;
  crypto::ShamirShare share;
};

// Picks the largest set of `held` on one polynomial of degree < t and returns its shares,
// appending the holders of the others to `bad_holders`. Unique while at most (m - t) / 2 of
// the m shares are wrong (the Berlekamp-Welch radius): a polynomial agreed by at least
// (m + t) / 2 shares is then the true one, since a wrong one agrees with at most t - 1
// honest shares. Candidate polynomials come from t consecutive shares (every rotation,
// which finds it whenever the wrong shares leave a run of t good ones) and then 256 random
// t-subsets (fixed seed), each checked against all other shares (crypto::ShamirOnPolynomial,
// O(t^2 + m t) per candidate). Errors: DATA_LOSS when no candidate reaches the majority.
absl::StatusOr<std::vector<crypto::ShamirShare>> ConsistentSubset(
    const std::vector<HeldShare>& held, uint32_t t, std::vector<uint32_t>* bad_holders) {
  std::vector<crypto::ShamirShare> all;
  for (const HeldShare& h : held) all.push_back(h.share);
  if (crypto::ShamirVerifyConsistent(all, t).ok()) return all;
  const size_t m = held.size();
  const size_t majority = (m + t + 1) / 2;
  std::mt19937_64 rng(m * 1000003u + t);
  std::vector<size_t> order(m);
  for (size_t i = 0; i < m; ++i) order[i] = i;
  for (size_t attempt = 0; attempt < m + 256 && m > t; ++attempt) {
    if (attempt < m) {
      std::rotate(order.begin(), order.begin() + 1, order.end());
    } else {
      std::shuffle(order.begin(), order.end(), rng);
    }
    std::vector<crypto::ShamirShare> base, others;
    for (size_t i = 0; i < m; ++i) (i < t ? base : others).push_back(held[order[i]].share);
    absl::StatusOr<std::vector<bool>> on = crypto::ShamirOnPolynomial(base, others);
    if (!on.ok()) return absl::DataLossError(on.status().message());
    const size_t count = t + static_cast<size_t>(std::count(on->begin(), on->end(), true));
    if (count < majority) continue;
    std::vector<crypto::ShamirShare> good = std::move(base);
    for (size_t i = t; i < m; ++i) {
      if ((*on)[i - t]) {
        good.push_back(held[order[i]].share);
      } else {
        bad_holders->push_back(held[order[i]].holder);
      }
    }
    return good;
  }
  return absl::DataLossError(absl::StrCat(
      "the ", m, " revealed shares do not have a majority of at least ", majority,
      " on one polynomial of degree < ", t, " (too many holders sent wrong shares)"));
}

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
  std::map<uint32_t, std::vector<HeldShare>> shares;  // by owner
  for (uint32_t holder : c.alive) {
    for (const v1::RevealedShare& r : accepted_[holder].shares()) {
      auto share = crypto::ParseShamirShare(r.has_b_share() ? r.b_share() : r.s_sk_share());
      if (share.ok()) shares[r.owner()].push_back({holder, *std::move(share)});
    }
  }
  const ServerConfig& cfg = c.config;
  // A secret from shares that all lie on one polynomial. With more than t shares, a
  // holder whose share is off the majority's polynomial is named (rejected in UNMASKING)
  // and left out, instead of the sum silently being garbage or the session aborting.
  std::set<uint32_t> inconsistent;
  auto reconstruct = [&](uint32_t owner) -> absl::StatusOr<std::string> {
    const std::vector<HeldShare>& s = shares[owner];
    if (s.size() < t) {
      return absl::FailedPreconditionError(
          absl::StrCat("client ", owner, " has ", s.size(), " revealed shares, t = ", t));
    }
    std::vector<uint32_t> bad;
    absl::StatusOr<std::vector<crypto::ShamirShare>> good = ConsistentSubset(s, t, &bad);
    if (!good.ok()) {
      return absl::DataLossError(absl::StrCat("the revealed shares of client ", owner,
                                              " are inconsistent: ", good.status().message()));
    }
    for (uint32_t h : bad) {
      if (inconsistent.insert(h).second) {
        c.Reject(h, v1::UNMASKING,
                 absl::DataLossError(absl::StrCat(
                     "client ", h, " revealed a share of client ", owner,
                     " that is not on the polynomial of the other holders' shares")));
      }
    }
    return crypto::ShamirReconstruct(*good, t, kSecretBytes);
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
