#include "core/base/json_log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <glog/logging.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_split.h"
#include "core/base/testing/status_matchers.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;

TEST(JsonLogTest, OneObjectPerMessageWithEscaping) {
  const std::string line =
      JsonLogLine(1, "server.cc", 42, 1795231540, 123456, "refused \"x\"\nat 10.0.0.1");
  EXPECT_EQ(line.find('\n'), std::string::npos);  // one line, whatever the message holds
  const nlohmann::json j = nlohmann::json::parse(line);
  EXPECT_EQ(j["ts"], "2026-11-21T03:25:40.123456Z");
  EXPECT_EQ(j["level"], "WARNING");
  EXPECT_EQ(j["file"], "server.cc");
  EXPECT_EQ(j["line"], 42);
  EXPECT_EQ(j["msg"], "refused \"x\"\nat 10.0.0.1");
}

TEST(JsonLogTest, InvalidUtf8IsReplacedNotThrown) {
  const nlohmann::json j =
      nlohmann::json::parse(JsonLogLine(0, "a.cc", 1, 0, 0, std::string("bad \xff byte")));
  EXPECT_THAT(j["msg"].get<std::string>(), HasSubstr("bad "));
  EXPECT_EQ(j["ts"], "1970-01-01T00:00:00.000000Z");
}

TEST(JsonLogTest, JsonFormatPrintsEachMessageAsAnObject) {
  ASSERT_THAT(SetLogFormat("json"), IsOk());
  ::testing::internal::CaptureStderr();
  LOG(WARNING) << "hello \"json\"";
  const std::string err = ::testing::internal::GetCapturedStderr();
  bool found = false;
  for (absl::string_view line : absl::StrSplit(err, '\n', absl::SkipEmpty())) {
    if (line.front() != '{') continue;  // glog's own line, before InitGoogleLogging
    const nlohmann::json j = nlohmann::json::parse(line);
    found = j["msg"] == "hello \"json\"" && j["level"] == "WARNING" &&
            j["file"] == "json_log_test.cc";
  }
  EXPECT_TRUE(found) << err;
}

TEST(JsonLogTest, UnknownFormatNamesTheFlag) {
  EXPECT_THAT(SetLogFormat("xml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--log-format")));
}

}  // namespace
}  // namespace tessera
