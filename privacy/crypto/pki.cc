#include "privacy/crypto/pki.h"

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/crypto/openssl_error.h"
#include "privacy/crypto/pki_internal.h"

namespace tessera {
namespace crypto {
namespace {

using crypto_internal::Asn1IntPtr;
using crypto_internal::Authority;
using crypto_internal::BioPtr;
using crypto_internal::OpenSslError;
using crypto_internal::PkeyPtr;
using crypto_internal::ReqPtr;
using crypto_internal::X509Ptr;

constexpr long kBackdateSeconds = 300;  // tolerate clocks 5 minutes behind the CA's

absl::Status Internal(absl::string_view what) {
  return OpenSslError(absl::StatusCode::kInternal, what);
}

absl::Status ValidateOrganization(absl::string_view org) {
  if (org.empty() || org.size() > kMaxNameLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("organization must be 1 to ", kMaxNameLength, " characters"));
  }
  for (char c : org) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '/' || c == '\\') {
      return absl::InvalidArgumentError(
          "organization may not contain control characters, '/' or '\\'");
    }
  }
  return absl::OkStatus();
}

absl::Status AddEntry(X509_NAME* name, const char* field, absl::string_view value) {
  if (value.empty()) return absl::OkStatus();
  if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(value.data()),
                                 static_cast<int>(value.size()), -1, 0) != 1) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        absl::StrCat("cannot set subject ", field));
  }
  return absl::OkStatus();
}

// Adds extension `nid` with OpenSSL config text `value` (e.g. "critical,CA:FALSE").
absl::Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        absl::StrCat("bad extension \"", value, "\""));
  }
  const int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (ok != 1) return Internal("X509_add_ext failed");
  return absl::OkStatus();
}

// Serial: 128 random bits with the top bit clear, so it is positive and 16 bytes long.
absl::Status SetRandomSerial(X509* cert) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) return Internal("RAND_bytes failed");
  bytes[0] = static_cast<unsigned char>((bytes[0] & 0x7f) | 0x40);
  BIGNUM* bn = BN_bin2bn(bytes, sizeof(bytes), nullptr);
  if (bn == nullptr) return Internal("BN_bin2bn failed");
  ASN1_INTEGER* serial = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
  BN_free(bn);
  if (serial == nullptr) return Internal("BN_to_ASN1_INTEGER failed");
  return absl::OkStatus();
}

absl::Status SetValidity(X509* cert, int days, int max_days) {
  if (days < 1 || days > max_days) {
    return absl::InvalidArgumentError(absl::StrCat("days must be 1 to ", max_days));
  }
  if (X509_gmtime_adj(X509_getm_notBefore(cert), -kBackdateSeconds) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert), long{days} * 86400) == nullptr) {
    return Internal("cannot set the validity period");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> CertificatePem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509(bio.get(), cert) != 1) {
    return Internal("PEM_write_bio_X509 failed");
  }
  return crypto_internal::BioToString(bio.get());
}

absl::StatusOr<std::string> SubjectAltNames(const IssueOptions& o) {
  if (o.role != CertificateRole::kCoordinator) {
    if (!o.subject_alt_names.empty()) {
      return absl::InvalidArgumentError("only coordinator certificates carry --san names");
    }
    return std::string();
  }
  if (o.subject_alt_names.empty()) {
    return absl::InvalidArgumentError(
        "a coordinator certificate needs --san names (e.g. DNS:coordinator,IP:10.0.0.1)");
  }
  for (const std::string& san : o.subject_alt_names) {
    const bool dns = absl::StartsWith(san, "DNS:"), ip = absl::StartsWith(san, "IP:");
    const absl::string_view value = absl::string_view(san).substr(dns ? 4 : 3);
    bool clean = (dns || ip) && !value.empty() && value.size() <= 253;
    for (char c : value) {
      clean = clean && (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' ||
                        c == '-' || c == ':' || (dns && c == '*'));
    }
    if (!clean) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--san entry \"", san, "\" must be DNS:<hostname> or IP:<address>"));
    }
  }
  return absl::StrJoin(o.subject_alt_names, ",");
}

// Signs a certificate for `subject_key` (its public half) under the CA.
absl::StatusOr<std::string> Issue(const KeyAndCertificate& ca, EVP_PKEY* subject_key,
                                  const IssueOptions& o) {
  if (absl::Status s = ValidateMemberName(o.common_name); !s.ok()) return s;
  if (absl::Status s = crypto_internal::CheckKeyStrength(subject_key); !s.ok()) return s;
  absl::StatusOr<std::string> sans = SubjectAltNames(o);
  if (!sans.ok()) return sans.status();
  absl::StatusOr<Authority> authority = crypto_internal::ReadAuthority(ca);
  if (!authority.ok()) return authority.status();
  X509* issuer = authority->certificate.get();
  std::string org = o.organization;
  if (org.empty()) {
    absl::StatusOr<std::string> ca_org =
        crypto_internal::NameEntry(X509_get_subject_name(issuer), NID_organizationName);
    if (!ca_org.ok()) return ca_org.status();
    org = *ca_org;
  }
  if (absl::Status s = ValidateOrganization(org); !s.ok()) return s;

  X509Ptr cert(X509_new());
  if (cert == nullptr || X509_set_version(cert.get(), 2) != 1) return Internal("X509_new");
  if (absl::Status s = SetRandomSerial(cert.get()); !s.ok()) return s;
  if (absl::Status s = SetValidity(cert.get(), o.days, kMaxCertificateDays); !s.ok()) return s;
  X509_NAME* subject = X509_get_subject_name(cert.get());
  for (absl::Status s : {AddEntry(subject, "O", org),
                         AddEntry(subject, "OU", CertificateRoleName(o.role)),
                         AddEntry(subject, "CN", o.common_name)}) {
    if (!s.ok()) return s;
  }
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer)) != 1 ||
      X509_set_pubkey(cert.get(), subject_key) != 1) {
    return Internal("cannot set issuer or public key");
  }
  const bool server = o.role == CertificateRole::kCoordinator;
  std::vector<std::pair<int, std::string>> extensions = {
      {NID_basic_constraints, "critical,CA:FALSE"},
      {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
      {NID_ext_key_usage, server ? "serverAuth,clientAuth" : "clientAuth"},
      {NID_subject_key_identifier, "hash"},
      {NID_authority_key_identifier, "keyid:always"}};
  if (!sans->empty()) extensions.push_back({NID_subject_alt_name, *sans});
  for (const auto& [nid, value] : extensions) {
    if (absl::Status s = AddExtension(cert.get(), issuer, nid, value); !s.ok()) return s;
  }
  if (X509_sign(cert.get(), authority->key.get(), EVP_sha256()) <= 0) {
    return Internal("X509_sign failed");
  }
  return CertificatePem(cert.get());
}

}  // namespace

absl::StatusOr<CertificateRole> ParseCertificateRole(absl::string_view name) {
  if (name == "coordinator") return CertificateRole::kCoordinator;
  if (name == "operator") return CertificateRole::kOperator;
  if (name == "client") return CertificateRole::kClient;
  return absl::InvalidArgumentError(
      absl::StrCat("role \"", name, "\" is not one of coordinator, operator, client"));
}

absl::string_view CertificateRoleName(CertificateRole role) {
  switch (role) {
    case CertificateRole::kCoordinator: return "coordinator";
    case CertificateRole::kOperator: return "operator";
    case CertificateRole::kClient: return "client";
  }
  return "client";
}

absl::Status ValidateMemberName(absl::string_view name) {
  bool ok = !name.empty() && name.size() <= kMaxNameLength && name[0] != '.' && name[0] != '-';
  for (char c : name) {
    ok = ok && (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ||
                c == '_');
  }
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("name \"", name, "\" must be 1 to ", kMaxNameLength,
                   " of [A-Za-z0-9._-], not starting with '.' or '-'"));
}

absl::StatusOr<std::string> GeneratePrivateKey() {
  crypto_internal::ClearOpenSslErrors();
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (key == nullptr) return Internal("EC P-256 key generation failed");
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr ||
      PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) !=
          1) {
    return Internal("PEM_write_bio_PrivateKey failed");
  }
  return crypto_internal::BioToString(bio.get());
}

absl::StatusOr<KeyAndCertificate> CreateCertificateAuthority(absl::string_view organization,
                                                            int days) {
  if (absl::Status s = ValidateOrganization(organization); !s.ok()) return s;
  KeyAndCertificate out;
  absl::StatusOr<std::string> key_pem = GeneratePrivateKey();
  if (!key_pem.ok()) return key_pem.status();
  absl::StatusOr<PkeyPtr> key = crypto_internal::ReadPrivateKey(*key_pem, "the new CA key");
  if (!key.ok()) return key.status();
  X509Ptr cert(X509_new());
  if (cert == nullptr || X509_set_version(cert.get(), 2) != 1) return Internal("X509_new");
  if (absl::Status s = SetRandomSerial(cert.get()); !s.ok()) return s;
  if (absl::Status s = SetValidity(cert.get(), days, kMaxAuthorityDays); !s.ok()) return s;
  X509_NAME* subject = X509_get_subject_name(cert.get());
  std::string cn = absl::StrCat(organization, " federation CA");
  if (cn.size() > kMaxNameLength) cn = "Tessera federation CA";
  for (absl::Status s : {AddEntry(subject, "O", organization), AddEntry(subject, "CN", cn)}) {
    if (!s.ok()) return s;
  }
  if (X509_set_issuer_name(cert.get(), subject) != 1 ||
      X509_set_pubkey(cert.get(), key->get()) != 1) {
    return Internal("cannot set issuer or public key");
  }
  for (const auto& [nid, value] : std::vector<std::pair<int, std::string>>{
           {NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
           {NID_key_usage, "critical,keyCertSign,cRLSign"},
           {NID_subject_key_identifier, "hash"},
           {NID_authority_key_identifier, "keyid:always"}}) {
    if (absl::Status s = AddExtension(cert.get(), cert.get(), nid, value); !s.ok()) return s;
  }
  if (X509_sign(cert.get(), key->get(), EVP_sha256()) <= 0) return Internal("X509_sign failed");
  absl::StatusOr<std::string> pem = CertificatePem(cert.get());
  if (!pem.ok()) return pem.status();
  out.key_pem = *std::move(key_pem);
  out.certificate_pem = *std::move(pem);
  return out;
}

absl::StatusOr<std::string> CreateCertificateRequest(absl::string_view key_pem,
                                                     absl::string_view common_name,
                                                     absl::string_view organization) {
  if (absl::Status s = ValidateMemberName(common_name); !s.ok()) return s;
  if (absl::Status s = ValidateOrganization(organization); !s.ok()) return s;
  absl::StatusOr<PkeyPtr> key = crypto_internal::ReadPrivateKey(key_pem, "the key");
  if (!key.ok()) return key.status();
  ReqPtr req(X509_REQ_new());
  if (req == nullptr || X509_REQ_set_version(req.get(), 0) != 1) return Internal("X509_REQ_new");
  X509_NAME* subject = X509_REQ_get_subject_name(req.get());
  for (absl::Status s : {AddEntry(subject, "O", organization), AddEntry(subject, "CN", common_name)}) {
    if (!s.ok()) return s;
  }
  if (X509_REQ_set_pubkey(req.get(), key->get()) != 1 ||
      X509_REQ_sign(req.get(), key->get(), EVP_sha256()) <= 0) {
    return Internal("cannot sign the request");
  }
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509_REQ(bio.get(), req.get()) != 1) {
    return Internal("PEM_write_bio_X509_REQ failed");
  }
  return crypto_internal::BioToString(bio.get());
}

namespace {

// The request and its verified public key.
absl::StatusOr<ReqPtr> ReadRequest(absl::string_view csr_pem) {
  crypto_internal::ClearOpenSslErrors();
  if (csr_pem.size() > (1 << 20)) return absl::InvalidArgumentError("the CSR is over 1 MiB");
  BioPtr bio(BIO_new_mem_buf(csr_pem.data(), static_cast<int>(csr_pem.size())));
  ReqPtr req(bio ? PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (req == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        "not a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----)");
  }
  EVP_PKEY* key = X509_REQ_get0_pubkey(req.get());
  if (key == nullptr || X509_REQ_verify(req.get(), key) != 1) {
    crypto_internal::ClearOpenSslErrors();
    return absl::InvalidArgumentError(
        "the request's signature does not verify: it was not signed by its own key");
  }
  if (absl::Status s = crypto_internal::CheckKeyStrength(key); !s.ok()) return s;
  return req;
}

}  // namespace

absl::StatusOr<RequestSubject> ReadCertificateRequest(absl::string_view csr_pem) {
  absl::StatusOr<ReqPtr> req = ReadRequest(csr_pem);
  if (!req.ok()) return req.status();
  const X509_NAME* subject = X509_REQ_get_subject_name(req->get());
  absl::StatusOr<std::string> cn = crypto_internal::NameEntry(subject, NID_commonName);
  if (!cn.ok()) return cn.status();
  absl::StatusOr<std::string> org = crypto_internal::NameEntry(subject, NID_organizationName);
  if (!org.ok()) return org.status();
  return RequestSubject{*std::move(cn), *std::move(org)};
}

absl::StatusOr<std::string> IssueCertificate(const KeyAndCertificate& ca,
                                             absl::string_view subject_key_pem,
                                             const IssueOptions& options) {
  absl::StatusOr<PkeyPtr> key = crypto_internal::ReadPrivateKey(subject_key_pem, "the key");
  if (!key.ok()) return key.status();
  return Issue(ca, key->get(), options);
}

absl::StatusOr<std::string> IssueCertificateForRequest(const KeyAndCertificate& ca,
                                                       absl::string_view csr_pem,
                                                       IssueOptions options) {
  absl::StatusOr<ReqPtr> req = ReadRequest(csr_pem);
  if (!req.ok()) return req.status();
  const X509_NAME* subject = X509_REQ_get_subject_name(req->get());
  if (options.common_name.empty()) {
    absl::StatusOr<std::string> cn = crypto_internal::NameEntry(subject, NID_commonName);
    if (!cn.ok()) return cn.status();
    if (cn->empty()) return absl::InvalidArgumentError("the request has no CN (the name)");
    options.common_name = *cn;
  }
  if (options.organization.empty()) {
    absl::StatusOr<std::string> org = crypto_internal::NameEntry(subject, NID_organizationName);
    if (!org.ok()) return org.status();
    options.organization = *org;
  }
  return Issue(ca, X509_REQ_get0_pubkey(req->get()), options);
}

}  // namespace crypto
}  // namespace tessera
