// What writing a model leaves in memory (model_store.h): its tensors go through RocksDB's
// memtables, flushed after each tensor of 4 MiB or more, so a large model's CreateRun or commit
// leaves none of its tensors in a memtable for the round that follows (docs/architecture.md,
// "Coordinator memory"), and the model still reads back bit for bit.
#include <cstdint>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "coordinator/state/coordinator_state.h"
#include "coordinator/state/state_test_fixture.h"
#include "core/base/testing/status_matchers.h"

namespace tessera::coordinator {
namespace {

// Three float32 tensors of 6 MB each (above the 4 MiB flush point, below the 8 MiB
// memtable): without the flush, RocksDB leaves at least the last one in the active memtable.
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

TEST_F(ModelMemoryTest, ALargeModelLeavesNoTensorInTheMemtables) {
  storage::v1::RunRecord run;
  run.set_run_id("big");
  run.mutable_config()->set_name("big");
  run.mutable_config()->set_rounds(2);
  run.set_state(wire::v1::CREATED);
  const ArrayRecord initial = LargeModel(0);
  TESSERA_ASSERT_OK(state_->CreateRun(run, initial, ""));
  EXPECT_LT(state_->MemtableBytes(), 4u << 20) << "after CreateRun";

  run.set_state(wire::v1::RUNNING);
  run.set_completed_rounds(1);
  wire::v1::RoundSummary summary;
  summary.set_round(1);
  summary.set_attempt(1);
  summary.set_state(wire::v1::ROUND_COMPLETED);
  const ArrayRecord next = LargeModel(1);
  TESSERA_ASSERT_OK(state_->CommitRound(run, summary, next));
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
