// Identities over a PKI issued by scripts/make_pki.sh, the one demos and deployments use.
#include "privacy/secagg/identity.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/base/file.h"
#include "core/base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::secagg {
namespace {

using ::testing::HasSubstr;

struct Pki {
  std::string dir;
  std::string Read(const std::string& file) const {
    absl::StatusOr<std::string> s = ReadFileToString(dir + "/" + file);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : "";
  }
};

Pki MakePki(const std::string& name) {
  // Per process: ctest runs each test of this file as its own process, in parallel.
  const std::string dir =
      ::testing::TempDir() + "/identity_" + name + "_" + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  const std::string cmd = std::string("bash ") + TESSERA_SOURCE_DIR +
                          "/scripts/make_pki.sh " + dir + " site-a site-b >/dev/null";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  return Pki{dir};
}

class IdentityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new Pki(MakePki("main"));
    other_ = new Pki(MakePki("other"));
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(pki_->dir);
    std::filesystem::remove_all(other_->dir);
    delete pki_;
    delete other_;
  }
  static Pki* pki_;
  static Pki* other_;
};
Pki* IdentityTest::pki_ = nullptr;
Pki* IdentityTest::other_ = nullptr;

TEST_F(IdentityTest, CertificateSignerVerifiesUnderTheCa) {
  absl::StatusOr<Signer> a = CertificateSigner(pki_->Read("site-a.pem"), pki_->Read("site-a.key"));
  ASSERT_THAT(a, IsOk());
  absl::StatusOr<std::string> sig = a->sign("payload");
  ASSERT_THAT(sig, IsOk());
  const VerifyFn verify = CertificateVerifier(pki_->Read("ca.pem"));
  EXPECT_THAT(verify(0, a->identity, "payload", *sig), IsOk());
  EXPECT_THAT(verify(0, a->identity, "payloaD", *sig),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST_F(IdentityTest, RejectsKeyOfAnotherCertificate) {
  EXPECT_THAT(CertificateSigner(pki_->Read("site-a.pem"), pki_->Read("site-b.key")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not match")));
}

TEST_F(IdentityTest, ChecksExpectedNameRoleAndCa) {
  auto a = CertificateSigner(pki_->Read("site-a.pem"), pki_->Read("site-a.key"));
  ASSERT_THAT(a, IsOk());
  const std::string sig = *a->sign("m");
  const VerifyFn named = CertificateVerifier(pki_->Read("ca.pem"), [](uint32_t i) {
    return i == 0 ? std::string("site-a") : std::string("site-b");
  });
  EXPECT_THAT(named(0, a->identity, "m", sig), IsOk());
  EXPECT_THAT(named(1, a->identity, "m", sig),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("\"site-b\"")));

  // A certificate from another federation's CA.
  const VerifyFn other_ca = CertificateVerifier(other_->Read("ca.pem"));
  EXPECT_THAT(other_ca(0, a->identity, "m", sig),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("chain")));

  // The operator's certificate is from the right CA but has the wrong role.
  auto op = CertificateSigner(pki_->Read("operator.pem"), pki_->Read("operator.key"));
  ASSERT_THAT(op, IsOk());
  EXPECT_THAT(CertificateVerifier(pki_->Read("ca.pem"))(0, op->identity, "m", *op->sign("m")),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("role")));
}

TEST_F(IdentityTest, CertificateVerifierRefusesRawKeysAndHugeCertificates) {
  auto e = EphemeralSigner();
  ASSERT_THAT(e, IsOk());
  const VerifyFn verify = CertificateVerifier(pki_->Read("ca.pem"));
  EXPECT_THAT(verify(2, e->identity, "m", *e->sign("m")),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("no certificate")));
  v1::Identity huge;
  huge.set_certificate_pem(std::string(kMaxIdentityCertificateBytes + 1, 'x'));
  EXPECT_THAT(verify(2, huge, "m", "s"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(IdentityTest, InsecureVerifierChecksEd25519Signatures) {
  auto e = EphemeralSigner();
  ASSERT_THAT(e, IsOk());
  const VerifyFn verify = InsecureVerifier();
  const std::string sig = *e->sign("m");
  EXPECT_THAT(verify(0, e->identity, "m", sig), IsOk());
  EXPECT_THAT(verify(0, e->identity, "n", sig), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(verify(0, v1::Identity(), "m", sig),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("no identity")));
}

}  // namespace
}  // namespace tessera::secagg
