#include "core/config/privacy_budget.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/testing/status_matchers.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;

TEST(PrivacyBudgetTest, ParsesBothKeysInAnyOrder) {
  absl::StatusOr<PrivacyBudget> b = ParsePrivacyBudget("epsilon=8,delta=1e-5");
  ASSERT_THAT(b, IsOk());
  EXPECT_DOUBLE_EQ(b->epsilon, 8);
  EXPECT_DOUBLE_EQ(b->delta, 1e-5);
  b = ParsePrivacyBudget(" delta = 0.0001 , epsilon = 2.5 ");
  ASSERT_THAT(b, IsOk());
  EXPECT_DOUBLE_EQ(b->epsilon, 2.5);
  EXPECT_DOUBLE_EQ(b->delta, 1e-4);
  absl::StatusOr<PrivacyBudget> again = ParsePrivacyBudget(FormatPrivacyBudget(*b));
  ASSERT_THAT(again, IsOk());
  EXPECT_TRUE(*again == *b);
}

TEST(PrivacyBudgetTest, ErrorsNameTheKey) {
  EXPECT_THAT(ParsePrivacyBudget("epsilon=8"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("delta: missing")));
  EXPECT_THAT(ParsePrivacyBudget("delta=1e-5"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("epsilon: missing")));
  EXPECT_THAT(ParsePrivacyBudget("epsilon=0,delta=1e-5"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("epsilon: must be")));
  EXPECT_THAT(ParsePrivacyBudget("epsilon=inf,delta=1e-5"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("epsilon")));
  EXPECT_THAT(ParsePrivacyBudget("epsilon=8,delta=0.5"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("delta: must be")));
  EXPECT_THAT(ParsePrivacyBudget("epsilon=8,delta=x"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("delta: \"x\"")));
  EXPECT_THAT(ParsePrivacyBudget("epsilon=8,delta=1e-5,rho=1"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("rho: unknown key")));
  EXPECT_THAT(ParsePrivacyBudget("epsilon=8,epsilon=1,delta=1e-5"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("set twice")));
  EXPECT_THAT(ParsePrivacyBudget("eight"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("epsilon=E,delta=D")));
}

}  // namespace
}  // namespace tessera
