#include "privacy/crypto/certificate.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include "core/base/testing/status_matchers.h"
#include "core/crypto/sha256.h"

namespace tessera {
namespace crypto {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kNotAfter = 2000000000;  // 2033-05-18T03:33:20Z

struct Deleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
};

struct TestCert {
  std::string pem;
  std::string
      fingerprint_hex;  // computed with X509_digest, independently of the code
};

// A self-signed Ed25519 certificate for /O=Hospital A/OU=client/CN=hospital-a
// with serial 0x1234ABCD that expires at kNotAfter.
TestCert MakeSelfSignedCert() {
  std::unique_ptr<EVP_PKEY, Deleter> key(
      EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  EXPECT_NE(key, nullptr);
  std::unique_ptr<X509, Deleter> cert(X509_new());
  EXPECT_EQ(X509_set_version(cert.get(), 2), 1);
  EXPECT_EQ(ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 0x1234ABCD), 1);
  EXPECT_NE(X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0), nullptr);
  EXPECT_NE(ASN1_TIME_set(X509_getm_notAfter(cert.get()), kNotAfter), nullptr);
  X509_NAME* name = X509_get_subject_name(cert.get());
  auto add = [&](const char* field, const char* value) {
    EXPECT_EQ(X509_NAME_add_entry_by_txt(
                  name, field, MBSTRING_UTF8,
                  reinterpret_cast<const unsigned char*>(value), -1, -1, 0),
              1);
  };
  add("O", "Hospital A");
  add("OU", "client");
  add("CN", "hospital-a");
  EXPECT_EQ(X509_set_issuer_name(cert.get(), name), 1);
  EXPECT_EQ(X509_set_pubkey(cert.get(), key.get()), 1);
  EXPECT_GT(X509_sign(cert.get(), key.get(), nullptr), 0);

  std::unique_ptr<BIO, Deleter> bio(BIO_new(BIO_s_mem()));
  EXPECT_EQ(PEM_write_bio_X509(bio.get(), cert.get()), 1);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  TestCert out;
  out.pem.assign(data, static_cast<size_t>(len));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  EXPECT_EQ(X509_digest(cert.get(), EVP_sha256(), md, &md_len), 1);
  out.fingerprint_hex =
      HexEncode(absl::string_view(reinterpret_cast<char*>(md), md_len));
  return out;
}

TEST(CertificateTest, ParsesSubjectSerialFingerprintAndExpiry) {
  const TestCert cert = MakeSelfSignedCert();
  absl::StatusOr<CertificateIdentity> id = ParseCertificateIdentity(cert.pem);
  ASSERT_THAT(id, IsOk());
  EXPECT_EQ(id->common_name, "hospital-a");
  EXPECT_EQ(id->organization, "Hospital A");
  EXPECT_EQ(id->organizational_unit, "client");
  // Self-signed: the issuer is the subject.
  EXPECT_EQ(id->issuer_common_name, "hospital-a");
  EXPECT_EQ(id->issuer_organization, "Hospital A");
  EXPECT_EQ(id->serial_hex, "1234abcd");
  EXPECT_EQ(id->fingerprint_sha256_hex, cert.fingerprint_hex);
  EXPECT_EQ(id->fingerprint_sha256_hex.size(), 64u);
  EXPECT_EQ(id->not_after_unix, kNotAfter);
}

TEST(CertificateTest, TakesFirstCertificateAndIgnoresSurroundingText) {
  const TestCert cert = MakeSelfSignedCert();
  const TestCert other = MakeSelfSignedCert();
  absl::StatusOr<CertificateIdentity> id =
      ParseCertificateIdentity("leading text\n" + cert.pem + other.pem);
  ASSERT_THAT(id, IsOk());
  EXPECT_EQ(id->fingerprint_sha256_hex, cert.fingerprint_hex);
}

TEST(CertificateTest, RejectsEmptyInput) {
  EXPECT_THAT(ParseCertificateIdentity(""),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CertificateTest, RejectsGarbageWithOpenSslReason) {
  EXPECT_THAT(ParseCertificateIdentity("this is not a certificate"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("not a PEM X.509 certificate: error:")));
}

TEST(CertificateTest, RejectsCorruptedBody) {
  std::string pem = MakeSelfSignedCert().pem;
  const size_t body = pem.find('\n') + 1;
  pem.replace(body, 40, std::string(40, 'A'));  // valid base64, wrong DER
  EXPECT_THAT(ParseCertificateIdentity(pem),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CertificateTest, RejectsTruncatedPem) {
  const std::string pem = MakeSelfSignedCert().pem;
  EXPECT_THAT(ParseCertificateIdentity(pem.substr(0, pem.size() / 2)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CertificateTest, RejectsOtherPemTypes) {
  std::unique_ptr<EVP_PKEY, Deleter> key(
      EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  std::unique_ptr<BIO, Deleter> bio(BIO_new(BIO_s_mem()));
  ASSERT_EQ(PEM_write_bio_PUBKEY(bio.get(), key.get()), 1);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  EXPECT_THAT(ParseCertificateIdentity(
                  absl::string_view(data, static_cast<size_t>(len))),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace crypto
}  // namespace tessera
