// File: pki_internal.h
// Internal to privacy/crypto (pki.cc, revocation_list.cc, certificate.cc): PEM parsing and
// writing of the OpenSSL objects the CA handles, and the conversions they share.
#ifndef TESSERA_PRIVACY_CRYPTO_PKI_INTERNAL_H_
#define TESSERA_PRIVACY_CRYPTO_PKI_INTERNAL_H_

#include <openssl/asn1.h>
#include <openssl/x509.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "privacy/crypto/openssl_handles.h"
#include "privacy/crypto/pki.h"

namespace tessera {
namespace crypto_internal {

struct PkiDeleter {
  void operator()(X509_REQ* p) const { X509_REQ_free(p); }
  void operator()(X509_CRL* p) const { X509_CRL_free(p); }
  void operator()(X509_NAME* p) const { X509_NAME_free(p); }
  // ASN1_INTEGER and ASN1_TIME are both ASN1_STRING.
  void operator()(ASN1_STRING* p) const { ASN1_STRING_free(p); }
};
using ReqPtr = std::unique_ptr<X509_REQ, PkiDeleter>;
using CrlPtr = std::unique_ptr<X509_CRL, PkiDeleter>;
using Asn1IntPtr = std::unique_ptr<ASN1_INTEGER, PkiDeleter>;
using Asn1TimePtr = std::unique_ptr<ASN1_TIME, PkiDeleter>;

// INVALID_ARGUMENT naming `what` when the PEM holds no such object.
absl::StatusOr<PkeyPtr> ReadPrivateKey(absl::string_view pem, absl::string_view what);
absl::StatusOr<X509Ptr> ReadCertificate(absl::string_view pem, absl::string_view what);

// The CA's key and certificate, checked to belong together and to be a CA.
struct Authority {
  PkeyPtr key;
  X509Ptr certificate;
};
absl::StatusOr<Authority> ReadAuthority(const crypto::KeyAndCertificate& ca);

// EC P-256 or P-384, or RSA of at least 2048 bits; INVALID_ARGUMENT otherwise.
absl::Status CheckKeyStrength(EVP_PKEY* key);

// Lowercase hex without leading zeros, as crypto::CertificateIdentity::serial_hex.
absl::StatusOr<std::string> SerialToHex(const ASN1_INTEGER* serial);
absl::StatusOr<Asn1IntPtr> SerialFromHex(absl::string_view hex);

// Seconds since the Unix epoch (UTC).
absl::StatusOr<int64_t> TimeToUnix(const ASN1_TIME* time);

// The text of attribute `nid` in `name` (UTF-8), "" when absent.
absl::StatusOr<std::string> NameEntry(const X509_NAME* name, int nid);

// PEM of the object, via the matching PEM_write_bio_* function.
absl::StatusOr<std::string> BioToString(BIO* bio);

}  // namespace crypto_internal
}  // namespace tessera

#endif  // TESSERA_PRIVACY_CRYPTO_PKI_INTERNAL_H_
