// The accept-update station's set-up alone (round_fold.h): which rounds stage their updates,
// at the fold budget's boundary, and the fold each gets.
#include "coordinator/round/round_fold.h"

#include <filesystem>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/testing/status_matchers.h"
#include "privacy/crypto/random.h"

namespace tessera::coordinator {
namespace {

using ::testing::HasSubstr;

// 2 x 3 + 4 = 10 parameters. The exact accumulator keeps 3 int64 bins and an int8 exponent
// per element (25 bytes) for each parameter and for the sum of the weights:
// (10 + 1) * 25 = 275 bytes.
constexpr uint64_t kAccumulatorBytes = 275;

ArrayRecord Layout() {
  ArrayRecord r;
  r.tensors.push_back(*Tensor::FromFloats("a", {2, 3}, std::vector<float>(6, 1.0f)));
  r.tensors.push_back(*Tensor::FromFloats("b", {4}, std::vector<float>(4, 2.0f)));
  return r;
}

class RoundFoldTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() / ("round-fold-test-" + crypto::RandomHexId(6));
    std::filesystem::create_directory(root_);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  std::filesystem::path root_;
};

TEST_F(RoundFoldTest, AWeightedMeanStagesOnlyOverTheBudget) {
  const RoundStrategy fed_avg;
  EXPECT_FALSE(FoldBudget(root_.string(), kAccumulatorBytes).Stages(fed_avg, Layout()));
  EXPECT_TRUE(FoldBudget(root_.string(), kAccumulatorBytes - 1).Stages(fed_avg, Layout()));
  EXPECT_TRUE(FoldBudget(root_.string(), 0).Stages(fed_avg, Layout()));
}

TEST_F(RoundFoldTest, NoStagingRootOrARobustRuleKeepsTheFoldInMemory) {
  EXPECT_FALSE(FoldBudget("", 0).Stages(RoundStrategy(), Layout()));
  wire::v1::StrategyConfig median;
  median.set_kind(wire::v1::StrategyConfig::MEDIAN);
  absl::StatusOr<RoundStrategy> robust = RoundStrategy::Create(median, Layout(), nullptr);
  ASSERT_TRUE(robust.ok()) << robust.status();
  EXPECT_FALSE(FoldBudget(root_.string(), 0).Stages(*robust, Layout()));
}

TEST_F(RoundFoldTest, EachStagedFoldGetsADirectoryOfItsOwn) {
  FoldBudget budget(root_.string(), kAccumulatorBytes - 1);
  {
    absl::StatusOr<RoundFold> first = budget.NewFold(RoundStrategy(), Layout());
    ASSERT_TRUE(first.ok()) << first.status();
    absl::StatusOr<RoundFold> second = budget.NewFold(RoundStrategy(), Layout());
    ASSERT_TRUE(second.ok()) << second.status();
    ASSERT_NE(first->staging, nullptr);
    ASSERT_NE(second->staging, nullptr);
    EXPECT_EQ(first->staging->dir(), (root_ / "0").string());
    EXPECT_EQ(second->staging->dir(), (root_ / "1").string());
    EXPECT_TRUE(std::filesystem::is_directory(root_ / "0"));
    EXPECT_TRUE(std::filesystem::is_directory(root_ / "1"));
    EXPECT_EQ(first->fold.staging(), first->staging);
    // 10 float32 parameters: one staged file holds 40 bytes.
    EXPECT_EQ(first->staging->file_bytes(), 40u);
  }
  // A directory goes with its fold and staging.
  EXPECT_TRUE(std::filesystem::is_empty(root_));
}

TEST_F(RoundFoldTest, AFoldInMemoryMakesNoDirectoryAndTakesNoName) {
  FoldBudget budget(root_.string(), kAccumulatorBytes);
  absl::StatusOr<RoundFold> memory = budget.NewFold(RoundStrategy(), Layout());
  ASSERT_TRUE(memory.ok()) << memory.status();
  EXPECT_EQ(memory->staging, nullptr);
  EXPECT_EQ(memory->fold.staging(), nullptr);
  EXPECT_TRUE(std::filesystem::is_empty(root_));
  // The next staged fold of a budget is still named 0.
  ArrayRecord larger = Layout();
  larger.tensors.push_back(*Tensor::FromFloats("c", {1}, {0.0f}));
  absl::StatusOr<RoundFold> staged = budget.NewFold(RoundStrategy(), larger);
  ASSERT_TRUE(staged.ok()) << staged.status();
  ASSERT_NE(staged->staging, nullptr);
  EXPECT_EQ(staged->staging->dir(), (root_ / "0").string());
}

TEST_F(RoundFoldTest, AStagingDirectoryThatCannotBeMadeFailsTheFold) {
  // The next directory exists already (the staging root is emptied at start-up, so this is
  // a fault).
  std::filesystem::create_directory(root_ / "0");
  FoldBudget budget(root_.string(), 0);
  EXPECT_THAT(budget.NewFold(RoundStrategy(), Layout()).status(),
              StatusIs(absl::StatusCode::kInternal, HasSubstr((root_ / "0").string())));
  // The staging root is missing.
  FoldBudget missing((root_ / "missing").string(), 0);
  EXPECT_THAT(missing.NewFold(RoundStrategy(), Layout()).status(),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("missing")));
}

}  // namespace
}  // namespace tessera::coordinator
