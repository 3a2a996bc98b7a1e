#include "privacy/crypto/random.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "core/crypto/openssl_error.h"
#include "core/crypto/sha256.h"

namespace tessera {
namespace crypto {

absl::StatusOr<std::string> RandomBytes(size_t n) {
  std::string out(n, '\0');
  // RAND_bytes takes an int length; fill large requests in pieces.
  constexpr size_t kMaxPiece = size_t{1} << 30;
  crypto_internal::ClearOpenSslErrors();
  for (size_t done = 0; done < n;) {
    const size_t piece = std::min(n - done, kMaxPiece);
    if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data() + done),
                   static_cast<int>(piece)) != 1) {
      return crypto_internal::OpenSslError(absl::StatusCode::kInternal,
                                           "RAND_bytes failed");
    }
    done += piece;
  }
  return out;
}

std::string RandomHexId(size_t bytes) {
  absl::StatusOr<std::string> random = RandomBytes(bytes);
  if (!random.ok()) {
    std::fprintf(stderr, "FATAL: RandomHexId: %s\n",
                 random.status().ToString().c_str());
    std::abort();
  }
  return HexEncode(*random);
}

}  // namespace crypto
}  // namespace tessera
