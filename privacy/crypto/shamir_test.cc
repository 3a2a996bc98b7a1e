#include "privacy/crypto/shamir.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/base/testing/status_matchers.h"

namespace tessera {
namespace crypto {
namespace {

using ::testing::HasSubstr;

const std::string kSecret = "0123456789abcdef0123456789ABCDEF";  // 32 bytes

std::vector<ShamirShare> Pick(const std::vector<ShamirShare>& all,
                              std::initializer_list<int> indexes) {
  std::vector<ShamirShare> out;
  for (int i : indexes) out.push_back(all[i]);
  return out;
}

TEST(ShamirTest, AnyThresholdSubsetReconstructs) {
  absl::StatusOr<std::vector<ShamirShare>> shares = ShamirSplit(kSecret, 3, 5);
  ASSERT_THAT(shares, IsOk());
  ASSERT_EQ(shares->size(), 5u);
  for (size_t i = 0; i < shares->size(); ++i) {
    EXPECT_EQ((*shares)[i].x, i + 1);
    EXPECT_EQ((*shares)[i].y.size(), ShamirNumLimbs(kSecret.size()));
  }
  // All 10 three-element subsets, in several orders.
  for (int a = 0; a < 5; ++a) {
    for (int b = a + 1; b < 5; ++b) {
      for (int c = b + 1; c < 5; ++c) {
        EXPECT_THAT(ShamirReconstruct(Pick(*shares, {a, b, c}), 3, 32),
                    IsOkAndHolds(kSecret));
        EXPECT_THAT(ShamirReconstruct(Pick(*shares, {c, a, b}), 3, 32),
                    IsOkAndHolds(kSecret));
      }
    }
  }
  // More shares than needed: the extras are ignored.
  EXPECT_THAT(ShamirReconstruct(*shares, 3, 32), IsOkAndHolds(kSecret));
}

TEST(ShamirTest, OddLengthsBinaryAndEdgeThresholds) {
  for (size_t len : {1u, 6u, 7u, 8u, 13u, 14u, 15u, 100u}) {
    std::string secret;
    for (size_t i = 0; i < len; ++i) {
      secret.push_back(static_cast<char>(0xFF - 3 * i));
    }
    for (uint32_t t : {1u, 2u, 7u}) {
      absl::StatusOr<std::vector<ShamirShare>> shares =
          ShamirSplit(secret, t, 7);
      ASSERT_THAT(shares, IsOk());
      EXPECT_THAT(
          ShamirReconstruct(absl::MakeConstSpan(*shares).last(t), t, len),
          IsOkAndHolds(secret))
          << "len " << len << " t " << t;
    }
  }
}

TEST(ShamirTest, TooFewSharesFail) {
  absl::StatusOr<std::vector<ShamirShare>> shares = ShamirSplit(kSecret, 3, 5);
  ASSERT_THAT(shares, IsOk());
  EXPECT_THAT(
      ShamirReconstruct(Pick(*shares, {0, 4}), 3, 32),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("at least 3")));
  EXPECT_THAT(ShamirVerifyConsistent(Pick(*shares, {0, 4}), 3),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(ShamirTest, WrongShareChangesSecretAndIsDetectedWithExtraShares) {
  absl::StatusOr<std::vector<ShamirShare>> shares = ShamirSplit(kSecret, 3, 5);
  ASSERT_THAT(shares, IsOk());
  EXPECT_THAT(ShamirVerifyConsistent(*shares, 3), IsOk());
  for (int victim = 0; victim < 5; ++victim) {
    std::vector<ShamirShare> tampered = *shares;
    tampered[victim].y[2] = (tampered[victim].y[2] + 1) % kShamirPrime;
    // From exactly t shares a wrong share cannot be detected, only mislead:
    // the result is another secret or a limb overflow.
    if (victim < 3) {
      absl::StatusOr<std::string> got =
          ShamirReconstruct(Pick(tampered, {0, 1, 2}), 3, 32);
      if (got.ok()) {
        EXPECT_NE(*got, kSecret);
      } else {
        EXPECT_THAT(got, StatusIs(absl::StatusCode::kDataLoss));
      }
    }
    EXPECT_THAT(ShamirVerifyConsistent(Pick(tampered, {0, 1, 2}), 3), IsOk());
    // With t + 1 or more shares including the victim, it is detected.
    EXPECT_THAT(
        ShamirVerifyConsistent(tampered, 3),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("inconsistent")))
        << "victim " << victim;
    const int other = victim == 0 ? 1 : 0;
    const int third = victim == 4 ? 3 : 4;
    EXPECT_THAT(
        ShamirVerifyConsistent(
            Pick(tampered, {victim, other, third, 2 == victim ? 3 : 2}), 3),
        StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

// f(x) = 5 + 3x + 2x^2 over GF(p), by hand: f(1..6) = 10, 19, 32, 49, 70, 95.
TEST(ShamirTest, OnPolynomialTellsWhichSharesAreOffTheBasePolynomial) {
  const std::vector<ShamirShare> base = {{1, {10}}, {2, {19}}, {3, {32}}};
  const std::vector<ShamirShare> others = {{4, {49}}, {5, {71}}, {6, {95}}};
  EXPECT_THAT(ShamirOnPolynomial(base, others),
              IsOkAndHolds(std::vector<bool>{true, false, true}));
  // A base that includes the wrong share makes every other share disagree but its own kind.
  const std::vector<ShamirShare> bad_base = {{1, {10}}, {2, {19}}, {5, {71}}};
  const std::vector<ShamirShare> rest = {{3, {32}}, {4, {49}}, {6, {95}}};
  EXPECT_THAT(ShamirOnPolynomial(bad_base, rest),
              IsOkAndHolds(std::vector<bool>{false, false, false}));
  EXPECT_THAT(ShamirOnPolynomial({}, others), StatusIs(absl::StatusCode::kInvalidArgument));
  const std::vector<ShamirShare> dup = {{3, {32}}};
  EXPECT_THAT(ShamirOnPolynomial(base, dup),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("duplicate")));
}

TEST(ShamirTest, SplitRejectsBadParameters) {
  EXPECT_THAT(ShamirSplit(kSecret, 0, 5),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ShamirSplit(kSecret, 6, 5),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ShamirSplit(kSecret, 2, kShamirMaxShares + 1),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ShamirSplit("", 1, 1),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ShamirTest, ReconstructRejectsMalformedShares) {
  absl::StatusOr<std::vector<ShamirShare>> shares = ShamirSplit(kSecret, 2, 3);
  ASSERT_THAT(shares, IsOk());
  auto expect_invalid = [](const std::vector<ShamirShare>& s,
                           absl::string_view what) {
    EXPECT_THAT(ShamirReconstruct(s, 2, 32),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(what)));
  };
  expect_invalid(Pick(*shares, {1, 1}), "duplicate");
  std::vector<ShamirShare> bad = Pick(*shares, {0, 1});
  bad[0].x = 0;
  expect_invalid(bad, "x must be");
  bad = Pick(*shares, {0, 1});
  bad[1].y.pop_back();
  expect_invalid(bad, "limbs");
  bad = Pick(*shares, {0, 1});
  bad[1].y[0] = kShamirPrime;
  expect_invalid(bad, "GF(p)");
  // 36 bytes need 6 limbs and 28 need 4; the shares hold 5.
  EXPECT_THAT(ShamirReconstruct(*shares, 2, 36),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ShamirReconstruct(*shares, 2, 28),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ShamirReconstruct(*shares, 0, 32),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ShamirTest, SerializationRoundTripsAndValidates) {
  absl::StatusOr<std::vector<ShamirShare>> shares = ShamirSplit(kSecret, 2, 3);
  ASSERT_THAT(shares, IsOk());
  const std::string wire = SerializeShamirShare((*shares)[2]);
  EXPECT_EQ(wire.size(), 9 + 8 * 5u);
  EXPECT_THAT(ParseShamirShare(wire), IsOkAndHolds((*shares)[2]));

  EXPECT_THAT(ParseShamirShare(wire.substr(0, wire.size() - 1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseShamirShare(wire + "x"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseShamirShare(""),
              StatusIs(absl::StatusCode::kInvalidArgument));
  std::string bad_version = wire;
  bad_version[0] = 2;
  EXPECT_THAT(
      ParseShamirShare(bad_version),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("version")));
  ShamirShare zero_x = (*shares)[0];
  zero_x.x = 0;
  EXPECT_THAT(ParseShamirShare(SerializeShamirShare(zero_x)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ShamirShare big_y = (*shares)[0];
  big_y.y[4] = ~uint64_t{0};
  EXPECT_THAT(ParseShamirShare(SerializeShamirShare(big_y)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // A huge claimed limb count does not allocate.
  std::string huge = wire.substr(0, 9);
  huge[5] = huge[6] = huge[7] = huge[8] = '\xff';
  EXPECT_THAT(ParseShamirShare(huge),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace crypto
}  // namespace tessera
