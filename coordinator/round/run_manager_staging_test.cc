// RunManager with staged folds (RunManagerOptions::fold_memory_bytes, update_staging.h):
// rounds give the values worked out by hand, each accepted update is a file until the round
// ends, and no file outlives its round (completed, failed or interrupted by a restart).
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "coordinator/round/run_manager.h"
#include "coordinator/round/run_manager_test_fixture.h"
#include "core/base/status_macros.h"
#include "core/base/testing/status_matchers.h"

namespace tessera::coordinator {
namespace {

using ::testing::HasSubstr;

size_t FilesIn(const std::filesystem::path& dir) {
  size_t n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) ++n;
  }
  return n;
}

class RunManagerStagingTest : public RunManagerTest {
 public:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("rm-staging-" + crypto::RandomHexId(6));
    std::filesystem::create_directories(dir_);
    options_.staging_dir = (dir_ / "staging").string();
    options_.fold_memory_bytes = 0;  // every weighted mean is staged
    Open();
    TESSERA_ASSERT_OK(runs_->Recover());
  }
  std::filesystem::path staging() const { return dir_ / "staging"; }
  std::vector<float> W(const std::string& run) {
    auto exported = runs_->ExportModel(run, -1);
    EXPECT_THAT(exported, IsOk());
    if (!exported.ok()) return {};
    const Tensor& w = exported->model->weights.tensors[0];
    return {w.values<float>().begin(), w.values<float>().end()};
  }
};

// Round 1: deltas 1 (1 example) and 4 (3 examples) average to (1 + 12) / 4 = 3.25, so w goes
// from 1 to 4.25; round 2: deltas 2 (2 examples) and -2 (2 examples) average to 0: 4.25.
TEST_F(RunManagerStagingTest, StagedRoundsGiveTheHandValuesAndLeaveNoFiles) {
  Connect("a");
  Connect("b");
  auto run = runs_->CreateRun(Config(2, 2, 2), Weights(1), "");
  TESSERA_ASSERT_OK(run.status());
  TESSERA_ASSERT_OK(runs_->StartRun(run->run_id()).status());
  wire::v1::Task ta = NextTask("a");
  wire::v1::Task tb = NextTask("b");
  TESSERA_ASSERT_OK(Answer("a", ta, 1, 1));
  // The accepted update waits on disk, not in a running sum.
  EXPECT_EQ(FilesIn(staging()), 1u);
  TESSERA_ASSERT_OK(Answer("b", tb, 4, 3));
  ta = NextTask("a");
  tb = NextTask("b");
  EXPECT_EQ(FilesIn(staging()), 0u) << "round 1's files outlived it";
  TESSERA_ASSERT_OK(Answer("a", ta, 2, 2));
  TESSERA_ASSERT_OK(Answer("b", tb, -2, 2));
  AwaitState(run->run_id(), wire::v1::COMPLETED);
  EXPECT_THAT(W(run->run_id()), ::testing::ElementsAre(4.25f, 4.25f, 4.25f));
  EXPECT_EQ(FilesIn(staging()), 0u);
}

// An attempt that fails (one of the two required updates by its 2 s deadline) removes the
// update it had staged before the next attempt is dispatched; the next attempt averages only
// its own updates: (1 * 2 + 1 * 4) / 2 = 3, so w = 1 + 3 = 4 (not 1 + 100 from attempt 1).
TEST_F(RunManagerStagingTest, AFailedAttemptRemovesItsFiles) {
  Connect("a");
  Connect("b");
  // (2 s, not 0.5: FilesIn must see a's file before the deadline, and both answers must
  // reach attempt 2 before its own, also in a TSan build on a loaded machine.)
  auto run = runs_->CreateRun(Config(1, 2, 2, /*deadline=*/2.0), Weights(1), "");
  TESSERA_ASSERT_OK(run.status());
  TESSERA_ASSERT_OK(runs_->StartRun(run->run_id()).status());
  TESSERA_ASSERT_OK(Answer("a", NextTask("a"), 100, 1));
  EXPECT_EQ(FilesIn(staging()), 1u);
  NextTask("b");  // b never answers: attempt 1 fails at the deadline
  wire::v1::Task a2 = NextTask("a");
  wire::v1::Task b2 = NextTask("b");
  EXPECT_EQ(FilesIn(staging()), 0u) << "the failed attempt's update outlived it";
  TESSERA_ASSERT_OK(Answer("a", a2, 2, 1));
  TESSERA_ASSERT_OK(Answer("b", b2, 4, 1));
  wire::v1::RunStatus s = AwaitState(run->run_id(), wire::v1::COMPLETED);
  EXPECT_EQ(s.rounds(0).state(), wire::v1::ROUND_FAILED);
  EXPECT_THAT(W(run->run_id()), ::testing::ElementsAre(4.0f, 4.0f, 4.0f));
  EXPECT_EQ(FilesIn(staging()), 0u);
}

// The next model is computed in the global model's own buffers (train_round.cc): tensor w
// first, then steps. Attempt 1's steps overflow int64 (max + 1) after w's buffer already
// holds 1 + 100: the attempt fails, and attempt 2 starts again from the stored model, not
// from that buffer: w = 1 + (2 + 4) / 2 = 4, steps = max - 1.
TEST_F(RunManagerStagingTest, AnAggregateThatFailsInTheGlobalsBuffersIsRetriedFromTheStoredModel) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  Connect("a");
  Connect("b");
  auto run = runs_->CreateRun(Config(1, 2, 2), Weights(1, kMax), "");
  TESSERA_ASSERT_OK(run.status());
  TESSERA_ASSERT_OK(runs_->StartRun(run->run_id()).status());
  TESSERA_ASSERT_OK(Answer("a", NextTask("a"), 100, 1));  // steps delta 1
  TESSERA_ASSERT_OK(Answer("b", NextTask("b"), 100, 1));
  auto answer = [&](const std::string& client, float delta) {
    const wire::v1::Task t = NextTask(client);
    TESSERA_RETURN_IF_ERROR(runs_->BeginUpdate(t.task_id(), client).status());
    return runs_->SubmitUpdate(t.task_id(), client, 1, {{"train_loss", 1.0}},
                               Weights(delta, -1), 100);
  };
  TESSERA_ASSERT_OK(answer("a", 2));
  TESSERA_ASSERT_OK(answer("b", 4));
  wire::v1::RunStatus s = AwaitState(run->run_id(), wire::v1::COMPLETED);
  ASSERT_GE(s.rounds_size(), 2);
  EXPECT_EQ(s.rounds(0).state(), wire::v1::ROUND_FAILED);
  EXPECT_THAT(s.rounds(0).failure_reason(), HasSubstr("\"steps\": int64 sum overflows"));
  EXPECT_THAT(W(run->run_id()), ::testing::ElementsAre(4.0f, 4.0f, 4.0f));
  auto exported = runs_->ExportModel(run->run_id(), -1);
  TESSERA_ASSERT_OK(exported.status());
  EXPECT_EQ(exported->model->weights.tensors[1].values<int64_t>()[0], kMax - 1);
  EXPECT_EQ(FilesIn(staging()), 0u);
}

// A restart in the middle of a round: the staged update of the interrupted attempt is
// removed by Recover, and the resumed round averages only what arrives after it.
TEST_F(RunManagerStagingTest, ARestartRemovesStagedUpdatesOfTheInterruptedRound) {
  Connect("a");
  Connect("b");
  auto run = runs_->CreateRun(Config(1, 2, 2), Weights(1), "");
  TESSERA_ASSERT_OK(run.status());
  TESSERA_ASSERT_OK(runs_->StartRun(run->run_id()).status());
  TESSERA_ASSERT_OK(Answer("a", NextTask("a"), 100, 1));
  NextTask("b");
  EXPECT_EQ(FilesIn(staging()), 1u);
  // A stopping RunManager removes its rounds' files itself; what a crash (SIGKILL) would
  // leave behind is planted by hand.
  std::filesystem::create_directories(staging() / "99");
  std::ofstream(staging() / "99" / "0.update") << "left by a crash";
  Restart();
  EXPECT_EQ(FilesIn(staging()), 0u);
  // (1 * 2 + 1 * 4) / 2 = 3: the delta of 100 from before the restart is not in it.
  TESSERA_ASSERT_OK(Answer("a", NextTask("a"), 2, 1));
  TESSERA_ASSERT_OK(Answer("b", NextTask("b"), 4, 1));
  AwaitState(run->run_id(), wire::v1::COMPLETED);
  EXPECT_THAT(W(run->run_id()), ::testing::ElementsAre(4.0f, 4.0f, 4.0f));
  EXPECT_EQ(FilesIn(staging()), 0u);
}

}  // namespace
}  // namespace tessera::coordinator
