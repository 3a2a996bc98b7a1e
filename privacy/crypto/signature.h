// File: signature.h
// Digital signatures for secure aggregation's authenticated variant
// (Bonawitz et al., CCS 2017, section 4 "active adversary"): clients sign
// their advertised keys and their consistency-check messages with their
// long-term identity key.
//
// Two flavours:
// - Ed25519 (RFC 8032, pure, no prehash) with raw 32-byte keys and 64-byte
//   signatures: Ed25519Signer and Ed25519Verify.
// - PEM keys and X.509 certificates, the clients' long-term identity (the demo
//   PKI in scripts/make_pki.sh issues EC P-256 keys): SignWithPrivateKeyPem
//   and VerifyWithCertificate, which support Ed25519 and ECDSA P-256 with
//   SHA-256. ECDSA signatures are DER-encoded ECDSA-Sig-Value (at most 72
//   bytes) and randomized.
// - Bare public keys ("PUBLIC KEY" PEM) for signers nobody certifies, e.g. the
//   provenance key of an --insecure coordinator (privacy/provenance/signer.h):
//   GenerateEd25519PrivateKeyPem, PublicKeyPemOfPrivateKey and
//   VerifyWithPublicKeyPem.
//
// Every verification failure is INVALID_ARGUMENT with a message containing
// "signature does not verify", so callers can treat a bad signature as
// malformed peer input.
#ifndef TESSERA_PRIVACY_CRYPTO_SIGNATURE_H_
#define TESSERA_PRIVACY_CRYPTO_SIGNATURE_H_

#include <cstddef>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera {
namespace crypto {

inline constexpr size_t kEd25519SeedBytes = 32;
inline constexpr size_t kEd25519PublicKeyBytes = 32;
inline constexpr size_t kEd25519SignatureBytes = 64;

// An Ed25519 signing key held as its 32-byte seed (RFC 8032's "private key").
// A value type: copyable and movable (copies duplicate the seed; the
// destructor wipes its copy). Const methods are thread-safe.
class Ed25519Signer {
 public:
  // A fresh key from the OpenSSL DRBG. Errors: INTERNAL if keygen fails.
  static absl::StatusOr<Ed25519Signer> Generate();

  // The key with RFC 8032 private key (seed) `seed32`.
  // Errors: INVALID_ARGUMENT unless 32 bytes; INTERNAL if OpenSSL fails.
  static absl::StatusOr<Ed25519Signer> FromPrivate(absl::string_view seed32);

  Ed25519Signer(const Ed25519Signer&) = default;
  Ed25519Signer& operator=(const Ed25519Signer&) = default;
  Ed25519Signer(Ed25519Signer&&) = default;
  Ed25519Signer& operator=(Ed25519Signer&&) = default;
  ~Ed25519Signer();

  // The 32-byte public key.
  const std::string& public_key() const { return public_key_; }

  // The 32-byte seed. Secret.
  const std::string& private_key() const { return seed_; }

  // The 64-byte deterministic signature of `message`.
  // Errors: INTERNAL if OpenSSL fails.
  absl::StatusOr<std::string> Sign(absl::string_view message) const;

 private:
  Ed25519Signer(std::string seed, std::string public_key)
      : seed_(std::move(seed)), public_key_(std::move(public_key)) {}

  std::string seed_;        // 32 bytes
  std::string public_key_;  // 32 bytes
};

// OK iff `signature64` is a valid Ed25519 signature of `message` under
// `public32`.
// Errors: INVALID_ARGUMENT if a size is wrong, the public key does not decode,
// or the signature does not verify.
absl::Status Ed25519Verify(absl::string_view public32,
                           absl::string_view message,
                           absl::string_view signature64);

// Signs `message` with the first private key in `private_key_pem` (PKCS#8
// "PRIVATE KEY" or traditional "EC PRIVATE KEY", unencrypted): ECDSA with
// SHA-256 (DER signature) for P-256 keys, pure Ed25519 for Ed25519 keys.
// Errors: INVALID_ARGUMENT if the PEM holds no readable unencrypted key, or
// the key is neither Ed25519 nor P-256; INTERNAL if signing fails.
absl::StatusOr<std::string> SignWithPrivateKeyPem(
    absl::string_view private_key_pem, absl::string_view message);

// Verifies `signature` over `message` with the subject public key of the first
// certificate in `certificate_pem`, using the scheme SignWithPrivateKeyPem
// uses for that key type. Does not check the certificate's chain, validity
// period or key usage: pair it with the mTLS-verified identity.
// Errors: INVALID_ARGUMENT if the PEM holds no certificate, its key is neither
// Ed25519 nor P-256, or the signature does not verify.
absl::Status VerifyWithCertificate(absl::string_view certificate_pem,
                                   absl::string_view message,
                                   absl::string_view signature);

// The key types the PEM functions below sign and verify with.
enum class SignatureKeyType {
  kEd25519,          // pure Ed25519 (RFC 8032)
  kEcdsaP256Sha256,  // ECDSA on P-256 with SHA-256, DER signatures
};

// A fresh Ed25519 private key from the OpenSSL DRBG, as unencrypted PKCS#8 PEM
// ("PRIVATE KEY"). Errors: INTERNAL if keygen or encoding fails.
absl::StatusOr<std::string> GenerateEd25519PrivateKeyPem();

// The type of the first private key in `private_key_pem`. Errors as
// SignWithPrivateKeyPem: INVALID_ARGUMENT for no readable unencrypted key or a
// key that is neither Ed25519 nor P-256.
absl::StatusOr<SignatureKeyType> PrivateKeyType(
    absl::string_view private_key_pem);

// The type of the subject public key of the first certificate in
// `certificate_pem`. INVALID_ARGUMENT if there is no certificate or its key is
// neither Ed25519 nor P-256.
absl::StatusOr<SignatureKeyType> CertificateKeyType(
    absl::string_view certificate_pem);

// The type of the first "PUBLIC KEY" (SubjectPublicKeyInfo) in
// `public_key_pem`. INVALID_ARGUMENT if there is none or it is neither Ed25519
// nor P-256.
absl::StatusOr<SignatureKeyType> PublicKeyType(absl::string_view public_key_pem);

// The public half of the first private key in `private_key_pem`, as a
// "PUBLIC KEY" (SubjectPublicKeyInfo) PEM. Errors as PrivateKeyType.
absl::StatusOr<std::string> PublicKeyPemOfPrivateKey(
    absl::string_view private_key_pem);

// SHA-256 of the DER SubjectPublicKeyInfo of the first "PUBLIC KEY" in
// `public_key_pem`, 64 lowercase hex characters (what `openssl pkey -pubin
// -outform DER | sha256sum` prints). INVALID_ARGUMENT if there is none.
absl::StatusOr<std::string> PublicKeyFingerprintSha256Hex(
    absl::string_view public_key_pem);

// Verifies `signature` over `message` with the first "PUBLIC KEY" in
// `public_key_pem`, with the scheme SignWithPrivateKeyPem uses for its type.
// Errors: INVALID_ARGUMENT if the PEM holds no public key, its type is
// unsupported, or the signature does not verify.
absl::Status VerifyWithPublicKeyPem(absl::string_view public_key_pem,
                                    absl::string_view message,
                                    absl::string_view signature);

// OK iff the first private key in `private_key_pem` is the key of the first
// certificate in `certificate_pem`. Errors: INVALID_ARGUMENT for an unreadable
// or encrypted key, no certificate, or a key that does not belong to the
// certificate ("... does not match the certificate").
absl::Status CheckKeyMatchesCertificate(absl::string_view private_key_pem,
                                        absl::string_view certificate_pem);

}  // namespace crypto
}  // namespace tessera

#endif  // TESSERA_PRIVACY_CRYPTO_SIGNATURE_H_
