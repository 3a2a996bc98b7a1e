// Run lifecycle: retention of round models, active-run limits, unreadable runs at start-up,
// lazy loading of ended runs, archive and delete (docs/operations.md, "Runs and retention").
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_format.h"

#include "coordinator/round/run_manager.h"
#include "coordinator/round/run_manager_test_fixture.h"
#include "core/base/testing/status_matchers.h"

namespace tessera::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class RunLifecycleTest : public RunManagerTest {
 protected:
  // A run of `rounds` rounds with client "a", driven to COMPLETED.
  std::string CompletedRun(uint32_t rounds, uint32_t keep_last = 0, uint32_t keep_every = 0) {
    wire::v1::RunConfig config = Config(rounds, 1, 1);
    if (keep_last > 0) {
      config.mutable_retention()->set_keep_last(keep_last);
      config.mutable_retention()->set_keep_every(keep_every);
    }
    const std::string run = CreateAndStartRun(config, Weights(0.0f));
    if (run.empty()) return "";
    for (uint32_t r = 1; r <= rounds; ++r) {
      EXPECT_THAT(Answer("a", NextTask("a"), 1.0f, 1), IsOk());
    }
    AwaitState(run, wire::v1::COMPLETED);
    return run;
  }
  std::vector<uint32_t> StoredModels(const std::string& run) {
    auto rounds = state_->ListModelRounds(run);
    EXPECT_THAT(rounds, IsOk());
    return rounds.ok() ? *rounds : std::vector<uint32_t>{};
  }
};

TEST_F(RunLifecycleTest, RetentionKeepsInitialLastAndEveryNthModel) {
  Connect("a");
  // 7 rounds, last 2, every 3rd: round 0; 6, 7; 3, 6.
  const std::string run = CompletedRun(7, 2, 3);
  EXPECT_THAT(StoredModels(run), ElementsAre(0, 3, 6, 7));
  auto status = runs_->GetRunStatus(run);
  ASSERT_THAT(status, IsOk());
  EXPECT_THAT(status->stored_model_rounds(), ElementsAre(0, 3, 6, 7));
  EXPECT_THAT(runs_->ExportModel(run, 3), IsOk());
  EXPECT_THAT(runs_->ExportModel(run, 5),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("retention policy")));
  // Each model after round r is r (deltas of 1 from 0): the kept ones are the right ones.
  auto six = runs_->ExportModel(run, 6);
  ASSERT_THAT(six, IsOk());
  EXPECT_FLOAT_EQ(six->model->weights.tensors[0].values<float>()[0], 6.0f);
}

TEST_F(RunLifecycleTest, CoordinatorDefaultRetentionFillsAConfigWithout) {
  options_.retention.set_keep_last(1);
  options_.retention.set_keep_every(0);
  Reopen();
  Connect("a");
  const std::string run = CompletedRun(4);
  EXPECT_THAT(StoredModels(run), ElementsAre(0, 4));
  auto status = runs_->GetRunStatus(run);
  ASSERT_THAT(status, IsOk());
  EXPECT_EQ(status->config().retention().keep_last(), 1u);
}

TEST_F(RunLifecycleTest, MaxRunsCountsOnlyCreatedAndRunningRuns) {
  options_.max_runs = 2;
  Reopen();
  auto first = runs_->CreateRun(Config(1, 1, 1), Weights(0), "");
  ASSERT_THAT(first, IsOk());
  ASSERT_THAT(runs_->CreateRun(Config(1, 1, 1), Weights(0), ""), IsOk());
  EXPECT_THAT(runs_->CreateRun(Config(1, 1, 1), Weights(0), ""),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("2 runs created or")));
  ASSERT_THAT(runs_->CancelRun(first->run_id()), IsOk());
  EXPECT_THAT(runs_->CreateRun(Config(1, 1, 1), Weights(0), ""), IsOk());
  EXPECT_EQ(runs_->ListRuns().size(), 3u);
}

TEST_F(RunLifecycleTest, AnUnreadableRunIsListedAndSkippedNotFatal) {
  auto good = runs_->CreateRun(Config(1, 1, 1), Weights(0), "");
  auto bad = runs_->CreateRun(Config(1, 1, 1), Weights(0), "");
  ASSERT_THAT(good, IsOk());
  ASSERT_THAT(bad, IsOk());
  TESSERA_ASSERT_OK(state_->TEST_PutRaw("run/" + bad->run_id(), "\xff not a record"));
  Restart();  // Recover succeeds
  std::vector<wire::v1::RunStatus> listed = runs_->ListRuns();
  ASSERT_EQ(listed.size(), 2u);
  for (const auto& s : listed) {
    if (s.run_id() == bad->run_id()) {
      EXPECT_EQ(s.state(), wire::v1::FAILED);
      EXPECT_THAT(s.message(), HasSubstr("could not read this run"));
    } else {
      EXPECT_EQ(s.state(), wire::v1::CREATED);
    }
  }
  EXPECT_THAT(runs_->GetRunStatus(bad->run_id()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("could not be read")));
  EXPECT_THAT(runs_->StartRun(good->run_id()), IsOk());
  // The operator can remove it.
  EXPECT_THAT(runs_->DeleteRun(bad->run_id()), IsOk());
  EXPECT_EQ(runs_->ListRuns().size(), 1u);
}

TEST_F(RunLifecycleTest, AnEndedRunsModelIsNotReadAtStartUp) {
  Connect("a");
  const std::string run = CompletedRun(2, 5, 0);
  // Corrupt the final model: a start-up that read it would fail (it did before lazy loading).
  TESSERA_ASSERT_OK(state_->TEST_PutRaw(
      absl::StrFormat("model/%s/%08u/t/%06u", run, 2u, 0u), "corrupt"));
  Restart();
  auto status = runs_->GetRunStatus(run);
  ASSERT_THAT(status, IsOk());
  EXPECT_EQ(status->state(), wire::v1::COMPLETED);
  EXPECT_EQ(status->rounds_size(), 2);
  EXPECT_FALSE(runs_->ExportModel(run, -1).ok());  // read (and checked) on export
  auto earlier = runs_->ExportModel(run, 1);
  ASSERT_THAT(earlier, IsOk());
  EXPECT_FLOAT_EQ(earlier->model->weights.tensors[0].values<float>()[0], 1.0f);
}

TEST_F(RunLifecycleTest, ArchiveKeepsFinalModelAndLeavesTheDefaultList) {
  Connect("a");
  const std::string run = CompletedRun(4, 3, 0);
  EXPECT_THAT(StoredModels(run), ElementsAre(0, 2, 3, 4));
  auto running = runs_->CreateRun(Config(1, 1, 1), Weights(0), "");
  ASSERT_THAT(running, IsOk());
  EXPECT_THAT(runs_->ArchiveRun(running->run_id()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("only an ended run")));
  auto archived = runs_->ArchiveRun(run, Actor{"op", ""});
  ASSERT_THAT(archived, IsOk());
  EXPECT_TRUE(archived->archived());
  EXPECT_THAT(StoredModels(run), ElementsAre(4));
  EXPECT_THAT(archived->stored_model_rounds(), ElementsAre(4));
  EXPECT_EQ(runs_->ListRuns().size(), 1u);
  EXPECT_EQ(runs_->ListRuns(/*include_archived=*/true).size(), 2u);
  auto exported = runs_->ExportModel(run, -1);
  ASSERT_THAT(exported, IsOk());
  EXPECT_FLOAT_EQ(exported->model->weights.tensors[0].values<float>()[0], 4.0f);
  EXPECT_THAT(runs_->ExportModel(run, 2),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("archived")));
  Restart();
  EXPECT_EQ(runs_->ListRuns().size(), 1u);
  EXPECT_THAT(StoredModels(run), ElementsAre(4));
  auto log = state_->ListAudit();
  ASSERT_THAT(log, IsOk());
  EXPECT_EQ(log->back().action(), "run.archived");
}

TEST_F(RunLifecycleTest, DeleteRemovesTheRunButKeepsAuditAndProvenance) {
  Connect("a");
  const std::string run = CompletedRun(2, 5, 0);
  auto running = runs_->CreateRun(Config(5, 1, 1), Weights(0), "");
  ASSERT_THAT(running, IsOk());
  ASSERT_THAT(runs_->StartRun(running->run_id()), IsOk());
  EXPECT_THAT(runs_->DeleteRun(running->run_id()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("cancel it")));

  auto deleted = runs_->DeleteRun(run, Actor{"op", ""});
  ASSERT_THAT(deleted, IsOk());
  EXPECT_EQ(*deleted, 3u);  // rounds 0, 1, 2
  EXPECT_THAT(StoredModels(run), ::testing::IsEmpty());
  EXPECT_THAT(state_->ListRounds(run), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(runs_->GetRunStatus(run),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("was deleted")));
  EXPECT_THAT(runs_->DeleteRun(run), StatusIs(absl::StatusCode::kNotFound));
  auto provenance = state_->GetProvenance(run);
  ASSERT_THAT(provenance, IsOk());
  EXPECT_TRUE(provenance->has_value());
  auto log = state_->ListAudit();
  ASSERT_THAT(log, IsOk());
  bool created = false, removed = false;
  for (const auto& e : *log) {
    if (e.run_id() != run) continue;
    created |= e.action() == "run.created";
    removed |= e.action() == "run.deleted" && e.actor() == "operator:op";
  }
  EXPECT_TRUE(created);
  EXPECT_TRUE(removed);
  ASSERT_THAT(runs_->CancelRun(running->run_id()), IsOk());
  Restart();
  EXPECT_THAT(runs_->GetRunStatus(run),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("was deleted")));
  EXPECT_EQ(runs_->ListRuns().size(), 1u);
}

}  // namespace
}  // namespace tessera::coordinator
