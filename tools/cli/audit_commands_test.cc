// File: audit_commands_test.cc
// `tessera audit verify` on an exported log (a file), intact and tampered with: an edited,
// removed or reordered line, entries cut off the end, no head line, a line that is not JSON.
#include "tools/cli/audit_commands.h"

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "core/base/file.h"
#include "core/base/testing/status_matchers.h"
#include "core/governance/audit_json.h"
#include "privacy/crypto/pki.h"
#include "privacy/crypto/random.h"
#include "privacy/provenance/audit_chain.h"
#include "privacy/provenance/signer.h"
#include "tools/cli/commands.h"

namespace tessera::cli {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// A federation CA and a coordinator certificate signed by it.
struct TestPki {
  crypto::KeyAndCertificate ca, coordinator;
};

TestPki MakePki(absl::string_view org) {
  TestPki pki;
  absl::StatusOr<crypto::KeyAndCertificate> ca = crypto::CreateCertificateAuthority(org, 30);
  EXPECT_THAT(ca, IsOk());
  pki.ca = *ca;
  absl::StatusOr<std::string> key = crypto::GeneratePrivateKey();
  EXPECT_THAT(key, IsOk());
  crypto::IssueOptions o;
  o.role = crypto::CertificateRole::kCoordinator;
  o.common_name = "coordinator";
  o.subject_alt_names = {"DNS:localhost"};
  absl::StatusOr<std::string> cert = crypto::IssueCertificate(pki.ca, *key, o);
  EXPECT_THAT(cert, IsOk());
  pki.coordinator = {*key, *cert};
  return pki;
}

class AuditVerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = MakePki("Acme");
    absl::StatusOr<provenance::ProvenanceSigner> signer = provenance::ProvenanceSigner::FromPem(
        pki_.coordinator.key_pem, pki_.coordinator.certificate_pem);
    ASSERT_THAT(signer, IsOk());
    const char* actions[] = {"run.created", "run.started", "round.committed", "round.committed",
                             "run.completed"};
    std::vector<wire::v1::AuditEntry> entries;
    for (int i = 0; i < 5; ++i) {
      wire::v1::AuditEntry e;
      e.set_unix_ms(1700000000000 + i);
      e.set_actor(i < 2 ? "operator:alice" : "coordinator");
      e.set_action(actions[i]);
      e.set_run_id("run-1");
      e.set_round(i == 2 ? 1 : i == 3 ? 2 : 0);
      (*e.mutable_details())["n"] = absl::StrCat(i);
      provenance::SealAuditEntry(entries.empty() ? nullptr : &entries.back(), e);
      entries.push_back(e);
    }
    absl::StatusOr<wire::v1::AuditHead> head =
        provenance::SignAuditHead(&entries.back(), 1700000000100, *signer);
    ASSERT_THAT(head, IsOk());
    for (const auto& e : entries) lines_.push_back(governance::AuditEntryJson(e, true));
    head_line_ = governance::AuditHeadJson(*head);
    path_ = (std::filesystem::temp_directory_path() /
             absl::StrCat("tessera-audit-", crypto::RandomHexId(6), ".jsonl"))
                .string();
  }
  void TearDown() override { std::filesystem::remove(path_); }

  // Writes `entry_lines` and, when `with_head`, the head line; then verifies the file.
  AuditLogReport Verify(const std::vector<std::string>& entry_lines, bool with_head = true,
                        absl::string_view ca_pem = "") {
    std::string text = absl::StrJoin(entry_lines, "\n");
    if (with_head) absl::StrAppend(&text, "\n", head_line_);
    absl::StrAppend(&text, "\n");
    EXPECT_THAT(WriteFileAtomically(path_, text, 0644, true), IsOk());
    absl::StatusOr<AuditLogReport> report =
        VerifyAuditLogFile(path_, ca_pem.empty() ? pki_.ca.certificate_pem : ca_pem);
    EXPECT_THAT(report, IsOk());
    return report.ok() ? *report : AuditLogReport{};
  }

  TestPki pki_;
  std::vector<std::string> lines_;
  std::string head_line_;
  std::string path_;
};

TEST_F(AuditVerifyTest, IntactLogVerifiesWithTheSigner) {
  const AuditLogReport r = Verify(lines_);
  EXPECT_TRUE(r.ok()) << AuditReportText(r);
  EXPECT_EQ(r.entries, 5u);
  EXPECT_TRUE(r.has_head);
  EXPECT_EQ(r.head_seq, 5u);
  EXPECT_THAT(AuditReportText(r),
              HasSubstr("audit log OK: 5 entries, head signed by CN=coordinator O=Acme"));
  EXPECT_THAT(r.warnings, IsEmpty());
}

TEST_F(AuditVerifyTest, EditedLineFails) {
  std::vector<std::string> lines = lines_;
  lines[2] = absl::StrReplaceAll(lines[2], {{"\"coordinator\"", "\"operator:mallory\""}});
  ASSERT_NE(lines[2], lines_[2]);
  const AuditLogReport r = Verify(lines);
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(AuditReportText(r), AllOf(HasSubstr("audit log FAILED"), HasSubstr("3")));
}

TEST_F(AuditVerifyTest, RemovedLineFails) {
  std::vector<std::string> lines = lines_;
  lines.erase(lines.begin() + 2);
  const AuditLogReport r = Verify(lines);
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(AuditReportText(r), HasSubstr("audit log FAILED"));
}

TEST_F(AuditVerifyTest, ReorderedLinesFail) {
  std::vector<std::string> lines = lines_;
  std::swap(lines[1], lines[2]);
  EXPECT_FALSE(Verify(lines).ok());
}

TEST_F(AuditVerifyTest, EntriesCutOffTheEndShowAgainstTheHead) {
  std::vector<std::string> lines = lines_;
  lines.pop_back();
  const AuditLogReport r = Verify(lines);
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(r.problems, Contains(HasSubstr("head")));
}

TEST_F(AuditVerifyTest, WithoutTheSignedHeadTheLogFails) {
  const AuditLogReport r = Verify(lines_, /*with_head=*/false);
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(r.has_head);
  EXPECT_THAT(r.problems, Contains(HasSubstr("no signed head line")));
  // Without the head, a log cut short would look intact: it fails the same way.
  std::vector<std::string> lines = lines_;
  lines.pop_back();
  EXPECT_THAT(Verify(lines, false).problems, Contains(HasSubstr("no signed head line")));
}

TEST_F(AuditVerifyTest, ExitCodeIsUnverifiedWithoutCaAndFailedWithoutHead) {
  const std::string ca_path = path_ + ".ca.pem";
  ASSERT_THAT(WriteFileAtomically(ca_path, pki_.ca.certificate_pem, 0644, true), IsOk());
  Verify(lines_);  // writes the intact log with its head
  ConnectionOptions with_ca;
  with_ca.ca_cert_path = ca_path;
  ::testing::internal::CaptureStdout();
  EXPECT_EQ(VerifyAudit(with_ca, {}, path_), 0);
  EXPECT_THAT(::testing::internal::GetCapturedStdout(), HasSubstr("audit log OK: 5 entries"));
  ::testing::internal::CaptureStdout();
  EXPECT_EQ(VerifyAudit(ConnectionOptions{}, {}, path_), 3);
  EXPECT_THAT(::testing::internal::GetCapturedStdout(),
              AllOf(HasSubstr("audit log UNVERIFIED: 5 entries"), HasSubstr("no --ca given")));
  ::testing::internal::CaptureStdout();
  EXPECT_EQ(VerifyAudit(ConnectionOptions{}, {.json = true}, path_), 3);
  EXPECT_THAT(::testing::internal::GetCapturedStdout(),
              AllOf(HasSubstr("\"ok\":false"), HasSubstr("\"result\":\"unverified\"")));

  Verify(lines_, /*with_head=*/false);  // the signed head removed
  ::testing::internal::CaptureStdout();
  EXPECT_EQ(VerifyAudit(with_ca, {}, path_), 1);
  EXPECT_THAT(::testing::internal::GetCapturedStdout(), HasSubstr("no signed head line"));
  std::filesystem::remove(ca_path);
}

TEST_F(AuditVerifyTest, UnparsableLineIsNamedByItsNumber) {
  std::vector<std::string> lines = lines_;
  lines[1] = "{\"seq\": \"not a number\"";
  const AuditLogReport r = Verify(lines);
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(r.problems, Contains(HasSubstr("line 2:")));
}

TEST_F(AuditVerifyTest, LineAfterTheHeadIsAProblem) {
  std::vector<std::string> lines = lines_;
  const std::string last = lines.back();
  lines.pop_back();
  lines.push_back(head_line_);
  lines.push_back(last);
  const AuditLogReport r = Verify(lines, false);
  EXPECT_THAT(r.problems, Contains(HasSubstr("line 6: comes after the head line")));
}

TEST_F(AuditVerifyTest, HeadSignedOutsideTheFederationFails) {
  const TestPki other = MakePki("Other");
  const AuditLogReport r = Verify(lines_, true, other.ca.certificate_pem);
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(r.problems, Contains(HasSubstr("head")));
}

TEST_F(AuditVerifyTest, JsonNamesTheProblems) {
  std::vector<std::string> lines = lines_;
  lines.erase(lines.begin() + 1);
  const AuditLogReport r = Verify(lines);
  EXPECT_THAT(AuditReportJson(r), AllOf(HasSubstr("\"ok\":false"), HasSubstr("\"problems\":[")));
  EXPECT_THAT(AuditReportJson(Verify(lines_)), HasSubstr("\"ok\":true"));
}

TEST(AuditVerifyFileTest, MissingFileIsNotFound) {
  EXPECT_THAT(VerifyAuditLogFile("/nonexistent/audit.jsonl", ""),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/audit.jsonl")));
}

TEST(ParseAuditLogTest, BlankLinesAreSkipped) {
  const AuditLogFile log = ParseAuditLog("\n\n  \n");
  EXPECT_THAT(log.entries, IsEmpty());
  EXPECT_THAT(log.problems, IsEmpty());
  EXPECT_FALSE(log.head.has_value());
  EXPECT_THAT(ParseAuditLog("not json\n").problems, Not(IsEmpty()));
}

}  // namespace
}  // namespace tessera::cli
