#include "privacy/crypto/testing/test_pki.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "privacy/crypto/pki_internal.h"

namespace tessera::crypto {

absl::StatusOr<std::string> IssueExpiredCertificate(const KeyAndCertificate& ca,
                                                    const std::string& key_pem,
                                                    const IssueOptions& options) {
  absl::StatusOr<std::string> pem = IssueCertificate(ca, key_pem, options);
  if (!pem.ok()) return pem.status();
  absl::StatusOr<crypto_internal::X509Ptr> cert =
      crypto_internal::ReadCertificate(*pem, "the issued certificate");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<crypto_internal::Authority> authority = crypto_internal::ReadAuthority(ca);
  if (!authority.ok()) return authority.status();
  if (X509_gmtime_adj(X509_getm_notBefore(cert->get()), -2 * 86400) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert->get()), -86400) == nullptr ||
      X509_sign(cert->get(), authority->key.get(), EVP_sha256()) <= 0) {
    return absl::InternalError("cannot back-date the certificate");
  }
  crypto_internal::BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509(bio.get(), cert->get()) != 1) {
    return absl::InternalError("PEM_write_bio_X509 failed");
  }
  return crypto_internal::BioToString(bio.get());
}

}  // namespace tessera::crypto
