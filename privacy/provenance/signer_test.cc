#include "privacy/provenance/signer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "core/base/file.h"
#include "core/base/testing/status_matchers.h"
#include "privacy/crypto/certificate.h"
#include "privacy/crypto/pki.h"
#include "privacy/crypto/signature.h"
#include "privacy/crypto/testing/ed25519_certificate.h"
#include "privacy/crypto/testing/test_pki.h"

namespace tessera::provenance {
namespace {

using ::testing::HasSubstr;

crypto::IssueOptions CoordinatorOptions() {
  crypto::IssueOptions o;
  o.role = crypto::CertificateRole::kCoordinator;
  o.common_name = "coordinator-1";
  o.subject_alt_names = {"DNS:localhost"};
  return o;
}

class SignerTest : public testing::Test {
 protected:
  void SetUp() override {
    ca_ = crypto::CreateCertificateAuthority("Acme Health", 30).value();
    key_pem_ = crypto::GeneratePrivateKey().value();
    cert_pem_ = crypto::IssueCertificate(ca_, key_pem_, CoordinatorOptions()).value();
  }

  crypto::KeyAndCertificate ca_;
  std::string key_pem_;   // P-256
  std::string cert_pem_;  // issued by ca_
};

TEST_F(SignerTest, P256CertificateSignsAndVerifiesAgainstTheCa) {
  absl::StatusOr<ProvenanceSigner> signer = ProvenanceSigner::FromPem(key_pem_, cert_pem_);
  ASSERT_THAT(signer, IsOk());
  absl::StatusOr<Signature> sig = signer->Sign(R"({"bom":1})");
  ASSERT_THAT(sig, IsOk());
  EXPECT_EQ(sig->algorithm, "ecdsa-p256-sha256");
  EXPECT_EQ(sig->signer, cert_pem_);
  absl::StatusOr<SignerIdentity> who = VerifySignature(R"({"bom":1})", *sig, ca_.certificate_pem);
  ASSERT_THAT(who, IsOk());
  EXPECT_TRUE(who->certified);
  EXPECT_EQ(who->common_name, "coordinator-1");
  EXPECT_EQ(who->organization, "Acme Health");
  EXPECT_EQ(who->fingerprint_sha256_hex,
            crypto::ParseCertificateIdentity(cert_pem_).value().fingerprint_sha256_hex);
  // Without a CA the signature still verifies against the embedded certificate.
  absl::StatusOr<SignerIdentity> uncertified = VerifySignature(R"({"bom":1})", *sig, "");
  ASSERT_THAT(uncertified, IsOk());
  EXPECT_FALSE(uncertified->certified);
  EXPECT_EQ(uncertified->common_name, "coordinator-1");
}

TEST_F(SignerTest, Ed25519CertificateSignsAndVerifiesAgainstTheCa) {
  const std::string ed_key = crypto::GenerateEd25519PrivateKeyPem().value();
  const std::string ed_cert =
      crypto::IssueEd25519Certificate(ca_, ed_key, CoordinatorOptions()).value();
  absl::StatusOr<ProvenanceSigner> signer = ProvenanceSigner::FromPem(ed_key, ed_cert);
  ASSERT_THAT(signer, IsOk());
  absl::StatusOr<Signature> sig = signer->Sign("payload");
  ASSERT_THAT(sig, IsOk());
  EXPECT_EQ(sig->algorithm, "ed25519");
  EXPECT_EQ(sig->value.size(), 88u);  // 64 bytes, padded base64
  absl::StatusOr<SignerIdentity> who = VerifySignature("payload", *sig, ca_.certificate_pem);
  ASSERT_THAT(who, IsOk());
  EXPECT_TRUE(who->certified);
  EXPECT_EQ(who->common_name, "coordinator-1");
  EXPECT_THAT(VerifySignature("payload2", *sig, ca_.certificate_pem),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("signature does not verify")));
}

TEST_F(SignerTest, ForeignCaOrExpiredCertificateIsPermissionDenied) {
  const ProvenanceSigner signer = ProvenanceSigner::FromPem(key_pem_, cert_pem_).value();
  const Signature sig = signer.Sign("p").value();
  const crypto::KeyAndCertificate foreign =
      crypto::CreateCertificateAuthority("Mallory Inc", 30).value();
  EXPECT_THAT(VerifySignature("p", sig, foreign.certificate_pem),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("not trusted")));

  const std::string expired =
      crypto::IssueExpiredCertificate(ca_, key_pem_, CoordinatorOptions()).value();
  const ProvenanceSigner old = ProvenanceSigner::FromPem(key_pem_, expired).value();
  EXPECT_THAT(VerifySignature("p", old.Sign("p").value(), ca_.certificate_pem),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("expired")));
}

TEST_F(SignerTest, TamperedPayloadSignatureOrSignerFails) {
  const ProvenanceSigner signer = ProvenanceSigner::FromPem(key_pem_, cert_pem_).value();
  const Signature sig = signer.Sign(R"({"weights_sha256":"ab"})").value();
  const auto invalid = StatusIs(absl::StatusCode::kInvalidArgument,
                                HasSubstr("signature does not verify"));
  EXPECT_THAT(VerifySignature(R"({"weights_sha256":"ac"})", sig, ca_.certificate_pem), invalid);
  Signature bad = sig;
  bad.value[5] = bad.value[5] == 'A' ? 'B' : 'A';
  EXPECT_THAT(VerifySignature(R"({"weights_sha256":"ab"})", bad, ca_.certificate_pem), invalid);
  bad = sig;
  bad.value = "not base64!";
  EXPECT_THAT(VerifySignature(R"({"weights_sha256":"ab"})", bad, ""), invalid);
  bad = sig;
  bad.algorithm = "ed25519";  // does not match the P-256 key
  EXPECT_THAT(VerifySignature(R"({"weights_sha256":"ab"})", bad, ""), invalid);
  bad.algorithm = "rsa-pss";
  EXPECT_THAT(VerifySignature(R"({"weights_sha256":"ab"})", bad, ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown algorithm")));
  // Another certificate from the same CA: chains fine, but did not make the signature.
  const std::string other_key = crypto::GeneratePrivateKey().value();
  bad = sig;
  bad.signer = crypto::IssueCertificate(ca_, other_key, CoordinatorOptions()).value();
  EXPECT_THAT(VerifySignature(R"({"weights_sha256":"ab"})", bad, ca_.certificate_pem), invalid);
  bad.signer = "garbage";
  EXPECT_THAT(VerifySignature(R"({"weights_sha256":"ab"})", bad, ""), invalid);
}

TEST_F(SignerTest, FromPemRejectsKeysThatDoNotBelongOrAreUnsupported) {
  const std::string other_key = crypto::GeneratePrivateKey().value();
  EXPECT_THAT(ProvenanceSigner::FromPem(other_key, cert_pem_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not match")));
  EXPECT_THAT(ProvenanceSigner::FromPem("garbage", cert_pem_),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ProvenanceSigner::FromPem(key_pem_, "garbage"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

class LoadOrCreateTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = testing::TempDir() + "signer_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(LoadOrCreateTest, CreatesAKeyWithMode0600ThenLoadsIt) {
  const std::string path = dir_ + "/provenance_key.pem";
  absl::StatusOr<ProvenanceSigner> first = ProvenanceSigner::LoadOrCreateEd25519(path);
  ASSERT_THAT(first, IsOk());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  absl::StatusOr<ProvenanceSigner> second = ProvenanceSigner::LoadOrCreateEd25519(path);
  ASSERT_THAT(second, IsOk());
  const Signature a = first->Sign("log head").value();
  const Signature b = second->Sign("log head").value();
  EXPECT_EQ(a.algorithm, "ed25519");
  EXPECT_EQ(a.signer, b.signer);
  EXPECT_EQ(a.value, b.value);  // same key, deterministic Ed25519
  EXPECT_EQ(a.signer.rfind("-----BEGIN PUBLIC KEY-----", 0), 0u);

  absl::StatusOr<SignerIdentity> who = VerifySignature("log head", a, "");
  ASSERT_THAT(who, IsOk());
  EXPECT_FALSE(who->certified);
  EXPECT_EQ(who->common_name, "");
  EXPECT_EQ(who->fingerprint_sha256_hex,
            crypto::PublicKeyFingerprintSha256Hex(a.signer).value());
  EXPECT_THAT(VerifySignature("log head!", a, ""),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // A bare key is never vouched for by a CA.
  const crypto::KeyAndCertificate ca = crypto::CreateCertificateAuthority("Acme", 30).value();
  EXPECT_THAT(VerifySignature("log head", a, ca.certificate_pem),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("bare public key")));
}

TEST_F(LoadOrCreateTest, RefusesAFileWithoutAnEd25519KeyAndReportsIoErrors) {
  const std::string path = dir_ + "/p256.pem";
  ASSERT_THAT(WriteFileAtomically(path, crypto::GeneratePrivateKey().value(), 0600, false),
              IsOk());
  EXPECT_THAT(ProvenanceSigner::LoadOrCreateEd25519(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(path)));
  const std::string missing_dir = dir_ + "/no/such/dir/key.pem";
  absl::StatusOr<ProvenanceSigner> s = ProvenanceSigner::LoadOrCreateEd25519(missing_dir);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr(dir_ + "/no/such/dir"));
}

}  // namespace
}  // namespace tessera::provenance
