#include "privacy/crypto/prg.h"
#include "privacy/crypto/testing/unhex.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/testing/status_matchers.h"
#include "core/crypto/sha256.h"

namespace tessera {
namespace crypto {
namespace {

using ::testing::ElementsAre;

std::string Take(MaskPrg& prg, size_t n) {
  std::vector<uint8_t> buf(n, 0xAA);
  prg.Fill(absl::MakeSpan(buf));
  return std::string(buf.begin(), buf.end());
}

// NIST SP 800-38A, appendix F.5.5 (CTR-AES256.Encrypt): keystream XOR
// plaintext must equal the listed ciphertext.
TEST(MaskPrgTest, Sp80038aF55CtrAes256) {
  const std::string key =
      Unhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
  const std::string counter = Unhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
  const std::string plaintext = Unhex(
      "6bc1bee22e409f96e93d7e117393172a"
      "ae2d8a571e03ac9c9eb76fac45af8e51"
      "30c81c46a35ce411e5fbc1191a0a52ef"
      "f69f2445df4f9b17ad2b417be66c3710");
  absl::StatusOr<MaskPrg> prg = MaskPrg::CreateWithCounter(key, counter);
  ASSERT_THAT(prg, IsOk());
  // Uneven pieces check that the stream continues across Fill calls.
  std::string keystream = Take(*prg, 5);
  keystream += Take(*prg, 0);
  keystream += Take(*prg, 27);
  keystream += Take(*prg, 32);
  ASSERT_EQ(keystream.size(), plaintext.size());
  std::string ciphertext(plaintext.size(), '\0');
  for (size_t i = 0; i < plaintext.size(); ++i) {
    ciphertext[i] = static_cast<char>(plaintext[i] ^ keystream[i]);
  }
  EXPECT_EQ(HexEncode(ciphertext),
            "601ec313775789a5b7a7f504bbf3d228"
            "f443e3ca4d62b59aca84e990cacaf5c5"
            "2b0930daa23de94ce87017ba2d84988d"
            "dfc9c58db67aada613c2dd08457941a6");
}

// The vector below was computed independently with Python's hmac/hashlib
// (HKDF per RFC 5869) and the `cryptography` package (AES-256-CTR, zero IV);
// it pins the documented info encoding and the little-endian word order.
constexpr absl::string_view kRfc7748Shared =
    "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";

TEST(MaskPrgTest, DeriveMaskSeedAndWordsMatchReference) {
  absl::StatusOr<std::string> seed =
      DeriveMaskSeed(Unhex(kRfc7748Shared), "session-42", 7, "dense/kernel");
  ASSERT_THAT(seed, IsOk());
  EXPECT_EQ(HexEncode(*seed),
            "871f734033c2e1cc842fbe93affe5718e675b8d7ae5795719d54f9349347adcf");

  absl::StatusOr<MaskPrg> prg = MaskPrg::Create(*seed);
  ASSERT_THAT(prg, IsOk());
  std::vector<uint32_t> words(4);
  prg->FillUint32(absl::MakeSpan(words));
  EXPECT_THAT(words,
              ElementsAre(0x134da80du, 0x9e969308u, 0x12e06e57u, 0x17f38eacu));
  std::vector<uint64_t> longs(2);
  prg->FillUint64(absl::MakeSpan(longs));
  EXPECT_THAT(longs, ElementsAre(uint64_t{0x9c5f711cbc4e0c53},
                                 uint64_t{0xaeb422a164b39dd9}));
}

TEST(MaskPrgTest, DeterministicPerSeedAndDistinctAcrossSeeds) {
  const std::string seed_a(32, 'a');
  const std::string seed_b(32, 'b');
  absl::StatusOr<MaskPrg> a1 = MaskPrg::Create(seed_a);
  absl::StatusOr<MaskPrg> a2 = MaskPrg::Create(seed_a);
  absl::StatusOr<MaskPrg> b = MaskPrg::Create(seed_b);
  ASSERT_THAT(a1, IsOk());
  ASSERT_THAT(a2, IsOk());
  ASSERT_THAT(b, IsOk());
  std::vector<uint64_t> x(1000), y(1000), z(1000);
  a1->FillUint64(absl::MakeSpan(x));
  MaskPrg moved = *std::move(a2);
  moved.FillUint64(absl::MakeSpan(y));
  b->FillUint64(absl::MakeSpan(z));
  EXPECT_EQ(x, y);
  EXPECT_NE(x, z);
}

TEST(MaskPrgTest, SeedsDifferPerRoundTensorAndSession) {
  const std::string secret = Unhex(kRfc7748Shared);
  auto seed = [&](absl::string_view session, uint32_t round,
                  absl::string_view tensor) {
    absl::StatusOr<std::string> s =
        DeriveMaskSeed(secret, session, round, tensor);
    EXPECT_THAT(s, IsOk());
    return s.value_or("");
  };
  const std::string base = seed("s", 1, "t");
  EXPECT_EQ(base.size(), kMaskSeedBytes);
  EXPECT_EQ(seed("s", 1, "t"), base);
  EXPECT_NE(seed("s", 2, "t"), base);
  EXPECT_NE(seed("s", 1, "u"), base);
  EXPECT_NE(seed("S", 1, "t"), base);
  // Length prefixes keep field boundaries unambiguous.
  EXPECT_NE(seed("ab", 1, "c"), seed("a", 1, "bc"));
}

TEST(MaskPrgTest, RejectsBadInputs) {
  EXPECT_THAT(MaskPrg::Create(std::string(16, 's')),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(MaskPrg::CreateWithCounter(std::string(32, 's'), "short"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DeriveMaskSeed("", "s", 0, "t"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace crypto
}  // namespace tessera
