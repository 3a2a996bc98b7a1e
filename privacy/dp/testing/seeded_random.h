// Test helper: a reproducible SecureRandom from a repeated seed byte.
#ifndef TESSERA_PRIVACY_DP_TESTING_SEEDED_RANDOM_H_
#define TESSERA_PRIVACY_DP_TESTING_SEEDED_RANDOM_H_

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/testing/status_matchers.h"
#include "privacy/dp/random_source.h"

namespace tessera::dp {

inline SecureRandom Seeded(char fill) {
  absl::StatusOr<SecureRandom> rng = SecureRandom::FromSeed(std::string(32, fill));
  EXPECT_THAT(rng, IsOk());
  return std::move(rng).value();
}

}  // namespace tessera::dp

#endif  // TESSERA_PRIVACY_DP_TESTING_SEEDED_RANDOM_H_
