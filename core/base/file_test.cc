#include "core/base/file.h"

#include <sys/stat.h>

#include <cstdlib>
#include <string>

#include "core/base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;

std::string TempDir() {
  std::string tmpl = ::testing::TempDir() + "/file_test.XXXXXX";
  EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
  return tmpl;
}

TEST(FileTest, WriteFileAtomicallyWritesWithModeAndRefusesToReplaceUnlessAsked) {
  const std::string dir = TempDir(), path = dir + "/key.pem";
  ASSERT_THAT(WriteFileAtomically(path, "secret", 0600, /*replace=*/false), IsOk());
  EXPECT_EQ(ReadFileToString(path).value_or(""), "secret");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  EXPECT_THAT(WriteFileAtomically(path, "other", 0600, /*replace=*/false),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("not replacing")));
  EXPECT_EQ(ReadFileToString(path).value_or(""), "secret");
  ASSERT_THAT(WriteFileAtomically(path, "rotated", 0644, /*replace=*/true), IsOk());
  EXPECT_EQ(ReadFileToString(path).value_or(""), "rotated");
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
}

TEST(FileTest, WriteFileAtomicallyNamesThePathWhenItCannotWrite) {
  EXPECT_THAT(WriteFileAtomically("/nonexistent-dir/x.pem", "x", 0600, false),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("/nonexistent-dir/x.pem")));
  EXPECT_THAT(ReadFileToString("/nonexistent-dir/x.pem"),
              StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace tessera
