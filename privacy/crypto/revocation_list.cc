// The CRL half of pki.h: writing a CA-signed revocation list and reading one back.
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <ctime>

#include "absl/strings/str_cat.h"
#include "core/crypto/openssl_error.h"
#include "privacy/crypto/pki.h"
#include "privacy/crypto/pki_internal.h"

namespace tessera {
namespace crypto {
namespace {

using crypto_internal::Asn1IntPtr;
using crypto_internal::Asn1TimePtr;
using crypto_internal::BioPtr;
using crypto_internal::CrlPtr;
using crypto_internal::OpenSslError;

absl::Status Internal(absl::string_view what) {
  return OpenSslError(absl::StatusCode::kInternal, what);
}

}  // namespace

absl::StatusOr<std::string> CreateRevocationList(const KeyAndCertificate& ca,
                                                 const RevocationList& list, int days) {
  if (days < 1 || days > kMaxCertificateDays) {
    return absl::InvalidArgumentError(
        absl::StrCat("CRL days must be 1 to ", kMaxCertificateDays));
  }
  absl::StatusOr<crypto_internal::Authority> authority = crypto_internal::ReadAuthority(ca);
  if (!authority.ok()) return authority.status();
  X509* issuer = authority->certificate.get();
  CrlPtr crl(X509_CRL_new());
  if (crl == nullptr || X509_CRL_set_version(crl.get(), 1) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(issuer)) != 1) {
    return Internal("X509_CRL_new failed");
  }
  const time_t now = std::time(nullptr);
  Asn1TimePtr this_update(ASN1_TIME_adj(nullptr, now, 0, 0));
  Asn1TimePtr next_update(ASN1_TIME_adj(nullptr, now, days, 0));
  if (this_update == nullptr || next_update == nullptr ||
      X509_CRL_set1_lastUpdate(crl.get(), this_update.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), next_update.get()) != 1) {
    return Internal("cannot set the CRL's dates");
  }
  for (const RevokedCertificate& r : list.revoked) {
    absl::StatusOr<Asn1IntPtr> serial = crypto_internal::SerialFromHex(r.serial_hex);
    if (!serial.ok()) return serial.status();
    Asn1TimePtr when(ASN1_TIME_set(nullptr, static_cast<time_t>(r.revoked_unix)));
    X509_REVOKED* entry = X509_REVOKED_new();
    if (when == nullptr || entry == nullptr ||
        X509_REVOKED_set_serialNumber(entry, serial->get()) != 1 ||
        X509_REVOKED_set_revocationDate(entry, when.get()) != 1 ||
        X509_CRL_add0_revoked(crl.get(), entry) != 1) {
      X509_REVOKED_free(entry);
      return Internal("cannot add a revoked entry");
    }
  }
  Asn1IntPtr number(ASN1_INTEGER_new());
  if (number == nullptr || ASN1_INTEGER_set_int64(number.get(), list.number) != 1 ||
      X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, 0) != 1) {
    return Internal("cannot set the CRL number");
  }
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, nullptr, nullptr, crl.get(), 0);
  X509_EXTENSION* aki =
      X509V3_EXT_conf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always");
  if (aki == nullptr) return Internal("cannot make the authority key identifier");
  const int added = X509_CRL_add_ext(crl.get(), aki, -1);
  X509_EXTENSION_free(aki);
  if (added != 1 || X509_CRL_sort(crl.get()) != 1 ||
      X509_CRL_sign(crl.get(), authority->key.get(), EVP_sha256()) <= 0) {
    return Internal("cannot sign the CRL");
  }
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509_CRL(bio.get(), crl.get()) != 1) {
    return Internal("PEM_write_bio_X509_CRL failed");
  }
  return crypto_internal::BioToString(bio.get());
}

absl::StatusOr<RevocationList> ReadRevocationList(absl::string_view crl_pem,
                                                  absl::string_view ca_certificate_pem) {
  crypto_internal::ClearOpenSslErrors();
  if (crl_pem.size() > (64 << 20)) return absl::InvalidArgumentError("the CRL is over 64 MiB");
  BioPtr bio(BIO_new_mem_buf(crl_pem.data(), static_cast<int>(crl_pem.size())));
  CrlPtr crl(bio ? PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (crl == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        "not a PEM CRL (-----BEGIN X509 CRL-----)");
  }
  absl::StatusOr<crypto_internal::X509Ptr> ca =
      crypto_internal::ReadCertificate(ca_certificate_pem, "the CA certificate");
  if (!ca.ok()) return ca.status();
  if (X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(ca->get())) != 0 ||
      X509_CRL_verify(crl.get(), X509_get0_pubkey(ca->get())) != 1) {
    crypto_internal::ClearOpenSslErrors();
    return absl::PermissionDeniedError("the CRL was not signed by this CA");
  }
  RevocationList out;
  absl::StatusOr<int64_t> this_update =
      crypto_internal::TimeToUnix(X509_CRL_get0_lastUpdate(crl.get()));
  if (!this_update.ok()) return this_update.status();
  out.this_update_unix = *this_update;
  if (const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl.get()); next != nullptr) {
    absl::StatusOr<int64_t> next_update = crypto_internal::TimeToUnix(next);
    if (!next_update.ok()) return next_update.status();
    out.next_update_unix = *next_update;
  }
  int critical = 0;
  Asn1IntPtr number(static_cast<ASN1_INTEGER*>(
      X509_CRL_get_ext_d2i(crl.get(), NID_crl_number, &critical, nullptr)));
  if (number != nullptr && ASN1_INTEGER_get_int64(&out.number, number.get()) != 1) {
    return absl::InvalidArgumentError("the CRL number is out of range");
  }
  STACK_OF(X509_REVOKED)* entries = X509_CRL_get_REVOKED(crl.get());
  for (int i = 0; entries != nullptr && i < sk_X509_REVOKED_num(entries); ++i) {
    const X509_REVOKED* entry = sk_X509_REVOKED_value(entries, i);
    RevokedCertificate r;
    absl::StatusOr<std::string> serial =
        crypto_internal::SerialToHex(X509_REVOKED_get0_serialNumber(entry));
    if (!serial.ok()) return serial.status();
    absl::StatusOr<int64_t> when =
        crypto_internal::TimeToUnix(X509_REVOKED_get0_revocationDate(entry));
    if (!when.ok()) return when.status();
    r.serial_hex = *std::move(serial);
    r.revoked_unix = *when;
    out.revoked.push_back(std::move(r));
  }
  return out;
}

}  // namespace crypto
}  // namespace tessera
