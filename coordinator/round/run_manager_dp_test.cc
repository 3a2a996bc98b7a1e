// Differential privacy in RunManager: the per-dataset budget ledger is charged with every
// committed round, the run stops before the round that would exceed the budget, and neither
// a coordinator restart nor a new run on the same dataset resets it.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

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
  // A started one-round run over a, b and c with a tiny noise multiplier (and a budget it
  // fits), to check arithmetic; returns its id.
  std::string StartNearlyNoiselessRun() {
    wire::v1::RunConfig config = DpConfig(1e6);
    config.mutable_differential_privacy()->set_noise_multiplier(1e-3);
    config.set_rounds(1);
    for (const char* c : {"a", "b", "c"}) Connect(c);
    return CreateAndStartRun(config, Weights(0));
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
  Restart();
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
  const std::string run = StartNearlyNoiselessRun();
  ASSERT_FALSE(run.empty());
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
  AwaitState(run, wire::v1::COMPLETED);
  absl::StatusOr<RunManager::Export> model = runs_->ExportModel(run, -1);
  ASSERT_THAT(model, IsOk());
  // Each update (5, 5, 5) is clipped to norm 1: 1/sqrt(3) per value; 3 of them over the
  // expected 3 clients, plus noise of stddev 1e-3 / 3.
  for (float v : model->model->weights.tensors[0].values<float>()) {
    EXPECT_NEAR(v, 1 / std::sqrt(3.0), 0.01);
  }
  // The integer tensor bypasses clipping and noise, so its delta is dropped.
  EXPECT_EQ(model->model->weights.tensors[1].values<int64_t>()[0], 0);
}

// Hand-derived epsilon of `rounds` rounds of the unsampled (q = 1) Gaussian mechanism with
// noise multiplier z: RDP(alpha) = rounds * alpha / (2 z^2), converted with Balle et al.
// 2020 (Prop. 12), minimised over dp_accounting's default orders; written out here rather
// than taken from the accountant under test.
double HandEpsilonUnsampledGaussian(double z, int rounds, double delta) {
  std::vector<double> orders;
  for (int x = 1; x <= 99; ++x) orders.push_back(1 + x / 10.0);
  for (int a = 11; a <= 63; ++a) orders.push_back(a);
  for (double a : {128, 256, 512, 1024}) orders.push_back(a);
  double best = INFINITY;
  for (double a : orders) {
    const double rdp = rounds * a / (2 * z * z);
    best = std::min(best, rdp + std::log1p(-1 / a) - (std::log(delta) + std::log(a)) / (a - 1));
  }
  return best;
}

wire::v1::RunConfig AdaptiveConfig(double z, double count_stddev, double budget) {
  wire::v1::RunConfig c = RunManagerTest::Config(/*rounds=*/1, /*per_round=*/0,
                                                 /*min_clients=*/2);
  c.mutable_selection()->set_fraction(1.0);
  wire::v1::DifferentialPrivacyConfig* dp = c.mutable_differential_privacy();
  dp->set_mode(wire::v1::DifferentialPrivacyConfig::CENTRAL);
  dp->set_noise_multiplier(z);
  dp->set_clip_norm(1.0);
  dp->set_population(3);
  dp->set_expected_clients_per_round(3);
  dp->set_epsilon_budget(budget);
  dp->set_delta(1e-5);
  dp->set_dataset("adaptive-records");
  wire::v1::AdaptiveClippingConfig* a = dp->mutable_adaptive_clipping();
  a->set_enabled(true);
  a->set_target_quantile(0.5);
  a->set_learning_rate(0.2);
  a->set_clipped_count_stddev(count_stddev);
  return c;
}

TEST_F(RunManagerDpTest, AdaptiveClippingReleasesTheCentredCount) {
  // Nearly no noise (and a budget it fits): 2 of the 3 expected clients report, both within
  // the clip. Andrew et al. release (sum (b_i - 1/2)) / E + 1/2 = (2 - 1) / 3 + 1/2 = 5/6;
  // the raw count over E (2/3) would have sensitivity 1 where 1/2 is charged.
  for (const char* c : {"a", "b", "c"}) Connect(c);
  absl::StatusOr<wire::v1::RunStatus> run =
      runs_->CreateRun(AdaptiveConfig(1e-3, 1e-3, 1e6), Weights(0), "");
  ASSERT_THAT(run, IsOk());
  ASSERT_THAT(runs_->StartRun(run->run_id()), IsOk());
  for (const char* c : {"a", "b"}) {
    wire::v1::Task t = NextTask(c);
    ASSERT_THAT(runs_->BeginUpdate(t.task_id(), c), IsOk());
    TESSERA_ASSERT_OK(runs_->SubmitUpdate(t.task_id(), c, 1, {{"dp_unclipped", 1}},
                                          Weights(0.1f, 1), 1));
  }
  wire::v1::Task t = NextTask("c");
  TESSERA_ASSERT_OK(runs_->AbandonTask(t.task_id(), "c", "test"));
  wire::v1::RunStatus s = AwaitState(run->run_id(), wire::v1::COMPLETED);
  ASSERT_EQ(s.rounds_size(), 1);
  const wire::v1::PrivacyRoundStatus& p = s.rounds(0).privacy();
  EXPECT_NEAR(p.unclipped_fraction(), 5.0 / 6, 0.01);
  EXPECT_NEAR(p.next_clip_norm(), std::exp(-0.2 * (5.0 / 6 - 0.5)), 0.01);
}

TEST_F(RunManagerDpTest, AdaptiveClippingEpsilonMatchesTheCombinedNoiseMultiplier) {
  // z = 1 in all, sigma_b = 1 on the count: the update must get z_u with 1/z^2 = 1/z_u^2 +
  // 1/(2 sigma_b)^2. Measure z_u from the noise in the released model (zero updates, so the
  // model is the noise over E = 3), recombine it with Andrew et al.'s formula and compare
  // the run's epsilon with the hand-derived Gaussian epsilon at that multiplier.
  constexpr int kValues = 20000;
  ArrayRecord zeros;
  zeros.tensors.push_back(*Tensor::FromFloats("w", {kValues}, std::vector<float>(kValues, 0)));
  for (const char* c : {"a", "b", "c"}) Connect(c);
  absl::StatusOr<wire::v1::RunStatus> run =
      runs_->CreateRun(AdaptiveConfig(1.0, 1.0, 10), zeros, "");
  ASSERT_THAT(run, IsOk());
  ASSERT_THAT(runs_->StartRun(run->run_id()), IsOk());
  for (const char* c : {"a", "b", "c"}) {
    wire::v1::Task t = NextTask(c);
    ASSERT_THAT(runs_->BeginUpdate(t.task_id(), c), IsOk());
    TESSERA_ASSERT_OK(runs_->SubmitUpdate(t.task_id(), c, 1, {{"dp_unclipped", 1}}, zeros, 1));
  }
  wire::v1::RunStatus s = AwaitState(run->run_id(), wire::v1::COMPLETED);
  absl::StatusOr<RunManager::Export> model = runs_->ExportModel(run->run_id(), -1);
  ASSERT_THAT(model, IsOk());
  double sum_sq = 0;
  for (float v : model->model->weights.tensors[0].values<float>()) sum_sq += double{v} * v;
  const double z_u = std::sqrt(sum_sq / kValues) * 3 / 1.0;  // stddev * E / C
  // 4 standard errors of a sample stddev over 20,000 values: 2.8%.
  EXPECT_NEAR(z_u, 1 / std::sqrt(1 - 0.25), 0.028 * z_u);
  const double z_eff = 1 / std::sqrt(1 / (z_u * z_u) + 1 / (2.0 * 2.0));
  const double expected = HandEpsilonUnsampledGaussian(z_eff, 1, 1e-5);
  EXPECT_NEAR(s.privacy().epsilon_spent(), expected, 0.03 * expected);
  // And exactly, at the multiplier the config states.
  EXPECT_NEAR(s.privacy().epsilon_spent(), HandEpsilonUnsampledGaussian(1.0, 1, 1e-5), 1e-9);
}

TEST_F(RunManagerDpTest, NoExampleCountReachesAnyRoundSummary) {
  // Attempt 1 fails (one report of the two needed), attempt 2 commits. Clients that report
  // exact counts anyway (an honest client sends 1 under DP) leave no trace in the status of
  // either attempt: no example total, no training loss.
  const std::string run = StartNearlyNoiselessRun();
  ASSERT_FALSE(run.empty());
  wire::v1::Task t = NextTask("a");
  ASSERT_THAT(runs_->BeginUpdate(t.task_id(), "a"), IsOk());
  TESSERA_ASSERT_OK(runs_->SubmitUpdate(t.task_id(), "a", 1234,
                                        {{"train_loss", 0.5}, {"local_steps", 77}},
                                        Weights(1, 1), 1));
  for (const char* c : {"b", "c"}) {
    TESSERA_ASSERT_OK(runs_->AbandonTask(NextTask(c).task_id(), c, "test"));
  }
  for (const char* c : {"a", "b", "c"}) {
    wire::v1::Task retry = NextTask(c);
    ASSERT_EQ(retry.round(), 1u);
    ASSERT_THAT(runs_->BeginUpdate(retry.task_id(), c), IsOk());
    TESSERA_ASSERT_OK(runs_->SubmitUpdate(retry.task_id(), c, 4321,
                                          {{"train_loss", 0.5}, {"local_steps", 77}},
                                          Weights(1, 1), 1));
  }
  wire::v1::RunStatus s = AwaitState(run, wire::v1::COMPLETED);
  ASSERT_EQ(s.rounds_size(), 2) << s.DebugString();
  EXPECT_EQ(s.rounds(0).state(), wire::v1::ROUND_FAILED);
  EXPECT_EQ(s.rounds(1).state(), wire::v1::ROUND_COMPLETED);
  for (const wire::v1::RoundSummary& r : s.rounds()) {
    EXPECT_EQ(r.num_examples(), 0u) << r.DebugString();
    EXPECT_EQ(r.train_loss(), 0) << r.DebugString();
  }
}

}  // namespace
}  // namespace tessera::coordinator
