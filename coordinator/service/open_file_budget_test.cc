#include "coordinator/service/open_file_budget.h"

#include <cstdint>
#include <limits>

#include "core/base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::coordinator {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// Expected values by hand: a connection per client + 512 state files (RocksDB's
// max_open_files) + 256 reserved, so 768 fixed.
TEST(OpenFileBudgetTest, NeedsAConnectionPerClientPlusTheStateAndAReserve) {
  EXPECT_EQ(OpenFilesNeeded(1), 769u);
  EXPECT_EQ(OpenFilesNeeded(1000), 1768u);
  EXPECT_EQ(OpenFilesNeeded(10000), 10768u);  // the --max-clients default
  // 2^32 - 1 + 768: computed in 64 bits, no overflow.
  EXPECT_EQ(OpenFilesNeeded(std::numeric_limits<uint32_t>::max()), uint64_t{4294968063});
}

TEST(OpenFileBudgetTest, FitsExactlyAtTheLimit) {
  TESSERA_EXPECT_OK(CheckOpenFileBudget(1000, 1768));
  TESSERA_EXPECT_OK(CheckOpenFileBudget(10000, 65536));  // deploy/systemd's LimitNOFILE
  TESSERA_EXPECT_OK(CheckOpenFileBudget(10000, std::numeric_limits<uint64_t>::max()));
}

TEST(OpenFileBudgetTest, RefusesOneShortAndSaysWhatFits) {
  EXPECT_THAT(CheckOpenFileBudget(1000, 1767),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("--max-clients 1000 needs up to 1768 open files"),
                             HasSubstr("(RLIMIT_NOFILE) is 1767"), HasSubstr("LimitNOFILE="),
                             HasSubstr("set --max-clients to at most 999"))));
}

TEST(OpenFileBudgetTest, TheDefaultMaxClientsUnderAHardLimitOf4096) {
  EXPECT_THAT(CheckOpenFileBudget(10000, 4096),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("needs up to 10768"), HasSubstr("is 4096"),
                             HasSubstr("at most 3328"))));
}

TEST(OpenFileBudgetTest, ALimitBelowTheFixedPartFitsNoClient) {
  EXPECT_THAT(CheckOpenFileBudget(1, 768),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("give it more than 768")));
}

}  // namespace
}  // namespace tessera::coordinator
