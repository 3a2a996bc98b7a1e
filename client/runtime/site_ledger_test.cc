// The site's own privacy ledger: composition across tasks, the refusal of the step that would
// exceed the budget (across a restart and across runs), persistence, and the client's
// ChargeSiteBudget before a record-level DP task.
#include "client/runtime/site_ledger.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/runtime/task_executor.h"
#include "core/base/testing/status_matchers.h"
#include "privacy/dp/rdp_accountant.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;

// TF Privacy's MNIST DP-SGD tutorial: 60,000 examples, batch 256, sigma 1.1, 60 epochs of
// 234 steps, delta 1e-5 -> "epsilon = 3.01" (with the classic RDP conversion, which is never
// tighter than the improved one the ledger uses).
constexpr uint64_t kMnistExamples = 60000;
constexpr double kMnistQ = 256.0 / 60000;
constexpr uint64_t kStepsPerEpoch = 234;

std::string TempPath(absl::string_view name) {
  return absl::StrCat(::testing::TempDir(), "/site_ledger_", name, "_", ::getpid(), ".json");
}

SiteLedgerEntry Epoch(const std::string& run, uint32_t round) {
  SiteLedgerEntry e;
  e.sampling_rate = kMnistQ;
  e.noise_multiplier = 1.1;
  e.steps = kStepsPerEpoch;
  e.run_id = run;
  e.round = round;
  e.task_id = absl::StrCat(run, "-", round);
  return e;
}

TEST(SiteLedgerTest, ComposesTasksLikeOneLongRun) {
  const std::string path = TempPath("compose");
  std::remove(path.c_str());
  absl::StatusOr<SiteLedger> ledger =
      SiteLedger::Open(path, "mnist", {10, 1e-5}, kMnistExamples);
  ASSERT_THAT(ledger, IsOk());
  EXPECT_THAT(ledger->Epsilon(), IsOkAndHolds(0.0));
  for (uint32_t round = 1; round <= 60; ++round) {
    TESSERA_ASSERT_OK(ledger->Charge(Epoch("run-a", round)));
  }
  absl::StatusOr<double> eps = ledger->Epsilon();
  ASSERT_THAT(eps, IsOk());
  EXPECT_LE(*eps, 3.01 + 0.005);  // the tutorial's value bounds it from above
  EXPECT_GT(*eps, 2.5);
  absl::StatusOr<dp::EpsilonResult> one_shot = dp::ComputeEpsilon(
      kMnistQ, 1.1, 60 * kStepsPerEpoch, 1e-5, dp::DefaultOrders(), dp::Conversion::kImproved);
  ASSERT_THAT(one_shot, IsOk());
  EXPECT_NEAR(*eps, one_shot->epsilon, 1e-9 * one_shot->epsilon);
}

// The site's budget refuses the task that would exceed it, and keeps refusing it after a
// client restart (the ledger is read back from disk) and in a new run.
TEST(SiteLedgerTest, RefusesTheTaskThatWouldExceedTheBudgetAcrossRestartsAndRuns) {
  const std::string path = TempPath("budget");
  std::remove(path.c_str());
  const PrivacyBudget budget{2.0, 1e-5};
  uint32_t charged = 0;
  {
    absl::StatusOr<SiteLedger> ledger = SiteLedger::Open(path, "mnist", budget, kMnistExamples);
    ASSERT_THAT(ledger, IsOk());
    for (uint32_t round = 1; round <= 10; ++round) {
      absl::StatusOr<SiteLedger::Plan> plan = ledger->PlanTask(Epoch("run-a", round));
      ASSERT_THAT(plan, IsOk());
      ASSERT_TRUE(plan->allowed) << plan->reason;
      EXPECT_LE(plan->epsilon_after, 2.0);
      TESSERA_ASSERT_OK(ledger->Charge(Epoch("run-a", round)));
      ++charged;
    }
  }
  // A restart, then a second run on the same dataset until the budget stops it.
  SiteLedger::Plan refused;
  {
    absl::StatusOr<SiteLedger> reopened =
        SiteLedger::Open(path, "mnist", budget, kMnistExamples);
    ASSERT_THAT(reopened, IsOk());
    ASSERT_EQ(reopened->entries().size(), charged);
    for (uint32_t round = 1; round <= 100; ++round) {
      absl::StatusOr<SiteLedger::Plan> plan = reopened->PlanTask(Epoch("run-b", round));
      ASSERT_THAT(plan, IsOk());
      if (!plan->allowed) {
        refused = *plan;
        break;
      }
      TESSERA_ASSERT_OK(reopened->Charge(Epoch("run-b", round)));
      ++charged;
    }
  }
  ASSERT_FALSE(refused.allowed);
  EXPECT_LE(refused.epsilon_before, 2.0);
  EXPECT_GT(refused.epsilon_after, 2.0);
  EXPECT_THAT(refused.reason, HasSubstr("privacy budget of dataset \"mnist\" exhausted"));
  EXPECT_THAT(refused.reason, HasSubstr("234 DP-SGD steps"));
  // The refusal holds after another restart: nothing was charged for it.
  absl::StatusOr<SiteLedger> again = SiteLedger::Open(path, "mnist", budget, kMnistExamples);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->entries().size(), charged);
  absl::StatusOr<SiteLedger::Plan> plan = again->PlanTask(Epoch("run-c", 1));
  ASSERT_THAT(plan, IsOk());
  EXPECT_FALSE(plan->allowed);
  // Epsilon after all charges (hand-checkable: charged epochs of the tutorial's mechanism).
  absl::StatusOr<double> spent = again->Epsilon();
  ASSERT_THAT(spent, IsOk());
  EXPECT_LE(*spent, 2.0);
  EXPECT_GT(charged, 10u);
}

// Every charge counts, even for a task id seen before (over-counting is the safe side), and
// the ledger knows which tasks it has charged.
TEST(SiteLedgerTest, EveryChargeCountsAndTasksAreKnown) {
  const std::string path = TempPath("every");
  std::remove(path.c_str());
  absl::StatusOr<SiteLedger> ledger = SiteLedger::Open(path, "d", {8, 1e-5}, kMnistExamples);
  ASSERT_THAT(ledger, IsOk());
  EXPECT_FALSE(ledger->HasTask("r-1"));
  TESSERA_ASSERT_OK(ledger->Charge(Epoch("r", 1)));
  TESSERA_ASSERT_OK(ledger->Charge(Epoch("r", 1)));
  EXPECT_EQ(ledger->entries().size(), 2u);
  EXPECT_TRUE(ledger->HasTask("r-1"));
}

// Two processes sharing a ledger would overwrite each other's charges: the file is locked.
TEST(SiteLedgerTest, OneOpenerPerLedgerFile) {
  const std::string path = TempPath("lock");
  std::remove(path.c_str());
  {
    absl::StatusOr<SiteLedger> first = SiteLedger::Open(path, "d", {8, 1e-5}, kMnistExamples);
    ASSERT_THAT(first, IsOk());
    EXPECT_THAT(SiteLedger::Open(path, "d", {8, 1e-5}, kMnistExamples),
                StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("in use")));
  }
  EXPECT_THAT(SiteLedger::Open(path, "d", {8, 1e-5}, kMnistExamples), IsOk());
}

TEST(SiteLedgerTest, RefusesDeltaAtLeastOneOverN) {
  // 1 / 60,000 = 1.67e-5.
  EXPECT_THAT(SiteLedger::Open(TempPath("delta"), "d", {8, 2e-5}, kMnistExamples),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("below 1 / (local")));
  EXPECT_THAT(SiteLedger::Open(TempPath("delta"), "d", {8, 1e-5}, kMnistExamples), IsOk());
}

TEST(SiteLedgerTest, NeverResetsAnUnreadableOrForeignLedger) {
  const std::string path = TempPath("corrupt");
  {
    std::ofstream f(path);
    f << "{\"format\": \"tessera-site-ledger/1\", \"dataset\": \"d\", \"entries\": [{\"q\": 2}]}";
  }
  EXPECT_THAT(SiteLedger::Open(path, "d", {8, 1e-5}, kMnistExamples),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr(path)));
  {
    std::ofstream f(path);
    f << "not json";
  }
  EXPECT_THAT(SiteLedger::Open(path, "d", {8, 1e-5}, kMnistExamples),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("never reset")));
  std::remove(path.c_str());
  {
    absl::StatusOr<SiteLedger> mine = SiteLedger::Open(path, "d", {8, 1e-5}, kMnistExamples);
    ASSERT_THAT(mine, IsOk());
    TESSERA_ASSERT_OK(mine->Charge(Epoch("r", 1)));
  }
  EXPECT_THAT(SiteLedger::Open(path, "other", {8, 1e-5}, kMnistExamples),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("belongs to dataset")));
}

TEST(SiteLedgerTest, PldIsNeverLooserThanRdp) {
  absl::StatusOr<SiteLedger> rdp = SiteLedger::Open("", "d", {10, 1e-5}, kMnistExamples);
  absl::StatusOr<SiteLedger> pld =
      SiteLedger::Open("", "d", {10, 1e-5}, kMnistExamples, SiteAccountant::kPld);
  ASSERT_THAT(rdp, IsOk());
  ASSERT_THAT(pld, IsOk());
  SiteLedgerEntry all = Epoch("r", 1);
  all.steps = 60 * kStepsPerEpoch;  // the tutorial's 60 epochs in one task
  absl::StatusOr<SiteLedger::Plan> a = rdp->PlanTask(all);
  absl::StatusOr<SiteLedger::Plan> b = pld->PlanTask(all);
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_LE(b->epsilon_after, a->epsilon_after);
  EXPECT_GT(b->epsilon_after, 0.8 * a->epsilon_after);
}

// A transport that only records privacy reports.
class ReportRecorder : public FleetTransport {
 public:
  absl::StatusOr<ArrayRecord> FetchModel(const wire::v1::Task&) override { return Unused(); }
  absl::StatusOr<std::string> FetchArtifact(const wire::v1::Task&) override { return Unused(); }
  absl::Status PushUpdate(const wire::v1::Task&, uint64_t, const std::map<std::string, double>&,
                          const ArrayRecord&) override {
    return Unused();
  }
  absl::Status PushEvaluation(const wire::v1::Task&, const EvalResult&) override {
    return Unused();
  }
  SecAggTransport SecAgg(const wire::v1::Task&) override { return nullptr; }
  absl::Status ReportData(const wire::v1::Task&, const wire::v1::DataReport&) override {
    return Unused();
  }
  absl::Status ReportSitePrivacy(const wire::v1::Task&,
                                 const wire::v1::SitePrivacyReport& report) override {
    reports.push_back(report);
    return absl::OkStatus();
  }
  std::vector<wire::v1::SitePrivacyReport> reports;

 private:
  static absl::Status Unused() { return absl::UnimplementedError("not used"); }
};

wire::v1::Task RecordTask(const std::string& id) {
  wire::v1::Task task;
  task.set_task_id(id);
  task.set_type(wire::v1::TRAIN);
  task.set_run_id("run-1");
  task.set_round(3);
  task.mutable_train()->set_local_epochs(2);
  wire::v1::RecordDpConfig& r = *task.mutable_dp()->mutable_record();
  r.set_enabled(true);
  r.set_noise_multiplier(1.1);
  r.set_clip_norm(1.0);
  r.set_expected_batch_size(256);
  r.set_max_physical_batch(256);
  return task;
}

TEST(ChargeSiteBudgetTest, ChargesThenReportsOrRefusesAndSaysWhy) {
  const std::string path = TempPath("charge");
  std::remove(path.c_str());
  ClientState state;
  ReportRecorder fleet;
  // No budget stated: refused, and the coordinator is told why.
  absl::Status s = ChargeSiteBudget(RecordTask("t0"), kMnistExamples, state, fleet);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_EQ(fleet.reports.size(), 1u);
  EXPECT_TRUE(fleet.reports[0].refused());
  EXPECT_THAT(fleet.reports[0].reason(), HasSubstr("--privacy-budget"));

  absl::StatusOr<SiteLedger> ledger = SiteLedger::Open(path, "mnist", {1.0, 1e-5}, kMnistExamples);
  ASSERT_THAT(ledger, IsOk());
  state.ledger = std::make_shared<SiteLedger>(*std::move(ledger));
  TESSERA_ASSERT_OK(ChargeSiteBudget(RecordTask("t1"), kMnistExamples, state, fleet));
  ASSERT_EQ(fleet.reports.size(), 2u);
  const wire::v1::SitePrivacyReport& ok = fleet.reports[1];
  EXPECT_FALSE(ok.refused());
  EXPECT_EQ(ok.task_id(), "t1");
  EXPECT_EQ(ok.steps(), 2 * kStepsPerEpoch);  // 2 epochs of floor(60000 / 256) steps
  EXPECT_DOUBLE_EQ(ok.sampling_rate(), kMnistQ);
  EXPECT_DOUBLE_EQ(ok.delta(), 1e-5);
  EXPECT_DOUBLE_EQ(ok.epsilon_budget(), 1.0);
  EXPECT_EQ(ok.accountant(), "rdp");
  EXPECT_GT(ok.epsilon(), 0);
  EXPECT_LE(ok.epsilon(), 1.0);
  EXPECT_EQ(state.ledger->entries().size(), 1u);  // charged before training

  // Keep asking until the budget refuses; the refusal charges nothing.
  size_t entries = 0;
  for (int i = 2; i < 100; ++i) {
    entries = state.ledger->entries().size();
    s = ChargeSiteBudget(RecordTask(absl::StrCat("t", i)), kMnistExamples, state, fleet);
    if (!s.ok()) break;
  }
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("exhausted"));
  EXPECT_EQ(state.ledger->entries().size(), entries);
  EXPECT_TRUE(fleet.reports.back().refused());
  EXPECT_LE(fleet.reports.back().epsilon(), 1.0);  // what the site has spent

  // A dataset smaller than the expected batch cannot sample it.
  s = ChargeSiteBudget(RecordTask("small"), 100, state, fleet);
  EXPECT_THAT(s.message(), HasSubstr("exceeds this site's 100 training examples"));
}

TEST(ChargeSiteBudgetTest, RefusesReplaysTasksWithoutDpSgdAndBadParameters) {
  ClientState state;
  ReportRecorder fleet;
  absl::StatusOr<SiteLedger> ledger = SiteLedger::Open("", "mnist", {8, 1e-5}, kMnistExamples);
  ASSERT_THAT(ledger, IsOk());
  state.ledger = std::make_shared<SiteLedger>(*std::move(ledger));
  TESSERA_ASSERT_OK(ChargeSiteBudget(RecordTask("t1"), kMnistExamples, state, fleet));
  // The same task again (a coordinator replaying it) would release a second model.
  absl::Status s = ChargeSiteBudget(RecordTask("t1"), kMnistExamples, state, fleet);
  EXPECT_THAT(s.message(), HasSubstr("already charged"));
  EXPECT_EQ(state.ledger->entries().size(), 1u);
  // A site with a budget does not train without DP-SGD, unless it opted out.
  wire::v1::Task plain = RecordTask("t2");
  plain.mutable_dp()->clear_record();
  s = ChargeSiteBudget(plain, kMnistExamples, state, fleet);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("trains only with record-level DP-SGD"));
  EXPECT_TRUE(fleet.reports.back().refused());
  state.train_without_record_dp = true;
  TESSERA_EXPECT_OK(ChargeSiteBudget(plain, kMnistExamples, state, fleet));
  // Parameters no DP-SGD can run with.
  wire::v1::Task tiny = RecordTask("t3");
  tiny.mutable_dp()->mutable_record()->set_expected_batch_size(1e-300);
  EXPECT_THAT(ChargeSiteBudget(tiny, kMnistExamples, state, fleet).message(),
              HasSubstr("parameters are invalid"));
  wire::v1::Task free = RecordTask("t4");
  free.mutable_dp()->mutable_record()->set_noise_multiplier(0);
  EXPECT_THAT(ChargeSiteBudget(free, kMnistExamples, state, fleet).message(),
              HasSubstr("parameters are invalid"));
  EXPECT_EQ(state.ledger->entries().size(), 1u);
  // Without a budget a site trains plain tasks, and refuses record-level ones.
  ClientState none;
  TESSERA_EXPECT_OK(ChargeSiteBudget(plain, kMnistExamples, none, fleet));
}

}  // namespace
}  // namespace tessera
