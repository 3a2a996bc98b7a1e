#include "client/data/dataset.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/testing/status_matchers.h"

namespace tessera {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

Dataset ThreeExamples() {
  Dataset d;
  d.example_shape = {2};
  d.features = {0, 1, 10, 11, 20, 21};
  d.labels = {0, 1, 2};
  d.num_classes = 3;
  return d;
}

TEST(DatasetTest, ValidateAcceptsConsistentData) {
  TESSERA_EXPECT_OK(ThreeExamples().Validate());
  EXPECT_EQ(ThreeExamples().size(), 3u);
  EXPECT_EQ(ThreeExamples().ExampleSize(), 2);
}

TEST(DatasetTest, ValidateRejectsBadData) {
  Dataset d = ThreeExamples();
  d.features.pop_back();
  EXPECT_THAT(d.Validate(), StatusIs(absl::StatusCode::kInvalidArgument));
  d = ThreeExamples();
  d.labels[1] = 3;
  EXPECT_THAT(d.Validate(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("example 1")));
  d = ThreeExamples();
  d.num_classes = 0;
  EXPECT_THAT(d.Validate(), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(DatasetTest, SubsetCopiesExamplesInOrder) {
  absl::StatusOr<Dataset> sub = Subset(ThreeExamples(), std::vector<size_t>{2, 0});
  TESSERA_ASSERT_OK(sub);
  EXPECT_THAT(sub->labels, ElementsAre(2, 0));
  EXPECT_THAT(sub->features, ElementsAre(20, 21, 0, 1));
  EXPECT_THAT(sub->example_shape, ElementsAre(2));
  EXPECT_EQ(sub->num_classes, 3);
}

TEST(DatasetTest, SubsetRejectsOutOfRangeIndex) {
  EXPECT_THAT(Subset(ThreeExamples(), std::vector<size_t>{0, 3}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("index 3")));
}

}  // namespace
}  // namespace tessera
