#include "core/base/log_math.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace tessera {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

TEST(LogAddTest, AddsInLinearSpace) {
  // 2 + 3 = 5.
  EXPECT_DOUBLE_EQ(LogAdd(std::log(2.0), std::log(3.0)), std::log(5.0));
  EXPECT_DOUBLE_EQ(LogAdd(std::log(3.0), std::log(2.0)), std::log(5.0));
}

TEST(LogAddTest, MinusInfinityIsZero) {
  EXPECT_EQ(LogAdd(kNegInf, 1.5), 1.5);
  EXPECT_EQ(LogAdd(-2.0, kNegInf), -2.0);
  EXPECT_EQ(LogAdd(kNegInf, kNegInf), kNegInf);
}

TEST(LogAddTest, NeitherOverflowsNorUnderflows) {
  // e^1000 + e^1000 = 2 e^1000, and likewise at -1000.
  EXPECT_DOUBLE_EQ(LogAdd(1000.0, 1000.0), 1000.0 + std::log(2.0));
  EXPECT_DOUBLE_EQ(LogAdd(-1000.0, -1000.0), -1000.0 + std::log(2.0));
  // e^-800 is below half an ulp of 1.
  EXPECT_EQ(LogAdd(0.0, -800.0), 0.0);
}

TEST(LogBinomialTest, SmallCoefficients) {
  EXPECT_NEAR(LogBinomial(5, 2), std::log(10.0), 1e-12);              // 5*4/2
  EXPECT_NEAR(LogBinomial(52, 5), std::log(2598960.0), 1e-12);        // poker hands
  EXPECT_NEAR(LogBinomial(1000, 1), std::log(1000.0), 1e-12);
  EXPECT_NEAR(LogBinomial(1000, 999), std::log(1000.0), 1e-12);
}

TEST(LogBinomialTest, EmptyAndFullChoicesAreOne) {
  EXPECT_NEAR(LogBinomial(0, 0), 0.0, 1e-15);
  EXPECT_NEAR(LogBinomial(10, 0), 0.0, 1e-15);
  EXPECT_NEAR(LogBinomial(10, 10), 0.0, 1e-15);
}

TEST(LogBinomialTest, LargePopulation) {
  // C(10^6, 2) = 10^6 (10^6 - 1) / 2 = 499999500000.
  EXPECT_NEAR(LogBinomial(1000000, 2), std::log(499999500000.0), 1e-7);
}

TEST(LogBinomialTest, MoreThanNIsMinusInfinity) {
  EXPECT_EQ(LogBinomial(3, 4), kNegInf);
  EXPECT_EQ(LogBinomial(0, 1), kNegInf);
}

}  // namespace
}  // namespace tessera
