#include "privacy/crypto/x25519.h"
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

// RFC 7748, section 6.1.
constexpr absl::string_view kAlicePrivate =
    "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
constexpr absl::string_view kAlicePublic =
    "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
constexpr absl::string_view kBobPrivate =
    "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
constexpr absl::string_view kBobPublic =
    "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
constexpr absl::string_view kSharedSecret =
    "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";

TEST(X25519Test, Rfc7748PublicKeys) {
  absl::StatusOr<X25519KeyPair> alice =
      X25519KeyPair::FromPrivate(Unhex(kAlicePrivate));
  absl::StatusOr<X25519KeyPair> bob =
      X25519KeyPair::FromPrivate(Unhex(kBobPrivate));
  ASSERT_THAT(alice, IsOk());
  ASSERT_THAT(bob, IsOk());
  EXPECT_EQ(HexEncode(alice->public_key()), kAlicePublic);
  EXPECT_EQ(HexEncode(bob->public_key()), kBobPublic);
  EXPECT_EQ(HexEncode(alice->private_key()), kAlicePrivate);
}

TEST(X25519Test, Rfc7748SharedSecretBothWays) {
  absl::StatusOr<X25519KeyPair> alice =
      X25519KeyPair::FromPrivate(Unhex(kAlicePrivate));
  absl::StatusOr<X25519KeyPair> bob =
      X25519KeyPair::FromPrivate(Unhex(kBobPrivate));
  ASSERT_THAT(alice, IsOk());
  ASSERT_THAT(bob, IsOk());
  absl::StatusOr<std::string> ab = alice->SharedSecret(Unhex(kBobPublic));
  absl::StatusOr<std::string> ba = bob->SharedSecret(Unhex(kAlicePublic));
  ASSERT_THAT(ab, IsOk());
  ASSERT_THAT(ba, IsOk());
  EXPECT_EQ(HexEncode(*ab), kSharedSecret);
  EXPECT_EQ(HexEncode(*ba), kSharedSecret);
}

TEST(X25519Test, GeneratedPairsAgreeAndCopiesWork) {
  absl::StatusOr<X25519KeyPair> a = X25519KeyPair::Generate();
  absl::StatusOr<X25519KeyPair> b = X25519KeyPair::Generate();
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_EQ(a->public_key().size(), kX25519KeyBytes);
  EXPECT_NE(a->public_key(), b->public_key());
  const X25519KeyPair a_copy = *a;
  absl::StatusOr<std::string> ab = a_copy.SharedSecret(b->public_key());
  absl::StatusOr<std::string> ba = b->SharedSecret(a->public_key());
  ASSERT_THAT(ab, IsOk());
  EXPECT_THAT(ba, IsOkAndHolds(*ab));
  // Round-trips through the private key, as after Shamir reconstruction.
  absl::StatusOr<X25519KeyPair> again =
      X25519KeyPair::FromPrivate(a->private_key());
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->public_key(), a->public_key());
}

TEST(X25519Test, RejectsSmallOrderPeerPoints) {
  absl::StatusOr<X25519KeyPair> alice =
      X25519KeyPair::FromPrivate(Unhex(kAlicePrivate));
  ASSERT_THAT(alice, IsOk());
  std::string zero(32, '\0');  // u = 0, order 1
  std::string one(32, '\0');   // u = 1, order 4
  one[0] = 1;
  // u =
  // 325606250916557431795983626356110631294008115727848805560023387167927233504
  // (order 8), little-endian.
  const std::string order8 =
      Unhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800");
  for (const std::string& point : {zero, one, order8}) {
    EXPECT_THAT(alice->SharedSecret(point),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << HexEncode(point);
  }
}

TEST(X25519Test, RejectsWrongSizes) {
  EXPECT_THAT(
      X25519KeyPair::FromPrivate(std::string(31, 'a')),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("32 bytes")));
  absl::StatusOr<X25519KeyPair> a = X25519KeyPair::Generate();
  ASSERT_THAT(a, IsOk());
  EXPECT_THAT(a->SharedSecret(std::string(33, 'a')),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace crypto
}  // namespace tessera
