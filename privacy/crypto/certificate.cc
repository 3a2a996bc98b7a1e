#include "privacy/crypto/certificate.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <climits>
#include <memory>

#include "absl/strings/str_cat.h"
#include "core/crypto/openssl_error.h"
#include "privacy/crypto/pki_internal.h"
#include "core/crypto/sha256.h"

namespace tessera {
namespace crypto {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};

absl::Status Invalid(absl::string_view what) {
  return crypto_internal::OpenSslError(absl::StatusCode::kInvalidArgument,
                                       what);
}

// The name's (subject's or issuer's) text for `nid`, or "" when absent.
absl::StatusOr<std::string> SubjectText(X509_NAME* name, int nid,
                                        absl::string_view label) {
  if (name == nullptr || X509_NAME_get_index_by_NID(name, nid, -1) < 0)
    return std::string();
  const int len = X509_NAME_get_text_by_NID(name, nid, nullptr, 0);
  if (len < 0) return Invalid(absl::StrCat("cannot read subject ", label));
  std::string text(static_cast<size_t>(len) + 1, '\0');
  if (X509_NAME_get_text_by_NID(name, nid, text.data(), len + 1) != len) {
    return Invalid(absl::StrCat("cannot read subject ", label));
  }
  text.resize(static_cast<size_t>(len));
  return text;
}

}  // namespace

absl::StatusOr<CertificateIdentity> ParseCertificateIdentity(
    absl::string_view pem) {
  crypto_internal::ClearOpenSslErrors();
  if (pem.empty())
    return absl::InvalidArgumentError("certificate PEM is empty");
  if (pem.size() > INT_MAX)
    return absl::InvalidArgumentError("certificate PEM too large");

  std::unique_ptr<BIO, BioFree> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) {
    return crypto_internal::OpenSslError(absl::StatusCode::kResourceExhausted,
                                         "BIO_new_mem_buf failed");
  }
  std::unique_ptr<X509, X509Free> cert(
      PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) return Invalid("not a PEM X.509 certificate");

  CertificateIdentity id;
  X509_NAME* subject = X509_get_subject_name(cert.get());
  auto cn = SubjectText(subject, NID_commonName, "CN");
  if (!cn.ok()) return cn.status();
  auto org = SubjectText(subject, NID_organizationName, "O");
  if (!org.ok()) return org.status();
  auto ou = SubjectText(subject, NID_organizationalUnitName, "OU");
  if (!ou.ok()) return ou.status();
  id.common_name = *std::move(cn);
  id.organization = *std::move(org);
  id.organizational_unit = *std::move(ou);
  X509_NAME* issuer = X509_get_issuer_name(cert.get());
  auto issuer_cn = SubjectText(issuer, NID_commonName, "issuer CN");
  if (!issuer_cn.ok()) return issuer_cn.status();
  auto issuer_org = SubjectText(issuer, NID_organizationName, "issuer O");
  if (!issuer_org.ok()) return issuer_org.status();
  id.issuer_common_name = *std::move(issuer_cn);
  id.issuer_organization = *std::move(issuer_org);

  absl::StatusOr<std::string> serial =
      crypto_internal::SerialToHex(X509_get0_serialNumber(cert.get()));
  if (!serial.ok()) return Invalid("cannot decode serial number");
  id.serial_hex = *std::move(serial);

  const int der_len = i2d_X509(cert.get(), nullptr);
  if (der_len <= 0) return Invalid("cannot DER-encode certificate");
  std::string der(static_cast<size_t>(der_len), '\0');
  auto* der_out = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_X509(cert.get(), &der_out) != der_len)
    return Invalid("cannot DER-encode certificate");
  id.fingerprint_sha256_hex = HexEncode(Sha256Digest(der));

  absl::StatusOr<int64_t> not_after = crypto_internal::TimeToUnix(X509_get0_notAfter(cert.get()));
  if (!not_after.ok()) return Invalid("cannot decode notAfter");
  id.not_after_unix = *not_after;
  return id;
}

}  // namespace crypto
}  // namespace tessera
