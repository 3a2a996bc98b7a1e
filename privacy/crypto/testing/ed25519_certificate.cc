#include "privacy/crypto/testing/ed25519_certificate.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "privacy/crypto/pki_internal.h"

namespace tessera::crypto {

absl::StatusOr<std::string> IssueEd25519Certificate(const KeyAndCertificate& ca,
                                                    const std::string& ed25519_key_pem,
                                                    const IssueOptions& options) {
  absl::StatusOr<crypto_internal::PkeyPtr> key =
      crypto_internal::ReadPrivateKey(ed25519_key_pem, "the Ed25519 key");
  if (!key.ok()) return key.status();
  if (!EVP_PKEY_is_a(key->get(), "ED25519")) {
    return absl::InvalidArgumentError("not an Ed25519 key");
  }
  absl::StatusOr<std::string> placeholder_key = GeneratePrivateKey();
  if (!placeholder_key.ok()) return placeholder_key.status();
  absl::StatusOr<std::string> pem = IssueCertificate(ca, *placeholder_key, options);
  if (!pem.ok()) return pem.status();
  absl::StatusOr<crypto_internal::X509Ptr> cert =
      crypto_internal::ReadCertificate(*pem, "the issued certificate");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<crypto_internal::Authority> authority = crypto_internal::ReadAuthority(ca);
  if (!authority.ok()) return authority.status();
  if (X509_set_pubkey(cert->get(), key->get()) != 1 ||
      X509_sign(cert->get(), authority->key.get(), EVP_sha256()) <= 0) {
    return absl::InternalError("cannot re-key the certificate");
  }
  crypto_internal::BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509(bio.get(), cert->get()) != 1) {
    return absl::InternalError("PEM_write_bio_X509 failed");
  }
  return crypto_internal::BioToString(bio.get());
}

}  // namespace tessera::crypto
