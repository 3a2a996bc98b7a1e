// CoordinatorState's run lifecycle: listing past unreadable records, pruning models (and
// getting the disk space back), deleting a run but keeping provenance, charges and audit.
#include <filesystem>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "coordinator/state/state_test_fixture.h"
#include "core/base/testing/status_matchers.h"
#include "privacy/crypto/random.h"

namespace tessera::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// A model of `floats` random (incompressible) float32 values.
ArrayRecord Model(size_t floats) {
  std::string bytes = *crypto::RandomBytes(floats * 4);
  for (size_t i = 3; i < bytes.size(); i += 4) bytes[i] = 0x3f;  // finite values
  ArrayRecord m;
  m.tensors.push_back(*Tensor::Create("w", DType::kFloat32,
                                      {static_cast<int64_t>(floats)}, std::move(bytes)));
  return m;
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) total += e.file_size();
  }
  return total;
}

class RunLifecycleStoreTest : public StateTest {
 protected:
  // A run with rounds 0..rounds committed.
  storage::v1::RunRecord Run(const std::string& id, uint32_t rounds, size_t floats) {
    storage::v1::RunRecord run;
    run.set_run_id(id);
    run.set_state(wire::v1::RUNNING);
    EXPECT_THAT(state_->CreateRun(run, Model(floats), ""), IsOk());
    for (uint32_t r = 1; r <= rounds; ++r) {
      run.set_completed_rounds(r);
      wire::v1::RoundSummary summary;
      summary.set_round(r);
      summary.set_state(wire::v1::ROUND_COMPLETED);
      EXPECT_THAT(state_->CommitRound(run, summary, Model(floats)), IsOk());
    }
    return run;
  }
};

TEST_F(RunLifecycleStoreTest, ListModelRoundsAndDeleteModels) {
  Run("r1", 4, 16);
  Run("r10", 1, 16);  // a longer id with the same prefix stays apart
  EXPECT_THAT(state_->ListModelRounds("r1"), IsOkAndHolds(ElementsAre(0, 1, 2, 3, 4)));
  TESSERA_ASSERT_OK(state_->DeleteModels("r1", {1, 2}));
  EXPECT_THAT(state_->ListModelRounds("r1"), IsOkAndHolds(ElementsAre(0, 3, 4)));
  EXPECT_THAT(state_->LoadModel("r1", 2), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(state_->LoadModel("r1", 3), IsOk());
  EXPECT_THAT(state_->ListModelRounds("r10"), IsOkAndHolds(ElementsAre(0, 1)));
  // The current model is never deleted.
  EXPECT_THAT(state_->DeleteModels("r1", {4}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("current model")));
  EXPECT_THAT(state_->DeleteModels("nope", {0}), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(RunLifecycleStoreTest, PruningAsRoundsCommitKeepsTheDiskBounded) {
  // 60 rounds of 4 MiB models, keeping round 0 and the current one (as the coordinator's
  // retention does after each commit): 244 MiB written, 8 MiB live.
  constexpr size_t kFloats = 1 << 20;
  constexpr uint64_t kModel = kFloats * 4;
  storage::v1::RunRecord run = Run("long", 0, kFloats);
  for (uint32_t r = 1; r <= 60; ++r) {
    run.set_completed_rounds(r);
    wire::v1::RoundSummary summary;
    summary.set_round(r);
    summary.set_state(wire::v1::ROUND_COMPLETED);
    TESSERA_ASSERT_OK(state_->CommitRound(run, summary, Model(kFloats)));
    if (r >= 2) {
      TESSERA_ASSERT_OK(state_->DeleteModels("long", {r - 1}));
    }
    // Without pruning the directory would hold r + 1 models. RocksDB's compactions and blob
    // garbage collection keep it within a constant of the live ones (measured on an idle
    // machine: at most 12 models' worth at any round, 8 at round 60): bound 16, whatever the
    // round. They run on background threads, which a loaded machine (or a sanitizer build)
    // can delay by seconds, so the bound must hold once they catch up: within 60 s, not at
    // the instant of the commit. Without pruning it never would (61 models at round 60).
    if (r % 10 == 0) {
      const absl::Time deadline = absl::Now() + absl::Seconds(60);
      uint64_t bytes = DirBytes(dir_);
      while (bytes >= 16 * kModel && absl::Now() < deadline) {
        absl::SleepFor(absl::Milliseconds(100));
        bytes = DirBytes(dir_);
      }
      EXPECT_LT(bytes, 16 * kModel) << "round " << r << ": " << bytes / kModel
                                    << " models' worth 60 s after the commit";
    }
  }
  EXPECT_THAT(state_->ListModelRounds("long"), IsOkAndHolds(ElementsAre(0, 60)));
}

TEST_F(RunLifecycleStoreTest, DeletingARunGivesItsDiskSpaceBackAtOnce) {
  constexpr size_t kFloats = 2 << 20;  // 8 MiB per model
  Run("big", 3, kFloats);
  Run("small", 0, 16);
  const uint64_t before = DirBytes(dir_);
  storage::v1::DeletedRunRecord tombstone;
  tombstone.set_run_id("big");
  TESSERA_ASSERT_OK(state_->DeleteRun(tombstone));
  const uint64_t after = DirBytes(dir_);
  // Four 8 MiB models went away; allow one for metadata and logs.
  EXPECT_LT(after + 3 * (kFloats * 4), before) << before << " -> " << after;
}

TEST_F(RunLifecycleStoreTest, ListReadableRunsSkipsAndReportsABadRecord) {
  Run("good", 0, 4);
  Run("bad", 0, 4);
  TESSERA_ASSERT_OK(state_->TEST_PutRaw("run/bad", "\xff\xff garbage"));
  EXPECT_THAT(state_->ListRuns(), StatusIs(absl::StatusCode::kDataLoss));
  std::vector<CoordinatorState::UnreadableRun> unreadable;
  auto runs = state_->ListReadableRuns(&unreadable);
  ASSERT_THAT(runs, IsOk());
  ASSERT_EQ(runs->size(), 1u);
  EXPECT_EQ((*runs)[0].run_id(), "good");
  ASSERT_EQ(unreadable.size(), 1u);
  EXPECT_EQ(unreadable[0].run_id, "bad");
  EXPECT_EQ(unreadable[0].error.code(), absl::StatusCode::kDataLoss);
}

TEST_F(RunLifecycleStoreTest, DeleteRunKeepsProvenanceChargesAndAudit) {
  Run("gone", 2, 16);
  Run("kept", 1, 16);
  wire::v1::RunProvenance provenance;
  provenance.set_run_id("gone");
  TESSERA_ASSERT_OK(state_->PutProvenance(provenance));
  wire::v1::AuditEntry entry;
  entry.set_action("run.created");
  entry.set_run_id("gone");
  TESSERA_ASSERT_OK(state_->AppendAudit(entry).status());
  storage::v1::SecAggSessionRecord session;
  session.set_run_id("gone");
  session.set_session_id("s1");
  TESSERA_ASSERT_OK(state_->PutSecAggSession(session));

  // A charge marker of the run and its dataset's ledger: deleting never refunds budget.
  storage::v1::PrivacyLedgerRecord ledger;
  ledger.set_dataset("ds");
  ledger.set_rounds_charged(2);
  TESSERA_ASSERT_OK(state_->TEST_PutRaw("ledger/ds", ledger.SerializeAsString()));
  TESSERA_ASSERT_OK(
      state_->TEST_PutRaw("charge/gone/00000002/0000", ledger.SerializeAsString()));

  storage::v1::DeletedRunRecord tombstone;
  tombstone.set_run_id("gone");
  tombstone.set_deleted_by("operator:op");
  tombstone.set_deleted_unix_ms(1234);
  TESSERA_ASSERT_OK(state_->DeleteRun(tombstone));
  Reopen();
  EXPECT_THAT(state_->GetRun("gone"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(state_->ListModelRounds("gone"), IsOkAndHolds(IsEmpty()));
  auto runs = state_->ListRuns();
  ASSERT_THAT(runs, IsOk());
  ASSERT_EQ(runs->size(), 1u);
  EXPECT_EQ((*runs)[0].run_id(), "kept");
  EXPECT_THAT(state_->ListModelRounds("kept"), IsOkAndHolds(ElementsAre(0, 1)));
  auto sessions = state_->ListSecAggSessions();
  ASSERT_THAT(sessions, IsOk());
  EXPECT_THAT(*sessions, IsEmpty());
  auto kept_provenance = state_->GetProvenance("gone");
  ASSERT_THAT(kept_provenance, IsOk());
  EXPECT_TRUE(kept_provenance->has_value());
  auto log = state_->ListAudit();
  ASSERT_THAT(log, IsOk());
  ASSERT_EQ(log->size(), 1u);
  auto kept_ledger = state_->GetLedger("ds");
  ASSERT_THAT(kept_ledger, IsOk());
  ASSERT_TRUE(kept_ledger->has_value());
  EXPECT_EQ((*kept_ledger)->rounds_charged(), 2u);
  auto charges = state_->ListReleaseCharges("gone");
  ASSERT_THAT(charges, IsOk());
  ASSERT_EQ(charges->size(), 1u);
  EXPECT_EQ((*charges)[0].round, 2u);
  auto stone = state_->GetDeletedRun("gone");
  ASSERT_THAT(stone, IsOk());
  ASSERT_TRUE(stone->has_value());
  EXPECT_EQ((*stone)->deleted_by(), "operator:op");
  auto never = state_->GetDeletedRun("kept");
  ASSERT_THAT(never, IsOk());
  EXPECT_FALSE(never->has_value());
  EXPECT_THAT(state_->DeleteRun(tombstone), StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace tessera::coordinator
