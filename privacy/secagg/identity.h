// File: identity.h
// The long-term identities that sign secure aggregation advertisements (docs/secagg.md,
// "Identities"). Under mTLS a client signs with the key of its client certificate and
// advertises the certificate; every peer checks that it chains to the federation's CA and
// has the client role, so a coordinator cannot slip in keys of its own (the "active
// adversary" setting of Bonawitz et al. needs this PKI). In --insecure demos a client
// signs with a fresh Ed25519 key instead, which only protects against an honest-but-curious
// coordinator.
#ifndef TESSERA_PRIVACY_SECAGG_IDENTITY_H_
#define TESSERA_PRIVACY_SECAGG_IDENTITY_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "privacy/secagg/protocol.h"

namespace tessera::secagg {

// The largest certificate PEM accepted in an advertisement.
inline constexpr size_t kMaxIdentityCertificateBytes = 16 * 1024;

struct Signer {
  SignFn sign;
  v1::Identity identity;
};

// Signs with `private_key_pem` (P-256 or Ed25519) and advertises `certificate_pem`.
// Errors: INVALID_ARGUMENT if the key cannot sign or does not match the certificate.
absl::StatusOr<Signer> CertificateSigner(std::string certificate_pem, std::string private_key_pem);

// A fresh Ed25519 key (--insecure only). Errors: INTERNAL if key generation fails.
absl::StatusOr<Signer> EphemeralSigner();

// Returns the name client `index` must carry (its certificate CN), or "" for any.
using ExpectedName = std::function<std::string(uint32_t index)>;

// Accepts only certificate identities that chain to `trusted_ca_pem`, have OU "client" and
// (when `expected` is set) the expected CN, and whose key verifies the signature.
// Rejections are PERMISSION_DENIED (INVALID_ARGUMENT for a malformed identity).
VerifyFn CertificateVerifier(std::string trusted_ca_pem, ExpectedName expected = nullptr);

// Accepts Ed25519 identities (and certificates, checking only the signature).
VerifyFn InsecureVerifier();

}  // namespace tessera::secagg

#endif  // TESSERA_PRIVACY_SECAGG_IDENTITY_H_
