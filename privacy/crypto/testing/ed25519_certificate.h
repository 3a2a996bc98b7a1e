// File: ed25519_certificate.h
// Test helper: a CA-issued certificate for an Ed25519 key, which `tessera pki` never issues
// (it allows EC and RSA keys only) but a federation's own CA may, for the tests of code that
// accepts Ed25519 signers (privacy/provenance). Links OpenSSL; test targets only.
#ifndef TESSERA_PRIVACY_CRYPTO_TESTING_ED25519_CERTIFICATE_H_
#define TESSERA_PRIVACY_CRYPTO_TESTING_ED25519_CERTIFICATE_H_

#include <string>

#include "absl/status/statusor.h"
#include "privacy/crypto/pki.h"

namespace tessera::crypto {

// As IssueCertificate(ca, <a P-256 key>, options), with the subject public key replaced by
// the public half of `ed25519_key_pem` and the certificate re-signed by the CA.
absl::StatusOr<std::string> IssueEd25519Certificate(const KeyAndCertificate& ca,
                                                    const std::string& ed25519_key_pem,
                                                    const IssueOptions& options);

}  // namespace tessera::crypto

#endif  // TESSERA_PRIVACY_CRYPTO_TESTING_ED25519_CERTIFICATE_H_
