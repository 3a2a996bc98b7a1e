#include "privacy/crypto/pki_internal.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <climits>
#include <ctime>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/crypto/openssl_error.h"

namespace tessera {
namespace crypto_internal {
namespace {

BioPtr ReadOnlyBio(absl::string_view pem) {
  if (pem.size() > INT_MAX) return nullptr;
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

struct BnFree {
  void operator()(BIGNUM* bn) const { BN_free(bn); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;

}  // namespace

absl::StatusOr<PkeyPtr> ReadPrivateKey(absl::string_view pem, absl::string_view what) {
  ClearOpenSslErrors();
  BioPtr bio = ReadOnlyBio(pem);
  PkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (key == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        absl::StrCat(what, " is not an unencrypted PEM private key"));
  }
  return key;
}

absl::StatusOr<X509Ptr> ReadCertificate(absl::string_view pem, absl::string_view what) {
  ClearOpenSslErrors();
  BioPtr bio = ReadOnlyBio(pem);
  X509Ptr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (cert == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        absl::StrCat(what, " is not a PEM certificate"));
  }
  return cert;
}

absl::StatusOr<Authority> ReadAuthority(const crypto::KeyAndCertificate& ca) {
  Authority out;
  absl::StatusOr<PkeyPtr> key = ReadPrivateKey(ca.key_pem, "the CA key");
  if (!key.ok()) return key.status();
  absl::StatusOr<X509Ptr> cert = ReadCertificate(ca.certificate_pem, "the CA certificate");
  if (!cert.ok()) return cert.status();
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    ClearOpenSslErrors();
    return absl::InvalidArgumentError("the CA key does not belong to the CA certificate");
  }
  if (X509_check_ca(cert->get()) == 0) {
    return absl::InvalidArgumentError("the CA certificate is not a CA (basicConstraints)");
  }
  out.key = *std::move(key);
  out.certificate = *std::move(cert);
  return out;
}

absl::Status CheckKeyStrength(EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "EC")) {
    char group[64] = {0};
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &len) != 1) {
      ClearOpenSslErrors();
      return absl::InvalidArgumentError("the EC key names no curve");
    }
    const std::string name(group, len);
    if (name == "prime256v1" || name == "P-256" || name == "secp384r1" || name == "P-384") {
      return absl::OkStatus();
    }
    return absl::InvalidArgumentError(
        absl::StrCat("EC curve ", name, " is not allowed (use P-256 or P-384)"));
  }
  if (EVP_PKEY_is_a(key, "RSA")) {
    const int bits = EVP_PKEY_get_bits(key);
    if (bits >= 2048) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("RSA key of ", bits, " bits is too small (at least 2048)"));
  }
  return absl::InvalidArgumentError("key type not allowed (use EC P-256/P-384 or RSA >= 2048)");
}

absl::StatusOr<std::string> SerialToHex(const ASN1_INTEGER* serial) {
  BnPtr bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (bn == nullptr) return OpenSslError(absl::StatusCode::kInvalidArgument, "bad serial");
  char* hex = BN_bn2hex(bn.get());
  if (hex == nullptr) return OpenSslError(absl::StatusCode::kInternal, "BN_bn2hex failed");
  std::string out = absl::AsciiStrToLower(hex);
  OPENSSL_free(hex);
  return out;
}

absl::StatusOr<Asn1IntPtr> SerialFromHex(absl::string_view hex) {
  if (hex.empty() || hex.size() > 40) {
    return absl::InvalidArgumentError("a serial is 1 to 40 hex digits");
  }
  for (char c : hex) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(absl::StrCat("serial \"", hex, "\" is not hex"));
    }
  }
  BIGNUM* raw = nullptr;
  const std::string text(hex);
  if (BN_hex2bn(&raw, text.c_str()) == 0) {
    return OpenSslError(absl::StatusCode::kInvalidArgument, "bad serial");
  }
  BnPtr bn(raw);
  Asn1IntPtr out(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (out == nullptr) return OpenSslError(absl::StatusCode::kInternal, "BN_to_ASN1_INTEGER");
  return out;
}

absl::StatusOr<int64_t> TimeToUnix(const ASN1_TIME* time) {
  std::tm tm{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) {
    ClearOpenSslErrors();
    return absl::InvalidArgumentError("cannot decode a time");
  }
  // Days from civil (Howard Hinnant's algorithm): no timegm, no local time zone.
  int64_t y = int64_t{tm.tm_year} + 1900;
  const int64_t m = tm.tm_mon + 1;
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + tm.tm_mday - 1;
  const int64_t days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
  return days * 86400 + int64_t{tm.tm_hour} * 3600 + tm.tm_min * 60 + tm.tm_sec;
}

absl::StatusOr<std::string> NameEntry(const X509_NAME* name, int nid) {
  const int index = X509_NAME_get_index_by_NID(name, nid, -1);
  if (index < 0) return std::string();
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  const int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) return OpenSslError(absl::StatusCode::kInvalidArgument, "bad subject text");
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

absl::StatusOr<std::string> BioToString(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  if (len <= 0 || data == nullptr) {
    return OpenSslError(absl::StatusCode::kInternal, "cannot write PEM");
  }
  return std::string(data, static_cast<size_t>(len));
}

}  // namespace crypto_internal
}  // namespace tessera
