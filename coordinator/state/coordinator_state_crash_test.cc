// The restart guarantee under a hard crash: a child process commits a round and
// is killed with SIGKILL right after CommitRound returns, without closing the
// database; the parent then reopens the directory and must see the round. Runs
// in its own binary so that the fork happens before any RocksDB background
// thread exists in this process.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "coordinator/state/coordinator_state.h"
#include "core/base/testing/status_matchers.h"

namespace tessera {
namespace coordinator {
namespace {

ArrayRecord MakeModel(float value) {
  return ArrayRecord{
      {*Tensor::FromFloats("w", {3}, {value, value + 1, value + 2})}};
}

// The child's work. Exits with a distinct code at the first failure; raises
// SIGKILL on success so that nothing is flushed or closed.
[[noreturn]] void CommitRoundOneAndDie(const std::string& dir) {
  absl::StatusOr<std::unique_ptr<CoordinatorState>> state =
      CoordinatorState::Open(dir);
  if (!state.ok()) _exit(10);
  storage::v1::RunRecord run;
  run.set_run_id("crash");
  if (!(*state)->CreateRun(run, MakeModel(0), "artifact").ok()) _exit(11);
  wire::v1::RoundSummary summary;
  summary.set_round(1);
  summary.set_attempt(1);
  summary.set_state(wire::v1::ROUND_COMPLETED);
  run.set_completed_rounds(1);
  run.set_state(wire::v1::RUNNING);
  if (!(*state)->CommitRound(run, summary, MakeModel(1)).ok()) _exit(12);
  raise(SIGKILL);
  _exit(13);
}

TEST(CoordinatorStateCrashTest, CommittedRoundSurvivesSigkill) {
  std::string tmpl = testing::TempDir() + "coordinator_state_crash_test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
  const std::string dir = tmpl;

  const pid_t pid = fork();
  ASSERT_NE(pid, -1);
  if (pid == 0) CommitRoundOneAndDie(dir);
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(wstatus))
      << "child exited with code " << WEXITSTATUS(wstatus);
  ASSERT_EQ(WTERMSIG(wstatus), SIGKILL);

  absl::StatusOr<std::unique_ptr<CoordinatorState>> state =
      CoordinatorState::Open(dir);
  ASSERT_THAT(state, IsOk());
  absl::StatusOr<storage::v1::RunRecord> run = (*state)->GetRun("crash");
  ASSERT_THAT(run, IsOk());
  EXPECT_EQ(run->completed_rounds(), 1u);
  EXPECT_EQ(run->state(), wire::v1::RUNNING);
  absl::StatusOr<ArrayRecord> model = (*state)->LoadModel("crash", 1);
  ASSERT_THAT(model, IsOk());
  EXPECT_EQ(model->tensors[0].data(), MakeModel(1).tensors[0].data());
  EXPECT_THAT((*state)->ListRounds("crash"), IsOkAndHolds(testing::SizeIs(1)));
  EXPECT_THAT((*state)->LoadArtifact("crash"),
              IsOkAndHolds(std::string("artifact")));
  state->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace coordinator
}  // namespace tessera
