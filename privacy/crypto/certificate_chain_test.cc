#include "privacy/crypto/certificate_chain.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>

#include "core/base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::crypto {
namespace {

using ::tessera::IsOk;
using ::tessera::StatusIs;
using ::testing::HasSubstr;

struct Deleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter>;
using CertPtr = std::unique_ptr<X509, Deleter>;

KeyPtr NewKey() { return KeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")); }

// A certificate for `key` named `cn`, signed by `issuer_key` under `issuer` (self-signed
// when issuer is null), valid from now + `not_before_s` for `lifetime_s`.
CertPtr Issue(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, bool ca,
              long not_before_s = -60, long lifetime_s = 3600) {
  CertPtr cert(X509_new());
  EXPECT_EQ(X509_set_version(cert.get(), 2), 1);
  EXPECT_EQ(ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), ca ? 1 : 2), 1);
  EXPECT_NE(X509_gmtime_adj(X509_getm_notBefore(cert.get()), not_before_s), nullptr);
  EXPECT_NE(X509_gmtime_adj(X509_getm_notAfter(cert.get()), not_before_s + lifetime_s),
            nullptr);
  X509_NAME* name = X509_get_subject_name(cert.get());
  EXPECT_EQ(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                       reinterpret_cast<const unsigned char*>(cn), -1, -1,
                                       0),
            1);
  EXPECT_EQ(X509_set_issuer_name(cert.get(),
                                 issuer ? X509_get_subject_name(issuer) : name),
            1);
  EXPECT_EQ(X509_set_pubkey(cert.get(), key), 1);
  if (ca) {
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, cert.get(), cert.get(), nullptr, nullptr, 0);
    X509_EXTENSION* ext =
        X509V3_EXT_conf_nid(nullptr, &v3, NID_basic_constraints, "critical,CA:TRUE");
    EXPECT_NE(ext, nullptr);
    EXPECT_EQ(X509_add_ext(cert.get(), ext, -1), 1);
    X509_EXTENSION_free(ext);
  }
  EXPECT_GT(X509_sign(cert.get(), issuer_key, EVP_sha256()), 0);
  return cert;
}

std::string Pem(X509* cert) {
  std::unique_ptr<BIO, Deleter> bio(BIO_new(BIO_s_mem()));
  EXPECT_EQ(PEM_write_bio_X509(bio.get(), cert), 1);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

class CertificateChainTest : public ::testing::Test {
 protected:
  CertificateChainTest()
      : ca_key_(NewKey()),
        ca_(Issue(ca_key_.get(), "tessera-ca", nullptr, ca_key_.get(), true)),
        leaf_key_(NewKey()),
        leaf_(Issue(leaf_key_.get(), "hospital-a", ca_.get(), ca_key_.get(), false)) {}
  KeyPtr ca_key_;
  CertPtr ca_;
  KeyPtr leaf_key_;
  CertPtr leaf_;
};

TEST_F(CertificateChainTest, AcceptsLeafIssuedByTrustedCa) {
  EXPECT_THAT(VerifyCertificateChain(Pem(leaf_.get()), Pem(ca_.get())), IsOk());
}

TEST_F(CertificateChainTest, AcceptsCaAnywhereInBundle) {
  KeyPtr other_key = NewKey();
  CertPtr other = Issue(other_key.get(), "other-ca", nullptr, other_key.get(), true);
  EXPECT_THAT(VerifyCertificateChain(Pem(leaf_.get()), Pem(other.get()) + Pem(ca_.get())),
              IsOk());
}

TEST_F(CertificateChainTest, RejectsLeafOfAnotherCa) {
  KeyPtr other_key = NewKey();
  CertPtr other = Issue(other_key.get(), "tessera-ca", nullptr, other_key.get(), true);
  EXPECT_THAT(VerifyCertificateChain(Pem(leaf_.get()), Pem(other.get())),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("does not verify")));
}

TEST_F(CertificateChainTest, RejectsSelfSignedLeaf) {
  KeyPtr key = NewKey();
  CertPtr self = Issue(key.get(), "hospital-a", nullptr, key.get(), false);
  EXPECT_THAT(VerifyCertificateChain(Pem(self.get()), Pem(ca_.get())),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST_F(CertificateChainTest, RejectsExpiredLeaf) {
  KeyPtr key = NewKey();
  CertPtr expired = Issue(key.get(), "old", ca_.get(), ca_key_.get(), false, -7200, 3600);
  EXPECT_THAT(VerifyCertificateChain(Pem(expired.get()), Pem(ca_.get())),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("expired")));
}

TEST_F(CertificateChainTest, RejectsMissingCertificates) {
  EXPECT_THAT(VerifyCertificateChain("", Pem(ca_.get())),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(VerifyCertificateChain(Pem(leaf_.get()), "not a pem"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace tessera::crypto
