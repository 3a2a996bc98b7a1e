// File: certificate.h
// Reads the identity out of an X.509 certificate, e.g. the client certificate
// presented over mTLS, so the coordinator can name a node by organization/CN
// and pin its fingerprint. Parsing only: this does not verify the chain or the
// validity period.
#ifndef TESSERA_PRIVACY_CRYPTO_CERTIFICATE_H_
#define TESSERA_PRIVACY_CRYPTO_CERTIFICATE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera {
namespace crypto {

struct CertificateIdentity {
  // Subject attributes; empty when the subject has none.
  std::string common_name;          // CN
  std::string organization;         // O
  std::string organizational_unit;  // OU
  // The issuer's CN and O (the CA that signed it); empty when absent.
  std::string issuer_common_name;
  std::string issuer_organization;
  // Serial number as lowercase hex without leading zeros ("0" for zero; a
  // leading "-" for the invalid-but-seen negative serials).
  std::string serial_hex;
  // SHA-256 of the DER encoding, 64 lowercase hex chars (what `openssl x509
  // -fingerprint -sha256` prints, without the colons).
  std::string fingerprint_sha256_hex;
  // notAfter as seconds since the Unix epoch (UTC).
  int64_t not_after_unix = 0;
};

// Parses the first PEM "CERTIFICATE" block in `pem`.
// Errors: INVALID_ARGUMENT (with OpenSSL's reason) when `pem` holds no parsable
// certificate, or a subject attribute or the notAfter time cannot be decoded.
absl::StatusOr<CertificateIdentity> ParseCertificateIdentity(
    absl::string_view pem);

}  // namespace crypto
}  // namespace tessera

#endif  // TESSERA_PRIVACY_CRYPTO_CERTIFICATE_H_
