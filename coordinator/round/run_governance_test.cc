// RunGovernance alone, at the stations the round loop calls it: license rules at select
// (with the REFUSED notice, the audit entry and the participant record), the data report
// request at dispatch, the report itself (rounded to the bucket), and the round's audit
// entry at commit.
#include "coordinator/round/run_governance.h"

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/synchronization/mutex.h"
#include "coordinator/round/test_clients.h"
#include "core/base/testing/status_matchers.h"
#include "privacy/crypto/random.h"

namespace tessera::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class RunGovernanceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("run-governance-" + crypto::RandomHexId(6));
    absl::StatusOr<std::unique_ptr<CoordinatorState>> state =
        CoordinatorState::Open(dir_.string());
    ASSERT_THAT(state, IsOk());
    state_ = *std::move(state);
    audit_ = std::make_unique<AuditTrail>(state_.get(), nullptr);
    wire::v1::RunConfig config;
    config.set_name("governed");
    config.set_rounds(3);
    config.mutable_governance()->add_allowed_data_licenses("MIT");
    config.mutable_governance()->set_example_count_bucket(50);
    config.mutable_governance()->set_class_histogram(true);
    governance_ = std::make_unique<RunGovernance>(
        RunGovernance::Services{state_.get(), &registry_, audit_.get(), "9.9.9"}, "run-1",
        config);
    ModelSnapshot initial;
    initial.digest = std::string(32, '\x02');
    TESSERA_ASSERT_OK(governance_->Create("alice", "1.2.3", 1000, initial));
  }
  void TearDown() override {
    governance_.reset();
    audit_.reset();
    state_.reset();
    std::filesystem::remove_all(dir_);
  }
  // Registers `name` of `org` with a data card under `license` ("" = no card) and connects.
  void Join(const std::string& name, const std::string& org, const std::string& license) {
    JoinWithDataCard(registry_, name, org, license, /*histogram=*/true, &mu_, &sent_);
  }
  std::vector<wire::v1::Task> Sent(const std::string& name) {
    absl::MutexLock l(&mu_);
    return sent_[name];
  }
  std::vector<std::string> Actions() {
    std::vector<std::string> out;
    absl::StatusOr<std::vector<wire::v1::AuditEntry>> log = state_->ListAudit();
    EXPECT_THAT(log, IsOk());
    if (!log.ok()) return out;
    for (const wire::v1::AuditEntry& e : *log) out.push_back(e.action());
    return out;
  }

  std::filesystem::path dir_;
  std::unique_ptr<CoordinatorState> state_;
  ClientRegistry registry_{ClientRegistry::Options{}};
  std::unique_ptr<AuditTrail> audit_;
  std::unique_ptr<RunGovernance> governance_;
  absl::Mutex mu_;
  TaskQueues sent_ ABSL_GUARDED_BY(mu_);
};

TEST_F(RunGovernanceTest, SelectRefusesOnceWithTheReasonAndRecordsEveryone) {
  Join("alpha", "Org A", "MIT");
  Join("beta", "Org B", "CC-BY-NC-4.0");
  Join("gamma", "Org C", "");
  EXPECT_THAT(governance_->Select({"alpha", "beta", "gamma"}), ElementsAre("alpha"));
  // Each refused client got one REFUSED notice naming the rule.
  ASSERT_EQ(Sent("beta").size(), 1u);
  EXPECT_EQ(Sent("beta")[0].type(), wire::v1::REFUSED);
  EXPECT_THAT(Sent("beta")[0].refusal(), HasSubstr("\"CC-BY-NC-4.0\" is not in"));
  ASSERT_EQ(Sent("gamma").size(), 1u);
  EXPECT_THAT(Sent("gamma")[0].refusal(), HasSubstr("no data card"));
  EXPECT_THAT(Sent("alpha"), IsEmpty());
  EXPECT_THAT(Actions(), ElementsAre("run.created", "client.refused", "client.refused"));
  // A second selection refuses the same clients for the same reason silently.
  EXPECT_THAT(governance_->Select({"alpha", "beta", "gamma"}), ElementsAre("alpha"));
  EXPECT_EQ(Sent("beta").size(), 1u);
  EXPECT_EQ(Actions().size(), 3u);

  wire::v1::RunStatus status;
  governance_->AddRefusedClients(status);
  ASSERT_EQ(status.refused_clients_size(), 2);
  EXPECT_THAT(status.refused_clients(0), HasSubstr("beta: data card license"));
  const wire::v1::RunProvenance p = governance_->Provenance();
  EXPECT_EQ(p.run_id(), "run-1");
  EXPECT_EQ(p.created_by(), "alice");
  EXPECT_EQ(p.created_unix_ms(), 1000);
  EXPECT_THAT(p.coordinator_versions(), ElementsAre("9.9.9"));
  ASSERT_EQ(p.participants_size(), 3);
  EXPECT_EQ(p.participants(0).organization(), "Org A");
  EXPECT_EQ(p.participants(0).data_card().license(), "MIT");
  // What was recorded is stored too.
  absl::StatusOr<std::optional<wire::v1::RunProvenance>> stored = state_->GetProvenance("run-1");
  ASSERT_THAT(stored, IsOk());
  ASSERT_TRUE(stored->has_value());
  EXPECT_EQ((*stored)->participants_size(), 3);
}

TEST_F(RunGovernanceTest, DataReportIsAskedUntilGivenAndRoundedToTheBucket) {
  Join("alpha", "Org A", "MIT");
  wire::v1::Task train;
  train.set_type(wire::v1::TRAIN);
  governance_->Dispatch("alpha", train);
  EXPECT_EQ(train.data_report().example_count_bucket(), 50u);
  EXPECT_TRUE(train.data_report().class_histogram());
  wire::v1::Task evaluate;
  evaluate.set_type(wire::v1::EVALUATE);
  governance_->Dispatch("alpha", evaluate);
  EXPECT_FALSE(evaluate.has_data_report());

  wire::v1::DataReport report;
  report.set_example_count_bucket(50);
  report.set_examples_rounded(149);
  EXPECT_THAT(governance_->AcceptDataReport("alpha", train.data_report(), report),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a multiple")));
  report.set_examples_rounded(150);
  // Class counts 57 and 99 would add up to the exact example count: each is rounded down to
  // the bucket of 50, to 50 and 50.
  report.add_class_histogram(57);
  report.add_class_histogram(99);
  TESSERA_ASSERT_OK(governance_->AcceptDataReport("alpha", train.data_report(), report));
  const wire::v1::RunProvenance p = governance_->Provenance();
  ASSERT_EQ(p.participants_size(), 1);
  EXPECT_EQ(p.participants(0).data_report().examples_rounded(), 150u);
  EXPECT_THAT(p.participants(0).data_report().class_histogram(), ElementsAre(50, 50));
  // Reported once: later tasks do not ask again.
  wire::v1::Task next;
  next.set_type(wire::v1::TRAIN);
  governance_->Dispatch("alpha", next);
  EXPECT_FALSE(next.has_data_report());
}

TEST_F(RunGovernanceTest, CommitAuditsTheRoundWithItsOutcome) {
  wire::v1::RoundSummary done;
  done.set_round(1);
  done.set_attempt(1);
  done.set_state(wire::v1::ROUND_COMPLETED);
  done.set_model_sha256(std::string(32, '\x01'));
  done.add_participants("alpha");
  governance_->Commit(done);
  wire::v1::RoundSummary failed;
  failed.set_round(2);
  failed.set_attempt(1);
  failed.set_state(wire::v1::ROUND_FAILED);
  failed.set_failure_reason("2 of 3 selected clients reported");
  governance_->Commit(failed);
  absl::StatusOr<std::vector<wire::v1::AuditEntry>> listed = state_->ListAudit();
  ASSERT_THAT(listed, IsOk());
  const std::vector<wire::v1::AuditEntry>& all = *listed;
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].action(), "run.created");
  EXPECT_EQ(all[0].actor(), "operator:alice");
  EXPECT_EQ(all[0].details().at("cli_version"), "1.2.3");
  const std::vector<wire::v1::AuditEntry> log(all.begin() + 1, all.end());
  EXPECT_EQ(log[0].action(), "round.committed");
  EXPECT_EQ(log[0].round(), 1u);
  std::string hex;  // 32 bytes of 0x01 in hex
  for (int i = 0; i < 32; ++i) hex += "01";
  EXPECT_EQ(log[0].details().at("model_sha256"), hex);
  EXPECT_EQ(log[0].details().at("participants"), "alpha");
  EXPECT_EQ(log[1].action(), "round.failed");
  EXPECT_EQ(log[1].details().at("reason"), "2 of 3 selected clients reported");
}

}  // namespace
}  // namespace tessera::coordinator
