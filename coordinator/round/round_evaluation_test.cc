// RoundEvaluation alone, at the stations the round loop calls it: which rounds are evaluated
// (select), the checks on a client's result (accept), and the example-weighted means in the
// round's summary (aggregate).
#include "coordinator/round/round_evaluation.h"

#include <cmath>
#include <limits>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/testing/status_matchers.h"

namespace tessera::coordinator {
namespace {

using ::testing::HasSubstr;

wire::v1::EvaluationConfig Every(uint32_t every) {
  wire::v1::EvaluationConfig c;
  c.set_every(every);
  c.set_deadline_seconds(5);
  return c;
}

TEST(RoundEvaluationTest, DueEveryNRoundsAndAfterTheLast) {
  // every 3 of 7 rounds: rounds 3 and 6, and 7 (the last) although 7 % 3 != 0.
  std::vector<uint32_t> due;
  for (uint32_t round = 1; round <= 7; ++round) {
    if (RoundEvaluation::Due(Every(3), 7, round)) due.push_back(round);
  }
  EXPECT_THAT(due, ::testing::ElementsAre(3, 6, 7));
  // every 1: each round.
  for (uint32_t round = 1; round <= 4; ++round) {
    EXPECT_TRUE(RoundEvaluation::Due(Every(1), 4, round));
  }
  // every 0: never, not even the last round.
  for (uint32_t round = 1; round <= 4; ++round) {
    EXPECT_FALSE(RoundEvaluation::Due(Every(0), 4, round));
  }
  // every larger than the run: the last round only.
  EXPECT_FALSE(RoundEvaluation::Due(Every(10), 4, 3));
  EXPECT_TRUE(RoundEvaluation::Due(Every(10), 4, 4));
}

TEST(RoundEvaluationTest, ValidateNamesTheFieldAtEachLimit) {
  const uint64_t max = 1000;
  TESSERA_EXPECT_OK(RoundEvaluation::Validate(1, 0.5, 0.0, max));
  TESSERA_EXPECT_OK(RoundEvaluation::Validate(max, -3.0, 1.0, max));  // a negative loss is finite
  EXPECT_THAT(RoundEvaluation::Validate(0, 0.5, 0.5, max),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_examples")));
  EXPECT_THAT(RoundEvaluation::Validate(max + 1, 0.5, 0.5, max),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_examples")));
  for (double loss : {std::numeric_limits<double>::infinity(),
                      -std::numeric_limits<double>::infinity(),
                      std::numeric_limits<double>::quiet_NaN()}) {
    EXPECT_THAT(RoundEvaluation::Validate(10, loss, 0.5, max),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("loss")));
  }
  for (double accuracy : {-1e-9, 1.0 + 1e-9, std::numeric_limits<double>::quiet_NaN()}) {
    EXPECT_THAT(RoundEvaluation::Validate(10, 0.5, accuracy, max),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("accuracy")));
  }
}

TEST(RoundEvaluationTest, SummarizeWeighsEachResultByItsExamples) {
  RoundEvaluation evaluation;
  evaluation.Accept(100, 0.5, 0.75);
  evaluation.Accept(300, 1.0, 0.25);
  wire::v1::RoundSummary summary;
  evaluation.Summarize(&summary);
  // By hand: loss (100 * 0.5 + 300 * 1.0) / 400 = 350 / 400 = 0.875;
  // accuracy (100 * 0.75 + 300 * 0.25) / 400 = 150 / 400 = 0.375 (an unweighted mean
  // would give 0.75 and 0.5).
  EXPECT_EQ(summary.evaluated(), 2u);
  EXPECT_DOUBLE_EQ(summary.eval_loss(), 0.875);
  EXPECT_DOUBLE_EQ(summary.eval_accuracy(), 0.375);
}

TEST(RoundEvaluationTest, NoResultLeavesTheMeansUnset) {
  RoundEvaluation evaluation;
  wire::v1::RoundSummary summary;
  summary.set_round(4);
  evaluation.Summarize(&summary);
  EXPECT_EQ(summary.evaluated(), 0u);
  EXPECT_FALSE(std::isnan(summary.eval_loss()));  // no 0 / 0
  EXPECT_EQ(summary.eval_loss(), 0.0);
  EXPECT_EQ(summary.eval_accuracy(), 0.0);
}

}  // namespace
}  // namespace tessera::coordinator
