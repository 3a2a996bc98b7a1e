// File: pki.h
// The federation's certificate authority, as `tessera pki` drives it: EC P-256 keys, the
// self-signed CA, role certificates (the role in the subject's OU, the name in its CN, as
// coordinator/service/auth.h reads them), certificates for requests (CSRs) that a partner
// made at its own site so its private key never leaves it, and the certificate revocation
// list (CRL) the coordinator checks on every connection. PEM in, PEM out; no files.
#ifndef TESSERA_PRIVACY_CRYPTO_PKI_H_
#define TESSERA_PRIVACY_CRYPTO_PKI_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera {
namespace crypto {

enum class CertificateRole { kCoordinator, kOperator, kClient };

// "coordinator" | "operator" | "client"; INVALID_ARGUMENT otherwise.
absl::StatusOr<CertificateRole> ParseCertificateRole(absl::string_view name);
absl::string_view CertificateRoleName(CertificateRole role);

// Limits on what a certificate may say.
inline constexpr int kMaxCertificateDays = 3650;
inline constexpr int kMaxAuthorityDays = 7300;
inline constexpr size_t kMaxNameLength = 64;  // CN and O, as X.520 bounds them

// OK iff `name` can be a member's name (the CN, and the file name `tessera pki` writes):
// 1 to 64 of [A-Za-z0-9._-], not starting with '.' or '-'.
absl::Status ValidateMemberName(absl::string_view name);

struct KeyAndCertificate {
  std::string key_pem;
  std::string certificate_pem;
};

// A fresh EC P-256 private key, unencrypted PKCS#8 PEM.
absl::StatusOr<std::string> GeneratePrivateKey();

// A self-signed CA certificate, CN "<organization> federation CA", O `organization`,
// CA:TRUE with keyCertSign and cRLSign, valid from 5 minutes ago for `days`.
absl::StatusOr<KeyAndCertificate> CreateCertificateAuthority(absl::string_view organization,
                                                            int days);

// A certificate signing request for CN `common_name`, O `organization`, signed with
// `key_pem` (so the CA can check the requester holds the key).
absl::StatusOr<std::string> CreateCertificateRequest(absl::string_view key_pem,
                                                     absl::string_view common_name,
                                                     absl::string_view organization);

struct RequestSubject {
  std::string common_name;
  std::string organization;
};
// The subject of a CSR whose self-signature verifies. INVALID_ARGUMENT when `csr_pem` holds
// no request, its signature does not verify, or its key is not EC P-256.
absl::StatusOr<RequestSubject> ReadCertificateRequest(absl::string_view csr_pem);

struct IssueOptions {
  CertificateRole role = CertificateRole::kClient;
  std::string common_name;   // ValidateMemberName
  std::string organization;  // O; empty: the CA's organization
  // "DNS:name" or "IP:address" entries. Coordinator certificates need at least one (clients
  // check the address they dial against them); other roles may not have any.
  std::vector<std::string> subject_alt_names;
  int days = 365;
};

// Issues a certificate for the public half of `subject_key_pem`: serial 128 random bits,
// OU the role, extended key usage clientAuth (and serverAuth for the coordinator).
absl::StatusOr<std::string> IssueCertificate(const KeyAndCertificate& ca,
                                             absl::string_view subject_key_pem,
                                             const IssueOptions& options);

// Issues a certificate for the key in a partner's CSR. The CA decides the role and validity;
// the CN and O come from the request unless `options` sets them. Whatever else the request
// asks for (extensions, OU) is ignored.
absl::StatusOr<std::string> IssueCertificateForRequest(const KeyAndCertificate& ca,
                                                       absl::string_view csr_pem,
                                                       IssueOptions options);

struct RevokedCertificate {
  std::string serial_hex;  // as CertificateIdentity::serial_hex
  int64_t revoked_unix = 0;
};

struct RevocationList {
  std::vector<RevokedCertificate> revoked;
  int64_t number = 0;  // the CRL number; each re-issue increments it
  int64_t this_update_unix = 0;
  int64_t next_update_unix = 0;
};

// A CRL signed by `ca`, valid (nextUpdate) for `days`, listing `list.revoked`, with CRL
// number `list.number` (the other fields are ignored).
absl::StatusOr<std::string> CreateRevocationList(const KeyAndCertificate& ca,
                                                 const RevocationList& list, int days);

// Parses a CRL and checks that `ca_certificate_pem` signed it. INVALID_ARGUMENT when it
// holds no CRL; PERMISSION_DENIED when the signature or issuer does not match.
absl::StatusOr<RevocationList> ReadRevocationList(absl::string_view crl_pem,
                                                  absl::string_view ca_certificate_pem);

}  // namespace crypto
}  // namespace tessera

#endif  // TESSERA_PRIVACY_CRYPTO_PKI_H_
