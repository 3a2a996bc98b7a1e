// File: hkdf.h
// HKDF-SHA256 (RFC 5869) over OpenSSL's EVP_KDF "HKDF": turns a raw
// Diffie-Hellman secret into independent keys for each purpose.
#ifndef TESSERA_PRIVACY_CRYPTO_HKDF_H_
#define TESSERA_PRIVACY_CRYPTO_HKDF_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera {
namespace crypto {

// RFC 5869 caps the output at 255 hash lengths.
inline constexpr size_t kHkdfSha256MaxOutputBytes = 255 * 32;

// HKDF-Extract-then-Expand with SHA-256: `length` bytes of output keying
// material. An empty `salt` means the RFC default (32 zero bytes); `ikm` and
// `info` may be empty.
// Errors: INVALID_ARGUMENT if `length` is 0 or above
// kHkdfSha256MaxOutputBytes; INTERNAL if OpenSSL fails.
absl::StatusOr<std::string> HkdfSha256(absl::string_view ikm,
                                       absl::string_view salt,
                                       absl::string_view info, size_t length);

}  // namespace crypto
}  // namespace tessera

#endif  // TESSERA_PRIVACY_CRYPTO_HKDF_H_
