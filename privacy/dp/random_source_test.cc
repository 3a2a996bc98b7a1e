#include "privacy/dp/random_source.h"
#include "privacy/dp/testing/seeded_random.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/types/span.h"
#include "core/base/testing/status_matchers.h"
#include "privacy/crypto/prg.h"

namespace tessera::dp {
namespace {

TEST(SecureRandomTest, RejectsBadSeedLength) {
  EXPECT_THAT(SecureRandom::FromSeed("short"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(SecureRandomTest, MatchesMaskPrgAcrossBlockBoundaries) {
  const std::string seed(32, '\x07');
  absl::StatusOr<crypto::MaskPrg> prg = crypto::MaskPrg::Create(seed);
  ASSERT_THAT(prg, IsOk());
  std::vector<uint64_t> expected(200);
  prg->FillUint64(absl::MakeSpan(expected));
  SecureRandom rng = Seeded('\x07');
  for (uint64_t want : expected) ASSERT_EQ(rng.NextUint64(), want);
}

TEST(SecureRandomTest, FromSeedIsDeterministicAndSeedDependent) {
  SecureRandom a = Seeded('a');
  SecureRandom b = Seeded('a');
  SecureRandom c = Seeded('c');
  int same_as_c = 0;
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.NextUint64();
    EXPECT_EQ(x, b.NextUint64());
    if (x == c.NextUint64()) ++same_as_c;
  }
  EXPECT_EQ(same_as_c, 0);
}

TEST(SecureRandomTest, CreateGivesDistinctStreams) {
  absl::StatusOr<SecureRandom> a = SecureRandom::Create();
  absl::StatusOr<SecureRandom> b = SecureRandom::Create();
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_NE(a->NextUint64(), b->NextUint64());
}

TEST(SecureRandomTest, UniformBelowIsInRangeAndUniform) {
  SecureRandom rng = Seeded('u');
  EXPECT_EQ(rng.UniformBelow(0), 0u);
  EXPECT_EQ(rng.UniformBelow(1), 0u);
  constexpr int kN = 60000;
  std::vector<int> counts(6, 0);
  for (int i = 0; i < kN; ++i) {
    const uint64_t x = rng.UniformBelow(6);
    ASSERT_LT(x, 6u);
    ++counts[x];
  }
  double chi2 = 0.0;
  for (int c : counts) chi2 += (c - kN / 6.0) * (c - kN / 6.0) / (kN / 6.0);
  EXPECT_LT(chi2, 25.0);  // 5 degrees of freedom; p < 2e-4 to exceed
  // A bound just above 2^63 rejects almost half the draws; results stay in range.
  const uint64_t big = (uint64_t{1} << 63) + 1;
  int upper_half = 0;
  for (int i = 0; i < 1000; ++i) {
    const uint64_t x = rng.UniformBelow(big);
    ASSERT_LT(x, big);
    if (x >= big / 2) ++upper_half;
  }
  EXPECT_NEAR(upper_half, 500, 80);
}

TEST(SecureRandomTest, UniformUnitAndBits) {
  SecureRandom rng = Seeded('f');
  constexpr int kN = 50000;
  double sum = 0.0;
  int ones = 0;
  for (int i = 0; i < kN; ++i) {
    const double u = rng.UniformUnit();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    if (rng.NextBit()) ++ones;
  }
  EXPECT_NEAR(sum / kN, 0.5, 4 * std::sqrt(1.0 / 12 / kN));
  EXPECT_NEAR(ones, kN / 2, 4 * std::sqrt(kN / 4.0));
}

}  // namespace
}  // namespace tessera::dp
