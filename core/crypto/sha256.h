// File: sha256.h
// SHA-256 (FIPS 180-4) over OpenSSL's EVP digest API, plus hex helpers. The
// OpenSSL context is hidden behind a pimpl so callers never include OpenSSL
// headers.
//
// Example:
//   crypto::Sha256 hasher;
//   for (const Chunk& c : chunks) hasher.Update(c.data());
//   std::string digest = std::move(hasher).Finish();  // 32 raw bytes
//   std::string hex = crypto::HexEncode(digest);        // 64 lowercase hex
//   chars
#ifndef TESSERA_CORE_CRYPTO_SHA256_H_
#define TESSERA_CORE_CRYPTO_SHA256_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera {
namespace crypto {

inline constexpr size_t kSha256DigestBytes = 32;

// An incremental SHA-256 hasher. Not thread-safe; movable, not copyable. A
// moved-from hasher may only be destroyed or assigned to.
class Sha256 {
 public:
  // Aborts the process only if OpenSSL cannot allocate or initialise a digest
  // context (out of memory or a broken OpenSSL install), which no caller can
  // handle.
  Sha256();
  ~Sha256();
  Sha256(Sha256&& other) noexcept;
  Sha256& operator=(Sha256&& other) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  // Appends `data` to the message.
  void Update(absl::string_view data);

  // Returns the 32 raw digest bytes and consumes the hasher.
  std::string Finish() &&;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One-shot SHA-256: the 32 raw digest bytes of `data`.
std::string Sha256Digest(absl::string_view data);

// Lowercase hex, two characters per byte.
std::string HexEncode(absl::string_view bytes);

// Inverse of HexEncode; accepts upper- and lowercase digits.
// Errors: INVALID_ARGUMENT on odd length or a non-hex character (naming its
// offset).
absl::StatusOr<std::string> HexDecode(absl::string_view hex);

}  // namespace crypto
}  // namespace tessera

#endif  // TESSERA_CORE_CRYPTO_SHA256_H_
