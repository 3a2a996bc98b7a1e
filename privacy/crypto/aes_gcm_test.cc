#include "privacy/crypto/aes_gcm.h"
#include "privacy/crypto/testing/unhex.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "core/base/testing/status_matchers.h"
#include "core/crypto/sha256.h"

namespace tessera {
namespace crypto {
namespace {

using ::testing::HasSubstr;

struct GcmVector {
  const char* name;
  const char* key;
  const char* iv;
  const char* plaintext;
  const char* aad;
  const char* ciphertext;
  const char* tag;
};

// McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)", appendix B,
// the AES-256 test cases (also in NIST's GCM validation vectors).
constexpr GcmVector kVectors[] = {
    {"TestCase13",
     "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "", "",
     "530f8afbc74536b9a963b4f1c4cb738b"},
    {"TestCase14",
     "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "00000000000000000000000000000000", "",
     "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
    {"TestCase15",
     "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
     "",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
     "b094dac5d93471bdec1a502270e3cc6c"},
    {"TestCase16WithAad",
     "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

TEST(AesGcmTest, KnownAnswersEncryptAndDecrypt) {
  for (const GcmVector& v : kVectors) {
    SCOPED_TRACE(v.name);
    const std::string key = Unhex(v.key);
    const std::string aad = Unhex(v.aad);
    const std::string plaintext = Unhex(v.plaintext);
    absl::StatusOr<std::string> sealed =
        AesGcmEncryptWithNonce(key, Unhex(v.iv), plaintext, aad);
    ASSERT_THAT(sealed, IsOk());
    EXPECT_EQ(HexEncode(*sealed), std::string(v.iv) + v.ciphertext + v.tag);
    EXPECT_THAT(AesGcmDecrypt(key, *sealed, aad), IsOkAndHolds(plaintext));
  }
}

TEST(AesGcmTest, RandomNonceRoundTripAndFreshNonces) {
  const std::string key(32, 'k');
  absl::StatusOr<std::string> a =
      AesGcmEncrypt(key, "shares for node 7", "hdr");
  absl::StatusOr<std::string> b =
      AesGcmEncrypt(key, "shares for node 7", "hdr");
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_EQ(a->size(), 17 + kAesGcmOverheadBytes);
  EXPECT_NE(a->substr(0, kAesGcmNonceBytes), b->substr(0, kAesGcmNonceBytes));
  EXPECT_THAT(AesGcmDecrypt(key, *a, "hdr"), IsOkAndHolds("shares for node 7"));
  EXPECT_THAT(AesGcmDecrypt(key, *b, "hdr"), IsOkAndHolds("shares for node 7"));
}

TEST(AesGcmTest, DetectsTamperingWrongKeyAndWrongAad) {
  const std::string key(32, 'k');
  absl::StatusOr<std::string> sealed = AesGcmEncrypt(key, "payload", "aad");
  ASSERT_THAT(sealed, IsOk());
  for (size_t i = 0; i < sealed->size(); ++i) {
    std::string tampered = *sealed;
    tampered[i] ^= 0x01;
    EXPECT_THAT(AesGcmDecrypt(key, tampered, "aad"),
                StatusIs(absl::StatusCode::kDataLoss))
        << "byte " << i;
  }
  EXPECT_THAT(AesGcmDecrypt(std::string(32, 'K'), *sealed, "aad"),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("authentication failed")));
  EXPECT_THAT(AesGcmDecrypt(key, *sealed, "aaD"),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(AesGcmDecrypt(key, *sealed, ""),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST(AesGcmTest, RejectsTruncatedInputAndBadSizes) {
  const std::string key(32, 'k');
  absl::StatusOr<std::string> sealed = AesGcmEncrypt(key, "", "");
  ASSERT_THAT(sealed, IsOk());
  EXPECT_EQ(sealed->size(), kAesGcmOverheadBytes);
  EXPECT_THAT(AesGcmDecrypt(key, *sealed, ""), IsOkAndHolds(""));
  EXPECT_THAT(
      AesGcmDecrypt(key, sealed->substr(1), ""),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("truncated")));
  EXPECT_THAT(AesGcmDecrypt(key, "", ""),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(AesGcmEncrypt(std::string(16, 'k'), "x", ""),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(AesGcmDecrypt(std::string(31, 'k'), *sealed, ""),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(AesGcmEncryptWithNonce(key, std::string(16, 'n'), "x", ""),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace crypto
}  // namespace tessera
