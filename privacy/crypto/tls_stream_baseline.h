// File: tls_stream_baseline.h
// The floor a federated round's bytes cannot go below on one machine: `clients` mutually
// authenticated TLS connections on loopback (OpenSSL, blocking sockets, one thread per end)
// that each carry `down_bytes` from the server, then `up_bytes` back, with no framing, no
// hashing and no copies beyond OpenSSL's own. tessera-bench-federation times a round against
// it. Its own target so only the benchmarks link libssl.
#ifndef TESSERA_PRIVACY_CRYPTO_TLS_STREAM_BASELINE_H_
#define TESSERA_PRIVACY_CRYPTO_TLS_STREAM_BASELINE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tessera::crypto {

// PEM files of one end: its certificate (chain) and private key.
struct TlsEndFiles {
  std::string cert_path;
  std::string key_path;
};

struct RawTlsRoundOptions {
  std::string ca_path;               // verifies both ends
  TlsEndFiles server;
  std::vector<TlsEndFiles> clients;  // one connection each; at most kMaxRawTlsClients
  uint64_t down_bytes = 0;           // server -> each client
  uint64_t up_bytes = 0;             // each client -> server, after its download
  int timeout_ms = 60000;            // per read or write
};

inline constexpr size_t kMaxRawTlsClients = 1000;

struct RawTlsRoundResult {
  double seconds = 0;        // from all handshakes done to the last byte received
  uint64_t bytes = 0;        // application bytes received, both directions, all connections
  std::string cipher;        // the negotiated suite, e.g. "TLS_AES_256_GCM_SHA384"
  std::string version;       // e.g. "TLSv1.3"
};

// Runs the connections concurrently. Errors: no clients or too many (INVALID_ARGUMENT), an
// unreadable PEM or a key that does not match (INVALID_ARGUMENT naming the file), a failed
// handshake or a short transfer (UNAVAILABLE with OpenSSL's reason).
absl::StatusOr<RawTlsRoundResult> TimeRawTlsRound(const RawTlsRoundOptions& options);

}  // namespace tessera::crypto

#endif  // TESSERA_PRIVACY_CRYPTO_TLS_STREAM_BASELINE_H_
