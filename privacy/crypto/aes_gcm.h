// File: aes_gcm.h
// AES-256-GCM authenticated encryption (NIST SP 800-38D) over OpenSSL's
// EVP_CIPHER API, used to encrypt the Shamir shares one client sends another
// through the coordinator.
//
// Sealed format: nonce (12 bytes) || ciphertext (|plaintext| bytes) ||
// tag (16 bytes).
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(std::string sealed,
//                            crypto::AesGcmEncrypt(key, shares, header));
//   TESSERA_ASSIGN_OR_RETURN(std::string opened,
//                            crypto::AesGcmDecrypt(key, sealed, header));
#ifndef TESSERA_PRIVACY_CRYPTO_AES_GCM_H_
#define TESSERA_PRIVACY_CRYPTO_AES_GCM_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera {
namespace crypto {

inline constexpr size_t kAesGcmKeyBytes = 32;
inline constexpr size_t kAesGcmNonceBytes = 12;
inline constexpr size_t kAesGcmTagBytes = 16;
inline constexpr size_t kAesGcmOverheadBytes =
    kAesGcmNonceBytes + kAesGcmTagBytes;

// Encrypts and authenticates `plaintext`, and authenticates `aad` (which is
// not included in the output), under a fresh random 96-bit nonce. Random
// nonces are safe for up to 2^32 messages per key (SP 800-38D section 8.3).
// Errors: INVALID_ARGUMENT if `key32` is not 32 bytes; INTERNAL if the DRBG or
// OpenSSL fails.
absl::StatusOr<std::string> AesGcmEncrypt(absl::string_view key32,
                                          absl::string_view plaintext,
                                          absl::string_view aad);

// As AesGcmEncrypt, with the caller's 12-byte `nonce12`.
// REQUIRES: a (key, nonce) pair is never used for two different messages;
// reuse reveals the XOR of plaintexts and lets an attacker forge tags. Meant
// for known-answer tests and for protocols whose keys are single-use.
// Errors: INVALID_ARGUMENT if `key32` is not 32 bytes or `nonce12` not 12;
// INTERNAL if OpenSSL fails.
absl::StatusOr<std::string> AesGcmEncryptWithNonce(absl::string_view key32,
                                                   absl::string_view nonce12,
                                                   absl::string_view plaintext,
                                                   absl::string_view aad);

// Verifies and decrypts a sealed message produced by either function above
// with the same `key32` and `aad`.
// Errors: INVALID_ARGUMENT if `key32` is not 32 bytes or `sealed` is shorter
// than kAesGcmOverheadBytes (truncated); DATA_LOSS if the tag does not verify
// (wrong key, wrong aad, or modified data); no plaintext is returned then.
absl::StatusOr<std::string> AesGcmDecrypt(absl::string_view key32,
                                          absl::string_view sealed,
                                          absl::string_view aad);

}  // namespace crypto
}  // namespace tessera

#endif  // TESSERA_PRIVACY_CRYPTO_AES_GCM_H_
