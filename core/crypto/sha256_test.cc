#include "core/crypto/sha256.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "core/base/testing/status_matchers.h"

namespace tessera {
namespace crypto {
namespace {

using ::testing::HasSubstr;

std::string HexSha(absl::string_view data) {
  return HexEncode(Sha256Digest(data));
}

// FIPS 180-2, Appendix B.
TEST(Sha256Test, KnownAnswerEmpty) {
  EXPECT_EQ(HexSha(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256Test, KnownAnswerAbc) {
  EXPECT_EQ(HexSha("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Test, KnownAnswer448BitMessage) {
  EXPECT_EQ(HexSha("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256Test, KnownAnswerMillionAIncremental) {
  Sha256 hasher;
  const std::string chunk(1000, 'a');
  for (int i = 0; i < 1000; ++i) hasher.Update(chunk);
  EXPECT_EQ(HexEncode(std::move(hasher).Finish()),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, IncrementalMatchesOneShotAcrossSplits) {
  const std::string msg = "The quick brown fox jumps over the lazy dog";
  for (size_t split = 0; split <= msg.size(); ++split) {
    Sha256 hasher;
    hasher.Update(absl::string_view(msg).substr(0, split));
    hasher.Update("");
    hasher.Update(absl::string_view(msg).substr(split));
    EXPECT_EQ(
        HexEncode(std::move(hasher).Finish()),
        "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592");
  }
}

TEST(Sha256Test, MoveKeepsState) {
  Sha256 a;
  a.Update("ab");
  Sha256 b(std::move(a));
  b.Update("c");
  Sha256 c;
  c = std::move(b);
  EXPECT_EQ(HexEncode(std::move(c).Finish()), HexSha("abc"));
}

TEST(HexTest, EncodeKnownBytes) {
  EXPECT_EQ(HexEncode(std::string("\x00\x01\x7f\x80\xff", 5)), "00017f80ff");
  EXPECT_EQ(HexEncode(""), "");
}

TEST(HexTest, RoundTripAllByteValues) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  EXPECT_THAT(HexDecode(HexEncode(all)), IsOkAndHolds(all));
}

TEST(HexTest, DecodeAcceptsUppercase) {
  EXPECT_THAT(HexDecode("DEADbeef"),
              IsOkAndHolds(std::string("\xde\xad\xbe\xef")));
}

TEST(HexTest, DecodeRejectsOddLength) {
  EXPECT_THAT(HexDecode("abc"), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("odd length")));
}

TEST(HexTest, DecodeRejectsNonHexNamingOffset) {
  EXPECT_THAT(HexDecode("00zz"), StatusIs(absl::StatusCode::kInvalidArgument,
                                          HasSubstr("offset 2")));
  EXPECT_THAT(HexDecode("0g"), StatusIs(absl::StatusCode::kInvalidArgument,
                                        HasSubstr("offset 1")));
}

}  // namespace
}  // namespace crypto
}  // namespace tessera
