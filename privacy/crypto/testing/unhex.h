// Test helper: bytes from a hex test vector (a test failure on bad hex).
#ifndef TESSERA_PRIVACY_CRYPTO_TESTING_UNHEX_H_
#define TESSERA_PRIVACY_CRYPTO_TESTING_UNHEX_H_

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/string_view.h"
#include "core/base/testing/status_matchers.h"
#include "core/crypto/sha256.h"

namespace tessera::crypto {

inline std::string Unhex(absl::string_view hex) {
  absl::StatusOr<std::string> bytes = HexDecode(hex);
  EXPECT_THAT(bytes, IsOk());
  return bytes.value_or("");
}

}  // namespace tessera::crypto

#endif  // TESSERA_PRIVACY_CRYPTO_TESTING_UNHEX_H_
