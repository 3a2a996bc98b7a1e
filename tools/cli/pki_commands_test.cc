// File: pki_commands_test.cc
// `tessera pki issue --csr` against the CA folder's record of issued certificates: a name the
// CA already issued is refused (whatever the output path), and the organization is the
// operator's --org, never the one the partner's request claims.
#include "tools/cli/pki_commands.h"

#include <filesystem>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "core/base/file.h"
#include "core/base/testing/status_matchers.h"
#include "privacy/crypto/certificate.h"
#include "privacy/crypto/pki.h"
#include "privacy/crypto/random.h"

namespace tessera::cli {
namespace {

using ::testing::HasSubstr;

namespace fs = std::filesystem;

class PkiIssueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / absl::StrCat("tessera-pki-", crypto::RandomHexId(6));
    ca_.dir = (root_ / "ca").string();
    ca_.organization = "Example Health Network";
    ::testing::internal::CaptureStdout();
    ASSERT_EQ(PkiInit(ca_), 0);
    ca_.organization.clear();
    ca_.role = "client";
  }
  void TearDown() override {
    ::testing::internal::GetCapturedStdout();
    fs::remove_all(root_);
  }

  // A partner's CSR for CN `name`, O `org`, made with its own key; returns the .csr path.
  std::string PartnerCsr(const std::string& name, const std::string& org) {
    const std::string key = crypto::GeneratePrivateKey().value();
    const std::string csr = crypto::CreateCertificateRequest(key, name, org).value();
    const std::string path = (root_ / absl::StrCat(name, "-", crypto::RandomHexId(4), ".csr"))
                                 .string();
    EXPECT_THAT(WriteFileAtomically(path, csr, 0644, false), IsOk());
    return path;
  }
  // `tessera pki issue --csr CSR --out OUT [--org ORG]`; the exit code and stderr.
  int IssueFromCsr(const std::string& csr, const std::string& out, const std::string& org,
                   std::string* err, bool force = false) {
    PkiArgs a = ca_;
    a.csr = csr;
    a.out = (root_ / out).string();
    a.organization = org;
    a.force = force;
    ::testing::internal::CaptureStderr();
    const int rc = PkiIssue(a);
    *err = ::testing::internal::GetCapturedStderr();
    return rc;
  }
  crypto::CertificateIdentity Issued(const std::string& out, const std::string& name) {
    return crypto::ParseCertificateIdentity(
               ReadFileToString((root_ / out / (name + ".pem")).string()).value())
        .value();
  }

  fs::path root_;
  PkiArgs ca_;
};

TEST_F(PkiIssueTest, RefusesANameTheCaAlreadyIssuedWhateverTheOutputPath) {
  PkiArgs a = ca_;
  a.name = "hospital-a";
  a.out = (root_ / "hospital-a").string();
  ASSERT_EQ(PkiIssue(a), 0);

  // Another partner asks for hospital-a's name; a fresh --out does not get around the record.
  std::string err;
  EXPECT_EQ(IssueFromCsr(PartnerCsr("hospital-a", "Hospital A"), "elsewhere", "Mallory Inc",
                         &err),
            1);
  EXPECT_THAT(err, HasSubstr("the CA already issued \"hospital-a\""));
  EXPECT_FALSE(fs::exists(root_ / "elsewhere" / "hospital-a.pem"));
  // Case does not make it another name.
  EXPECT_EQ(IssueFromCsr(PartnerCsr("Hospital-A", "Hospital A"), "elsewhere", "Mallory Inc",
                         &err),
            1);
  EXPECT_THAT(err, HasSubstr("already issued"));
  // Nor does the key-generating path.
  a.out = (root_ / "second").string();
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(PkiIssue(a), 1);
  EXPECT_THAT(::testing::internal::GetCapturedStderr(), HasSubstr("already issued"));

  // Once revoked, the name is free again; --force rotates a live one knowingly.
  PkiArgs revoke = ca_;
  revoke.name = "hospital-a";
  ASSERT_EQ(PkiRevoke(revoke), 0);
  EXPECT_EQ(IssueFromCsr(PartnerCsr("hospital-a", "Hospital A"), "renewed", "Hospital A", &err),
            0)
      << err;
  EXPECT_EQ(IssueFromCsr(PartnerCsr("hospital-a", "Hospital A"), "rotated", "Hospital A", &err,
                         /*force=*/true),
            0)
      << err;
}

TEST_F(PkiIssueTest, OrganizationComesFromTheOperatorNotTheRequest) {
  const std::string csr = PartnerCsr("bank-b", "Hospital A");  // claims another member's O
  std::string err;
  EXPECT_EQ(IssueFromCsr(csr, "bank-b", "", &err), 1);
  EXPECT_THAT(err, HasSubstr("--org is required with --csr"));
  EXPECT_THAT(err, HasSubstr("\"Hospital A\""));
  EXPECT_FALSE(fs::exists(root_ / "bank-b" / "bank-b.pem"));

  ASSERT_EQ(IssueFromCsr(csr, "bank-b", "Bank B", &err), 0) << err;
  const crypto::CertificateIdentity id = Issued("bank-b", "bank-b");
  EXPECT_EQ(id.common_name, "bank-b");
  EXPECT_EQ(id.organization, "Bank B");
  EXPECT_EQ(id.organizational_unit, "client");
}

}  // namespace
}  // namespace tessera::cli
