// File: tls_probe.h
// A diagnostic TLS connection to a gRPC server with the caller's own CA, certificate and key,
// made after a gRPC call failed with UNAVAILABLE to tell the user why: the server is not
// reachable, its certificate is not trusted, or it refused the client certificate. gRPC
// reports all of these as "Socket closed" or "failed to connect to all addresses".
//
// How a refusal shows: a server that checks client certificates in OpenSSL sends a TLS alert
// ("certificate revoked", "unknown ca"); a gRPC server with a custom certificate verifier
// (the Tessera coordinator, coordinator/service/tls_credentials.cc) completes the TLS
// handshake and then closes the connection without an HTTP/2 frame. After the handshake the
// probe waits briefly for the server's HTTP/2 SETTINGS frame, then sends the client preface:
// a server that accepted the certificate answers HTTP/2.
#ifndef TESSERA_PRIVACY_CRYPTO_TLS_PROBE_H_
#define TESSERA_PRIVACY_CRYPTO_TLS_PROBE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera {
namespace crypto {

enum class TlsProbeOutcome {
  kUnreachable,           // no TCP connection: refused, unresolvable, timed out
  kServerNotTrusted,      // the server's certificate does not verify against the CA, or its
                          // names do not include the host dialed
  kRefusedWithAlert,      // the server sent a certificate alert ("certificate revoked",
                          // "unknown ca", "bad certificate", ...; detail: its description)
  kClosedAfterHandshake,  // the handshake completed; the server then closed the connection
                          // without answering HTTP/2 (detail: "connection closed", "connection
                          // reset", or another alert it sent, e.g. "TLS alert \"decode error\"")
  kAccepted,              // the server answered the HTTP/2 preface
  kNoAnswer,              // connected, but no answer within the timeout
  kTlsError,              // another TLS failure (detail: OpenSSL's reason)
};

struct TlsProbeOptions {
  // "host:port", "[v6]:port", optionally with a gRPC scheme ("dns:///", "ipv4:", "ipv6:").
  std::string address;
  std::string ca_pem, cert_pem, key_pem;
  int timeout_ms = 5000;  // for connecting, and again for the handshake and the answer
};

struct TlsProbeResult {
  TlsProbeOutcome outcome = TlsProbeOutcome::kTlsError;
  // The reason in words: the socket error, OpenSSL's verify error, the alert's description
  // ("certificate revoked"). Never holds key material.
  std::string detail;
};

// Connects once to `options.address` and reports what happened. Blocks at most about three
// timeouts. SIGPIPE is blocked on the calling thread while it runs.
// Errors: INVALID_ARGUMENT for an address without a port, or a CA, certificate or key that
// does not parse (naming which); the outcome of a connection that was tried is never an
// error.
absl::StatusOr<TlsProbeResult> ProbeTlsServer(const TlsProbeOptions& options);

// Where a program's mTLS files are, for DiagnoseTlsFailure's probe and message.
struct TlsFailureContext {
  std::string address;                     // what the program dials
  std::string ca_path, cert_path, key_path;  // its --ca, --cert and --key
  int timeout_ms = 5000;
  std::string peer = "the coordinator";    // who is dialed, for the message
};

// Why a gRPC channel with these files fails, in words, from one ProbeTlsServer connection:
//   "cannot reach the coordinator at ADDR (Connection refused)"
//   "the coordinator at ADDR refused the client certificate CN=op OU=operator O=Acme
//    serial=1f issued by CN=Acme federation CA O=Acme (--cert op.pem): it closed the
//    connection right after the TLS handshake (connection closed) ..." (or "with TLS alert
//    \"certificate revoked\"" for a server that says so), then what
//    checking the certificate against --ca here finds: not issued by that CA, expired, or
//    nothing (then the refusal has another reason, such as the server's revocation list)
//   "the coordinator at ADDR presented a certificate that --ca ca.pem does not trust (...)"
//   "TLS with the coordinator at ADDR failed (...)"
// "" when the server accepts the certificate now, or a file cannot be read. Never quotes key
// material: only the certificate's subject, serial and issuer, and the files' paths.
std::string DiagnoseTlsFailure(const TlsFailureContext& context);

// "unreachable", "server not trusted", "refused with TLS alert", "closed after handshake",
// "accepted", "no answer", "TLS error".
absl::string_view TlsProbeOutcomeName(TlsProbeOutcome outcome);

}  // namespace crypto
}  // namespace tessera

#endif  // TESSERA_PRIVACY_CRYPTO_TLS_PROBE_H_
