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
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "privacy/crypto/certificate_chain.h"
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

// The federation CA and CRL in force, looked up on every verification (so a new CRL takes
// effect at the next roster). An error fails the verification (fail closed).
using TrustSource =
    std::function<absl::StatusOr<std::shared_ptr<const crypto::TrustAnchors>>()>;

// Reads `ca_path` and `crl_path` (empty: no revocation checking) and reads them again
// whenever either file changes on disk (mtime, size or inode). A file that cannot be read or
// parsed fails every verification until it is fixed (NOT_FOUND / INVALID_ARGUMENT naming
// the file). Thread-safe.
TrustSource FileTrustSource(std::string ca_path, std::string crl_path);

// Fixed anchors: `trusted_ca_pem` and `crl_pem` (empty: no revocation checking), parsed
// once. Errors: those of crypto::TrustAnchors::Create.
absl::StatusOr<TrustSource> FixedTrustSource(absl::string_view trusted_ca_pem,
                                             absl::string_view crl_pem);

// Accepts only certificate identities that chain to the CA of `trust`, are not revoked by
// its CRL and within their validity period, have OU "client" and (when `expected` is set)
// the expected CN, and whose key verifies the signature. A certificate that passed the
// chain and CRL check is remembered for 10 minutes or until `trust` returns other anchors,
// so a roster of n peers that took part before costs n signature checks, not n chain
// checks. Rejections are PERMISSION_DENIED (INVALID_ARGUMENT for a malformed identity).
VerifyFn CertificateVerifier(TrustSource trust, ExpectedName expected = nullptr);

// Accepts Ed25519 identities (and certificates, checking only the signature).
VerifyFn InsecureVerifier();

}  // namespace tessera::secagg

#endif  // TESSERA_PRIVACY_SECAGG_IDENTITY_H_
