#include "privacy/crypto/random.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "core/base/testing/status_matchers.h"

namespace tessera {
namespace crypto {
namespace {

TEST(RandomTest, RandomBytesHasRequestedLength) {
  EXPECT_THAT(RandomBytes(0), IsOkAndHolds(std::string()));
  absl::StatusOr<std::string> a = RandomBytes(32);
  absl::StatusOr<std::string> b = RandomBytes(32);
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_EQ(a->size(), 32u);
  EXPECT_NE(*a, *b);  // 2^-256 chance of a false failure
}

TEST(RandomTest, RandomHexIdIsLowercaseHex) {
  const std::string id = RandomHexId();
  EXPECT_EQ(id.size(), 16u);
  EXPECT_THAT(id, ::testing::MatchesRegex("[0-9a-f]+"));
  EXPECT_EQ(RandomHexId(3).size(), 6u);
  EXPECT_NE(RandomHexId(16), RandomHexId(16));
}

}  // namespace
}  // namespace crypto
}  // namespace tessera
