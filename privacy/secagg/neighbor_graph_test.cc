#include "privacy/secagg/neighbor_graph.h"

#include <algorithm>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/testing/status_matchers.h"

namespace tessera::secagg {
namespace {

std::string Seed(char c) { return std::string(32, c); }

void ExpectSimpleRegular(const std::vector<std::vector<uint32_t>>& g, uint32_t k) {
  const uint32_t n = static_cast<uint32_t>(g.size());
  for (uint32_t v = 0; v < n; ++v) {
    ASSERT_EQ(g[v].size(), k) << "node " << v;
    EXPECT_TRUE(std::is_sorted(g[v].begin(), g[v].end()));
    EXPECT_EQ(std::adjacent_find(g[v].begin(), g[v].end()), g[v].end()) << "multi-edge at " << v;
    for (uint32_t u : g[v]) {
      ASSERT_LT(u, n);
      EXPECT_NE(u, v) << "self loop";
      EXPECT_TRUE(std::binary_search(g[u].begin(), g[u].end(), v)) << v << "-" << u;
    }
  }
}

TEST(NeighborGraphTest, RegularSimpleSymmetricForEvenAndOddDegrees) {
  for (auto [n, k] : std::vector<std::pair<uint32_t, uint32_t>>{
           {2, 1}, {3, 2}, {10, 3}, {10, 4}, {11, 10}, {12, 11}, {100, 8}, {1000, 15}}) {
    auto g = RandomRegularGraph(n, k, Seed('a'));
    ASSERT_THAT(g, IsOk()) << n << "," << k;
    ASSERT_EQ(g->size(), n);
    ExpectSimpleRegular(*g, k);
  }
}

TEST(NeighborGraphTest, DeterministicPerSeedAndSeedsDiffer) {
  auto a1 = RandomRegularGraph(200, 10, Seed('a'));
  auto a2 = RandomRegularGraph(200, 10, Seed('a'));
  auto b = RandomRegularGraph(200, 10, Seed('b'));
  ASSERT_THAT(a1, IsOk());
  ASSERT_THAT(a2, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_EQ(*a1, *a2);
  EXPECT_NE(*a1, *b);
}

TEST(NeighborGraphTest, CompleteGraphWhenKIsNMinusOne) {
  auto g = RandomRegularGraph(7, 6, Seed('c'));
  ASSERT_THAT(g, IsOk());
  for (uint32_t v = 0; v < 7; ++v) {
    std::vector<uint32_t> expected;
    for (uint32_t u = 0; u < 7; ++u) {
      if (u != v) expected.push_back(u);
    }
    EXPECT_EQ((*g)[v], expected);
  }
}

TEST(NeighborGraphTest, RejectsImpossibleGraphs) {
  EXPECT_THAT(RandomRegularGraph(1, 1, Seed('a')), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(RandomRegularGraph(10, 0, Seed('a')), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(RandomRegularGraph(10, 10, Seed('a')), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(RandomRegularGraph(11, 3, Seed('a')), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(RandomRegularGraph(10, 4, "short"), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace tessera::secagg
