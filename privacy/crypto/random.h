// File: random.h
// Cryptographically secure random bytes from OpenSSL's DRBG (RAND_bytes), which
// is seeded from the operating system. Thread-safe.
#ifndef TESSERA_PRIVACY_CRYPTO_RANDOM_H_
#define TESSERA_PRIVACY_CRYPTO_RANDOM_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"

namespace tessera {
namespace crypto {

// `n` random bytes. Errors: INTERNAL (with OpenSSL's reason) if the DRBG fails,
// which means the OS entropy source is unavailable.
absl::StatusOr<std::string> RandomBytes(size_t n);

// `bytes` random bytes as lowercase hex (2 * bytes characters), for run, round
// and node ids. Aborts the process if the OS RNG is broken: an id generator
// that cannot produce unique ids must not limp on.
std::string RandomHexId(size_t bytes = 8);

}  // namespace crypto
}  // namespace tessera

#endif  // TESSERA_PRIVACY_CRYPTO_RANDOM_H_
