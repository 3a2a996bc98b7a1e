// File: openssl_error.h
// Internal to the crypto code (core/crypto and privacy/crypto, the only folders that include
// <openssl/*>): turns the OpenSSL thread-local error queue into an absl::Status. Every OpenSSL
// call that can fail is followed by one of these on its error path, so the queue never leaks
// stale errors into a later, unrelated call.
#ifndef TESSERA_CORE_CRYPTO_OPENSSL_ERROR_H_
#define TESSERA_CORE_CRYPTO_OPENSSL_ERROR_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tessera {
namespace crypto_internal {

// Empties this thread's OpenSSL error queue and returns its entries joined by
// "; " (empty when the queue was empty).
std::string DrainOpenSslErrors();

// Discards whatever is queued. Call before an operation whose failure will be
// reported, so the report names only that operation's errors.
void ClearOpenSslErrors();

// A status with `code` and message "<what>: <drained OpenSSL errors>" (or just
// `what` when the queue is empty).
absl::Status OpenSslError(absl::StatusCode code, absl::string_view what);

}  // namespace crypto_internal
}  // namespace tessera

#endif  // TESSERA_CORE_CRYPTO_OPENSSL_ERROR_H_
