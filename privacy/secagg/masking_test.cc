#include "privacy/secagg/masking.h"

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/testing/status_matchers.h"
#include "privacy/crypto/random.h"
#include "privacy/crypto/shamir.h"
#include "privacy/crypto/x25519.h"
#include "privacy/secagg/neighbor_graph.h"
#include "privacy/secagg/quantizer.h"

namespace tessera::secagg {
namespace {

constexpr char kSession[] = "session-1";
constexpr uint32_t kRound = 3;
constexpr char kTensor[] = "dense/w";

struct Client {
  crypto::X25519KeyPair keys;
  std::string self_seed;
  std::vector<uint64_t> input;  // quantized
  // Shares this client holds, keyed by owner: of the owner's private key and self seed.
  std::vector<std::pair<uint32_t, crypto::ShamirShare>> key_shares;
  std::vector<std::pair<uint32_t, crypto::ShamirShare>> seed_shares;
};

// Shares that `owner` gave to its neighbours, as returned by the surviving ones.
std::vector<crypto::ShamirShare> Collect(
    const std::vector<Client>& clients, const std::vector<uint32_t>& holders,
    const std::vector<bool>& dropped, uint32_t owner, bool key) {
  std::vector<crypto::ShamirShare> out;
  for (uint32_t h : holders) {
    if (dropped[h]) continue;
    for (const auto& [o, share] : key ? clients[h].key_shares : clients[h].seed_shares) {
      if (o == owner) out.push_back(share);
    }
  }
  return out;
}

// One round of Bonawitz et al. over `graph` with threshold t: every client advertises keys
// and shares them; the clients in `dropped` vanish before sending masked input. Returns
// after checking the unmasked sum equals the survivors' plain modular sum bit for bit.
void RunRound(const std::vector<std::vector<uint32_t>>& graph, uint32_t t,
              const std::vector<bool>& dropped, size_t dim) {
  const uint32_t n = static_cast<uint32_t>(graph.size());
  auto qp = MakeQuantizerParams({.clip = 1, .max_weight = 1, .max_clients = n, .value_bits = 16});
  ASSERT_THAT(qp, IsOk());
  const uint64_t mask = qp->modulus_mask;
  std::mt19937_64 rng(n * 1000 + t);
  std::uniform_real_distribution<float> value(-1.5f, 1.5f);
  std::uniform_real_distribution<double> unit(0, 1);

  // AdvertiseKeys and ShareKeys.
  std::vector<Client> clients;
  for (uint32_t i = 0; i < n; ++i) {
    auto keys = crypto::X25519KeyPair::Generate();
    auto seed = crypto::RandomBytes(32);
    ASSERT_THAT(keys, IsOk());
    ASSERT_THAT(seed, IsOk());
    std::vector<float> x(dim);
    for (auto& v : x) v = value(rng);
    auto q = Quantize(x, 1.0, *qp, [&] { return unit(rng); });
    ASSERT_THAT(q, IsOk());
    clients.push_back({*keys, *seed, *q, {}, {}});
  }
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t k = static_cast<uint32_t>(graph[i].size());
    auto key_shares = crypto::ShamirSplit(clients[i].keys.private_key(), t, k);
    auto seed_shares = crypto::ShamirSplit(clients[i].self_seed, t, k);
    ASSERT_THAT(key_shares, IsOk());
    ASSERT_THAT(seed_shares, IsOk());
    for (uint32_t j = 0; j < k; ++j) {
      clients[graph[i][j]].key_shares.emplace_back(i, (*key_shares)[j]);
      clients[graph[i][j]].seed_shares.emplace_back(i, (*seed_shares)[j]);
    }
  }

  // MaskedInputCollection: survivors mask with every neighbour (dropped ones included:
  // they dropped after ShareKeys) and with their self seed.
  std::vector<uint64_t> sum(dim, 0), plain(dim, 0);
  for (uint32_t i = 0; i < n; ++i) {
    if (dropped[i]) continue;
    std::vector<uint64_t> y = clients[i].input;
    for (uint32_t peer : graph[i]) {
      auto secret = clients[i].keys.SharedSecret(clients[peer].keys.public_key());
      ASSERT_THAT(secret, IsOk());
      ASSERT_THAT(AddPairwiseMask(absl::MakeSpan(y), i, peer, *secret, kSession, kRound,
                                  kTensor, mask),
                  IsOk());
    }
    ASSERT_THAT(AddSelfMask(absl::MakeSpan(y), clients[i].self_seed, kSession, kRound,
                            kTensor, mask),
                IsOk());
    EXPECT_NE(y, clients[i].input);
    AddModular(y, *qp, absl::MakeSpan(sum));
    AddModular(clients[i].input, *qp, absl::MakeSpan(plain));
  }

  // Unmasking: the coordinator reconstructs survivors' self seeds and dropped clients'
  // private keys from the shares held by surviving neighbours.
  for (uint32_t i = 0; i < n; ++i) {
    auto shares = Collect(clients, graph[i], dropped, i, /*key=*/dropped[i]);
    ASSERT_GE(shares.size(), t) << "client " << i << " has too few surviving neighbours";
    if (!dropped[i]) {
      auto seed = crypto::ShamirReconstruct(shares, t, 32);
      ASSERT_THAT(seed, IsOk());
      ASSERT_EQ(*seed, clients[i].self_seed);
      ASSERT_THAT(RemoveSelfMask(absl::MakeSpan(sum), *seed, kSession, kRound, kTensor, mask),
                  IsOk());
      continue;
    }
    auto private_key = crypto::ShamirReconstruct(shares, t, 32);
    ASSERT_THAT(private_key, IsOk());
    ASSERT_EQ(*private_key, clients[i].keys.private_key());
    std::vector<SurvivingPeer> survivors;
    for (uint32_t peer : graph[i]) {
      if (!dropped[peer]) survivors.push_back({peer, clients[peer].keys.public_key()});
    }
    ASSERT_THAT(RemovePairwiseMaskOfDropped(absl::MakeSpan(sum), i, *private_key, survivors,
                                            kSession, kRound, kTensor, mask),
                IsOk());
  }
  EXPECT_EQ(sum, plain);
}

std::vector<bool> DropFraction(uint32_t n, double fraction, uint64_t seed) {
  std::vector<uint32_t> order(n);
  for (uint32_t i = 0; i < n; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937_64(seed));
  std::vector<bool> dropped(n, false);
  for (uint32_t i = 0; i < static_cast<uint32_t>(fraction * n); ++i) dropped[order[i]] = true;
  return dropped;
}

struct Case {
  uint32_t n, k, t;
  double dropout;
};

class MaskingRoundTest : public ::testing::TestWithParam<Case> {};

TEST_P(MaskingRoundTest, UnmaskedSumEqualsPlainSumOfSurvivorsExactly) {
  const Case c = GetParam();
  auto graph = RandomRegularGraph(c.n, c.k, std::string(32, 'g'));
  ASSERT_THAT(graph, IsOk());
  RunRound(*graph, c.t, DropFraction(c.n, c.dropout, c.n + c.k), /*dim=*/300);
}

INSTANTIATE_TEST_SUITE_P(
    CompleteAndSparse, MaskingRoundTest,
    ::testing::Values(Case{20, 19, 8, 0.0}, Case{20, 19, 8, 0.1}, Case{20, 19, 8, 0.3},
                      Case{100, 20, 8, 0.0}, Case{100, 20, 8, 0.1}, Case{100, 20, 8, 0.3},
                      Case{60, 13, 5, 0.3}));

TEST(MaskingTest, PairMasksCancelAndSelfMaskInverts) {
  const uint64_t mask = (uint64_t{1} << 27) - 1;
  std::vector<uint64_t> a(1000, 5), b(1000, 7);
  const std::string secret(32, 's'), seed(32, 'z');
  ASSERT_THAT(AddPairwiseMask(absl::MakeSpan(a), 2, 9, secret, kSession, kRound, kTensor, mask),
              IsOk());
  ASSERT_THAT(AddPairwiseMask(absl::MakeSpan(b), 9, 2, secret, kSession, kRound, kTensor, mask),
              IsOk());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ((a[i] + b[i]) & mask, 12u);
  std::vector<uint64_t> c(a);
  ASSERT_THAT(AddSelfMask(absl::MakeSpan(c), seed, kSession, kRound, kTensor, mask), IsOk());
  EXPECT_NE(c, a);
  ASSERT_THAT(RemoveSelfMask(absl::MakeSpan(c), seed, kSession, kRound, kTensor, mask), IsOk());
  EXPECT_EQ(c, a);
}

// A masked vector of all-zero inputs looks uniform: it differs from the input and each bit
// of the b-bit entries, the top one included, is set about half the time.
TEST(MaskingTest, MaskedVectorLooksUniform) {
  const uint32_t bits = 27;
  const uint64_t mask = (uint64_t{1} << bits) - 1;
  auto alice = crypto::X25519KeyPair::FromPrivate(std::string(32, '\x11'));
  auto bob = crypto::X25519KeyPair::FromPrivate(std::string(32, '\x22'));
  ASSERT_THAT(alice, IsOk());
  ASSERT_THAT(bob, IsOk());
  auto secret = alice->SharedSecret(bob->public_key());
  ASSERT_THAT(secret, IsOk());
  std::vector<uint64_t> v(8192, 0);
  ASSERT_THAT(AddPairwiseMask(absl::MakeSpan(v), 0, 1, *secret, kSession, kRound, kTensor, mask),
              IsOk());
  ASSERT_THAT(AddSelfMask(absl::MakeSpan(v), std::string(32, 'q'), kSession, kRound, kTensor,
                          mask),
              IsOk());
  EXPECT_EQ(std::count(v.begin(), v.end(), 0u), 0);
  for (uint32_t bit = 0; bit < bits; ++bit) {
    const auto set = std::count_if(v.begin(), v.end(), [&](uint64_t x) { return (x >> bit) & 1; });
    EXPECT_GT(set, 3700) << "bit " << bit;  // 4096 +/- ~10 sigma
    EXPECT_LT(set, 4500) << "bit " << bit;
  }
  for (uint64_t x : v) ASSERT_LE(x, mask);
  // Another round or tensor gives an unrelated mask.
  std::vector<uint64_t> w(8192, 0);
  ASSERT_THAT(AddPairwiseMask(absl::MakeSpan(w), 0, 1, *secret, kSession, kRound + 1, kTensor,
                              mask),
              IsOk());
  ASSERT_THAT(AddSelfMask(absl::MakeSpan(w), std::string(32, 'q'), kSession, kRound + 1,
                          kTensor, mask),
              IsOk());
  EXPECT_NE(v, w);
}

TEST(MaskingTest, RejectsBadArguments) {
  std::vector<uint64_t> v(4, 1);
  const auto before = v;
  const std::string secret(32, 's');
  EXPECT_THAT(AddPairwiseMask(absl::MakeSpan(v), 3, 3, secret, kSession, kRound, kTensor, 255),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(AddPairwiseMask(absl::MakeSpan(v), 1, 3, "", kSession, kRound, kTensor, 255),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(AddPairwiseMask(absl::MakeSpan(v), 1, 3, secret, kSession, kRound, kTensor, 254),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(AddSelfMask(absl::MakeSpan(v), "short", kSession, kRound, kTensor, 255),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(RemovePairwiseMaskOfDropped(absl::MakeSpan(v), 0, "short", {}, kSession, kRound,
                                          kTensor, 255),
              StatusIs(absl::StatusCode::kInvalidArgument));
  std::vector<SurvivingPeer> self_listed = {{0, std::string(32, '\x09')}};
  EXPECT_THAT(RemovePairwiseMaskOfDropped(absl::MakeSpan(v), 0, std::string(32, 'k'),
                                          self_listed, kSession, kRound, kTensor, 255),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(v, before);
  // A full 64-bit modulus is allowed.
  EXPECT_THAT(AddSelfMask(absl::MakeSpan(v), secret, kSession, kRound, kTensor, ~uint64_t{0}),
              IsOk());
}

}  // namespace
}  // namespace tessera::secagg
