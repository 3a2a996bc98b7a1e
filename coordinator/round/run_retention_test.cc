// The retention policy against hand-listed expectations (docs/operations.md).
#include "coordinator/round/run_retention.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace tessera::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

wire::v1::RetentionConfig Policy(uint32_t keep_last, uint32_t keep_every) {
  wire::v1::RetentionConfig p;
  p.set_keep_last(keep_last);
  p.set_keep_every(keep_every);
  return p;
}

std::vector<uint32_t> Kept(uint32_t completed, const wire::v1::RetentionConfig& policy,
                           std::vector<uint32_t> pinned, bool archived) {
  std::vector<uint32_t> out;
  for (uint32_t r = 0; r <= completed; ++r) {
    if (KeepsModel(r, completed, policy, pinned, archived)) out.push_back(r);
  }
  return out;
}

TEST(RunRetentionTest, KeepsInitialLastAndMultiples) {
  // 10 rounds, last 2, every 4th: 0; 9, 10; 4, 8.
  EXPECT_THAT(Kept(10, Policy(2, 4), {}, false), ElementsAre(0, 4, 8, 9, 10));
  // Last 1, none periodic: the initial and the current model.
  EXPECT_THAT(Kept(10, Policy(1, 0), {}, false), ElementsAre(0, 10));
  // keep_every 1 keeps all.
  EXPECT_THAT(Kept(3, Policy(1, 1), {}, false), ElementsAre(0, 1, 2, 3));
  // More kept than exist.
  EXPECT_THAT(Kept(2, Policy(5, 0), {}, false), ElementsAre(0, 1, 2));
}

TEST(RunRetentionTest, PinnedRoundsStayAndArchivedKeepsOnlyFinalAndPinned) {
  EXPECT_THAT(Kept(10, Policy(1, 0), {3, 7}, false), ElementsAre(0, 3, 7, 10));
  EXPECT_THAT(Kept(10, Policy(3, 2), {3}, true), ElementsAre(3, 10));
  EXPECT_THAT(Kept(10, Policy(3, 2), {}, true), ElementsAre(10));
}

TEST(RunRetentionTest, UnsetPolicyKeepsEverything) {
  // A run stored before retention existed (keep_last 0).
  EXPECT_THAT(Kept(4, Policy(0, 0), {}, false), ElementsAre(0, 1, 2, 3, 4));
}

TEST(RunRetentionTest, ModelsToDeleteListsOnlyStoredRoundsOutsideThePolicy) {
  EXPECT_THAT(ModelsToDelete({0, 1, 2, 3, 4, 5}, 5, Policy(2, 0), {1}, false), ElementsAre(2, 3));
  // Already pruned: nothing more.
  EXPECT_THAT(ModelsToDelete({0, 4, 5}, 5, Policy(2, 0), {}, false), IsEmpty());
}

TEST(RunRetentionTest, CoordinatorDefaultsAreChecked) {
  EXPECT_TRUE(ValidateRetentionDefaults(Policy(1, 0)).ok());
  EXPECT_EQ(ValidateRetentionDefaults(Policy(0, 0)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateRetentionDefaults(Policy(1, 100000000)).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tessera::coordinator
