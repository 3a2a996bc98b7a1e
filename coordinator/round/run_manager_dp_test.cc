// Differential privacy in RunManager: the per-dataset budget ledger is charged with every
// committed round, the run stops before the round that would exceed the budget, and neither
// a coordinator restart nor a new run on the same dataset resets it.
#include <cmath>
#include <string>

#include "coordinator/round/run_manager.h"
#include "coordinator/round/run_manager_test_fixture.h"
#include "privacy/dp/rdp_accountant.h"

namespace tessera::coordinator {
namespace {

using ::testing::HasSubstr;

// Epsilon after `rounds` rounds of DpConfig's mechanism.
double EpsilonAfter(int rounds) {
  const std::vector<double> orders = dp::DefaultOrders();
  std::vector<double> rdp = *dp::SampledGaussianRdp(1.0, 2.0, orders);
  for (double& r : rdp) r *= rounds;
  return dp::EpsilonFromRdp(orders, rdp, 1e-5, dp::Conversion::kImproved)->epsilon;
}

class RunManagerDpTest : public RunManagerTest {
 protected:
  // Central DP over 3 clients, all sampled every round (q = 1).
  static wire::v1::RunConfig DpConfig(double budget) {
    wire::v1::RunConfig c = Config(/*rounds=*/6, /*per_round=*/0,
                                                   /*min_clients=*/2);
    wire::v1::DifferentialPrivacyConfig* dp = c.mutable_differential_privacy();
    c.mutable_selection()->set_fraction(1.0);
    dp->set_mode(wire::v1::DifferentialPrivacyConfig::CENTRAL);
    dp->set_noise_multiplier(2.0);
    dp->set_clip_norm(1.0);
    dp->set_population(3);
    dp->set_expected_clients_per_round(3);
    dp->set_epsilon_budget(budget);
    dp->set_delta(1e-5);
    dp->set_dataset("hospital-records");
    return c;
  }

  // Answers round `round` for a, b and c with updates of norm 5 * sqrt(3) (clipped to 1).
  void AnswerRound(uint32_t round) {
    for (const char* c : {"a", "b", "c"}) {
      wire::v1::Task t = NextTask(c);
      ASSERT_EQ(t.round(), round);
      EXPECT_EQ(t.dp().mode(), wire::v1::DifferentialPrivacyConfig::CENTRAL);
      EXPECT_DOUBLE_EQ(t.dp().clip_norm(), 1.0);
      ASSERT_THAT(runs_->BeginUpdate(t.task_id(), c), IsOk());
      TESSERA_ASSERT_OK(runs_->SubmitUpdate(t.task_id(), c, 10,
                                            {{"train_loss", 1.0}, {"dp_unclipped", 0}},
                                            Weights(5.0f, 1), 100));
    }
  }
  void AwaitCompletedRounds(const std::string& run, uint32_t n) {
    for (int i = 0; i < 500 && runs_->GetRunStatus(run)->completed_rounds() < n; ++i) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    ASSERT_EQ(runs_->GetRunStatus(run)->completed_rounds(), n);
  }
};

TEST_F(RunManagerDpTest, LedgerStopsTheRunAtTheBudgetAcrossRestarts) {
  // The budget pays for exactly two rounds.
  const double budget = (EpsilonAfter(2) + EpsilonAfter(3)) / 2;
  for (const char* c : {"a", "b", "c"}) Connect(c);
  absl::StatusOr<wire::v1::RunStatus> run = runs_->CreateRun(DpConfig(budget), Weights(0), "");
  ASSERT_THAT(run, IsOk());
  EXPECT_DOUBLE_EQ(run->privacy().epsilon_spent(), 0);
  EXPECT_NEAR(run->privacy().next_round_epsilon(), EpsilonAfter(1), 1e-9);
  ASSERT_THAT(runs_->StartRun(run->run_id()), IsOk());
  AnswerRound(1);
  AwaitCompletedRounds(run->run_id(), 1);

  // Restart: the ledger and the run come back from RocksDB.
  runs_.reset();
  state_.reset();
  {
    absl::MutexLock l(&mu_);
    tasks_.clear();
  }
  Open();
  TESSERA_ASSERT_OK(runs_->Recover());
  wire::v1::RunStatus s = *runs_->GetRunStatus(run->run_id());
  EXPECT_NEAR(s.privacy().epsilon_spent(), EpsilonAfter(1), 1e-9);
  EXPECT_EQ(s.privacy().rounds_charged(), 1u);
  AnswerRound(2);

  s = AwaitState(run->run_id(), wire::v1::COMPLETED);
  EXPECT_EQ(s.completed_rounds(), 2u);
  EXPECT_THAT(s.message(), HasSubstr("privacy budget of dataset \"hospital-records\" spent"));
  EXPECT_NEAR(s.privacy().epsilon_spent(), EpsilonAfter(2), 1e-9);
  EXPECT_LE(s.privacy().epsilon_spent(), budget);
  EXPECT_GT(s.privacy().next_round_epsilon(), budget);
  ASSERT_EQ(s.rounds_size(), 2);
  EXPECT_NEAR(s.rounds(0).privacy().epsilon(), EpsilonAfter(1), 1e-9);
  EXPECT_NEAR(s.rounds(1).privacy().epsilon(), EpsilonAfter(2), 1e-9);
  EXPECT_TRUE(s.rounds(1).privacy().released());
  EXPECT_GT(s.rounds(1).privacy().order(), 1);
  EXPECT_EQ(s.rounds(1).train_loss(), 0);  // not released under DP

  // A new run on the same dataset cannot reset or enlarge the budget.
  EXPECT_THAT(runs_->CreateRun(DpConfig(budget), Weights(0), ""),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("cannot pay for one round")));
  EXPECT_THAT(runs_->CreateRun(DpConfig(100), Weights(0), ""),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("fixed by its first run")));
  // Another dataset has its own budget.
  wire::v1::RunConfig other = DpConfig(budget);
  other.mutable_differential_privacy()->set_dataset("bank-records");
  EXPECT_THAT(runs_->CreateRun(other, Weights(0), ""), IsOk());
}

TEST_F(RunManagerDpTest, UpdatesAreClippedAndNoisedAroundTheFixedDenominator) {
  // A tiny noise multiplier (and a budget it fits) to check the arithmetic.
  wire::v1::RunConfig config = DpConfig(1e6);
  config.mutable_differential_privacy()->set_noise_multiplier(1e-3);
  config.set_rounds(1);
  for (const char* c : {"a", "b", "c"}) Connect(c);
  absl::StatusOr<wire::v1::RunStatus> run = runs_->CreateRun(config, Weights(0), "");
  ASSERT_THAT(run, IsOk());
  ASSERT_THAT(runs_->StartRun(run->run_id()), IsOk());
  wire::v1::Task t = NextTask("a");
  ASSERT_THAT(runs_->BeginUpdate(t.task_id(), "a"), IsOk());
  EXPECT_THAT(runs_->SubmitUpdate(t.task_id(), "a", 1, {{"dp_unclipped", 0.5}}, Weights(5, 1),
                                  1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dp_unclipped")));
  TESSERA_ASSERT_OK(runs_->SubmitUpdate(t.task_id(), "a", 1, {{"dp_unclipped", 0}},
                                        Weights(5, 1), 1));
  for (const char* c : {"b", "c"}) {
    wire::v1::Task tc = NextTask(c);
    ASSERT_THAT(runs_->BeginUpdate(tc.task_id(), c), IsOk());
    TESSERA_ASSERT_OK(runs_->SubmitUpdate(tc.task_id(), c, 1, {}, Weights(5, 1), 1));
  }
  AwaitState(run->run_id(), wire::v1::COMPLETED);
  absl::StatusOr<RunManager::Export> model = runs_->ExportModel(run->run_id(), -1);
  ASSERT_THAT(model, IsOk());
  // Each update (5, 5, 5) is clipped to norm 1: 1/sqrt(3) per value; 3 of them over the
  // expected 3 clients, plus noise of stddev 1e-3 / 3.
  for (float v : model->model->weights.tensors[0].values<float>()) {
    EXPECT_NEAR(v, 1 / std::sqrt(3.0), 0.01);
  }
  // The integer tensor bypasses clipping and noise, so its delta is dropped.
  EXPECT_EQ(model->model->weights.tensors[1].values<int64_t>()[0], 0);
}

}  // namespace
}  // namespace tessera::coordinator
