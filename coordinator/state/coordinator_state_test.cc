#include "coordinator/state/coordinator_state.h"
#include "coordinator/state/state_test_fixture.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "core/base/no_io_mutex.h"
#include "core/base/testing/status_matchers.h"
#include "google/protobuf/util/message_differencer.h"

namespace tessera {
namespace coordinator {
namespace {

using storage::v1::ClientRecord;
using storage::v1::RunRecord;
using testing::ElementsAre;
using testing::HasSubstr;
using wire::v1::RoundSummary;

MATCHER_P(EqualsProto, expected, "equals " + expected.ShortDebugString()) {
  return google::protobuf::util::MessageDifferencer::Equals(arg, expected);
}

MATCHER_P2(IsRound, round, attempt, "") {
  return arg.round() == static_cast<uint32_t>(round) &&
         arg.attempt() == static_cast<uint32_t>(attempt);
}

RunRecord MakeRun(const std::string& id) {
  RunRecord run;
  run.set_run_id(id);
  run.mutable_config()->set_name("mnist-" + id);
  run.mutable_config()->set_rounds(5);
  run.set_state(wire::v1::CREATED);
  run.set_created_unix_ms(1700000000000);
  return run;
}

template <typename T>
std::string Bytes(const std::vector<T>& values) {
  std::string out(values.size() * sizeof(T), '\0');
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

// A float32 and an int64 tensor whose values depend on `seed`, plus awkward bit
// patterns
// (-0, NaN payload, denormal, infinities, int64 extremes).
ArrayRecord MakeModel(float seed, size_t extra_floats = 0) {
  std::vector<float> w = {seed,
                          -0.0f,
                          std::numeric_limits<float>::denorm_min(),
                          std::numeric_limits<float>::infinity(),
                          -1e30f,
                          0.5f};
  uint32_t nan_bits = 0x7fc01234;
  float nan;
  std::memcpy(&nan, &nan_bits, sizeof(nan));
  w.push_back(nan);
  w.push_back(seed * 2);
  std::vector<int64_t> steps = {std::numeric_limits<int64_t>::min(), -1, 0,
                                static_cast<int64_t>(seed),
                                std::numeric_limits<int64_t>::max()};
  ArrayRecord model;
  model.tensors.push_back(
      *Tensor::Create("fc.weight", DType::kFloat32, {2, 4}, Bytes(w)));
  model.tensors.push_back(
      *Tensor::Create("steps", DType::kInt64, {5}, Bytes(steps)));
  model.tensors.push_back(
      *Tensor::Create("empty", DType::kFloat32, {0, 3}, ""));
  if (extra_floats > 0) {
    std::vector<float> big(extra_floats);
    for (size_t i = 0; i < big.size(); ++i)
      big[i] = seed + static_cast<float>(i);
    model.tensors.push_back(
        *Tensor::Create("big", DType::kFloat32,
                        {static_cast<int64_t>(extra_floats)}, Bytes(big)));
  }
  return model;
}

void ExpectBitExact(const ArrayRecord& actual, const ArrayRecord& expected) {
  ASSERT_EQ(actual.tensors.size(), expected.tensors.size());
  for (size_t i = 0; i < actual.tensors.size(); ++i) {
    const Tensor& a = actual.tensors[i];
    const Tensor& e = expected.tensors[i];
    EXPECT_EQ(a.name(), e.name());
    EXPECT_EQ(a.dtype(), e.dtype());
    EXPECT_EQ(a.shape(), e.shape());
    EXPECT_TRUE(a.data() == e.data()) << "data of " << e.name() << " differs";
  }
}

RoundSummary MakeSummary(uint32_t round, uint32_t attempt,
                         wire::v1::RoundState state) {
  RoundSummary summary;
  summary.set_round(round);
  summary.set_attempt(attempt);
  summary.set_state(state);
  summary.set_reported(3);
  summary.set_train_loss(1.0 / (round + 1));
  summary.add_participants("client-a");
  if (state == wire::v1::ROUND_FAILED)
    summary.set_failure_reason("too few reports");
  return summary;
}

class CoordinatorStateTest : public StateTest {
 protected:
  // Commits `round` of `run_id` with MakeModel(round).
  absl::Status Commit(const std::string& run_id, uint32_t round,
                      uint32_t attempt = 1) {
    absl::StatusOr<RunRecord> run = state_->GetRun(run_id);
    if (!run.ok()) return run.status();
    run->set_completed_rounds(round);
    run->set_state(wire::v1::RUNNING);
    return state_->CommitRound(
        *run, MakeSummary(round, attempt, wire::v1::ROUND_COMPLETED),
        MakeModel(static_cast<float>(round)));
  }
};

TEST_F(CoordinatorStateTest, CreatesGetsAndListsRunsInCreationOrder) {
  for (const char* id : {"zeta", "alpha", "mid"}) {
    TESSERA_ASSERT_OK(state_->CreateRun(MakeRun(id), MakeModel(0), ""));
  }
  RunRecord expected = MakeRun("alpha");
  EXPECT_THAT(state_->GetRun("alpha"), IsOkAndHolds(EqualsProto(expected)));
  absl::StatusOr<std::vector<RunRecord>> runs = state_->ListRuns();
  ASSERT_THAT(runs, IsOk());
  std::vector<std::string> ids;
  for (const RunRecord& run : *runs) ids.push_back(run.run_id());
  EXPECT_THAT(ids, ElementsAre("zeta", "alpha", "mid"));
}

TEST_F(CoordinatorStateTest,
       DuplicateCreateIsAlreadyExistsAndKeepsTheOriginal) {
  TESSERA_ASSERT_OK(state_->CreateRun(MakeRun("r1"), MakeModel(1), "program"));
  RunRecord other = MakeRun("r1");
  other.set_message("second");
  EXPECT_THAT(state_->CreateRun(other, MakeModel(9), ""),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("r1")));
  RunRecord expected = MakeRun("r1");
  expected.set_has_artifact(true);
  EXPECT_THAT(state_->GetRun("r1"), IsOkAndHolds(EqualsProto(expected)));
  ExpectBitExact(*state_->LoadModel("r1", 0), MakeModel(1));
  EXPECT_THAT(state_->LoadArtifact("r1"), IsOkAndHolds(std::string("program")));
  EXPECT_THAT(state_->ListRuns(), IsOkAndHolds(testing::SizeIs(1)));
}

TEST_F(CoordinatorStateTest, UnknownRunIsNotFound) {
  EXPECT_THAT(state_->GetRun("nope"),
              StatusIs(absl::StatusCode::kNotFound, "run nope not found"));
  EXPECT_THAT(state_->ListRounds("nope"),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(state_->LoadArtifact("nope"),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(state_->UpdateRun(MakeRun("nope")),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(Commit("nope", 1), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(CoordinatorStateTest, RejectsInvalidIds) {
  for (const std::string& id :
       {std::string(), std::string("a/b"), std::string(257, 'x'),
        std::string("tab\there")}) {
    EXPECT_THAT(state_->CreateRun(MakeRun(id), MakeModel(0), ""),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << id;
    EXPECT_THAT(state_->GetRun(id),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << id;
    ClientRecord client;
    client.set_name(id);
    EXPECT_THAT(state_->PutClient(client),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
  TESSERA_EXPECT_OK(
      state_->CreateRun(MakeRun(std::string(256, 'x')), MakeModel(0), ""));
}

TEST_F(CoordinatorStateTest, CommittedRoundsSurviveReopen) {
  TESSERA_ASSERT_OK(
      state_->CreateRun(MakeRun("r1"), MakeModel(0, 50000), "torchscript"));
  TESSERA_ASSERT_OK(state_->CreateRun(MakeRun("r2"), MakeModel(7), ""));
  TESSERA_ASSERT_OK(Commit("r1", 1));
  TESSERA_ASSERT_OK(state_->RecordFailedAttempt(
      "r1", MakeSummary(2, 1, wire::v1::ROUND_FAILED)));
  TESSERA_ASSERT_OK(Commit("r1", 2, /*attempt=*/2));
  ClientRecord client;
  client.set_name("client-a");
  client.set_rounds_participated(2);
  TESSERA_ASSERT_OK(state_->PutClient(client));

  Reopen();

  absl::StatusOr<RunRecord> run = state_->GetRun("r1");
  ASSERT_THAT(run, IsOk());
  EXPECT_EQ(run->completed_rounds(), 2u);
  EXPECT_EQ(run->state(), wire::v1::RUNNING);
  EXPECT_TRUE(run->has_artifact());
  EXPECT_THAT(
      state_->ListRounds("r1"),
      IsOkAndHolds(ElementsAre(IsRound(1, 1), IsRound(2, 1), IsRound(2, 2))));
  EXPECT_THAT(state_->ListRounds("r2"), IsOkAndHolds(testing::IsEmpty()));
  ExpectBitExact(*state_->LoadModel("r1", 0), MakeModel(0, 50000));
  ExpectBitExact(*state_->LoadModel("r1", 1), MakeModel(1));
  ExpectBitExact(*state_->LoadModel("r1", 2), MakeModel(2));
  ExpectBitExact(*state_->LoadModel("r2", 0), MakeModel(7));
  EXPECT_THAT(state_->LoadArtifact("r1"),
              IsOkAndHolds(std::string("torchscript")));
  EXPECT_THAT(state_->ListClients(),
              IsOkAndHolds(ElementsAre(EqualsProto(client))));
  // Commits continue from the stored round, and new runs list after the old
  // ones.
  EXPECT_THAT(Commit("r1", 2, 3),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  TESSERA_EXPECT_OK(Commit("r1", 3));
  TESSERA_ASSERT_OK(state_->CreateRun(MakeRun("a0"), MakeModel(0), ""));
  absl::StatusOr<std::vector<RunRecord>> runs = state_->ListRuns();
  ASSERT_THAT(runs, IsOk());
  ASSERT_EQ(runs->size(), 3u);
  EXPECT_EQ((*runs)[2].run_id(), "a0");
}

TEST_F(CoordinatorStateTest, WrongRoundIsFailedPreconditionAndChangesNothing) {
  TESSERA_ASSERT_OK(state_->CreateRun(MakeRun("r1"), MakeModel(0), ""));
  EXPECT_THAT(Commit("r1", 2), StatusIs(absl::StatusCode::kFailedPrecondition,
                                        HasSubstr("completed 0 rounds")));
  TESSERA_ASSERT_OK(Commit("r1", 1));
  absl::StatusOr<RunRecord> before = state_->GetRun("r1");
  ASSERT_THAT(before, IsOk());
  // A double commit of round 1 (e.g. replayed after a restart) is refused.
  EXPECT_THAT(Commit("r1", 1, 2),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(state_->RecordFailedAttempt(
                  "r1", MakeSummary(1, 3, wire::v1::ROUND_FAILED)),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(state_->GetRun("r1"), IsOkAndHolds(EqualsProto(*before)));
  EXPECT_THAT(state_->ListRounds("r1"),
              IsOkAndHolds(ElementsAre(IsRound(1, 1))));
  ExpectBitExact(*state_->LoadModel("r1", 1), MakeModel(1));
  EXPECT_THAT(state_->LoadModel("r1", 2),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(CoordinatorStateTest, CommitRequiresRunToCarryTheNewRound) {
  TESSERA_ASSERT_OK(state_->CreateRun(MakeRun("r1"), MakeModel(0), ""));
  EXPECT_THAT(state_->CommitRound(MakeRun("r1"),
                                  MakeSummary(1, 1, wire::v1::ROUND_COMPLETED),
                                  MakeModel(1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(CoordinatorStateTest, FailedAttemptsAreKeptOnceEach) {
  TESSERA_ASSERT_OK(state_->CreateRun(MakeRun("r1"), MakeModel(0), ""));
  RoundSummary failed = MakeSummary(1, 1, wire::v1::ROUND_FAILED);
  TESSERA_ASSERT_OK(state_->RecordFailedAttempt("r1", failed));
  EXPECT_THAT(state_->RecordFailedAttempt("r1", failed),
              StatusIs(absl::StatusCode::kAlreadyExists));
  // The successful attempt must not overwrite the failed one's history.
  EXPECT_THAT(Commit("r1", 1, 1), StatusIs(absl::StatusCode::kAlreadyExists));
  TESSERA_ASSERT_OK(Commit("r1", 1, 2));
  EXPECT_THAT(state_->ListRounds("r1"),
              IsOkAndHolds(ElementsAre(EqualsProto(failed), IsRound(1, 2))));
}

TEST_F(CoordinatorStateTest, UpdateRunKeepsCompletedRoundsAndArtifactFlag) {
  TESSERA_ASSERT_OK(state_->CreateRun(MakeRun("r1"), MakeModel(0), "program"));
  RunRecord run = MakeRun("r1");
  run.set_state(wire::v1::CANCELLED);
  run.set_message("cancelled by operator");
  TESSERA_ASSERT_OK(state_->UpdateRun(run));
  absl::StatusOr<RunRecord> stored = state_->GetRun("r1");
  ASSERT_THAT(stored, IsOk());
  EXPECT_EQ(stored->state(), wire::v1::CANCELLED);
  EXPECT_EQ(stored->message(), "cancelled by operator");
  EXPECT_TRUE(stored->has_artifact());
  run.set_completed_rounds(4);
  EXPECT_THAT(state_->UpdateRun(run),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(CoordinatorStateTest, ModelRoundTripIsBitExact) {
  ArrayRecord model = MakeModel(3.25f, 1000);
  TESSERA_ASSERT_OK(state_->CreateRun(MakeRun("r1"), model, ""));
  absl::StatusOr<ArrayRecord> loaded = state_->LoadModel("r1", 0);
  ASSERT_THAT(loaded, IsOk());
  ExpectBitExact(*loaded, model);
  absl::StatusOr<storage::v1::ModelManifest> manifest =
      state_->GetModelManifest("r1", 0);
  ASSERT_THAT(manifest, IsOk());
  EXPECT_EQ(manifest->num_tensors(), 4u);
  EXPECT_EQ(manifest->total_bytes(), model.TotalBytes());
  EXPECT_EQ(manifest->sha256().size(), 32u);
}

TEST_F(CoordinatorStateTest, UnknownModelIsNotFound) {
  TESSERA_ASSERT_OK(state_->CreateRun(MakeRun("r1"), MakeModel(0), ""));
  EXPECT_THAT(state_->LoadModel("r1", 1),
              StatusIs(absl::StatusCode::kNotFound,
                       "model of run r1 round 1 not found"));
  EXPECT_THAT(state_->GetModelManifest("r1", 1),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(state_->LoadModel("r", 0), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(state_->LoadArtifact("r1"),
              StatusIs(absl::StatusCode::kNotFound, "run r1 has no artifact"));
}

TEST_F(CoordinatorStateTest, CorruptModelIsDataLoss) {
  TESSERA_ASSERT_OK(state_->CreateRun(MakeRun("r1"), MakeModel(0), ""));
  const std::string key = "model/r1/00000000/t/000000";
  // Bytes that do not parse.
  TESSERA_ASSERT_OK(state_->TEST_PutRaw(key, "\xff\xff\xff garbage"));
  EXPECT_THAT(state_->LoadModel("r1", 0),
              StatusIs(absl::StatusCode::kDataLoss));
  // A tensor whose data does not match its shape (Tensor::Create rejects it).
  storage::v1::StoredTensor stored;
  stored.set_name("fc.weight");
  stored.set_dtype(wire::v1::FLOAT32);
  stored.add_shape(2);
  stored.add_shape(4);
  stored.set_data(std::string(31, '\0'));
  TESSERA_ASSERT_OK(state_->TEST_PutRaw(key, stored.SerializeAsString()));
  EXPECT_THAT(state_->LoadModel("r1", 0),
              StatusIs(absl::StatusCode::kDataLoss));
  // A well-formed tensor with different bytes: only the digest catches it.
  stored.set_data(std::string(32, '\0'));
  TESSERA_ASSERT_OK(state_->TEST_PutRaw(key, stored.SerializeAsString()));
  EXPECT_THAT(state_->LoadModel("r1", 0),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("SHA-256")));
  // An extra, well-formed tensor the manifest does not list.
  TESSERA_ASSERT_OK(state_->CreateRun(MakeRun("r2"), MakeModel(0), ""));
  stored.set_name("extra");
  TESSERA_ASSERT_OK(state_->TEST_PutRaw("model/r2/00000000/t/000003",
                                        stored.SerializeAsString()));
  EXPECT_THAT(
      state_->LoadModel("r2", 0),
      StatusIs(absl::StatusCode::kDataLoss, HasSubstr("lists 3 tensors")));
  // A manifest that does not parse.
  TESSERA_ASSERT_OK(state_->TEST_PutRaw("model/r1/00000000/m", "\xff"));
  EXPECT_THAT(state_->GetModelManifest("r1", 0),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST_F(CoordinatorStateTest, ClientsArePutAndListedByName) {
  ClientRecord b;
  b.set_name("b");
  b.set_device("cpu");
  ClientRecord a;
  a.set_name("a");
  a.set_version("0.1");
  TESSERA_ASSERT_OK(state_->PutClient(b));
  TESSERA_ASSERT_OK(state_->PutClient(a));
  a.set_rounds_participated(4);
  a.set_last_seen_unix_ms(123);
  TESSERA_ASSERT_OK(state_->PutClient(a));
  EXPECT_THAT(state_->ListClients(),
              IsOkAndHolds(ElementsAre(EqualsProto(a), EqualsProto(b))));
}

TEST_F(CoordinatorStateTest, SecondOpenOfTheSameDirectoryFails) {
  absl::StatusOr<std::unique_ptr<CoordinatorState>> second =
      CoordinatorState::Open(dir_);
  EXPECT_THAT(second,
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("lock")));
  EXPECT_THAT(second.status().message(), HasSubstr(dir_));
}

TEST_F(CoordinatorStateTest, OpenCreatesMissingParentDirectories) {
  EXPECT_THAT(CoordinatorState::Open(dir_ + "/a/b/state"), IsOk());
}

TEST_F(CoordinatorStateTest, OpenRefusesAForeignFile) {
  const std::string file = dir_ + "/not_a_dir";
  ASSERT_TRUE(std::ofstream(file) << "x");
  EXPECT_THAT(CoordinatorState::Open(file), testing::Not(IsOk()));
}

TEST_F(CoordinatorStateTest, UnknownFormatVersionIsRefused) {
  TESSERA_ASSERT_OK(state_->TEST_PutRaw("meta/format_version", "999"));
  state_.reset();
  EXPECT_THAT(
      CoordinatorState::Open(dir_),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("999")));
}

TEST_F(CoordinatorStateTest, ConcurrentCommitsOfTheSameRoundAdmitOne) {
  TESSERA_ASSERT_OK(state_->CreateRun(MakeRun("r1"), MakeModel(0), ""));
  constexpr int kThreads = 4;
  std::vector<absl::Status> results(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back(
        [&, i] { results[i] = Commit("r1", 1, static_cast<uint32_t>(i + 1)); });
  }
  for (std::thread& t : threads) t.join();
  int ok = 0;
  for (const absl::Status& s : results) {
    if (s.ok()) {
      ++ok;
    } else {
      EXPECT_THAT(s, StatusIs(absl::StatusCode::kFailedPrecondition));
    }
  }
  EXPECT_EQ(ok, 1);
  EXPECT_THAT(state_->ListRounds("r1"), IsOkAndHolds(testing::SizeIs(1)));
}

// The mechanical guard of the lock discipline (core/base/no_io_mutex.h): a write from a
// thread that holds a run's lock is refused before it touches the disk.
TEST_F(CoordinatorStateTest, WritesUnderANoIoMutexAreRefused) {
  TESSERA_ASSERT_OK(state_->CreateRun(MakeRun("r1"), MakeModel(0), ""));
  RunRecord changed = MakeRun("r1");
  changed.set_message("changed");
  RunRecord next = MakeRun("r1");
  next.set_completed_rounds(1);
  storage::v1::PrivacyLedgerRecord ledger;
  ledger.set_dataset("d");
  wire::v1::RunProvenance provenance;
  provenance.set_run_id("r1");
  storage::v1::SecAggSessionRecord session;
  session.set_run_id("r1");
  session.set_session_id("s1");
  ClientRecord client;
  client.set_name("c1");
  NoIoMutex run_mu;
  {
    NoIoMutexLock l(&run_mu);
    const auto refused = StatusIs(absl::StatusCode::kInternal, HasSubstr("no-I/O mutex"));
    EXPECT_THAT(state_->CreateRun(MakeRun("r2"), MakeModel(0), ""), refused);
    EXPECT_THAT(state_->UpdateRun(changed), refused);
    EXPECT_THAT(state_->CommitRound(next, MakeSummary(1, 1, wire::v1::ROUND_COMPLETED),
                                    MakeModel(1)),
                refused);
    EXPECT_THAT(state_->RecordFailedAttempt("r1", MakeSummary(1, 1, wire::v1::ROUND_FAILED)),
                refused);
    EXPECT_THAT(state_->OpenLedger(ledger), refused);
    EXPECT_THAT(state_->PutProvenance(provenance), refused);
    EXPECT_THAT(state_->PutSecAggSession(session), refused);
    EXPECT_THAT(state_->PutClient(client), refused);
    wire::v1::AuditEntry entry;
    entry.set_action("run.created");
    EXPECT_THAT(state_->AppendAudit(entry), refused);
    // Reads are fine under the lock.
    EXPECT_THAT(state_->GetRun("r1"), IsOk());
  }
  EXPECT_EQ(NoIoMutexesHeld(), 0);
  // Nothing was written; after unlocking the same writes work.
  EXPECT_THAT(state_->GetRun("r2"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(state_->GetRun("r1"), IsOkAndHolds(EqualsProto(MakeRun("r1"))));
  EXPECT_THAT(state_->ListRounds("r1"), IsOkAndHolds(testing::IsEmpty()));
  EXPECT_THAT(state_->ListClients(), IsOkAndHolds(testing::IsEmpty()));
  EXPECT_THAT(state_->LastAudit(), IsOkAndHolds(testing::Eq(std::nullopt)));
  TESSERA_EXPECT_OK(state_->UpdateRun(changed));
  TESSERA_EXPECT_OK(state_->PutClient(client));
}

// Lanes: a commit on its way to disk holds back writers of its own run only.
TEST_F(CoordinatorStateTest, ACommitOnItsWayToDiskHoldsBackOnlyItsOwnRun) {
  TESSERA_ASSERT_OK(state_->CreateRun(MakeRun("r1"), MakeModel(0), ""));
  TESSERA_ASSERT_OK(state_->CreateRun(MakeRun("r2"), MakeModel(0), ""));
  absl::Notification entered, release;
  std::atomic<int> hooked{0};
  state_->TEST_SetBeforeCommitWrite([&] {
    if (hooked++ > 0) return;  // only the first commit waits
    entered.Notify();
    release.WaitForNotification();
  });
  absl::Status first, second;
  absl::Notification second_done;
  std::thread a([&] { first = Commit("r1", 1, 1); });
  ASSERT_TRUE(entered.WaitForNotificationWithTimeout(absl::Seconds(10)));
  std::thread b([&] {
    second = Commit("r1", 1, 2);
    second_done.Notify();
  });
  // Another run's writes go on while r1's commit is held.
  absl::Notification other_done;
  absl::Status other;
  std::thread c([&] {
    RunRecord r2 = MakeRun("r2");
    r2.set_message("still writable");
    other = state_->UpdateRun(r2);
    other_done.Notify();
  });
  const bool other_went_on = other_done.WaitForNotificationWithTimeout(absl::Seconds(5));
  // The second commit of r1 waits for the first (it must see round 1 as committed).
  const bool second_waited = !second_done.WaitForNotificationWithTimeout(absl::Milliseconds(300));
  release.Notify();
  a.join();
  b.join();
  c.join();
  state_->TEST_SetBeforeCommitWrite(nullptr);
  EXPECT_TRUE(other_went_on);
  EXPECT_TRUE(second_waited);
  TESSERA_EXPECT_OK(first);
  TESSERA_EXPECT_OK(other);
  EXPECT_THAT(second, StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not the next")));
  EXPECT_THAT(state_->ListRounds("r1"), IsOkAndHolds(ElementsAre(IsRound(1, 1))));
}

}  // namespace
}  // namespace coordinator
}  // namespace tessera
