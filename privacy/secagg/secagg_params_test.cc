#include "privacy/secagg/secagg_params.h"

#include <cmath>
#include <cstdio>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/testing/status_matchers.h"

namespace tessera::secagg {
namespace {

using ::testing::HasSubstr;

TEST(SecAggParamsTest, SmallCohortUsesCompleteGraphWithBonawitzThreshold) {
  auto p = DeriveParams({.num_clients = 10, .dropout_fraction = 0.2, .corrupt_fraction = 0.3});
  ASSERT_THAT(p, IsOk());
  EXPECT_TRUE(p->complete_graph);
  EXPECT_EQ(p->degree_k, 9u);
  // C = 3 corrupt, D = 2 dropped: t > 3 and t <= 9 - 2 = 7.
  EXPECT_GT(p->threshold_t, 3u);
  EXPECT_LE(p->threshold_t, 7u);
}

TEST(SecAggParamsTest, LargeCohortGetsLogarithmicDegree) {
  for (uint32_t n : {1000u, 10000u, 100000u}) {
    auto p = DeriveParams({.num_clients = n, .dropout_fraction = 0.1, .corrupt_fraction = 0.1});
    ASSERT_THAT(p, IsOk());
    std::printf("n=%u dropout=0.1 corrupt=0.1 sigma=40: k=%u t=%u log2(fail)=%.1f\n", n,
                p->degree_k, p->threshold_t, p->log2_failure);
    EXPECT_FALSE(p->complete_graph);
    EXPECT_LT(p->degree_k, n / 4);
    EXPECT_EQ(p->degree_k % 2, 0u);
    EXPECT_LE(p->log2_failure, -40.0);
    // t is above the expected corrupt neighbours and below the expected survivors.
    EXPECT_GT(p->threshold_t, 0.1 * p->degree_k);
    EXPECT_LT(p->threshold_t, 0.9 * p->degree_k);
    // One step smaller k fails the bound for every t.
    for (uint32_t t = 1; t <= p->degree_k - 2; ++t) {
      EXPECT_GT(Log2SparseFailureBound(n, p->degree_k - 2, t, n / 10, n / 10), -40.0);
    }
  }
}

TEST(SecAggParamsTest, RejectsBadArguments) {
  EXPECT_THAT(DeriveParams({.num_clients = 1}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DeriveParams({.num_clients = 100, .dropout_fraction = 1.0}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DeriveParams({.num_clients = 100, .corrupt_fraction = -0.1}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DeriveParams({.num_clients = 100, .corrupt_fraction = std::nan("")}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DeriveParams({.num_clients = 100, .security_bits = 0}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(SecAggParamsTest, RejectsInfeasibleModelsWithReason) {
  EXPECT_THAT(
      DeriveParams({.num_clients = 10, .dropout_fraction = 0.5, .corrupt_fraction = 0.5}),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("too large")));
  EXPECT_THAT(
      DeriveParams({.num_clients = 1000, .dropout_fraction = 0.6, .corrupt_fraction = 0.45}),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no sparse degree")));
}

TEST(SecAggParamsTest, HeavyThreatFallsBackToCompleteGraph) {
  auto p = DeriveParams({.num_clients = 60, .dropout_fraction = 0.35, .corrupt_fraction = 0.2});
  ASSERT_THAT(p, IsOk());
  EXPECT_TRUE(p->complete_graph);
  EXPECT_EQ(p->degree_k, 59u);
  // C = 12, D = 21: t > (59 + 12) / 2 = 35.5 and t <= 59 - 21 = 38; the midpoint.
  EXPECT_EQ(p->threshold_t, 37u);
  // corrupt + 2 * dropout >= 1 leaves no threshold.
  EXPECT_THAT(
      DeriveParams({.num_clients = 200, .dropout_fraction = 0.4, .corrupt_fraction = 0.4}),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("t > (k + C) / 2")));
}

// Against a malicious coordinator no two disjoint groups of honest neighbours may each
// reach t with the same corrupt ones: t > (k + C) / 2 (hand-derived values).
TEST(SecAggParamsTest, CompleteGraphThresholdIsAboveHalfOfNeighboursPlusCorrupt) {
  // n = 10, C = ceil(0.05 * 10) = 1, D = 3: t > 5 and t <= 6.
  auto p = DeriveParams({.num_clients = 10, .dropout_fraction = 0.3, .corrupt_fraction = 0.05});
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->threshold_t, 6u);
  // The demo: n = 5, C = 1, D = 1: t > (4 + 1) / 2 and t <= 3.
  p = DeriveParams({.num_clients = 5, .dropout_fraction = 0.2, .corrupt_fraction = 0.1});
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->threshold_t, 3u);
  EXPECT_EQ(MinMaliciousThreshold(9, 1), 6u);
  EXPECT_EQ(MinMaliciousThreshold(4, 1), 3u);
  EXPECT_EQ(MinMaliciousThreshold(8, 0), 5u);
}

// Clients selected but never in the graph have used up tolerated dropouts; corrupt ones
// still count against the selection.
TEST(SecAggParamsTest, DropoutsBeforeTheGraphUseUpTheTolerance) {
  // 10 selected, 7 advertised: C = 1, D = 3 - 3 = 0: t in [4, 6], midpoint 5.
  auto p = DeriveParams({.num_clients = 7, .num_selected = 10, .dropout_fraction = 0.3,
                         .corrupt_fraction = 0.05});
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->degree_k, 6u);
  EXPECT_EQ(p->threshold_t, 5u);
  // Had 7 been selected, D = ceil(2.1) = 3 leaves t <= 3 < 4: infeasible.
  EXPECT_THAT(DeriveParams({.num_clients = 7, .dropout_fraction = 0.3, .corrupt_fraction = 0.05}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(SecAggParamsTest, MoreDropoutOrCorruptionNeverLowersK) {
  for (uint32_t n : {40u, 500u, 1000u}) {
    uint32_t last_k = 0;
    for (double dropout = 0; dropout < 0.5; dropout += 0.05) {
      auto p = DeriveParams({.num_clients = n, .dropout_fraction = dropout,
                             .corrupt_fraction = 0.1});
      if (!p.ok()) break;  // once infeasible, stays infeasible
      EXPECT_GE(p->degree_k, last_k) << "n=" << n << " dropout=" << dropout;
      last_k = p->degree_k;
    }
    last_k = 0;
    for (double corrupt = 0; corrupt < 0.5; corrupt += 0.05) {
      auto p = DeriveParams({.num_clients = n, .dropout_fraction = 0.1,
                             .corrupt_fraction = corrupt});
      if (!p.ok()) break;
      EXPECT_GE(p->degree_k, last_k) << "n=" << n << " corrupt=" << corrupt;
      last_k = p->degree_k;
    }
  }
}

}  // namespace
}  // namespace tessera::secagg
