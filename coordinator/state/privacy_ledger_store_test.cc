// Privacy ledgers in CoordinatorState: created once per dataset, charged only together with
// the round they pay for, never lowered or re-budgeted, and durable across reopening.
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "coordinator/state/coordinator_state.h"
#include "coordinator/state/state_test_fixture.h"
#include "core/base/testing/status_matchers.h"

namespace tessera {
namespace coordinator {
namespace {

using storage::v1::PrivacyLedgerRecord;
using storage::v1::RunRecord;
using testing::HasSubstr;

ArrayRecord SmallModel(float v) {
  ArrayRecord r;
  const float values[] = {v, -v};
  r.tensors.push_back(*Tensor::FromFloats("w", {2}, values));
  return r;
}

PrivacyLedgerRecord NewLedger(double budget) {
  PrivacyLedgerRecord l;
  l.set_dataset("fmnist");
  l.set_epsilon_budget(budget);
  l.set_delta(1e-5);
  for (double order : {2.0, 8.0, 32.0}) {
    l.add_orders(order);
    l.add_rdp(0);
  }
  return l;
}

PrivacyLedgerRecord Charged(PrivacyLedgerRecord l, double per_order) {
  for (int i = 0; i < l.rdp_size(); ++i) l.set_rdp(i, l.rdp(i) + per_order * l.orders(i));
  l.set_rounds_charged(l.rounds_charged() + 1);
  return l;
}

class PrivacyLedgerStoreTest : public StateTest {
 protected:
  void SetUp() override {
    StateTest::SetUp();
    RunRecord run;
    run.set_run_id("r1");
    run.set_state(wire::v1::RUNNING);
    TESSERA_ASSERT_OK(state_->CreateRun(run, SmallModel(0), ""));
  }
  absl::Status Commit(uint32_t round, const PrivacyLedgerRecord* charge) {
    absl::StatusOr<RunRecord> run = state_->GetRun("r1");
    if (!run.ok()) return run.status();
    run->set_completed_rounds(round);
    wire::v1::RoundSummary summary;
    summary.set_round(round);
    summary.set_attempt(1);
    summary.set_state(wire::v1::ROUND_COMPLETED);
    return state_->CommitRound(*run, summary, SmallModel(static_cast<float>(round)), charge);
  }
};

TEST_F(PrivacyLedgerStoreTest, FirstRunFixesTheBudget) {
  absl::StatusOr<std::optional<PrivacyLedgerRecord>> none = state_->GetLedger("fmnist");
  ASSERT_THAT(none, IsOk());
  EXPECT_FALSE(none->has_value());
  ASSERT_THAT(state_->OpenLedger(NewLedger(3)), IsOk());
  // A later run asking for a larger budget gets the stored one back.
  absl::StatusOr<PrivacyLedgerRecord> again = state_->OpenLedger(NewLedger(100));
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->epsilon_budget(), 3);
  absl::StatusOr<std::vector<PrivacyLedgerRecord>> all = state_->ListLedgers();
  ASSERT_THAT(all, IsOk());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].dataset(), "fmnist");
}

TEST_F(PrivacyLedgerStoreTest, ChargeCommitsWithTheRoundAndSurvivesReopen) {
  absl::StatusOr<PrivacyLedgerRecord> ledger = state_->OpenLedger(NewLedger(3));
  ASSERT_THAT(ledger, IsOk());
  const PrivacyLedgerRecord one = Charged(*ledger, 0.1);
  TESSERA_ASSERT_OK(Commit(1, &one));
  Reopen();
  absl::StatusOr<std::optional<PrivacyLedgerRecord>> stored = state_->GetLedger("fmnist");
  ASSERT_THAT(stored, IsOk());
  ASSERT_TRUE(stored->has_value());
  EXPECT_EQ((*stored)->rounds_charged(), 1u);
  EXPECT_DOUBLE_EQ((*stored)->rdp(1), 0.8);
  EXPECT_EQ(state_->GetRun("r1")->completed_rounds(), 1u);
}

TEST_F(PrivacyLedgerStoreTest, StaleOrLoweringChargesAreRefusedAndStoreNothing) {
  absl::StatusOr<PrivacyLedgerRecord> ledger = state_->OpenLedger(NewLedger(3));
  ASSERT_THAT(ledger, IsOk());
  const PrivacyLedgerRecord one = Charged(*ledger, 0.1);
  TESSERA_ASSERT_OK(Commit(1, &one));
  // The same copy again (a stale writer): refused, and round 2 is not stored either.
  EXPECT_THAT(Commit(2, &one), StatusIs(absl::StatusCode::kFailedPrecondition,
                                        HasSubstr("must add exactly one")));
  EXPECT_EQ(state_->GetRun("r1")->completed_rounds(), 1u);
  PrivacyLedgerRecord lower = Charged(one, 0.1);
  lower.set_rdp(0, 0);
  EXPECT_THAT(Commit(2, &lower), StatusIs(absl::StatusCode::kFailedPrecondition,
                                          HasSubstr("may not lower")));
  PrivacyLedgerRecord rebudget = Charged(one, 0.1);
  rebudget.set_epsilon_budget(1000);
  EXPECT_THAT(Commit(2, &rebudget), StatusIs(absl::StatusCode::kFailedPrecondition,
                                             HasSubstr("may not change the budget")));
  EXPECT_EQ(state_->GetRun("r1")->completed_rounds(), 1u);
  EXPECT_EQ((*state_->GetLedger("fmnist"))->rounds_charged(), 1u);
}

TEST_F(PrivacyLedgerStoreTest, FailedAttemptsCanBeCharged) {
  absl::StatusOr<PrivacyLedgerRecord> ledger = state_->OpenLedger(NewLedger(3));
  ASSERT_THAT(ledger, IsOk());
  const PrivacyLedgerRecord one = Charged(*ledger, 0.1);
  wire::v1::RoundSummary failed;
  failed.set_round(1);
  failed.set_attempt(1);
  failed.set_state(wire::v1::ROUND_FAILED);
  TESSERA_ASSERT_OK(state_->RecordFailedAttempt("r1", failed, &one));
  EXPECT_EQ((*state_->GetLedger("fmnist"))->rounds_charged(), 1u);
}

TEST_F(PrivacyLedgerStoreTest, ChargeWithoutLedgerIsRefused) {
  const PrivacyLedgerRecord orphan = Charged(NewLedger(3), 0.1);
  EXPECT_THAT(Commit(1, &orphan), StatusIs(absl::StatusCode::kFailedPrecondition,
                                           HasSubstr("no privacy ledger")));
  EXPECT_THAT(state_->GetLedger("a/b"), StatusIs(absl::StatusCode::kInvalidArgument));
}

// The "charge, then release" station: the charge is durable on its own (before the round
// is committed), once per (run, round, attempt): repeating it, or committing the round with
// the same charge, adds nothing; another attempt of the round is a charge of its own.
TEST_F(PrivacyLedgerStoreTest, ReleaseChargeIsDurableAndCountedOncePerAttempt) {
  absl::StatusOr<PrivacyLedgerRecord> ledger = state_->OpenLedger(NewLedger(3));
  ASSERT_THAT(ledger, IsOk());
  const PrivacyLedgerRecord one = Charged(*ledger, 0.1);
  TESSERA_ASSERT_OK(state_->ChargeRelease("r1", 1, 1, one));
  Reopen();  // a crash right after the station: the charge is there, the round is not
  EXPECT_EQ((*state_->GetLedger("fmnist"))->rounds_charged(), 1u);
  EXPECT_EQ(state_->GetRun("r1")->completed_rounds(), 0u);
  TESSERA_ASSERT_OK(state_->ChargeRelease("r1", 1, 1, one));
  EXPECT_EQ((*state_->GetLedger("fmnist"))->rounds_charged(), 1u);
  // Attempt 1 failed after its release; attempt 2 releases again and is charged again.
  wire::v1::RoundSummary failed;
  failed.set_round(1);
  failed.set_attempt(1);
  failed.set_state(wire::v1::ROUND_FAILED);
  TESSERA_ASSERT_OK(state_->RecordFailedAttempt("r1", failed, &one));
  EXPECT_EQ((*state_->GetLedger("fmnist"))->rounds_charged(), 1u);
  const PrivacyLedgerRecord two = Charged(one, 0.1);
  TESSERA_ASSERT_OK(state_->ChargeRelease("r1", 1, 2, two));
  absl::StatusOr<RunRecord> run = state_->GetRun("r1");
  ASSERT_THAT(run, IsOk());
  run->set_completed_rounds(1);
  wire::v1::RoundSummary done;
  done.set_round(1);
  done.set_attempt(2);
  done.set_state(wire::v1::ROUND_COMPLETED);
  TESSERA_ASSERT_OK(state_->CommitRound(*run, done, SmallModel(1), &two));
  absl::StatusOr<std::optional<PrivacyLedgerRecord>> stored = state_->GetLedger("fmnist");
  ASSERT_THAT(stored, IsOk());
  EXPECT_EQ((*stored)->rounds_charged(), 2u);
  EXPECT_DOUBLE_EQ((*stored)->rdp(1), 2 * 0.1 * 8);
  absl::StatusOr<std::vector<CoordinatorState::ReleaseCharge>> charges =
      state_->ListReleaseCharges("r1");
  ASSERT_THAT(charges, IsOk());
  ASSERT_EQ(charges->size(), 2u);
  EXPECT_EQ((*charges)[0].round, 1u);
  EXPECT_EQ((*charges)[0].attempt, 1u);
  EXPECT_EQ((*charges)[0].ledger.rounds_charged(), 1u);
  EXPECT_EQ((*charges)[1].attempt, 2u);
  EXPECT_EQ((*charges)[1].ledger.rounds_charged(), 2u);
  // A committed round cannot be charged again.
  EXPECT_THAT(state_->ChargeRelease("r1", 1, 3, Charged(two, 0.1)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not the next one")));
}

TEST_F(PrivacyLedgerStoreTest, ACommitWithoutTheStationStillChargesOnce) {
  absl::StatusOr<PrivacyLedgerRecord> ledger = state_->OpenLedger(NewLedger(3));
  ASSERT_THAT(ledger, IsOk());
  const PrivacyLedgerRecord one = Charged(*ledger, 0.1);
  TESSERA_ASSERT_OK(Commit(1, &one));
  absl::StatusOr<std::vector<CoordinatorState::ReleaseCharge>> charges =
      state_->ListReleaseCharges("r1");
  ASSERT_THAT(charges, IsOk());
  ASSERT_EQ(charges->size(), 1u);
  EXPECT_EQ((*charges)[0].round, 1u);
}

TEST_F(PrivacyLedgerStoreTest, AChargeThatCannotBeWrittenLeavesTheLedgerAlone) {
  absl::StatusOr<PrivacyLedgerRecord> ledger = state_->OpenLedger(NewLedger(3));
  ASSERT_THAT(ledger, IsOk());
  const PrivacyLedgerRecord one = Charged(*ledger, 0.1);
  state_->TEST_FailLedgerCharges(absl::UnavailableError("disk full"));
  EXPECT_THAT(state_->ChargeRelease("r1", 1, 1, one),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("disk full")));
  EXPECT_THAT(Commit(1, &one), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ((*state_->GetLedger("fmnist"))->rounds_charged(), 0u);
  EXPECT_EQ(state_->GetRun("r1")->completed_rounds(), 0u);
  EXPECT_TRUE(state_->ListReleaseCharges("r1")->empty());
  state_->TEST_FailLedgerCharges(absl::OkStatus());
  TESSERA_ASSERT_OK(state_->ChargeRelease("r1", 1, 1, one));
  EXPECT_EQ((*state_->GetLedger("fmnist"))->rounds_charged(), 1u);
}

}  // namespace
}  // namespace coordinator
}  // namespace tessera
