// File: x25519.h
// X25519 Diffie-Hellman (RFC 7748) for the pairwise key agreement of secure
// aggregation (Bonawitz et al., CCS 2017): each client advertises two public
// keys, one for encrypting its Shamir shares to peers and one whose shared
// secrets seed the pairwise masks.
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(crypto::X25519KeyPair mine,
//                            crypto::X25519KeyPair::Generate());
//   Send(mine.public_key());
//   TESSERA_ASSIGN_OR_RETURN(std::string secret,
//                            mine.SharedSecret(peer_public_key));
//   // Never use `secret` directly as a key: derive keys with HkdfSha256.
#ifndef TESSERA_PRIVACY_CRYPTO_X25519_H_
#define TESSERA_PRIVACY_CRYPTO_X25519_H_

#include <cstddef>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera {
namespace crypto {

inline constexpr size_t kX25519KeyBytes = 32;
inline constexpr size_t kX25519SharedSecretBytes = 32;

// An X25519 key pair held as raw bytes. A value type: copyable and movable
// (copies duplicate the private key; the destructor wipes its copy). Const
// methods are thread-safe.
class X25519KeyPair {
 public:
  // A fresh key pair from the OpenSSL DRBG.
  // Errors: INTERNAL if key generation fails.
  static absl::StatusOr<X25519KeyPair> Generate();

  // The key pair whose private scalar is `private_key32` (32 raw bytes, before
  // clamping, as in RFC 7748), e.g. one reconstructed from Shamir shares.
  // Errors: INVALID_ARGUMENT unless exactly 32 bytes; INTERNAL if OpenSSL
  // cannot derive the public key.
  static absl::StatusOr<X25519KeyPair> FromPrivate(
      absl::string_view private_key32);

  X25519KeyPair(const X25519KeyPair&) = default;
  X25519KeyPair& operator=(const X25519KeyPair&) = default;
  X25519KeyPair(X25519KeyPair&&) = default;
  X25519KeyPair& operator=(X25519KeyPair&&) = default;
  ~X25519KeyPair();

  // The 32-byte public key (u-coordinate, little-endian per RFC 7748).
  const std::string& public_key() const { return public_key_; }

  // The 32-byte private key as given or generated. Secret: exposed so the
  // protocol can Shamir-share it for dropout recovery.
  const std::string& private_key() const { return private_key_; }

  // The raw 32-byte X25519 shared secret with `peer_public32`.
  // Errors: INVALID_ARGUMENT if `peer_public32` is not 32 bytes, or if the
  // result is all zeros (a small-order peer point, RFC 7748 section 6.1).
  absl::StatusOr<std::string> SharedSecret(
      absl::string_view peer_public32) const;

 private:
  X25519KeyPair(std::string private_key, std::string public_key)
      : private_key_(std::move(private_key)),
        public_key_(std::move(public_key)) {}

  std::string private_key_;  // 32 bytes
  std::string public_key_;   // 32 bytes
};

}  // namespace crypto
}  // namespace tessera

#endif  // TESSERA_PRIVACY_CRYPTO_X25519_H_
