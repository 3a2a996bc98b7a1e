#include "privacy/crypto/hkdf.h"
#include "privacy/crypto/testing/unhex.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "core/base/testing/status_matchers.h"
#include "core/crypto/sha256.h"

namespace tessera {
namespace crypto {
namespace {

// Bytes first, first + 1, ..., first + n - 1.
std::string Sequence(int first, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out.push_back(static_cast<char>(first + i));
  return out;
}

std::string HexHkdf(absl::string_view ikm, absl::string_view salt,
                    absl::string_view info, size_t length) {
  absl::StatusOr<std::string> okm = HkdfSha256(ikm, salt, info, length);
  EXPECT_THAT(okm, IsOk());
  return HexEncode(okm.value_or(""));
}

// RFC 5869, appendix A.1.
TEST(HkdfTest, Rfc5869TestCase1) {
  EXPECT_EQ(HexHkdf(std::string(22, '\x0b'), Sequence(0x00, 13),
                    Sequence(0xf0, 10), 42),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
            "34007208d5b887185865");
}

// RFC 5869, appendix A.2: long inputs.
TEST(HkdfTest, Rfc5869TestCase2) {
  EXPECT_EQ(
      HexHkdf(Sequence(0x00, 80), Sequence(0x60, 80), Sequence(0xb0, 80), 82),
      "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
      "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
      "cc30c58179ec3e87c14c01d5c1f3434f1d87");
}

// RFC 5869, appendix A.3: empty salt and info.
TEST(HkdfTest, Rfc5869TestCase3) {
  EXPECT_EQ(HexHkdf(std::string(22, '\x0b'), "", "", 42),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
            "9d201395faa4b61a96c8");
}

TEST(HkdfTest, ShorterOutputIsPrefix) {
  const std::string ikm = Unhex("00112233445566778899aabbccddeeff");
  const std::string long_okm = HexHkdf(ikm, "salt", "info", 64);
  EXPECT_EQ(HexHkdf(ikm, "salt", "info", 16), long_okm.substr(0, 32));
  EXPECT_NE(HexHkdf(ikm, "salt", "other", 16), long_okm.substr(0, 32));
}

TEST(HkdfTest, RejectsBadLengths) {
  EXPECT_THAT(HkdfSha256("k", "", "", 0),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(HkdfSha256("k", "", "", kHkdfSha256MaxOutputBytes + 1),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(HkdfSha256("k", "", "", kHkdfSha256MaxOutputBytes), IsOk());
}

}  // namespace
}  // namespace crypto
}  // namespace tessera
