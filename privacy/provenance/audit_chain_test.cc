#include "privacy/provenance/audit_chain.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/testing/status_matchers.h"
#include "privacy/crypto/pki.h"

namespace tessera::provenance {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;
using wire::v1::AuditEntry;
using wire::v1::AuditHead;

// Entries seq 1..n as the coordinator appends them.
std::vector<AuditEntry> MakeLog(int n) {
  std::vector<AuditEntry> log;
  for (int i = 1; i <= n; ++i) {
    AuditEntry e;
    e.set_unix_ms(1700000000000 + i);
    e.set_actor(i == 1 ? "operator:alice" : "coordinator");
    e.set_action(i == 1 ? "run.created" : "round.committed");
    e.set_run_id("mnist");
    e.set_round(static_cast<uint32_t>(i - 1));
    (*e.mutable_details())["i"] = absl::StrCat(i);
    SealAuditEntry(log.empty() ? nullptr : &log.back(), e);
    log.push_back(std::move(e));
  }
  return log;
}

class AuditChainTest : public testing::Test {
 protected:
  void SetUp() override {
    ca_ = crypto::CreateCertificateAuthority("Acme", 30).value();
    const std::string key = crypto::GeneratePrivateKey().value();
    crypto::IssueOptions o;
    o.role = crypto::CertificateRole::kCoordinator;
    o.common_name = "coordinator";
    o.subject_alt_names = {"DNS:localhost"};
    signer_.emplace(
        ProvenanceSigner::FromPem(key, crypto::IssueCertificate(ca_, key, o).value()).value());
  }
  AuditHead Head(const std::vector<AuditEntry>& log) {
    return SignAuditHead(log.empty() ? nullptr : &log.back(), 1700000009999, *signer_).value();
  }

  crypto::KeyAndCertificate ca_;
  std::optional<ProvenanceSigner> signer_;
};

TEST_F(AuditChainTest, SealLinksEachEntryToThePreviousOne) {
  const std::vector<AuditEntry> log = MakeLog(3);
  EXPECT_EQ(log[0].seq(), 1u);
  EXPECT_EQ(log[0].prev_hash(), kGenesisHash);
  EXPECT_EQ(log[1].prev_hash(), log[0].hash());
  EXPECT_EQ(log[2].seq(), 3u);
  EXPECT_EQ(log[2].hash().size(), 64u);
  EXPECT_EQ(AuditEntryHash(log[2]), log[2].hash());
  AuditEntry changed_hash_field = log[2];
  changed_hash_field.set_hash("ignored");
  EXPECT_EQ(AuditEntryHash(changed_hash_field), log[2].hash());
}

TEST_F(AuditChainTest, IntactLogAndHeadVerify) {
  const std::vector<AuditEntry> log = MakeLog(5);
  const AuditHead head = Head(log);
  EXPECT_EQ(head.seq(), 5u);
  EXPECT_EQ(head.hash(), log.back().hash());
  const AuditVerification v = VerifyAuditChain(log, &head, ca_.certificate_pem);
  EXPECT_TRUE(v.ok()) << testing::PrintToString(v.problems);
  EXPECT_EQ(v.entries, 5u);
  EXPECT_TRUE(v.head_signer.certified);
  EXPECT_EQ(v.head_signer.common_name, "coordinator");
  // An empty log has a head too.
  const AuditHead empty_head = Head({});
  EXPECT_EQ(empty_head.hash(), kGenesisHash);
  EXPECT_TRUE(VerifyAuditChain({}, &empty_head, ca_.certificate_pem).ok());
}

TEST_F(AuditChainTest, EditedEntryIsReported) {
  std::vector<AuditEntry> log = MakeLog(6);
  (*log[3].mutable_details())["i"] = "40";
  EXPECT_THAT(VerifyAuditChain(log, nullptr, "").problems,
              ElementsAre("entry 4 (seq 4): hash does not match its content (edited?)"));
  // Re-sealing the edited entry moves the break to the next link.
  SealAuditEntry(&log[2], log[3]);
  EXPECT_THAT(VerifyAuditChain(log, nullptr, "").problems,
              ElementsAre("entry 5: prev_hash is not the hash of seq 4 (reordered or removed?)"));
}

TEST_F(AuditChainTest, RemovedEntryIsReported) {
  std::vector<AuditEntry> log = MakeLog(6);
  log.erase(log.begin() + 2);  // seq 3
  EXPECT_THAT(VerifyAuditChain(log, nullptr, "").problems,
              ElementsAre("entry 3: seq 4 follows seq 2 (entry removed?)",
                          "entry 3: prev_hash is not the hash of seq 2 (reordered or removed?)"));
  std::vector<AuditEntry> headless = MakeLog(3);
  headless.erase(headless.begin());
  EXPECT_THAT(VerifyAuditChain(headless, nullptr, "").problems,
              ElementsAre(StartsWith("entry 1: seq 2 but the log starts at seq 1"),
                          StartsWith("entry 1: prev_hash is not the genesis hash")));
}

TEST_F(AuditChainTest, ReorderedEntriesAreReported) {
  std::vector<AuditEntry> log = MakeLog(5);
  std::swap(log[1], log[2]);  // seq 1, 3, 2, 4, 5
  const std::vector<std::string> problems = VerifyAuditChain(log, nullptr, "").problems;
  EXPECT_THAT(problems, Contains("entry 3: seq 2 follows seq 3 (reordered or duplicated?)"));
  EXPECT_THAT(problems,
              Contains("entry 2: prev_hash is not the hash of seq 1 (reordered or removed?)"));
  EXPECT_THAT(problems,
              Contains("entry 4: prev_hash is not the hash of seq 2 (reordered or removed?)"));
}

TEST_F(AuditChainTest, TruncatedLogIsReportedAgainstTheSignedHead) {
  std::vector<AuditEntry> log = MakeLog(6);
  const AuditHead head = Head(log);
  log.resize(4);
  // The chain itself is intact: only the head shows the cut.
  EXPECT_TRUE(VerifyAuditChain(log, nullptr, "").ok());
  EXPECT_THAT(VerifyAuditChain(log, &head, ca_.certificate_pem).problems,
              ElementsAre("head: the log ends at seq 4 but the signed head says seq 6 "
                          "(entries cut off the end?)"));
  // Replacing the cut entries with others of the same seq shows as a hash mismatch.
  std::vector<AuditEntry> forged = MakeLog(6);
  (*forged[5].mutable_details())["i"] = "forged";
  SealAuditEntry(&forged[4], forged[5]);
  EXPECT_THAT(VerifyAuditChain(forged, &head, ca_.certificate_pem).problems,
              ElementsAre(HasSubstr("is not the signed head's hash")));
}

TEST_F(AuditChainTest, BadHeadSignatureIsReported) {
  const std::vector<AuditEntry> log = MakeLog(3);
  AuditHead head = Head(log);
  AuditHead later = head;
  later.set_unix_ms(head.unix_ms() + 1);  // not what was signed
  EXPECT_THAT(VerifyAuditChain(log, &later, ca_.certificate_pem).problems,
              ElementsAre(StartsWith("head: signature does not verify")));
  AuditHead garbled = head;
  garbled.set_signature("AAAA");
  EXPECT_THAT(VerifyAuditChain(log, &garbled, "").problems,
              ElementsAre(StartsWith("head: signature does not verify")));
  const crypto::KeyAndCertificate foreign = crypto::CreateCertificateAuthority("Other", 30).value();
  EXPECT_THAT(VerifyAuditChain(log, &head, foreign.certificate_pem).problems,
              ElementsAre(StartsWith("head: the signer's certificate is not trusted")));
  EXPECT_THAT(VerifyAuditChain(log, &head, "").problems, IsEmpty());
}

}  // namespace
}  // namespace tessera::provenance
