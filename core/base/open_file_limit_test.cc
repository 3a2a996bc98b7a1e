#include "core/base/open_file_limit.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "core/base/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

// Lowers this process's soft limit to `soft` for the test and restores it afterwards (an
// unprivileged process may move its soft limit anywhere up to the hard one).
class SoftLimitOverride {
 public:
  explicit SoftLimitOverride(rlim_t soft) {
    getrlimit(RLIMIT_NOFILE, &saved_);
    rlimit lowered = saved_;
    lowered.rlim_cur = soft;
    ok_ = setrlimit(RLIMIT_NOFILE, &lowered) == 0;
  }
  ~SoftLimitOverride() { setrlimit(RLIMIT_NOFILE, &saved_); }
  bool ok() const { return ok_; }
  rlim_t hard() const { return saved_.rlim_max; }

 private:
  rlimit saved_{};
  bool ok_ = false;
};

TEST(OpenFileLimitTest, GetReadsWhatGetrlimitSays) {
  rlimit r{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &r), 0);
  absl::StatusOr<OpenFileLimit> limit = GetOpenFileLimit();
  TESSERA_ASSERT_OK(limit);
  EXPECT_EQ(limit->soft, r.rlim_cur);
  EXPECT_EQ(limit->hard, r.rlim_max);
}

TEST(OpenFileLimitTest, RaiseLiftsASoftLimitOf64ToTheHardLimit) {
  SoftLimitOverride low(64);
  ASSERT_TRUE(low.ok());
  if (low.hard() <= 128) GTEST_SKIP() << "the hard limit here is only " << low.hard();
  // With the soft limit at 64, the 65th descriptor cannot be opened: the limit is real.
  std::vector<int> fds;
  int fd;
  while ((fd = open("/dev/null", O_RDONLY)) >= 0) fds.push_back(fd);
  EXPECT_EQ(errno, EMFILE);
  EXPECT_LT(fds.size(), 64u);
  for (int f : fds) close(f);
  fds.clear();

  absl::StatusOr<OpenFileLimit> after = RaiseOpenFileSoftLimit();
  TESSERA_ASSERT_OK(after);
  rlimit r{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &r), 0);
  EXPECT_EQ(r.rlim_cur, low.hard());
  EXPECT_EQ(after->soft, low.hard());
  EXPECT_EQ(after->hard, low.hard());
  // And 100 descriptors now fit.
  for (int i = 0; i < 100; ++i) {
    fd = open("/dev/null", O_RDONLY);
    ASSERT_GE(fd, 0) << "descriptor " << i;
    fds.push_back(fd);
  }
  for (int f : fds) close(f);
}

}  // namespace
}  // namespace tessera
