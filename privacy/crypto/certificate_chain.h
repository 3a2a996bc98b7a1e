// File: certificate_chain.h
// Checks that a certificate was issued by a trusted CA, e.g. a peer's client certificate
// relayed by the coordinator in a secure aggregation roster, which a client must not take
// on the coordinator's word (docs/secagg.md, "Identities").
#ifndef TESSERA_PRIVACY_CRYPTO_CERTIFICATE_CHAIN_H_
#define TESSERA_PRIVACY_CRYPTO_CERTIFICATE_CHAIN_H_

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera {
namespace crypto {

// OK iff the first certificate in `certificate_pem` chains to one of the certificates in
// `trusted_ca_pem` (a PEM bundle) and is within its validity period now, by OpenSSL's
// X509_verify_cert with default flags.
// Errors: INVALID_ARGUMENT if either PEM holds no certificate; PERMISSION_DENIED with
// OpenSSL's reason (e.g. "unable to get local issuer certificate", "certificate has
// expired") if the chain does not verify.
absl::Status VerifyCertificateChain(absl::string_view certificate_pem,
                                    absl::string_view trusted_ca_pem);

// As above, and also refused when the certificate's serial is on `crl_pem` (a PEM CRL signed
// by the CA): PERMISSION_DENIED "... certificate revoked". An empty `crl_pem` checks no
// revocation. A CRL past its nextUpdate refuses every certificate ("CRL has expired"), as
// OpenSSL does: re-sign it (`tessera pki crl`) before then.
// Errors: as above, and INVALID_ARGUMENT if `crl_pem` is not empty and holds no CRL.
absl::Status VerifyCertificateChain(absl::string_view certificate_pem,
                                    absl::string_view trusted_ca_pem,
                                    absl::string_view crl_pem);

// A CA bundle and an optional CRL parsed once, to verify many certificates against (the
// coordinator checks one on every RPC). Thread-safe: Verify only reads the parsed store.
class TrustAnchors {
 public:
  // Errors: INVALID_ARGUMENT when the CA PEM holds no certificate or a non-empty `crl_pem`
  // holds no CRL.
  static absl::StatusOr<std::shared_ptr<const TrustAnchors>> Create(
      absl::string_view trusted_ca_pem, absl::string_view crl_pem);
  ~TrustAnchors();
  // As VerifyCertificateChain(certificate_pem, ca, crl).
  absl::Status Verify(absl::string_view certificate_pem) const;

 private:
  struct Impl;
  explicit TrustAnchors(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace crypto
}  // namespace tessera

#endif  // TESSERA_PRIVACY_CRYPTO_CERTIFICATE_CHAIN_H_
