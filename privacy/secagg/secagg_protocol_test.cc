// End-to-end tests of the secure aggregation state machines (client/, server/) through an
// in-memory harness: exact sums under dropouts at every phase, aborts just past the
// tolerated dropout, and rejection of invalid messages.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/testing/status_matchers.h"
#include "privacy/crypto/shamir.h"
#include "privacy/secagg/secagg_harness_test_util.h"

namespace tessera::secagg {
namespace {

using ::testing::HasSubstr;

std::vector<uint32_t> Shuffled(uint32_t n, uint64_t seed) {
  std::vector<uint32_t> order(n);
  for (uint32_t i = 0; i < n; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937_64(seed));
  return order;
}

// Runs a round and checks the output is bit-for-bit the plain sum of `expected_survivors`.
void ExpectExactSum(SecAggHarness& h, std::vector<uint32_t> expected_survivors) {
  ASSERT_THAT(h.RunAll(), IsOk());
  auto result = h.server().Result();
  ASSERT_THAT(result, IsOk());
  std::sort(expected_survivors.begin(), expected_survivors.end());
  const SecAggResult plain = h.PlainSum(expected_survivors);
  EXPECT_EQ(result->survivors, expected_survivors);
  ASSERT_EQ(result->sums.size(), plain.sums.size());
  for (size_t t = 0; t < plain.sums.size(); ++t) {
    EXPECT_EQ(result->sums[t].name, plain.sums[t].name);
    EXPECT_EQ(result->sums[t].values, plain.sums[t].values);
  }
  EXPECT_EQ(result->weight_sum, plain.weight_sum);
}

struct DropCase {
  uint32_t n;
  double fraction;
  int phase;  // clients send nothing from this phase on (1 = never advertise)
};

class DropoutTest : public ::testing::TestWithParam<DropCase> {};

TEST_P(DropoutTest, ExactSumOfSurvivors) {
  const DropCase c = GetParam();
  // sigma = 10 keeps the sparse degree small (k = 20 at n = 40) for test speed.
  SecAggHarness h({.num_clients = c.n, .dropout_fraction = 0.3, .corrupt_fraction = 0.05,
                   .security_bits = c.n > 30 ? 10u : 20u},
                  /*dim=*/c.n > 30 ? 16 : 64);
  const auto order = Shuffled(c.n, c.n + c.phase);
  const uint32_t drops = static_cast<uint32_t>(c.fraction * c.n);
  std::set<uint32_t> dropped(order.begin(), order.begin() + drops);
  for (uint32_t d : dropped) h.DropAt(d, c.phase);
  std::vector<uint32_t> survivors;
  for (uint32_t i = 0; i < c.n; ++i) {
    // A client that drops during ConsistencyCheck or Unmasking already sent its masked input.
    if (dropped.count(i) == 0 || c.phase >= 4) survivors.push_back(i);
  }
  ExpectExactSum(h, survivors);
  const SecAggStatus st = h.server().Status();
  if (c.n > 30) {
    EXPECT_LT(st.degree_k + 1, c.n) << "expected a sparse graph";
  }
  EXPECT_EQ(st.phases[c.phase - 1].dropped.size(), drops);
  for (uint32_t i = 0; i < c.n; ++i) {
    EXPECT_EQ(h.client(i).IsCompleted(), dropped.count(i) == 0) << i;
  }
}

INSTANTIATE_TEST_SUITE_P(
    CompleteAndSparse, DropoutTest,
    ::testing::Values(DropCase{10, 0.0, 1}, DropCase{10, 0.1, 1}, DropCase{10, 0.3, 1},
                      DropCase{10, 0.1, 2}, DropCase{10, 0.3, 2}, DropCase{10, 0.1, 3},
                      DropCase{10, 0.3, 3}, DropCase{10, 0.1, 4}, DropCase{10, 0.3, 4},
                      DropCase{10, 0.3, 5}, DropCase{40, 0.1, 1}, DropCase{40, 0.3, 2},
                      DropCase{40, 0.3, 3}, DropCase{40, 0.3, 4}, DropCase{40, 0.3, 5}));

std::vector<uint32_t> AllBut(uint32_t n, uint32_t excluded) {
  std::vector<uint32_t> out;
  for (uint32_t i = 0; i < n; ++i) {
    if (i != excluded) out.push_back(i);
  }
  return out;
}

ThreatModel TenClients() {
  return {.num_clients = 10, .dropout_fraction = 0.3, .corrupt_fraction = 0.05,
          .security_bits = 20};
}

TEST(SecAggAbortTest, TooManyDropBeforeMaskedInput) {
  const uint32_t t = DeriveParams(TenClients())->threshold_t;
  SecAggHarness h(TenClients(), 8);
  for (uint32_t i = 0; i < 10 - t + 1; ++i) h.DropAt(i, 3);  // t - 1 survivors
  absl::Status s = h.RunAll();
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kAborted, HasSubstr("TOO_FEW_CLIENTS")));
  EXPECT_EQ(h.server().Status().abort_reason, ServerAbortReason::kTooFewClients);
  EXPECT_EQ(h.client(9).abort_reason(), AbortReason::kServerAborted);
}

TEST(SecAggAbortTest, TooManyDropDuringUnmasking) {
  const uint32_t t = DeriveParams(TenClients())->threshold_t;
  SecAggHarness h(TenClients(), 8);
  for (uint32_t i = 0; i < 10 - t + 1; ++i) h.DropAt(i, 5);  // t - 1 answer
  EXPECT_THAT(h.RunAll(), StatusIs(absl::StatusCode::kAborted, HasSubstr("TOO_FEW_SHARES")));
  EXPECT_EQ(h.server().Status().abort_reason, ServerAbortReason::kTooFewShares);
  EXPECT_THAT(h.server().Result(), StatusIs(absl::StatusCode::kAborted));
}

// Survivors that sign nothing in ConsistencyCheck leave fewer than t signatures: abort
// before any share is revealed.
TEST(SecAggAbortTest, TooFewSignConsistencyCheck) {
  const uint32_t t = DeriveParams(TenClients())->threshold_t;
  SecAggHarness h(TenClients(), 8);
  for (uint32_t i = 0; i < 10 - t + 1; ++i) h.DropAt(i, 4);  // t - 1 sign
  EXPECT_THAT(h.RunAll(), StatusIs(absl::StatusCode::kAborted, HasSubstr("signed")));
  EXPECT_EQ(h.server().Status().abort_reason, ServerAbortReason::kTooFewClients);
}

// A holder reveals a wrong (but well-formed) b-share: with more than t shares the server
// reconstructs from the consistent majority, names the holder and returns the exact sum.
TEST(SecAggAbortTest, WrongRevealedShareNamesItsHolderAndTheSumIsExact) {
  constexpr uint32_t kLiar = 2;
  SecAggHarness h(TenClients(), 8);
  h.set_tamper([](int phase, uint32_t client, v1::ClientToServer& msg) {
    if (phase != 5 || client != kLiar) return;
    v1::RevealedShare* r = msg.mutable_unmask_response()->mutable_shares(0);
    absl::StatusOr<crypto::ShamirShare> share = crypto::ParseShamirShare(r->b_share());
    ASSERT_THAT(share, IsOk());
    share->y[0] = (share->y[0] + 1) % crypto::kShamirPrime;
    r->set_b_share(crypto::SerializeShamirShare(*share));
  });
  ExpectExactSum(h, AllBut(10, 10));
  const SecAggStatus st = h.server().Status();
  const auto& rejected = st.phases[v1::UNMASKING - 1].rejected;
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_EQ(rejected[0].first, kLiar);
  EXPECT_THAT(rejected[0].second, StatusIs(absl::StatusCode::kDataLoss,
                                           HasSubstr("not on the polynomial")));
}

// With exactly t shares of a secret a wrong one cannot be told apart: a dropped client's
// key is checked against its advertised s_pk, so the round aborts rather than summing
// garbage.
TEST(SecAggAbortTest, WrongShareAmongExactlyTIsNotSummed) {
  const uint32_t t = DeriveParams(TenClients())->threshold_t;
  SecAggHarness h(TenClients(), 8);
  h.DropAt(9, 3);  // client 9 drops: its s_sk is reconstructed from the 9 survivors' shares
  const uint32_t withheld = 9 - t;  // clients 0..withheld-1 hold back their share of 9
  h.set_tamper([withheld](int phase, uint32_t client, v1::ClientToServer& msg) {
    if (phase != 5 || client > withheld) return;
    auto* shares = msg.mutable_unmask_response()->mutable_shares();
    for (int i = 0; i < shares->size(); ++i) {
      if (shares->Get(i).owner() != 9) continue;
      if (client < withheld) {
        shares->DeleteSubrange(i, 1);
        return;
      }
      absl::StatusOr<crypto::ShamirShare> share =
          crypto::ParseShamirShare(shares->Get(i).s_sk_share());
      ASSERT_THAT(share, IsOk());
      share->y[1] = (share->y[1] + 1) % crypto::kShamirPrime;
      shares->Mutable(i)->set_s_sk_share(crypto::SerializeShamirShare(*share));
    }
  });
  EXPECT_THAT(h.RunAll(), StatusIs(absl::StatusCode::kAborted, HasSubstr("does not match")));
  EXPECT_EQ(h.server().Status().abort_reason, ServerAbortReason::kReconstructionFailed);
  EXPECT_THAT(h.server().Result(), StatusIs(absl::StatusCode::kAborted));
}

TEST(SecAggAbortTest, TooFewAdvertise) {
  SecAggHarness h(TenClients(), 8);
  for (uint32_t i = 0; i < 8; ++i) h.DropAt(i, 1);
  EXPECT_THAT(h.RunAll(), StatusIs(absl::StatusCode::kAborted, HasSubstr("TOO_FEW_CLIENTS")));
}

// One client's message of `phase` is tampered with: the server rejects it with `code`, drops
// that client, and the others finish with the exact sum.
void ExpectRejected(int phase, absl::StatusCode code, absl::string_view text,
                    const std::function<void(v1::ClientToServer&)>& tamper) {
  constexpr uint32_t kBad = 4;
  SecAggHarness h(TenClients(), 8);
  h.set_tamper([&](int p, uint32_t c, v1::ClientToServer& msg) {
    if (p == phase && c == kBad) tamper(msg);
  });
  // Rejected in ConsistencyCheck or Unmasking, it is still a survivor: its masked input is
  // in the sum.
  ExpectExactSum(h, phase >= 4 ? AllBut(10, 10) : AllBut(10, kBad));
  ASSERT_EQ(h.server_status().count(kBad), 1u);
  EXPECT_THAT(h.server_status().at(kBad), StatusIs(code, HasSubstr(std::string(text))));
  EXPECT_EQ(h.server_status().size(), 1u);
  const SecAggStatus st = h.server().Status();
  const auto& rejected = st.phases[phase - 1].rejected;
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_EQ(rejected[0].first, kBad);
}

TEST(SecAggRejectTest, BadSignature) {
  ExpectRejected(1, absl::StatusCode::kPermissionDenied, "signature", [](auto& m) {
    m.mutable_advertise_keys()->mutable_signature()->at(0) ^= 1;
  });
}

TEST(SecAggRejectTest, WrongNumberOfShares) {
  ExpectRejected(2, absl::StatusCode::kInvalidArgument, "shares for", [](auto& m) {
    m.mutable_share_keys()->mutable_shares()->RemoveLast();
  });
}

TEST(SecAggRejectTest, ShareForUnknownPeer) {
  ExpectRejected(2, absl::StatusCode::kInvalidArgument, "unknown client", [](auto& m) {
    m.mutable_share_keys()->mutable_shares(0)->set_receiver(77);
  });
}

TEST(SecAggRejectTest, DuplicateShare) {
  ExpectRejected(2, absl::StatusCode::kInvalidArgument, "duplicate", [](auto& m) {
    auto* shares = m.mutable_share_keys()->mutable_shares();
    *shares->Mutable(1) = shares->Get(0);
  });
}

TEST(SecAggRejectTest, MismatchedSession) {
  ExpectRejected(2, absl::StatusCode::kInvalidArgument, "session", [](auto& m) {
    m.mutable_share_keys()->mutable_header()->set_session_id("other");
  });
}

TEST(SecAggRejectTest, ReorderedPhase) {
  ExpectRejected(2, absl::StatusCode::kFailedPrecondition, "phase", [](auto& m) {
    m.mutable_share_keys()->mutable_header()->set_phase(v1::UNMASKING);
  });
}

TEST(SecAggRejectTest, MaskedVectorOfWrongLength) {
  ExpectRejected(3, absl::StatusCode::kInvalidArgument, "length", [](auto& m) {
    m.mutable_masked_input()->mutable_tensors(0)->mutable_values()->RemoveLast();
  });
}

TEST(SecAggRejectTest, ForgedConsistencySignature) {
  ExpectRejected(4, absl::StatusCode::kPermissionDenied, "consistency signature", [](auto& m) {
    m.mutable_consistency_signature()->mutable_signature()->at(3) ^= 1;
  });
}

// A malformed revealed share drops only its sender, on arrival.
TEST(SecAggRejectTest, RevealedShareAtAnotherSlot) {
  ExpectRejected(5, absl::StatusCode::kInvalidArgument, "its slot is", [](auto& m) {
    v1::RevealedShare* r = m.mutable_unmask_response()->mutable_shares(0);
    absl::StatusOr<crypto::ShamirShare> share = crypto::ParseShamirShare(r->b_share());
    ASSERT_THAT(share, IsOk());
    share->x = share->x == 1 ? 2 : 1;  // another holder's slot
    r->set_b_share(crypto::SerializeShamirShare(*share));
  });
}

TEST(SecAggRejectTest, RevealedShareWithWrongLimbCount) {
  ExpectRejected(5, absl::StatusCode::kInvalidArgument, "limbs", [](auto& m) {
    v1::RevealedShare* r = m.mutable_unmask_response()->mutable_shares(0);
    absl::StatusOr<crypto::ShamirShare> share = crypto::ParseShamirShare(r->b_share());
    ASSERT_THAT(share, IsOk());
    share->y.push_back(7);
    r->set_b_share(crypto::SerializeShamirShare(*share));
  });
}

TEST(SecAggRejectTest, RevealedShareOutsideTheField) {
  ExpectRejected(5, absl::StatusCode::kInvalidArgument, "share of", [](auto& m) {
    v1::RevealedShare* r = m.mutable_unmask_response()->mutable_shares(0);
    std::string bytes = r->b_share();
    for (size_t i = bytes.size() - 8; i < bytes.size(); ++i) bytes[i] = '\xff';  // y >= p
    r->set_b_share(bytes);
  });
}

TEST(SecAggRejectTest, BothSharesForOnePeer) {
  ExpectRejected(5, absl::StatusCode::kInvalidArgument, "two shares", [](auto& m) {
    auto* r = m.mutable_unmask_response()->add_shares();
    r->set_owner(m.unmask_response().shares(0).owner());
    r->set_s_sk_share("x");
  });
}

TEST(SecAggRejectTest, ReplayedMessage) {
  constexpr uint32_t kBad = 6;
  SecAggHarness h(TenClients(), 8);
  ASSERT_THAT(h.Step(1), IsOk());
  v1::ClientToServer replay;
  for (auto& [c, msg] : h.pending()) {
    if (c == kBad) replay = msg;
  }
  ASSERT_THAT(h.server().HandleMessage(kBad, replay), IsOk());
  EXPECT_THAT(h.server().HandleMessage(kBad, replay),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("replayed")));
  for (int phase = 2; phase <= 5; ++phase) ASSERT_THAT(h.Step(phase), IsOk());
  auto result = h.server().Result();
  ASSERT_THAT(result, IsOk());
  const SecAggResult plain = h.PlainSum(AllBut(10, kBad));
  EXPECT_EQ(result->survivors, plain.survivors);
  EXPECT_EQ(result->sums[0].values, plain.sums[0].values);
  EXPECT_EQ(result->weight_sum, plain.weight_sum);
  EXPECT_EQ(h.server().Status().phases[1].rejected.size(), 1u);
}

TEST(SecAggClientTest, RefusesToRevealBothSharesOfOnePeer) {
  SecAggHarness h(TenClients(), 8);
  for (int phase = 1; phase <= 4; ++phase) ASSERT_THAT(h.Step(phase), IsOk());
  // Client 0 answered the unmask request with b-shares of survivors; asking again with a
  // survivor listed as dropped would reveal its s_sk-share too.
  v1::ServerToClient again = h.last_sent(0);
  auto* req = again.mutable_unmask_request();
  const uint32_t victim = req->survivors(1);
  req->clear_survivors();
  for (uint32_t i = 0; i < 10; ++i) {
    if (i != victim) req->add_survivors(i);
  }
  req->add_dropped(victim);
  EXPECT_THAT(h.client(0).HandleMessage(again),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("REVEAL_BOTH_SHARES")));
  EXPECT_EQ(h.client(0).abort_reason(), AbortReason::kRevealBothShares);
}

TEST(SecAggClientTest, RefusesPeerInBothListsOfOneRequest) {
  SecAggHarness h(TenClients(), 8);
  for (int phase = 1; phase <= 2; ++phase) ASSERT_THAT(h.Step(phase), IsOk());
  ASSERT_THAT(h.server().HandleMessage(h.pending()[0].first, h.pending()[0].second), IsOk());
  v1::ServerToClient req;
  *req.mutable_consistency_request()->mutable_header() =
      MakeHeader(SecAggHarness::kSession, SecAggHarness::kRound, v1::MASKED_INPUT_COLLECTION);
  for (uint32_t i = 0; i < 10; ++i) req.mutable_consistency_request()->add_survivors(i);
  req.mutable_consistency_request()->add_dropped(3);
  const uint32_t c = h.pending()[1].first;
  EXPECT_THAT(h.client(c).HandleMessage(req), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(h.client(c).abort_reason(), AbortReason::kRevealBothShares);
}

TEST(SecAggClientTest, RefusesOutOfPhaseWrongSessionBadSignatureAndSmallRoster) {
  SecAggHarness h(TenClients(), 8);
  ASSERT_THAT(h.Step(1), IsOk());
  ASSERT_THAT(h.Step(2), IsOk());
  // Client 1 is waiting for the consistency request: a replayed roster is out of phase.
  v1::ServerToClient roster;
  auto* r = roster.mutable_roster();
  *r->mutable_header() =
      MakeHeader(SecAggHarness::kSession, SecAggHarness::kRound, v1::ADVERTISE_KEYS);
  EXPECT_THAT(h.client(1).HandleMessage(roster), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(h.client(1).abort_reason(), AbortReason::kOutOfPhase);
  r->mutable_header()->set_phase(v1::MASKED_INPUT_COLLECTION);
  r->mutable_header()->set_round(SecAggHarness::kRound + 1);
  EXPECT_THAT(h.client(2).HandleMessage(roster), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(h.client(2).abort_reason(), AbortReason::kWrongSession);

  // Fresh clients, a tampered roster: a peer's signature, a threshold too low, a repeated
  // identity, a shrunken roster (whose k no longer matches its size).
  SecAggHarness h2(TenClients(), 8);
  ASSERT_THAT(h2.server().HandleMessage(0, h2.pending()[0].second), IsOk());
  for (size_t i = 1; i < 10; ++i) {
    ASSERT_THAT(h2.server().HandleMessage(h2.pending()[i].first, h2.pending()[i].second), IsOk());
  }
  ASSERT_THAT(h2.server().AdvancePhase(), IsOk());
  auto out = h2.server().TakeOutgoing();
  v1::ServerToClient bad_sig = out[0].second;
  bad_sig.mutable_roster()->mutable_entries(3)->mutable_signature()->at(5) ^= 1;
  EXPECT_THAT(h2.client(0).HandleMessage(bad_sig), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(h2.client(0).abort_reason(), AbortReason::kBadSignature);
  v1::ServerToClient low_t = out[1].second;
  low_t.mutable_roster()->set_threshold_t(1);
  EXPECT_THAT(h2.client(1).HandleMessage(low_t), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(h2.client(1).abort_reason(), AbortReason::kUnsafeParameters);
  v1::ServerToClient twice = out[3].second;
  *twice.mutable_roster()->mutable_entries(4)->mutable_identity() =
      twice.roster().entries(3).identity();
  EXPECT_THAT(h2.client(3).HandleMessage(twice),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("repeats")));
  EXPECT_EQ(h2.client(3).abort_reason(), AbortReason::kMalformedMessage);
  v1::ServerToClient few = out[2].second;
  few.mutable_roster()->mutable_entries()->DeleteSubrange(5, 5);
  EXPECT_THAT(h2.client(2).HandleMessage(few), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(h2.client(2).abort_reason(), AbortReason::kUnsafeParameters);
}

}  // namespace
}  // namespace tessera::secagg
