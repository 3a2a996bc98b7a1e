#include "privacy/crypto/pki.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <ctime>
#include <string>

#include "core/base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "privacy/crypto/certificate.h"
#include "privacy/crypto/certificate_chain.h"
#include "privacy/crypto/testing/test_pki.h"

namespace tessera::crypto {
namespace {

using ::tessera::IsOk;
using ::tessera::StatusIs;
using ::testing::HasSubstr;

KeyAndCertificate NewCa(const char* org = "Federation Test") {
  absl::StatusOr<KeyAndCertificate> ca = CreateCertificateAuthority(org, 30);
  EXPECT_THAT(ca, IsOk());
  return ca.value_or(KeyAndCertificate{});
}

std::string NewKey() { return GeneratePrivateKey().value_or(""); }

IssueOptions Client(const std::string& name) {
  IssueOptions o;
  o.role = CertificateRole::kClient;
  o.common_name = name;
  return o;
}

TEST(PkiTest, AuthorityIsSelfSignedCaWithItsOrganization) {
  KeyAndCertificate ca = NewCa();
  ASSERT_THAT(VerifyCertificateChain(ca.certificate_pem, ca.certificate_pem), IsOk());
  absl::StatusOr<CertificateIdentity> id = ParseCertificateIdentity(ca.certificate_pem);
  ASSERT_THAT(id, IsOk());
  EXPECT_EQ(id->organization, "Federation Test");
  EXPECT_EQ(id->common_name, "Federation Test federation CA");
  EXPECT_NEAR(id->not_after_unix, std::time(nullptr) + 30 * 86400, 60);
  EXPECT_THAT(CreateCertificateAuthority("", 30), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CreateCertificateAuthority("Org", 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("days")));
}

TEST(PkiTest, IssuesRoleCertificatesThatChainToTheCaOnly) {
  KeyAndCertificate ca = NewCa(), other = NewCa("Other");
  absl::StatusOr<std::string> cert = IssueCertificate(ca, NewKey(), Client("hospital-a"));
  ASSERT_THAT(cert, IsOk());
  absl::StatusOr<CertificateIdentity> id = ParseCertificateIdentity(*cert);
  ASSERT_THAT(id, IsOk());
  EXPECT_EQ(id->common_name, "hospital-a");
  EXPECT_EQ(id->organizational_unit, "client");
  EXPECT_EQ(id->organization, "Federation Test");  // the CA's, when not given
  EXPECT_EQ(id->serial_hex.size(), 32u);            // 128 random bits, top bits 01
  EXPECT_THAT(VerifyCertificateChain(*cert, ca.certificate_pem), IsOk());
  EXPECT_THAT(VerifyCertificateChain(*cert, other.certificate_pem),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("local issuer")));

  IssueOptions op = Client("alice");
  op.role = CertificateRole::kOperator;
  op.organization = "Hospital A";
  absl::StatusOr<std::string> op_cert = IssueCertificate(ca, NewKey(), op);
  ASSERT_THAT(op_cert, IsOk());
  EXPECT_EQ(ParseCertificateIdentity(*op_cert)->organizational_unit, "operator");
  EXPECT_EQ(ParseCertificateIdentity(*op_cert)->organization, "Hospital A");
  EXPECT_NE(ParseCertificateIdentity(*op_cert)->serial_hex, id->serial_hex);
}

TEST(PkiTest, CoordinatorCertificatesNeedSubjectAltNamesAndOthersMayNotHaveThem) {
  KeyAndCertificate ca = NewCa();
  IssueOptions o = Client("coordinator");
  o.role = CertificateRole::kCoordinator;
  EXPECT_THAT(IssueCertificate(ca, NewKey(), o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--san")));
  o.subject_alt_names = {"DNS:coordinator", "IP:10.0.0.1"};
  EXPECT_THAT(IssueCertificate(ca, NewKey(), o), IsOk());
  o.subject_alt_names = {"DNS:a,DNS:injected"};
  EXPECT_THAT(IssueCertificate(ca, NewKey(), o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("DNS:a,DNS:injected")));
  o.subject_alt_names = {"URI:x"};
  EXPECT_THAT(IssueCertificate(ca, NewKey(), o), StatusIs(absl::StatusCode::kInvalidArgument));
  IssueOptions c = Client("hospital-a");
  c.subject_alt_names = {"DNS:x"};
  EXPECT_THAT(IssueCertificate(ca, NewKey(), c),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("only coordinator")));
}

TEST(PkiTest, RefusesBadNamesDaysAndMismatchedCaKeys) {
  KeyAndCertificate ca = NewCa();
  for (const char* bad : {"", "-x", ".hidden", "a/b", "a b", "x\n"}) {
    EXPECT_THAT(IssueCertificate(ca, NewKey(), Client(bad)),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("name"))) << bad;
  }
  EXPECT_THAT(IssueCertificate(ca, NewKey(), Client(std::string(65, 'a'))),
              StatusIs(absl::StatusCode::kInvalidArgument));
  IssueOptions o = Client("ok");
  o.days = kMaxCertificateDays + 1;
  EXPECT_THAT(IssueCertificate(ca, NewKey(), o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("days")));
  KeyAndCertificate mixed{NewCa("Other").key_pem, ca.certificate_pem};
  EXPECT_THAT(IssueCertificate(mixed, NewKey(), Client("ok")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not belong")));
  EXPECT_THAT(IssueCertificate(ca, "not a key", Client("ok")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("private key")));
}

TEST(PkiTest, SignsAPartnersRequestForItsKeyWithTheRoleTheCaChooses) {
  KeyAndCertificate ca = NewCa();
  const std::string partner_key = NewKey();
  absl::StatusOr<std::string> csr = CreateCertificateRequest(partner_key, "bank-b", "Bank B");
  ASSERT_THAT(csr, IsOk());
  absl::StatusOr<RequestSubject> subject = ReadCertificateRequest(*csr);
  ASSERT_THAT(subject, IsOk());
  EXPECT_EQ(subject->common_name, "bank-b");
  EXPECT_EQ(subject->organization, "Bank B");

  absl::StatusOr<std::string> cert =
      IssueCertificateForRequest(ca, *csr, IssueOptions{CertificateRole::kClient, "", "", {}, 90});
  ASSERT_THAT(cert, IsOk());
  absl::StatusOr<CertificateIdentity> id = ParseCertificateIdentity(*cert);
  EXPECT_EQ(id->common_name, "bank-b");
  EXPECT_EQ(id->organization, "Bank B");
  EXPECT_EQ(id->organizational_unit, "client");
  EXPECT_THAT(VerifyCertificateChain(*cert, ca.certificate_pem), IsOk());

  // The certificate holds the partner's public key: the partner's private key matches it.
  BIO* cert_bio = BIO_new_mem_buf(cert->data(), static_cast<int>(cert->size()));
  BIO* key_bio = BIO_new_mem_buf(partner_key.data(), static_cast<int>(partner_key.size()));
  X509* x = PEM_read_bio_X509(cert_bio, nullptr, nullptr, nullptr);
  EVP_PKEY* k = PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr);
  EXPECT_EQ(X509_check_private_key(x, k), 1);
  X509_free(x);
  EVP_PKEY_free(k);
  BIO_free(cert_bio);
  BIO_free(key_bio);
}

TEST(PkiTest, RefusesTamperedWeakOrNamelessRequests) {
  KeyAndCertificate ca = NewCa();
  std::string csr = CreateCertificateRequest(NewKey(), "bank-b", "Bank B").value_or("");
  ASSERT_FALSE(csr.empty());
  // Flip one character of the base64 body inside the signed part.
  std::string tampered = csr;
  const size_t at = tampered.find('\n') + 60;
  tampered[at] = tampered[at] == 'A' ? 'B' : 'A';
  EXPECT_THAT(IssueCertificateForRequest(ca, tampered, Client("")),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(IssueCertificateForRequest(ca, "garbage", Client("")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("CERTIFICATE REQUEST")));

  EVP_PKEY* rsa = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{1024});
  ASSERT_NE(rsa, nullptr);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, rsa, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const std::string weak_key(data, static_cast<size_t>(BIO_get_mem_data(bio, &data)));
  BIO_free(bio);
  EVP_PKEY_free(rsa);
  absl::StatusOr<std::string> weak_csr = CreateCertificateRequest(weak_key, "weak", "Weak");
  ASSERT_THAT(weak_csr, IsOk());
  EXPECT_THAT(IssueCertificateForRequest(ca, *weak_csr, Client("")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("1024 bits")));
}

TEST(PkiTest, RevocationListRoundTripsAndRevokesOnlyItsSerials) {
  KeyAndCertificate ca = NewCa(), other = NewCa("Other");
  std::string a = IssueCertificate(ca, NewKey(), Client("a")).value_or("");
  std::string b = IssueCertificate(ca, NewKey(), Client("b")).value_or("");
  const std::string serial_a = ParseCertificateIdentity(a)->serial_hex;

  absl::StatusOr<std::string> empty = CreateRevocationList(ca, RevocationList{}, 7);
  ASSERT_THAT(empty, IsOk());
  EXPECT_THAT(VerifyCertificateChain(a, ca.certificate_pem, *empty), IsOk());

  RevocationList list;
  list.revoked.push_back({serial_a, 1700000000});
  list.number = 2;
  absl::StatusOr<std::string> crl = CreateRevocationList(ca, list, 7);
  ASSERT_THAT(crl, IsOk());
  absl::StatusOr<RevocationList> read = ReadRevocationList(*crl, ca.certificate_pem);
  ASSERT_THAT(read, IsOk());
  ASSERT_EQ(read->revoked.size(), 1u);
  EXPECT_EQ(read->revoked[0].serial_hex, serial_a);
  EXPECT_EQ(read->revoked[0].revoked_unix, 1700000000);
  EXPECT_EQ(read->number, 2);
  EXPECT_NEAR(read->next_update_unix - read->this_update_unix, 7 * 86400, 1);

  EXPECT_THAT(VerifyCertificateChain(a, ca.certificate_pem, *crl),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("revoked")));
  EXPECT_THAT(VerifyCertificateChain(b, ca.certificate_pem, *crl), IsOk());
  // A CRL signed by another CA is not this CA's list.
  EXPECT_THAT(ReadRevocationList(*crl, other.certificate_pem),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("not signed by this CA")));
  EXPECT_THAT(ReadRevocationList("nope", ca.certificate_pem),
              StatusIs(absl::StatusCode::kInvalidArgument));
  list.revoked.push_back({"xyz", 0});
  EXPECT_THAT(CreateRevocationList(ca, list, 7),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not hex")));
}

TEST(PkiTest, ExpiredCertificatesDoNotVerify) {
  KeyAndCertificate ca = NewCa();
  absl::StatusOr<std::string> expired = IssueExpiredCertificate(ca, NewKey(), Client("old"));
  ASSERT_THAT(expired, IsOk());
  EXPECT_THAT(VerifyCertificateChain(*expired, ca.certificate_pem),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("expired")));
}

}  // namespace
}  // namespace tessera::crypto
