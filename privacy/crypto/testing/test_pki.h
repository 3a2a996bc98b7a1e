// Test helper: certificates a real CA would never issue (already expired), for the tests
// that check expired certificates are refused. Links OpenSSL; test targets only.
#ifndef TESSERA_PRIVACY_CRYPTO_TESTING_TEST_PKI_H_
#define TESSERA_PRIVACY_CRYPTO_TESTING_TEST_PKI_H_

#include <string>

#include "absl/status/statusor.h"
#include "privacy/crypto/pki.h"

namespace tessera::crypto {

// IssueCertificate(ca, key_pem, options), then back-dated so it expired a day ago and
// re-signed by the CA: a correctly signed certificate that is past its notAfter.
absl::StatusOr<std::string> IssueExpiredCertificate(const KeyAndCertificate& ca,
                                                    const std::string& key_pem,
                                                    const IssueOptions& options);

}  // namespace tessera::crypto

#endif  // TESSERA_PRIVACY_CRYPTO_TESTING_TEST_PKI_H_
