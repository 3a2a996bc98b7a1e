#include "core/governance/audit_json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/base/testing/status_matchers.h"
#include "google/protobuf/util/message_differencer.h"

namespace tessera::governance {
namespace {

using ::testing::HasSubstr;
using wire::v1::AuditEntry;
using wire::v1::AuditHead;

MATCHER_P(EqualsProto, expected, "equals " + expected.ShortDebugString()) {
  return google::protobuf::util::MessageDifferencer::Equals(arg, expected);
}

AuditEntry MakeEntry() {
  AuditEntry e;
  e.set_seq(7);
  e.set_unix_ms(1700000000123);
  e.set_actor("operator:alice");
  e.set_action("run.created");
  e.set_run_id("mnist-1");
  e.set_round(3);
  (*e.mutable_details())["strategy"] = "fedavg";
  (*e.mutable_details())["note"] = "caf\xc3\xa9 \"quoted\"";
  e.set_prev_hash(std::string(64, 'a'));
  e.set_hash(std::string(64, 'b'));
  return e;
}

TEST(AuditJsonTest, EntryIsCanonicalWithEveryMember) {
  const std::string a(64, 'a');
  const std::string b(64, 'b');
  EXPECT_EQ(AuditEntryJson(MakeEntry(), /*include_hash=*/true),
            R"({"action":"run.created","actor":"operator:alice","details":{"note":"café )"
            R"(\"quoted\"","strategy":"fedavg"},"hash":")" + b + R"(","prev_hash":")" + a +
                R"(","round":3,"run_id":"mnist-1","seq":7,"unix_ms":1700000000123})");
  EXPECT_EQ(AuditEntryJson(MakeEntry(), /*include_hash=*/false).find("\"hash\""),
            std::string::npos);
  // Empty fields are still written.
  EXPECT_EQ(AuditEntryJson(AuditEntry(), true),
            R"({"action":"","actor":"","details":{},"hash":"","prev_hash":"","round":0,)"
            R"("run_id":"","seq":0,"unix_ms":0})");
}

TEST(AuditJsonTest, EntryRoundTrips) {
  const AuditEntry e = MakeEntry();
  EXPECT_THAT(ParseAuditEntryJson(AuditEntryJson(e, true)), IsOkAndHolds(EqualsProto(e)));
  AuditEntry negative;
  negative.set_unix_ms(-5);
  negative.set_seq(UINT64_MAX);
  negative.set_round(UINT32_MAX);
  EXPECT_THAT(ParseAuditEntryJson(AuditEntryJson(negative, true)),
              IsOkAndHolds(EqualsProto(negative)));
}

TEST(AuditJsonTest, ParseNamesTheBadMember) {
  EXPECT_THAT(ParseAuditEntryJson("[1]"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a JSON object")));
  EXPECT_THAT(ParseAuditEntryJson("{"), StatusIs(absl::StatusCode::kInvalidArgument));
  const std::string line = AuditEntryJson(MakeEntry(), true);
  nlohmann::json j = nlohmann::json::parse(line);
  {
    nlohmann::json missing = j;
    missing.erase("actor");
    EXPECT_THAT(ParseAuditEntryJson(missing.dump()),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"actor\" is missing")));
  }
  const std::pair<const char*, nlohmann::json> wrong[] = {
      {"seq", -1},          {"seq", "7"},       {"round", 4294967296u},
      {"round", 1.5},       {"unix_ms", "now"}, {"unix_ms", 18446744073709551615u},
      {"details", "x"},     {"details", {{"k", 1}}}, {"hash", 1}};
  for (const auto& [member, value] : wrong) {
    SCOPED_TRACE(member);
    nlohmann::json bad = j;
    bad[member] = value;
    EXPECT_THAT(ParseAuditEntryJson(bad.dump()),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr(std::string("\"") + member + "\" must be")));
  }
  nlohmann::json extra = j;
  extra["comment"] = "not covered by the hash";
  EXPECT_THAT(ParseAuditEntryJson(extra.dump()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown member")));
}

TEST(AuditJsonTest, HeadSignedBytesAndLineRoundTrip) {
  AuditHead head;
  head.set_seq(9);
  head.set_hash(std::string(64, 'c'));
  head.set_unix_ms(1700000000999);
  head.set_signature("c2ln");
  head.set_signer("-----BEGIN PUBLIC KEY-----\nMCo=\n-----END PUBLIC KEY-----\n");
  EXPECT_EQ(AuditHeadSignedJson(head),
            R"({"hash":")" + std::string(64, 'c') + R"(","seq":9,"unix_ms":1700000000999})");
  const std::string line = AuditHeadJson(head);
  EXPECT_EQ(line.rfind(R"({"head":{"hash":")", 0), 0u);
  EXPECT_THAT(line, HasSubstr(R"("signer":"-----BEGIN PUBLIC KEY-----\nMCo=\n)"));
  EXPECT_THAT(ParseAuditHeadJson(line), IsOkAndHolds(EqualsProto(head)));
}

TEST(AuditJsonTest, HeadParseDistinguishesEntryLines) {
  EXPECT_THAT(ParseAuditHeadJson(AuditEntryJson(MakeEntry(), true)),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(ParseAuditHeadJson("nope"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseAuditHeadJson(R"({"head":1})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("must be an object")));
  EXPECT_THAT(ParseAuditHeadJson(R"({"head":{"hash":"x","seq":1,"signature":"s",)"
                                 R"("unix_ms":1}})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"signer\" is missing")));
}

}  // namespace
}  // namespace tessera::governance
