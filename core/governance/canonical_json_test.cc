#include "core/governance/canonical_json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "core/base/testing/status_matchers.h"

namespace tessera::governance {
namespace {

using ::testing::HasSubstr;

TEST(CanonicalJsonTest, SortsKeysByByteValueWithoutWhitespace) {
  nlohmann::json j = nlohmann::json::object();
  j["b"] = 1;
  j["a"] = nlohmann::json::array({3, 2, 1});
  j["B"] = true;
  j["\xc3\xa9"] = nullptr;  // U+00E9 sorts after every ASCII key
  j["a0"] = {{"z", "x"}, {"y", nlohmann::json::object()}};
  EXPECT_THAT(CanonicalJson(j),
              IsOkAndHolds(std::string(
                  R"({"B":true,"a":[3,2,1],"a0":{"y":{},"z":"x"},"b":1,"é":null})")));
}

TEST(CanonicalJsonTest, SameValueSameBytesWhateverTheInsertionOrder) {
  const nlohmann::json a = ParseJson(R"({ "x" : 1, "y" : [true, "s"] })").value();
  const nlohmann::json b = ParseJson(R"({"y":[true,"s"],"x":1})").value();
  EXPECT_EQ(CanonicalJson(a).value(), CanonicalJson(b).value());
}

TEST(CanonicalJsonTest, NumbersAreExactOrShortestRoundTrip) {
  nlohmann::json j = nlohmann::json::array();
  j.push_back(std::numeric_limits<uint64_t>::max());
  j.push_back(std::numeric_limits<int64_t>::min());
  j.push_back(0.1);
  j.push_back(1.0);
  j.push_back(-2.5e-300);
  EXPECT_THAT(CanonicalJson(j),
              IsOkAndHolds(std::string(
                  "[18446744073709551615,-9223372036854775808,0.1,1.0,-2.5e-300]")));
}

TEST(CanonicalJsonTest, EscapesOnlyWhatJsonRequires) {
  const nlohmann::json j = std::string("q\" b\\ / \n\t\x01 \xe2\x82\xac \xf0\x9f\x94\x92");
  EXPECT_THAT(CanonicalJson(j),
              IsOkAndHolds(std::string(
                  "\"q\\\" b\\\\ / \\n\\t\\u0001 \xe2\x82\xac \xf0\x9f\x94\x92\"")));
}

TEST(CanonicalJsonTest, InvalidUtf8IsAnErrorNotAnException) {
  EXPECT_THAT(CanonicalJson(nlohmann::json(std::string("ok\xff"))),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("UTF-8")));
  nlohmann::json key = nlohmann::json::object();
  key[std::string("\xc0\xaf")] = 1;  // overlong '/'
  EXPECT_THAT(CanonicalJson(key), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9"));
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));  // a surrogate
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));      // truncated
}

TEST(ParseJsonTest, ReportsTheParserMessage) {
  EXPECT_THAT(ParseJson(R"({"a":)"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("parse error")));
  EXPECT_THAT(ParseJson(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseJson("{} {}"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseJson("\"\xff\""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseJson(" [1] \n"), IsOkAndHolds(nlohmann::json::array({1})));
}

}  // namespace
}  // namespace tessera::governance
