// What writing a model leaves in memory (model_store.h): a tensor over 1 MiB is stored in
// pieces of at most 1 MiB, and the memtable is flushed after every 4 MiB of them, so a large
// model's CreateRun or commit leaves at most 4 MiB of it in a memtable for the round that
// follows (docs/architecture.md, "Coordinator memory"), and the model still reads back bit
// for bit. Also the pieces' layout (docs/storage_format.md, "Models"), what a missing, extra
// or altered piece reads as, and the upgrade of a version-1 database.
#include <cstdint>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "coordinator/state/coordinator_state.h"
#include "coordinator/state/state_test_fixture.h"
#include "core/base/testing/status_matchers.h"

namespace tessera::coordinator {
namespace {

// Three float32 tensors of 6 MB each (18 MB, below RocksDB's two 8 MiB memtables): without
// the flushes RocksDB leaves 12-18 MB of them in its memtables.
ArrayRecord LargeModel(float seed) {
  ArrayRecord model;
  for (int t = 0; t < 3; ++t) {
    std::vector<float> v(1'500'000);
    for (size_t i = 0; i < v.size(); ++i) v[i] = seed + static_cast<float>(t) + 1e-3f * (i % 1000);
    model.tensors.push_back(*Tensor::FromFloats("t" + std::to_string(t), {1500, 1000}, v));
  }
  return model;
}

using ModelMemoryTest = StateTest;
using testing::HasSubstr;

storage::v1::RunRecord NewRun(const std::string& id) {
  storage::v1::RunRecord run;
  run.set_run_id(id);
  run.mutable_config()->set_name(id);
  run.mutable_config()->set_rounds(2);
  run.set_state(wire::v1::CREATED);
  return run;
}

// Float32 tensors of 1 MiB exactly (stored whole), 1 MiB + 4 bytes (2 pieces: 1 MiB and 4
// bytes), 3.5 MiB (4 pieces: three of 1 MiB, one of 0.5 MiB), an empty one and a small one.
ArrayRecord PiecesModel() {
  ArrayRecord model;
  const int64_t sizes[] = {262144, 262145, 917504, 0, 3};
  for (int t = 0; t < 5; ++t) {
    std::vector<float> v(static_cast<size_t>(sizes[t]));
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(t * 1000003 + i);
    model.tensors.push_back(*Tensor::FromFloats("p" + std::to_string(t), {sizes[t]}, v));
  }
  return model;
}

// Stores PiecesModel as run "pieces", writes `value` under `key` verbatim, and expects
// loading it to be DATA_LOSS with `message`.
void ExpectDataLossAfter(CoordinatorState& state, const std::string& key,
                         const std::string& value, const std::string& message) {
  TESSERA_ASSERT_OK(state.CreateRun(NewRun("pieces"), PiecesModel(), ""));
  TESSERA_ASSERT_OK(state.TEST_PutRaw(key, value));
  EXPECT_THAT(state.LoadModel("pieces", 0),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr(message)));
}

// Commits `model` as round 1 of a run created with NewRun(id).
absl::Status CommitRoundOne(CoordinatorState& state, const std::string& id,
                            const ArrayRecord& model) {
  storage::v1::RunRecord run = NewRun(id);
  run.set_state(wire::v1::RUNNING);
  run.set_completed_rounds(1);
  wire::v1::RoundSummary summary;
  summary.set_round(1);
  summary.set_attempt(1);
  summary.set_state(wire::v1::ROUND_COMPLETED);
  return state.CommitRound(run, summary, model);
}

// Keys written by hand from docs/storage_format.md.
const char kTensor1[] = "model/pieces/00000000/t/000001";
const char kTensor2LastPiece[] = "model/pieces/00000000/t/000002/000003";

TEST_F(ModelMemoryTest, ATensorOverOneMiBIsStoredInPiecesAndReadsBackBitForBit) {
  const ArrayRecord model = PiecesModel();
  TESSERA_ASSERT_OK(state_->CreateRun(NewRun("pieces"), model, ""));
  // Tensor 0 (1 MiB) is one value with all its data; tensor 1 is piece 0 (1 MiB) with
  // pieces = 2, then 4 bytes under .../000001/000001; tensor 2's last piece is 0.5 MiB.
  absl::StatusOr<std::string> whole = state_->TEST_GetRaw("model/pieces/00000000/t/000000");
  ASSERT_THAT(whole, IsOk());
  storage::v1::StoredTensor stored;
  ASSERT_TRUE(stored.ParseFromString(*whole));
  EXPECT_EQ(stored.pieces(), 0u);
  EXPECT_EQ(stored.data(), model.tensors[0].data());
  absl::StatusOr<std::string> head = state_->TEST_GetRaw(kTensor1);
  ASSERT_THAT(head, IsOk());
  ASSERT_TRUE(stored.ParseFromString(*head));
  EXPECT_EQ(stored.pieces(), 2u);
  EXPECT_EQ(stored.data(), model.tensors[1].data().substr(0, 1 << 20));
  absl::StatusOr<std::string> tail = state_->TEST_GetRaw(absl::StrCat(kTensor1, "/000001"));
  ASSERT_THAT(tail, IsOk());
  EXPECT_EQ(*tail, model.tensors[1].data().substr(1 << 20));
  absl::StatusOr<std::string> last = state_->TEST_GetRaw(kTensor2LastPiece);
  ASSERT_THAT(last, IsOk());
  EXPECT_EQ(*last, model.tensors[2].data().substr(3 << 20));
  EXPECT_THAT(state_->TEST_GetRaw("model/pieces/00000000/t/000002/000004"),
              StatusIs(absl::StatusCode::kNotFound));

  Reopen();
  absl::StatusOr<ArrayRecord> loaded = state_->LoadModel("pieces", 0);
  ASSERT_THAT(loaded, IsOk());
  ASSERT_EQ(loaded->tensors.size(), model.tensors.size());
  for (size_t i = 0; i < model.tensors.size(); ++i) {
    EXPECT_EQ(loaded->tensors[i].name(), model.tensors[i].name());
    EXPECT_EQ(loaded->tensors[i].shape(), model.tensors[i].shape());
    EXPECT_TRUE(loaded->tensors[i].data() == model.tensors[i].data()) << "tensor " << i;
  }
}

TEST_F(ModelMemoryTest, AnAlteredPieceIsDataLoss) {
  const ArrayRecord model = PiecesModel();
  TESSERA_ASSERT_OK(state_->CreateRun(NewRun("pieces"), model, ""));
  std::string other = model.tensors[2].data().substr(3 << 20);
  other[0] = static_cast<char>(other[0] ^ 1);
  TESSERA_ASSERT_OK(state_->TEST_PutRaw(kTensor2LastPiece, other));
  EXPECT_THAT(state_->LoadModel("pieces", 0),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("SHA-256")));
}

TEST_F(ModelMemoryTest, APieceOfTheWrongSizeIsDataLoss) {
  // Tensor 2's piece 1 must be 1 MiB (every piece but the last is).
  ExpectDataLossAfter(*state_, "model/pieces/00000000/t/000002/000001",
                      std::string(2 << 20, 'x'), "piece 1 of tensor 2 is 2097152 bytes");
}

TEST_F(ModelMemoryTest, PiecesLeftByAnAttemptThatNeverCommittedAreCleared) {
  const ArrayRecord model = PiecesModel();
  TESSERA_ASSERT_OK(state_->CreateRun(NewRun("pieces"), model, ""));
  // What a crashed attempt of round 1 with a larger tensor 2 could have left.
  TESSERA_ASSERT_OK(state_->TEST_PutRaw("model/pieces/00000001/t/000002/000004", "xxxx"));
  TESSERA_ASSERT_OK(CommitRoundOne(*state_, "pieces", model));
  EXPECT_THAT(state_->TEST_GetRaw("model/pieces/00000001/t/000002/000004"),
              StatusIs(absl::StatusCode::kNotFound));
  absl::StatusOr<ArrayRecord> loaded = state_->LoadModel("pieces", 1);
  ASSERT_THAT(loaded, IsOk());
  EXPECT_TRUE(loaded->tensors[2].data() == model.tensors[2].data());
}

TEST_F(ModelMemoryTest, AnExtraPieceIsDataLoss) {
  ExpectDataLossAfter(*state_, "model/pieces/00000000/t/000002/000004", "xxxx",
                      "unexpected key model/pieces/00000000/t/000002/000004");
}

TEST_F(ModelMemoryTest, AMissingPieceIsDataLoss) {
  const ArrayRecord model = PiecesModel();
  TESSERA_ASSERT_OK(state_->CreateRun(NewRun("pieces"), model, ""));
  // Tensor 1's head now says 3 pieces, its piece 1 is a full 1 MiB, and there is no piece 2.
  storage::v1::StoredTensor stored;
  stored.set_name("p1");
  stored.set_dtype(wire::v1::FLOAT32);
  stored.add_shape(262145);
  stored.set_data(model.tensors[1].data().substr(0, 1 << 20));
  stored.set_pieces(3);
  TESSERA_ASSERT_OK(state_->TEST_PutRaw(kTensor1, stored.SerializeAsString()));
  TESSERA_ASSERT_OK(state_->TEST_PutRaw(absl::StrCat(kTensor1, "/000001"),
                                        std::string(1 << 20, 'y')));
  EXPECT_THAT(state_->LoadModel("pieces", 0),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("tensor 1 has 3 pieces; piece 2 is missing")));
}

TEST_F(ModelMemoryTest, AVersionOneDatabaseIsUpgradedAndReadsAsBefore) {
  // Version 1 stored every tensor whole under one key: such a model is also version 2.
  ArrayRecord small;
  small.tensors.push_back(*Tensor::FromFloats("w", {2}, {1.5f, -2.0f}));
  TESSERA_ASSERT_OK(state_->CreateRun(NewRun("small"), small, ""));
  TESSERA_ASSERT_OK(state_->TEST_PutRaw("meta/format_version", "1"));
  Reopen();
  EXPECT_THAT(state_->TEST_GetRaw("meta/format_version"), IsOkAndHolds(std::string("2")));
  absl::StatusOr<ArrayRecord> loaded = state_->LoadModel("small", 0);
  ASSERT_THAT(loaded, IsOk());
  EXPECT_EQ(loaded->tensors[0].values<float>()[1], -2.0f);
}

TEST_F(ModelMemoryTest, ALargeModelLeavesLessThanFourMiBInTheMemtables) {
  const ArrayRecord initial = LargeModel(0);
  TESSERA_ASSERT_OK(state_->CreateRun(NewRun("big"), initial, ""));
  EXPECT_LT(state_->MemtableBytes(), 4u << 20) << "after CreateRun";

  const ArrayRecord next = LargeModel(1);
  TESSERA_ASSERT_OK(CommitRoundOne(*state_, "big", next));
  EXPECT_LT(state_->MemtableBytes(), 4u << 20) << "after CommitRound";

  for (const auto& [round, want] : {std::pair<uint32_t, const ArrayRecord*>{0, &initial},
                                    {1, &next}}) {
    absl::StatusOr<ArrayRecord> loaded = state_->LoadModel("big", round);
    ASSERT_THAT(loaded, IsOk());
    ASSERT_EQ(loaded->tensors.size(), want->tensors.size());
    for (size_t i = 0; i < want->tensors.size(); ++i) {
      EXPECT_TRUE(loaded->tensors[i].data() == want->tensors[i].data())
          << "round " << round << " tensor " << i;
    }
  }
}

}  // namespace
}  // namespace tessera::coordinator
