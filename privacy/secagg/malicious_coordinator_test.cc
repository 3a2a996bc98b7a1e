// The secure aggregation clients against a coordinator that deviates from the protocol
// (docs/secagg.md, "Threat model"): the test plays the coordinator by hand after the honest
// key exchange and checks that no client reveals what would let it unmask one update.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/testing/status_matchers.h"
#include "privacy/secagg/secagg_harness_test_util.h"

namespace tessera::secagg {
namespace {

using ::testing::HasSubstr;

constexpr uint32_t kN = 10;
constexpr uint32_t kVictim = 0;
constexpr uint32_t kCorrupt = 9;  // colludes with the coordinator: signs anything

// C = ceil(0.05 * 10) = 1 corrupt client, D = 3 dropouts.
ThreatModel TenClients() {
  return {.num_clients = kN, .dropout_fraction = 0.3, .corrupt_fraction = 0.05,
          .security_bits = 20};
}

struct View {
  std::vector<uint32_t> survivors, dropped;
};

v1::ServerToClient ConsistencyRequestFor(const View& v) {
  v1::ServerToClient m;
  v1::ConsistencyRequest* r = m.mutable_consistency_request();
  *r->mutable_header() = MakeHeader(SecAggHarness::kSession, SecAggHarness::kRound,
                                    v1::MASKED_INPUT_COLLECTION);
  r->mutable_survivors()->Add(v.survivors.begin(), v.survivors.end());
  r->mutable_dropped()->Add(v.dropped.begin(), v.dropped.end());
  return m;
}

v1::ServerToClient UnmaskRequestFor(const View& v,
                                    const std::vector<std::pair<uint32_t, std::string>>& sigs) {
  v1::ServerToClient m;
  v1::UnmaskRequest* r = m.mutable_unmask_request();
  *r->mutable_header() =
      MakeHeader(SecAggHarness::kSession, SecAggHarness::kRound, v1::CONSISTENCY_CHECK);
  r->mutable_survivors()->Add(v.survivors.begin(), v.survivors.end());
  r->mutable_dropped()->Add(v.dropped.begin(), v.dropped.end());
  for (const auto& [who, sig] : sigs) {
    v1::SignedSurvivorSet* s = r->add_signatures();
    s->set_client_index(who);
    s->set_signature(sig);
  }
  return m;
}

std::string Payload(const View& v) {
  return ConsistencyPayload(SecAggHarness::kSession, SecAggHarness::kRound, v.survivors,
                            v.dropped);
}

// Runs AdvertiseKeys and ShareKeys honestly; every client has sent its masked input.
void HonestKeyExchange(SecAggHarness& h) {
  ASSERT_THAT(h.Step(1), IsOk());
  ASSERT_THAT(h.Step(2), IsOk());
  ASSERT_EQ(h.pending().size(), kN);
}

// The split-view attack of Bonawitz et al. §6: the coordinator tells the honest clients in
// `group_a` (and the victim) that the victim survived and those in `group_b` that it dropped,
// hoping to collect t b-shares (its self mask) and t s_sk-shares (its pairwise masks) of the
// victim, which together unmask its individual input. The corrupt client signs both views
// and hands over both of its shares. Returns {b-shares, s_sk-shares} of the victim the
// coordinator ends up with.
std::pair<uint32_t, uint32_t> SplitView(SecAggHarness& h, const std::vector<uint32_t>& group_a,
                                        const std::vector<uint32_t>& group_b) {
  View a, b;
  for (uint32_t i = 0; i < kN; ++i) {
    a.survivors.push_back(i);
    if (i != kVictim) b.survivors.push_back(i);
  }
  b.dropped = {kVictim};
  std::vector<uint32_t> a_side = group_a;
  a_side.push_back(kVictim);
  std::vector<std::pair<uint32_t, std::string>> sigs_a, sigs_b;
  auto collect = [&](const std::vector<uint32_t>& side, const View& view, auto& sigs) {
    for (uint32_t c : side) {
      auto reply = h.client(c).HandleMessage(ConsistencyRequestFor(view));
      ASSERT_THAT(reply, IsOk());
      ASSERT_TRUE(reply->has_value());
      sigs.emplace_back(c, (*reply)->consistency_signature().signature());
    }
    sigs.emplace_back(kCorrupt, h.Sign(kCorrupt, Payload(view)));
  };
  collect(a_side, a, sigs_a);
  collect(group_b, b, sigs_b);
  uint32_t b_shares = 1, s_shares = 1;  // the corrupt neighbour's own
  auto unmask = [&](const std::vector<uint32_t>& side, const View& view, const auto& sigs) {
    for (uint32_t c : side) {
      auto reply = h.client(c).HandleMessage(UnmaskRequestFor(view, sigs));
      if (!reply.ok()) {
        EXPECT_EQ(h.client(c).abort_reason(), AbortReason::kInconsistentView) << c;
        continue;
      }
      ASSERT_TRUE(reply->has_value());
      for (const v1::RevealedShare& r : (*reply)->unmask_response().shares()) {
        if (r.owner() != kVictim) continue;
        b_shares += r.has_b_share() ? 1 : 0;
        s_shares += r.has_s_sk_share() ? 1 : 0;
      }
    }
  };
  unmask(a_side, a, sigs_a);
  unmask(group_b, b, sigs_b);
  return {b_shares, s_shares};
}

TEST(MaliciousCoordinatorTest, SplitSurvivorViewsNeverUnmaskOneInput) {
  const uint32_t t = DeriveParams(TenClients())->threshold_t;
  // t > (k + C) / 2 = (9 + 1) / 2 (hand-derived: the smallest such t is 6; D = 3 allows
  // up to 9 - 3 = 6).
  ASSERT_EQ(t, 6u);
  std::vector<uint32_t> honest;
  for (uint32_t i = 1; i < kCorrupt; ++i) honest.push_back(i);
  bool some_refused = false;
  for (size_t split = 0; split <= honest.size(); ++split) {
    SecAggHarness h(TenClients(), 8);
    HonestKeyExchange(h);
    const std::vector<uint32_t> group_a(honest.begin(), honest.begin() + split);
    const std::vector<uint32_t> group_b(honest.begin() + split, honest.end());
    const auto [b_shares, s_shares] = SplitView(h, group_a, group_b);
    EXPECT_FALSE(b_shares >= t && s_shares >= t)
        << "split " << split << ": the coordinator holds " << b_shares << " b-shares and "
        << s_shares << " s_sk-shares of the victim, t = " << t;
    for (uint32_t c : honest) some_refused = some_refused || h.client(c).IsAborted();
  }
  EXPECT_TRUE(some_refused);
}

TEST(MaliciousCoordinatorTest, UnmaskRequestMustCarryTheSignedSetAndTSignatures) {
  const uint32_t t = DeriveParams(TenClients())->threshold_t;
  View all;
  for (uint32_t i = 0; i < kN; ++i) all.survivors.push_back(i);
  auto signed_by_all = [&](SecAggHarness& h) {
    std::vector<std::pair<uint32_t, std::string>> sigs;
    for (uint32_t c = 0; c < kN; ++c) {
      auto reply = h.client(c).HandleMessage(ConsistencyRequestFor(all));
      EXPECT_THAT(reply, IsOk());
      sigs.emplace_back(c, (*reply)->consistency_signature().signature());
    }
    return sigs;
  };
  {  // Another set than the one signed.
    SecAggHarness h(TenClients(), 8);
    HonestKeyExchange(h);
    auto sigs = signed_by_all(h);
    View other = all;
    other.survivors.erase(other.survivors.begin() + 3);
    other.dropped = {3};
    EXPECT_THAT(h.client(1).HandleMessage(UnmaskRequestFor(other, sigs)),
                StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("INCONSISTENT_VIEW")));
  }
  {  // t - 1 signatures, and one signer repeated to make up the count.
    SecAggHarness h(TenClients(), 8);
    HonestKeyExchange(h);
    auto sigs = signed_by_all(h);
    sigs.resize(t - 1);
    EXPECT_THAT(h.client(1).HandleMessage(UnmaskRequestFor(all, sigs)),
                StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("only 5 survivors")));
    sigs.push_back(sigs[0]);
    EXPECT_THAT(h.client(2).HandleMessage(UnmaskRequestFor(all, sigs)),
                StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("two consistency")));
  }
  {  // A signature that does not verify under the signer's roster identity.
    SecAggHarness h(TenClients(), 8);
    HonestKeyExchange(h);
    auto sigs = signed_by_all(h);
    sigs[4].second = h.Sign(5, Payload(all));  // client 5's signature claimed as client 4's
    auto reply = h.client(1).HandleMessage(UnmaskRequestFor(all, sigs));
    EXPECT_THAT(reply, StatusIs(absl::StatusCode::kPermissionDenied,
                                HasSubstr("consistency signature of client 4")));
    EXPECT_EQ(h.client(1).abort_reason(), AbortReason::kBadSignature);
  }
  {  // The honest path: the same set, t valid signatures.
    SecAggHarness h(TenClients(), 8);
    HonestKeyExchange(h);
    auto sigs = signed_by_all(h);
    sigs.resize(t);
    auto reply = h.client(7).HandleMessage(UnmaskRequestFor(all, sigs));
    ASSERT_THAT(reply, IsOk());
    EXPECT_EQ((*reply)->unmask_response().shares_size(), 9);
  }
}

// The coordinator cannot lower t, change k or pick the graph: the client derives them from
// the agreed threat model and the roster.
TEST(MaliciousCoordinatorTest, RosterWithOtherParametersIsRefused) {
  SecAggHarness h(TenClients(), 8);
  for (auto& [c, msg] : h.pending()) ASSERT_THAT(h.server().HandleMessage(c, msg), IsOk());
  ASSERT_THAT(h.server().AdvancePhase(), IsOk());
  auto out = h.server().TakeOutgoing();
  ASSERT_EQ(out.size(), kN);
  auto expect_refused = [&](uint32_t c, v1::ServerToClient roster, absl::string_view why) {
    EXPECT_THAT(h.client(c).HandleMessage(roster),
                StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr(std::string(why))));
    EXPECT_EQ(h.client(c).abort_reason(), AbortReason::kUnsafeParameters);
  };
  v1::ServerToClient m = out[0].second;
  m.mutable_roster()->set_threshold_t(2);
  expect_refused(0, m, "t = 2");
  m = out[1].second;
  m.mutable_roster()->set_threshold_t(m.roster().threshold_t() + 1);
  expect_refused(1, m, "gives k = 9, t = 6");
  m = out[2].second;
  m.mutable_roster()->set_degree_k(4);
  expect_refused(2, m, "k = 4");
  m = out[3].second;
  m.mutable_roster()->mutable_graph_seed()->at(0) ^= 1;
  expect_refused(3, m, "graph seed");
  // The honest roster is accepted.
  auto ok = h.client(4).HandleMessage(out[4].second);
  ASSERT_THAT(ok, IsOk());
  EXPECT_TRUE(ok->has_value());
}

// A client whose task demands more inputs (distributed DP's min_clients) refuses to sign
// a smaller survivor set, and the server never sends one out.
TEST(MaliciousCoordinatorTest, NoSignatureOrUnmaskBelowMinSurvivors) {
  {
    SecAggHarness h(TenClients(), 8, /*modulus_bits=*/20, /*min_survivors=*/9);
    h.DropAt(2, 3);
    h.DropAt(5, 3);
    EXPECT_THAT(h.RunAll(),
                StatusIs(absl::StatusCode::kAborted, HasSubstr("selection.min_clients")));
    for (uint32_t c = 0; c < kN; ++c) {
      EXPECT_FALSE(h.last_sent(c).has_consistency_request()) << c;
      EXPECT_FALSE(h.last_sent(c).has_unmask_request()) << c;
    }
  }
  SecAggHarness h(TenClients(), 8, /*modulus_bits=*/20, /*min_survivors=*/9);
  HonestKeyExchange(h);
  View eight;
  for (uint32_t i = 0; i < 8; ++i) eight.survivors.push_back(i);
  EXPECT_THAT(h.client(1).HandleMessage(ConsistencyRequestFor(eight)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("fewer than 9")));
  EXPECT_EQ(h.client(1).abort_reason(), AbortReason::kRosterTooSmall);
}

}  // namespace
}  // namespace tessera::secagg
