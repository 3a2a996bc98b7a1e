// RunManager without gRPC: clients are registry entries whose task streams land in a queue.
#include "coordinator/round/run_manager.h"
#include "coordinator/round/run_manager_test_fixture.h"

#include <filesystem>
#include <map>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "core/base/testing/status_matchers.h"
#include "privacy/crypto/random.h"

namespace tessera::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;


TEST_F(RunManagerTest, WeightedFedAvgOverTwoRoundsThenCompletes) {
  Connect("a");
  Connect("b");
  const std::string run = CreateAndStartRun(Config(2, 2, 2), Weights(1.0f));
  ASSERT_FALSE(run.empty());
  for (int round = 1; round <= 2; ++round) {
    wire::v1::Task ta = NextTask("a");
    wire::v1::Task tb = NextTask("b");
    EXPECT_EQ(ta.round(), static_cast<uint32_t>(round));
    EXPECT_EQ(ta.type(), wire::v1::TRAIN);
    // Deltas 1 (weight 1) and 4 (weight 3): mean 3.25.
    TESSERA_ASSERT_OK(Answer("a", ta, 1.0f, 1));
    TESSERA_ASSERT_OK(Answer("b", tb, 4.0f, 3));
  }
  wire::v1::RunStatus s = AwaitState(run, wire::v1::COMPLETED);
  EXPECT_EQ(s.completed_rounds(), 2u);
  ASSERT_EQ(s.rounds_size(), 2);
  EXPECT_EQ(s.rounds(1).reported(), 2u);
  EXPECT_EQ(s.rounds(1).num_examples(), 4u);
  auto exported = runs_->ExportModel(run, -1);
  ASSERT_THAT(exported, IsOk());
  EXPECT_FLOAT_EQ(exported->model->weights.tensors[0].values<float>()[0], 1.0f + 2 * 3.25f);
  EXPECT_EQ(exported->model->weights.tensors[1].values<int64_t>()[0], 2);
}

// Lock discipline (docs/architecture.md, "Locks and I/O"): while a round's commit is on its
// way to disk, status calls are answered at once, and show the round only once it is
// durable. Before, the commit held the run's lock across the write, so GetRunStatus waited
// for the whole commit (seconds for a 100M-parameter model).
TEST_F(RunManagerTest, StatusIsAnsweredWhileARoundCommits) {
  Connect("a");
  auto run = runs_->CreateRun(Config(1, 1, 1), Weights(1.0f), "");
  ASSERT_THAT(run, IsOk());
  absl::Notification entered, release;
  state_->TEST_SetBeforeCommitWrite([&] {
    entered.Notify();
    release.WaitForNotification();
  });
  ASSERT_THAT(runs_->StartRun(run->run_id()), IsOk());
  TESSERA_ASSERT_OK(Answer("a", NextTask("a"), 1.0f, 1));
  ASSERT_TRUE(entered.WaitForNotificationWithTimeout(absl::Seconds(10)));
  absl::Notification answered;
  absl::StatusOr<wire::v1::RunStatus> during;
  std::thread status([&] {
    during = runs_->GetRunStatus(run->run_id());
    answered.Notify();
  });
  const bool in_time = answered.WaitForNotificationWithTimeout(absl::Seconds(5));
  release.Notify();
  status.join();
  state_->TEST_SetBeforeCommitWrite(nullptr);
  EXPECT_TRUE(in_time) << "GetRunStatus waited for the commit";
  ASSERT_THAT(during, IsOk());
  EXPECT_EQ(during->completed_rounds(), 0u);  // not published before it is durable
  wire::v1::RunStatus s = AwaitState(run->run_id(), wire::v1::COMPLETED);
  EXPECT_EQ(s.completed_rounds(), 1u);
}

TEST_F(RunManagerTest, BadUpdatesAreRejectedAndLeaveTheSumUnchanged) {
  Connect("a");
  Connect("b");
  const std::string run = CreateAndStartRun(Config(1, 2, 2), Weights(0.0f));
  ASSERT_FALSE(run.empty());
  wire::v1::Task ta = NextTask("a");
  wire::v1::Task tb = NextTask("b");
  // Unknown task, someone else's task, bad example count, NaN, wrong layout.
  EXPECT_THAT(runs_->BeginUpdate("nope", "a"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(runs_->BeginUpdate(tb.task_id(), "a"),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("not assigned")));
  EXPECT_THAT(runs_->SubmitUpdate(ta.task_id(), "a", 0, {}, Weights(1), 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_examples")));
  ArrayRecord nan = Weights(std::nanf(""));
  EXPECT_THAT(runs_->SubmitUpdate(ta.task_id(), "a", 1, {}, nan, 1),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ArrayRecord wrong;
  wrong.tensors.push_back(*Tensor::FromFloats("w", {2}, {1, 1}));
  EXPECT_THAT(runs_->SubmitUpdate(ta.task_id(), "a", 1, {}, wrong, 1),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(runs_->SubmitUpdate(ta.task_id(), "a", 1, {{"train_loss", INFINITY}}, Weights(1), 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("train_loss")));
  // Then good updates; a second update for the same task is refused.
  TESSERA_ASSERT_OK(Answer("a", ta, 2.0f, 1));
  EXPECT_THAT(Answer("a", ta, 2.0f, 1), StatusIs(absl::StatusCode::kAlreadyExists));
  TESSERA_ASSERT_OK(Answer("b", tb, 2.0f, 1));
  AwaitState(run, wire::v1::COMPLETED);
  auto exported = runs_->ExportModel(run, 1);
  ASSERT_THAT(exported, IsOk());
  EXPECT_FLOAT_EQ(exported->model->weights.tensors[0].values<float>()[0], 2.0f);
  // The round is closed now.
  EXPECT_THAT(Answer("a", ta, 2.0f, 1), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(RunManagerTest, MissingReportsFailTheAttemptAndTheRoundIsRetried) {
  Connect("a");
  Connect("b");
  // 2 s: a must answer before attempt 1's deadline and both before attempt 2's, which a
  // thread starved for CPU under TSan at high load could miss at 0.5 s.
  const std::string run = CreateAndStartRun(Config(1, 2, 2, /*deadline=*/2.0), Weights(0.0f));
  ASSERT_FALSE(run.empty());
  TESSERA_ASSERT_OK(Answer("a", NextTask("a"), 1.0f, 1));
  NextTask("b");  // b never answers: attempt 1 fails at the deadline
  wire::v1::Task a2 = NextTask("a");
  wire::v1::Task b2 = NextTask("b");
  EXPECT_EQ(a2.round(), 1u);
  TESSERA_ASSERT_OK(Answer("a", a2, 1.0f, 1));
  TESSERA_ASSERT_OK(Answer("b", b2, 1.0f, 1));
  wire::v1::RunStatus s = AwaitState(run, wire::v1::COMPLETED);
  ASSERT_EQ(s.rounds_size(), 2);
  EXPECT_EQ(s.rounds(0).state(), wire::v1::ROUND_FAILED);
  EXPECT_THAT(s.rounds(0).failure_reason(), HasSubstr("1 of 2 selected clients reported"));
  EXPECT_EQ(s.rounds(1).state(), wire::v1::ROUND_COMPLETED);
  EXPECT_EQ(s.rounds(1).attempt(), 2u);
  // Per-phase time: the failed attempt got through selection and training (its 2 s
  // deadline); the completed one through all four. The phases add up to the attempt's time
  // (within 50 ms: each phase is rounded to the millisecond, and the attempt's end is read
  // after its last phase ends).
  auto names = [](const wire::v1::RoundSummary& r) {
    std::vector<std::string> out;
    double total = 0;
    for (const auto& p : r.phases()) {
      out.push_back(p.phase());
      total += p.seconds();
    }
    EXPECT_NEAR(total, r.seconds(), 0.05);
    return out;
  };
  EXPECT_THAT(names(s.rounds(0)), ElementsAre("select", "train"));
  EXPECT_GE(s.rounds(0).phases(1).seconds(), 1.95);
  EXPECT_THAT(names(s.rounds(1)), ElementsAre("select", "train", "aggregate", "evaluate"));
  EXPECT_GT(s.rounds(1).started_unix_ms(), s.rounds(0).started_unix_ms());
}

TEST_F(RunManagerTest, UnansweredTasksAreSentAgainWhenTheClientSubscribesAgain) {
  Connect("a");
  Connect("b");
  const std::string run = CreateAndStartRun(Config(1, 2, 2), Weights(0.0f));
  ASSERT_FALSE(run.empty());
  wire::v1::Task ta = NextTask("a");
  wire::v1::Task tb = NextTask("b");
  EXPECT_EQ(runs_->ResendOpenTasks("a"), 1u);  // as if a's subscription had died with it
  EXPECT_EQ(NextTask("a").task_id(), ta.task_id());
  TESSERA_ASSERT_OK(Answer("a", ta, 1.0f, 1));
  EXPECT_EQ(runs_->ResendOpenTasks("a"), 0u) << "an answered task is not sent again";
  EXPECT_EQ(runs_->ResendOpenTasks("nobody"), 0u);
  TESSERA_ASSERT_OK(Answer("b", tb, 1.0f, 1));
  AwaitState(run, wire::v1::COMPLETED);
  EXPECT_EQ(runs_->ResendOpenTasks("b"), 0u) << "a closed round's tasks are not sent again";
}

TEST_F(RunManagerTest, RunFailsAfterMaxRetries) {
  wire::v1::RunConfig config = Config(1, 2, 2, 0.2);
  config.mutable_selection()->set_wait_for_clients_seconds(0.2);
  const std::string run = CreateAndStartRun(config, Weights(0.0f));
  ASSERT_FALSE(run.empty());
  wire::v1::RunStatus s;
  for (int i = 0; i < 500; ++i) {  // no clients at all: both attempts fail
    s = *runs_->GetRunStatus(run);
    if (s.state() == wire::v1::FAILED) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(s.state(), wire::v1::FAILED);
  EXPECT_THAT(s.message(), HasSubstr("only 0 clients connected"));
}

TEST_F(RunManagerTest, EvaluationIsAggregatedByExamples) {
  Connect("a");
  Connect("b");
  const std::string run = CreateAndStartRun(Config(1, 2, 2, 10, /*eval_every=*/1), Weights(0.0f));
  ASSERT_FALSE(run.empty());
  TESSERA_ASSERT_OK(Answer("a", NextTask("a"), 1.0f, 1));
  TESSERA_ASSERT_OK(Answer("b", NextTask("b"), 1.0f, 1));
  wire::v1::Task ea = NextTask("a");
  wire::v1::Task eb = NextTask("b");
  EXPECT_EQ(ea.type(), wire::v1::EVALUATE);
  EXPECT_THAT(runs_->BeginUpdate(ea.task_id(), "a"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(runs_->SubmitEvaluation(ea.task_id(), "a", 10, 0.5, 1.5),
              StatusIs(absl::StatusCode::kInvalidArgument));
  TESSERA_ASSERT_OK(runs_->SubmitEvaluation(ea.task_id(), "a", 100, 0.5, 0.9));
  TESSERA_ASSERT_OK(runs_->SubmitEvaluation(eb.task_id(), "b", 300, 1.0, 0.5));
  wire::v1::RunStatus s = AwaitState(run, wire::v1::COMPLETED);
  EXPECT_NEAR(s.rounds(0).eval_accuracy(), 0.6, 1e-9);
  EXPECT_NEAR(s.rounds(0).eval_loss(), 0.875, 1e-9);
  EXPECT_EQ(s.rounds(0).evaluated(), 2u);
}

TEST_F(RunManagerTest, RestartResumesAtTheLastCompletedRound) {
  Connect("a");
  const std::string run = CreateAndStartRun(Config(3, 1, 1), Weights(0.0f));
  ASSERT_FALSE(run.empty());
  TESSERA_ASSERT_OK(Answer("a", NextTask("a"), 1.0f, 1));
  wire::v1::Task in_flight = NextTask("a");  // round 2 is in flight when we "crash"
  EXPECT_EQ(in_flight.round(), 2u);
  runs_.reset();
  state_.reset();
  Open();
  TESSERA_ASSERT_OK(runs_->Recover());
  wire::v1::RunStatus s = *runs_->GetRunStatus(run);
  EXPECT_EQ(s.completed_rounds(), 1u);
  EXPECT_EQ(s.state(), wire::v1::RUNNING);
  // The old task is unknown now; the round is re-dispatched.
  EXPECT_THAT(Answer("a", in_flight, 1.0f, 1), StatusIs(absl::StatusCode::kNotFound));
  for (int i = 0; i < 2; ++i) TESSERA_ASSERT_OK(Answer("a", NextTask("a"), 1.0f, 1));
  s = AwaitState(run, wire::v1::COMPLETED);
  auto exported = runs_->ExportModel(run, -1);
  EXPECT_FLOAT_EQ(exported->model->weights.tensors[0].values<float>()[0], 3.0f);
}

TEST_F(RunManagerTest, InvalidRunsAndStateTransitions) {
  wire::v1::RunConfig bad = Config(0, 1, 1);
  EXPECT_THAT(runs_->CreateRun(bad, Weights(0), ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("rounds")));
  EXPECT_THAT(runs_->CreateRun(Config(1, 1, 1), ArrayRecord{}, ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no tensors")));
  EXPECT_THAT(runs_->CreateRun(Config(1, 1, 1), Weights(INFINITY), ""),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(runs_->StartRun("nope"), StatusIs(absl::StatusCode::kNotFound));
  auto run = runs_->CreateRun(Config(1, 1, 1), Weights(0), "");
  ASSERT_THAT(run, IsOk());
  ASSERT_THAT(runs_->CancelRun(run->run_id()), IsOk());
  EXPECT_THAT(runs_->StartRun(run->run_id()), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(runs_->CancelRun(run->run_id()), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(runs_->ExportModel(run->run_id(), 5), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(runs_->ExportModel(run->run_id(), 0), IsOk());
}

}  // namespace
}  // namespace tessera::coordinator
