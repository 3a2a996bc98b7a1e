// Identities over a PKI issued by scripts/make_pki.sh, the one demos and deployments use.
#include "privacy/secagg/identity.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "core/base/file.h"
#include "privacy/crypto/certificate.h"
#include "privacy/crypto/pki.h"
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

// A verifier over the CA `ca_pem` with no CRL.
VerifyFn Verifier(const std::string& ca_pem, ExpectedName expected = nullptr) {
  absl::StatusOr<TrustSource> trust = FixedTrustSource(ca_pem, "");
  EXPECT_THAT(trust, IsOk());
  return CertificateVerifier(*std::move(trust), std::move(expected));
}

// A CRL signed by the PKI's CA revoking the certificates in `revoked_pems`.
std::string Crl(const Pki& pki, const std::vector<std::string>& revoked_pems) {
  crypto::RevocationList list;
  list.number = static_cast<int64_t>(revoked_pems.size()) + 1;
  for (const std::string& pem : revoked_pems) {
    absl::StatusOr<crypto::CertificateIdentity> id = crypto::ParseCertificateIdentity(pem);
    EXPECT_THAT(id, IsOk());
    list.revoked.push_back({id->serial_hex, 1700000000});
  }
  absl::StatusOr<std::string> crl = crypto::CreateRevocationList(
      {pki.Read("ca.key"), pki.Read("ca.pem")}, list, /*days=*/7);
  EXPECT_THAT(crl, IsOk());
  return crl.ok() ? *crl : "";
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
  const VerifyFn verify = Verifier(pki_->Read("ca.pem"));
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
  const VerifyFn named = Verifier(pki_->Read("ca.pem"), [](uint32_t i) {
    return i == 0 ? std::string("site-a") : std::string("site-b");
  });
  EXPECT_THAT(named(0, a->identity, "m", sig), IsOk());
  EXPECT_THAT(named(1, a->identity, "m", sig),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("\"site-b\"")));

  // A certificate from another federation's CA.
  const VerifyFn other_ca = Verifier(other_->Read("ca.pem"));
  EXPECT_THAT(other_ca(0, a->identity, "m", sig),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("chain")));

  // The operator's certificate is from the right CA but has the wrong role.
  auto op = CertificateSigner(pki_->Read("operator.pem"), pki_->Read("operator.key"));
  ASSERT_THAT(op, IsOk());
  EXPECT_THAT(Verifier(pki_->Read("ca.pem"))(0, op->identity, "m", *op->sign("m")),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("role")));
}

TEST_F(IdentityTest, CertificateVerifierRefusesRawKeysAndHugeCertificates) {
  auto e = EphemeralSigner();
  ASSERT_THAT(e, IsOk());
  const VerifyFn verify = Verifier(pki_->Read("ca.pem"));
  EXPECT_THAT(verify(2, e->identity, "m", *e->sign("m")),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("no certificate")));
  v1::Identity huge;
  huge.set_certificate_pem(std::string(kMaxIdentityCertificateBytes + 1, 'x'));
  EXPECT_THAT(verify(2, huge, "m", "s"), StatusIs(absl::StatusCode::kInvalidArgument));
}

// Peers check roster certificates against the CRL, not only the CA.
TEST_F(IdentityTest, RevokedPeerIsRefused) {
  auto a = CertificateSigner(pki_->Read("site-a.pem"), pki_->Read("site-a.key"));
  auto b = CertificateSigner(pki_->Read("site-b.pem"), pki_->Read("site-b.key"));
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  absl::StatusOr<TrustSource> trust =
      FixedTrustSource(pki_->Read("ca.pem"), Crl(*pki_, {pki_->Read("site-b.pem")}));
  ASSERT_THAT(trust, IsOk());
  const VerifyFn verify = CertificateVerifier(*trust);
  EXPECT_THAT(verify(0, a->identity, "m", *a->sign("m")), IsOk());
  EXPECT_THAT(verify(1, b->identity, "m", *b->sign("m")),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("revoked")));
}

// A CRL published while the verifier lives (`tessera pki revoke`) applies to the next
// verification, also for a certificate that verified (and was cached) before.
TEST_F(IdentityTest, FileTrustSourceAppliesANewCrl) {
  const std::string dir = ::testing::TempDir() + "/identity_crl_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  ASSERT_THAT(WriteFileAtomically(dir + "/ca.pem", pki_->Read("ca.pem"), 0644, true), IsOk());
  ASSERT_THAT(WriteFileAtomically(dir + "/crl.pem", Crl(*pki_, {}), 0644, true), IsOk());
  const VerifyFn verify = CertificateVerifier(FileTrustSource(dir + "/ca.pem", dir + "/crl.pem"));
  auto b = CertificateSigner(pki_->Read("site-b.pem"), pki_->Read("site-b.key"));
  ASSERT_THAT(b, IsOk());
  EXPECT_THAT(verify(1, b->identity, "m", *b->sign("m")), IsOk());
  EXPECT_THAT(verify(1, b->identity, "m", *b->sign("m")), IsOk());  // cached
  ASSERT_THAT(WriteFileAtomically(dir + "/crl.pem", Crl(*pki_, {pki_->Read("site-b.pem")}), 0644,
                                  true),
              IsOk());
  EXPECT_THAT(verify(1, b->identity, "m", *b->sign("m")),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("revoked")));
  // A CRL that cannot be read fails closed.
  std::filesystem::remove(dir + "/crl.pem");
  EXPECT_THAT(verify(1, b->identity, "m", *b->sign("m")),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("crl.pem")));
  std::filesystem::remove_all(dir);
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
