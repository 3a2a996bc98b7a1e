// "Charge, then release" (docs/privacy.md, "What is charged when"): a DP round's ledger
// charge is durable before its evaluation tasks, status or exports carry anything derived
// from the noised aggregate; a cancel, shutdown or restart after the release keeps exactly
// one charge per released attempt; a charge that cannot be written fails the run and
// releases nothing. Expected epsilons come from the closed form of the Gaussian's RDP,
// alpha k / (2 z^2) for k rounds at q = 1, converted in the test, not from the accountant.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "coordinator/round/gaussian_epsilon_for_tests.h"
#include "coordinator/round/run_manager.h"
#include "coordinator/round/run_manager_test_fixture.h"

namespace tessera::coordinator {
namespace {

using ::testing::HasSubstr;

constexpr double kZ = 2.0;
constexpr double kDelta = 1e-5;

double Epsilon(int k) { return GaussianEpsilonForTests(k, kZ, kDelta); }

class RunManagerLedgerTest : public RunManagerTest {
 protected:
  // Central DP over a, b and c (q = 1), every round evaluated on every client.
  static wire::v1::RunConfig DpConfig(uint32_t rounds) {
    wire::v1::RunConfig c = Config(rounds, /*per_round=*/0, /*min_clients=*/2, /*deadline=*/10,
                                   /*eval_every=*/1);
    c.mutable_selection()->set_fraction(1.0);
    c.mutable_evaluation()->set_deadline_seconds(30);
    wire::v1::DifferentialPrivacyConfig* dp = c.mutable_differential_privacy();
    dp->set_mode(wire::v1::DifferentialPrivacyConfig::CENTRAL);
    dp->set_noise_multiplier(kZ);
    dp->set_clip_norm(1.0);
    dp->set_population(3);
    dp->set_expected_clients_per_round(3);
    dp->set_epsilon_budget(1e6);
    dp->set_delta(kDelta);
    dp->set_dataset("hospital-records");
    return c;
  }
  std::string StartRun(uint32_t rounds) {
    for (const char* c : {"a", "b", "c"}) Connect(c);
    return CreateAndStartRun(DpConfig(rounds), Weights(0));
  }
  // Answers the TRAIN tasks of `round` on a, b and c.
  void Train(uint32_t round) {
    for (const char* c : {"a", "b", "c"}) {
      wire::v1::Task t = NextTask(c);
      ASSERT_EQ(t.type(), wire::v1::TRAIN);
      ASSERT_EQ(t.round(), round);
      TESSERA_ASSERT_OK(Answer(c, t, 0.5f, 1));
    }
  }
  // Waits for the EVALUATE tasks of `round`: the new model is leaving the coordinator.
  std::vector<wire::v1::Task> EvaluationTasks(uint32_t round) {
    std::vector<wire::v1::Task> tasks;
    for (const char* c : {"a", "b", "c"}) {
      tasks.push_back(NextTask(c));
      EXPECT_EQ(tasks.back().type(), wire::v1::EVALUATE);
      EXPECT_EQ(tasks.back().round(), round);
    }
    return tasks;
  }
  void Evaluate(const std::vector<wire::v1::Task>& tasks) {
    const char* names[] = {"a", "b", "c"};
    for (size_t i = 0; i < tasks.size(); ++i) {
      TESSERA_ASSERT_OK(runs_->SubmitEvaluation(tasks[i].task_id(), names[i], 10, 1.0, 0.5));
    }
  }
  uint32_t RoundsCharged() {
    absl::StatusOr<std::optional<storage::v1::PrivacyLedgerRecord>> l =
        state_->GetLedger("hospital-records");
    EXPECT_THAT(l, IsOk());
    return l.ok() && l->has_value() ? (*l)->rounds_charged() : 0;
  }
  // `run` has exactly one release charge: `round`'s attempt `attempt`.
  void ExpectOneCharge(const std::string& run, uint32_t round, uint32_t attempt) {
    absl::StatusOr<std::vector<CoordinatorState::ReleaseCharge>> charges =
        state_->ListReleaseCharges(run);
    ASSERT_THAT(charges, IsOk());
    ASSERT_EQ(charges->size(), 1u);
    EXPECT_EQ((*charges)[0].round, round);
    EXPECT_EQ((*charges)[0].attempt, attempt);
  }
  double EpsilonSpent() { return (*state_->GetLedger("hospital-records"))->epsilon_spent(); }
};

// The evaluation tasks of a round carry the new model: the charge is already durable (and
// the ledger's epsilon is that of one round) when they arrive, and the commit after the
// evaluation does not charge the round a second time.
TEST_F(RunManagerLedgerTest, ChargeIsDurableBeforeEvaluationTasksLeave) {
  const std::string run = StartRun(2);
  Train(1);
  const std::vector<wire::v1::Task> eval = EvaluationTasks(1);
  EXPECT_EQ(RoundsCharged(), 1u);
  EXPECT_NEAR(EpsilonSpent(), Epsilon(1), 1e-9);
  ASSERT_NO_FATAL_FAILURE(ExpectOneCharge(run, 1, 1));
  EXPECT_EQ(runs_->GetRunStatus(run)->privacy().rounds_charged(), 1u);
  Evaluate(eval);
  Train(2);
  Evaluate(EvaluationTasks(2));
  const wire::v1::RunStatus s = AwaitState(run, wire::v1::COMPLETED);
  EXPECT_EQ(s.completed_rounds(), 2u);
  EXPECT_EQ(RoundsCharged(), 2u);
  EXPECT_NEAR(EpsilonSpent(), Epsilon(2), 1e-9);
  EXPECT_NEAR(s.privacy().epsilon_spent(), Epsilon(2), 1e-9);
}

// The ledger cannot be written (a failing disk): the run fails naming the ledger write, no
// evaluation task is sent, no status ever shows the released round, nothing is committed
// (an export is still the initial model) and the ledger is unchanged.
TEST_F(RunManagerLedgerTest, ChargeThatCannotBeWrittenFailsTheRunAndReleasesNothing) {
  const std::string run = StartRun(2);
  absl::Mutex seen_mu;
  std::vector<wire::v1::RunStatus> seen;
  absl::StatusOr<uint64_t> watcher =
      runs_->AddWatcher(run, [&](const wire::v1::RunStatus& s) {
        absl::MutexLock l(&seen_mu);
        seen.push_back(s);
      });
  ASSERT_THAT(watcher, IsOk());
  state_->TEST_FailLedgerCharges(absl::UnavailableError("injected: no space left on device"));
  Train(1);
  const wire::v1::RunStatus s = AwaitState(run, wire::v1::FAILED);
  EXPECT_THAT(s.message(), HasSubstr("cannot write the privacy ledger charge of round 1"));
  EXPECT_THAT(s.message(), HasSubstr("no space left on device"));
  runs_->RemoveWatcher(*watcher);
  absl::SleepFor(absl::Milliseconds(300));
  {
    absl::MutexLock l(&mu_);
    for (const auto& [client, tasks] : tasks_) {
      EXPECT_TRUE(tasks.empty()) << client << " got " << tasks.front().DebugString();
    }
  }
  EXPECT_EQ(s.completed_rounds(), 0u);
  absl::MutexLock l(&seen_mu);
  seen.push_back(*runs_->GetRunStatus(run));
  for (const wire::v1::RunStatus& status : seen) {
    EXPECT_EQ(status.privacy().rounds_charged(), 0u);
    for (const wire::v1::RoundSummary& r : status.rounds()) {
      EXPECT_FALSE(r.privacy().released()) << r.DebugString();
      EXPECT_TRUE(r.model_sha256().empty()) << r.DebugString();
      EXPECT_NE(r.state(), wire::v1::ROUND_EVALUATING) << r.DebugString();
    }
  }
  absl::StatusOr<RunManager::Export> exported = runs_->ExportModel(run, -1);
  ASSERT_THAT(exported, IsOk());
  EXPECT_EQ(exported->round, 0u);
  state_->TEST_FailLedgerCharges(absl::OkStatus());
  EXPECT_EQ(RoundsCharged(), 0u);
  EXPECT_TRUE(state_->ListReleaseCharges(run)->empty());
}

// Cancelled while the released round is being evaluated: the charge stays, a restart
// records the attempt as failed without charging it again, and the run stays cancelled.
TEST_F(RunManagerLedgerTest, CancelAfterReleaseKeepsOneCharge) {
  const std::string run = StartRun(2);
  Train(1);
  EvaluationTasks(1);
  ASSERT_THAT(runs_->CancelRun(run), IsOk());
  EXPECT_EQ(RoundsCharged(), 1u);
  Restart();
  const wire::v1::RunStatus s = *runs_->GetRunStatus(run);
  EXPECT_EQ(s.state(), wire::v1::CANCELLED);
  EXPECT_EQ(s.privacy().rounds_charged(), 1u);
  ASSERT_EQ(s.rounds_size(), 1);
  EXPECT_EQ(s.rounds(0).state(), wire::v1::ROUND_FAILED);
  EXPECT_TRUE(s.rounds(0).privacy().released());
  EXPECT_THAT(s.rounds(0).failure_reason(), HasSubstr("release was charged"));
  // The fixture expects 3 clients of a population of 3: q = 1 (it was recorded as 0).
  EXPECT_EQ(s.rounds(0).privacy().sampling_rate(), 1.0);
  EXPECT_EQ(RoundsCharged(), 1u);
  EXPECT_NEAR(EpsilonSpent(), Epsilon(1), 1e-9);
  Restart();  // a second restart changes nothing
  EXPECT_EQ(RoundsCharged(), 1u);
  EXPECT_EQ(runs_->GetRunStatus(run)->rounds_size(), 1);
}

// Shut down while the released round is being evaluated: after the restart the round runs
// again as attempt 2, a new release with a charge of its own; the interrupted attempt is
// charged once. Two releases of round 1 plus round 2: three charges.
TEST_F(RunManagerLedgerTest, ShutdownAfterReleaseChargesEveryReleasedAttemptOnce) {
  const std::string run = StartRun(2);
  Train(1);
  EvaluationTasks(1);
  runs_->Shutdown();
  EXPECT_EQ(RoundsCharged(), 1u);
  Restart();
  Train(1);
  Evaluate(EvaluationTasks(1));
  Train(2);
  Evaluate(EvaluationTasks(2));
  const wire::v1::RunStatus s = AwaitState(run, wire::v1::COMPLETED);
  ASSERT_EQ(s.rounds_size(), 3);
  EXPECT_EQ(s.rounds(0).attempt(), 1u);
  EXPECT_EQ(s.rounds(0).state(), wire::v1::ROUND_FAILED);
  EXPECT_EQ(s.rounds(1).round(), 1u);
  EXPECT_EQ(s.rounds(1).attempt(), 2u);
  EXPECT_EQ(s.rounds(1).state(), wire::v1::ROUND_COMPLETED);
  EXPECT_EQ(RoundsCharged(), 3u);
  EXPECT_NEAR(EpsilonSpent(), Epsilon(3), 1e-9);
  EXPECT_NEAR(s.privacy().epsilon_spent(), Epsilon(3), 1e-9);
}

// A distributed-DP session completed (the coordinator held the noised sum) and the process
// died before the round's station charged it: the restart charges that attempt once and
// records it as failed, and a second restart charges nothing more. Recount: one completed
// session, one charge.
TEST_F(RunManagerLedgerTest, DistributedSumComputedBeforeACrashIsChargedOnceOnRestart) {
  wire::v1::RunConfig c = DpConfig(2);
  wire::v1::DifferentialPrivacyConfig* dp = c.mutable_differential_privacy();
  dp->set_mode(wire::v1::DifferentialPrivacyConfig::DISTRIBUTED);
  dp->set_modulus_bits(20);
  wire::v1::SecureAggregationConfig* sa = c.mutable_secure_aggregation();
  sa->set_enabled(true);
  sa->set_dropout_fraction(0.0);
  sa->set_corrupt_fraction(0.0);
  sa->set_security_bits(40);
  sa->set_clip(1.0);
  sa->set_value_bits(16);
  sa->set_max_examples(1);
  sa->set_phase_deadline_seconds(10);
  absl::StatusOr<wire::v1::RunStatus> created = runs_->CreateRun(c, Weights(0), "");
  ASSERT_THAT(created, IsOk());
  const std::string run = created->run_id();
  storage::v1::SecAggSessionRecord session;
  session.set_run_id(run);
  session.set_round(1);
  session.set_attempt(1);
  session.set_session_id("0123456789abcdef0123456789abcdef");
  session.set_state(storage::v1::SecAggSessionRecord::COMPLETED);
  session.set_phase("Completed");
  TESSERA_ASSERT_OK(state_->PutSecAggSession(session));
  EXPECT_EQ(RoundsCharged(), 0u);

  // A charge that cannot be written stops the restart, naming the run; nothing is charged.
  Reopen();
  state_->TEST_FailLedgerCharges(absl::UnavailableError("injected: no space left on device"));
  EXPECT_THAT(runs_->Recover(),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("cannot charge the privacy cost of run " + run + " round 1")));
  EXPECT_EQ(RoundsCharged(), 0u);

  Restart();
  EXPECT_EQ(RoundsCharged(), 1u);
  const double once = EpsilonSpent();
  EXPECT_GT(once, 0.0);
  ASSERT_NO_FATAL_FAILURE(ExpectOneCharge(run, 1, 1));
  absl::StatusOr<std::vector<wire::v1::RoundSummary>> rounds = state_->ListRounds(run);
  ASSERT_THAT(rounds, IsOk());
  ASSERT_EQ(rounds->size(), 1u);
  EXPECT_EQ((*rounds)[0].state(), wire::v1::ROUND_FAILED);
  EXPECT_TRUE((*rounds)[0].privacy().released());

  Restart();
  EXPECT_EQ(RoundsCharged(), 1u);
  EXPECT_EQ(EpsilonSpent(), once);
}

}  // namespace
}  // namespace tessera::coordinator
