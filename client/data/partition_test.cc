#include "client/data/partition.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/base/testing/status_matchers.h"

namespace tessera {
namespace {

constexpr int64_t kClasses = 10;

// 500 examples of each of 10 classes, interleaved.
std::vector<int64_t> BalancedLabels(size_t per_class = 500) {
  std::vector<int64_t> labels;
  for (size_t i = 0; i < per_class * kClasses; ++i) {
    labels.push_back(static_cast<int64_t>(i % kClasses));
  }
  return labels;
}

// Every index in [0, n) appears in exactly one party, and parties are sorted.
void ExpectExactCover(const Partition& parts, size_t n) {
  std::vector<int> seen(n);
  for (const std::vector<size_t>& part : parts) {
    EXPECT_TRUE(std::is_sorted(part.begin(), part.end()));
    for (size_t i : part) {
      ASSERT_LT(i, n);
      ++seen[i];
    }
  }
  EXPECT_THAT(seen, testing::Each(1));
}

// Mean over parties of the total-variation distance between the party's label
// distribution and the uniform one.
double MeanLabelSkew(const Partition& parts, const std::vector<int64_t>& labels) {
  double total = 0;
  for (const std::vector<size_t>& part : parts) {
    std::vector<double> hist(kClasses);
    for (size_t i : part) hist[static_cast<size_t>(labels[i])] += 1.0 / part.size();
    double tv = 0;
    for (double h : hist) tv += std::abs(h - 1.0 / kClasses) / 2;
    total += tv;
  }
  return total / parts.size();
}

TEST(PartitionIidTest, BalancedExactCover) {
  const std::vector<int64_t> labels = BalancedLabels(101);  // 1010 examples
  absl::StatusOr<Partition> parts = PartitionIid(labels, 7, 42);
  TESSERA_ASSERT_OK(parts);
  ASSERT_EQ(parts->size(), 7u);
  ExpectExactCover(*parts, labels.size());
  for (const std::vector<size_t>& part : *parts) {
    EXPECT_TRUE(part.size() == 144 || part.size() == 145) << part.size();
  }
  absl::StatusOr<Partition> again = PartitionIid(labels, 7, 42);
  TESSERA_ASSERT_OK(again);
  EXPECT_EQ(*parts, *again);
  absl::StatusOr<Partition> other = PartitionIid(labels, 7, 43);
  TESSERA_ASSERT_OK(other);
  EXPECT_NE(*parts, *other);
}

TEST(PartitionIidTest, Errors) {
  const std::vector<int64_t> labels = {0, 1, 2};
  EXPECT_THAT(PartitionIid(labels, 0, 1), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(PartitionIid(labels, 4, 1), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(PartitionDirichletTest, CoversAllWithMinSizeAndIsDeterministic) {
  const std::vector<int64_t> labels = BalancedLabels();
  for (double alpha : {0.1, 0.5, 100.0}) {
    absl::StatusOr<Partition> parts =
        PartitionDirichletLabels(labels, kClasses, 10, alpha, 7, /*min_size=*/10);
    TESSERA_ASSERT_OK(parts);
    ASSERT_EQ(parts->size(), 10u);
    ExpectExactCover(*parts, labels.size());
    for (const std::vector<size_t>& part : *parts) EXPECT_GE(part.size(), 10u);
    absl::StatusOr<Partition> again =
        PartitionDirichletLabels(labels, kClasses, 10, alpha, 7, 10);
    TESSERA_ASSERT_OK(again);
    EXPECT_EQ(*parts, *again) << "alpha " << alpha;
  }
}

TEST(PartitionDirichletTest, SmallAlphaSkewsLabelsMoreThanLargeAlpha) {
  const std::vector<int64_t> labels = BalancedLabels();
  absl::StatusOr<Partition> skewed = PartitionDirichletLabels(labels, kClasses, 10, 0.1, 3);
  absl::StatusOr<Partition> mild = PartitionDirichletLabels(labels, kClasses, 10, 100, 3);
  TESSERA_ASSERT_OK(skewed);
  TESSERA_ASSERT_OK(mild);
  const double skew_small = MeanLabelSkew(*skewed, labels);
  const double skew_large = MeanLabelSkew(*mild, labels);
  EXPECT_GT(skew_small, 0.4);
  EXPECT_LT(skew_large, 0.1);
  EXPECT_GT(skew_small, 4 * skew_large);
}

TEST(PartitionDirichletTest, Errors) {
  const std::vector<int64_t> labels = BalancedLabels(5);  // 50 examples
  EXPECT_THAT(PartitionDirichletLabels(labels, kClasses, 0, 0.5, 1),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(PartitionDirichletLabels(labels, kClasses, 51, 0.5, 1, 0),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(PartitionDirichletLabels(labels, kClasses, 5, 0.0, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, testing::HasSubstr("alpha")));
  EXPECT_THAT(PartitionDirichletLabels(labels, kClasses, 5, -1.0, 1),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(PartitionDirichletLabels(labels, 5, 5, 0.5, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, testing::HasSubstr("label 5")));
  EXPECT_THAT(PartitionDirichletLabels(labels, kClasses, 6, 0.5, 1, /*min_size=*/10),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace tessera
