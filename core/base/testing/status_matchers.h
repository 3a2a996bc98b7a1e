// gMock matchers for absl::Status / StatusOr with absl's newer names (IsOk, StatusIs,
// IsOkAndHolds), so a later absl migration is a rename.
#ifndef TESSERA_CORE_BASE_TESTING_STATUS_MATCHERS_H_
#define TESSERA_CORE_BASE_TESTING_STATUS_MATCHERS_H_

#include <gmock/gmock.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tessera {
namespace status_matchers_internal {
inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}
}  // namespace status_matchers_internal

MATCHER(IsOk, "is OK") {
  const absl::Status& s = status_matchers_internal::GetStatus(arg);
  if (!s.ok()) *result_listener << "status: " << s;
  return s.ok();
}

MATCHER_P(StatusIs, code, "has status code " + testing::PrintToString(code)) {
  const absl::Status& s = status_matchers_internal::GetStatus(arg);
  *result_listener << "status: " << s;
  return s.code() == code;
}

MATCHER_P2(StatusIs, code, message_matcher, "has status code and message") {
  const absl::Status& s = status_matchers_internal::GetStatus(arg);
  *result_listener << "status: " << s;
  return s.code() == code &&
         testing::ExplainMatchResult(message_matcher, std::string(s.message()),
                                     result_listener);
}

MATCHER_P(IsOkAndHolds, value_matcher, "is OK and holds a matching value") {
  if (!arg.ok()) {
    *result_listener << "status: " << arg.status();
    return false;
  }
  return testing::ExplainMatchResult(value_matcher, *arg, result_listener);
}

}  // namespace tessera

#define TESSERA_ASSERT_OK(expr) ASSERT_THAT((expr), ::tessera::IsOk())
#define TESSERA_EXPECT_OK(expr) EXPECT_THAT((expr), ::tessera::IsOk())

#endif  // TESSERA_CORE_BASE_TESTING_STATUS_MATCHERS_H_
