// The language-model side of a client refuses a base checkpoint that is not the run's.
#include "client/runtime/lm_workload.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/base/testing/status_matchers.h"
#include "core/crypto/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// What coreutils says: `cd DIR && sha256sum config.json | sha256sum`.
std::string CoreutilsIdentity(const std::string& dir) {
  const std::string cmd =
      absl::StrCat("cd '", dir, "' && sha256sum config.json | sha256sum | cut -c1-64");
  FILE* p = popen(cmd.c_str(), "r");
  char buf[128] = {};
  const size_t n = fread(buf, 1, sizeof(buf) - 1, p);
  pclose(p);
  return std::string(buf, n > 0 && buf[n - 1] == '\n' ? n - 1 : n);
}

class LmWorkloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/lm_workload_", ::getpid());
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ + "/config.json") << "{\"model_type\": \"llama\"}\n";
    std::ofstream(dir_ + "/data.jsonl") << "{\"text\": \"hello\"}\n";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(LmWorkloadTest, RefusesABaseCheckpointThatIsNotTheRuns) {
  const std::string actual = CoreutilsIdentity(dir_);
  ASSERT_EQ(actual.size(), 64u);
  wire::v1::ModelSpec spec;
  spec.mutable_causal_lm()->set_base_sha256(std::string(32, '\x11'));
  LmWorkloadOptions options;
  options.base_checkpoint = dir_;
  options.text_path = dir_ + "/data.jsonl";
  LmWorkload workload(options);
  EXPECT_THAT(workload.Ensure(spec),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr(dir_), HasSubstr(actual),
                             HasSubstr(std::string(64, '1')))));
}

TEST_F(LmWorkloadTest, NeedsACheckpointAndTextData) {
  wire::v1::ModelSpec spec;
  spec.mutable_causal_lm()->set_base_sha256(std::string(32, '\x11'));
  LmWorkloadOptions no_base;
  no_base.text_path = dir_ + "/data.jsonl";
  EXPECT_THAT(LmWorkload(no_base).Ensure(spec),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("--base-checkpoint")));
  LmWorkloadOptions no_text;
  no_text.base_checkpoint = dir_;
  EXPECT_THAT(LmWorkload(no_text).Ensure(spec),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("--data jsonl:")));
}

}  // namespace
}  // namespace tessera
