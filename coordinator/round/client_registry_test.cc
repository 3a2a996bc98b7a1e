#include "coordinator/round/client_registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/testing/status_matchers.h"

namespace tessera::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ClientRegistryTest, RegisterAttachSendDetach) {
  ClientRegistry registry({});
  auto session = registry.Register("site-a", "cpu", "v1");
  ASSERT_THAT(session, IsOk());
  EXPECT_THAT(registry.Lookup(*session), IsOkAndHolds(std::string("site-a")));
  EXPECT_EQ(registry.NumConnected(), 0u);
  std::vector<std::string> got;
  auto token = registry.Attach(*session, [&](const wire::v1::Task& t) {
    got.push_back(t.task_id());
    return true;
  });
  ASSERT_THAT(token, IsOk());
  EXPECT_THAT(registry.Connected(), ElementsAre("site-a"));
  wire::v1::Task task;
  task.set_task_id("t1");
  EXPECT_TRUE(registry.Send("site-a", task));
  EXPECT_FALSE(registry.Send("site-b", task));
  EXPECT_THAT(got, ElementsAre("t1"));
  registry.Detach("site-a", *token);
  EXPECT_EQ(registry.NumConnected(), 0u);
  EXPECT_FALSE(registry.Send("site-a", task));
}

TEST(ClientRegistryTest, ReRegisteringInvalidatesTheOldSession) {
  ClientRegistry registry({});
  auto first = registry.Register("site-a", "cpu", "v1");
  auto second = registry.Register("site-a", "cpu", "v1");
  ASSERT_THAT(second, IsOk());
  EXPECT_THAT(registry.Lookup(*first), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(registry.Attach(*first, nullptr), StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST(ClientRegistryTest, StaleDetachKeepsTheNewerSubscription) {
  ClientRegistry registry({});
  auto s = registry.Register("site-a", "cpu", "v1");
  auto old_token = registry.Attach(*s, [](const wire::v1::Task&) { return true; });
  auto new_token = registry.Attach(*s, [](const wire::v1::Task&) { return true; });
  registry.Detach("site-a", *old_token);
  EXPECT_EQ(registry.NumConnected(), 1u);
  registry.Detach("site-a", *new_token);
  EXPECT_EQ(registry.NumConnected(), 0u);
}

TEST(ClientRegistryTest, ANewerStreamEndsTheOlderOnesOfTheClient) {
  ClientRegistry registry({});
  auto first = registry.Register("site-a", "cpu", "v1");
  auto other = registry.Register("site-b", "cpu", "v1");
  std::vector<std::string> ended;  // "stream: status"
  auto attach = [&](const std::string& session, const std::string& stream) {
    return registry.Attach(
        session, [](const wire::v1::Task&) { return true; },
        [&ended, stream](const absl::Status& why) {
          ended.push_back(stream + ": " + why.ToString());
        });
  };
  auto one = attach(*first, "one");
  ASSERT_THAT(attach(*other, "b"), IsOk());
  auto two = attach(*first, "two");  // the same session subscribes again
  ASSERT_THAT(two, IsOk());
  EXPECT_THAT(ended, ElementsAre("one: ABORTED: task stream displaced by a newer Subscribe of "
                                 "client site-a"));
  // The displaced stream's own end detaches it later: the newer one stays connected.
  registry.Detach("site-a", *one);
  EXPECT_THAT(registry.Connected(), ElementsAre("site-a", "site-b"));
  // A new session of the same client displaces the stream of its old session too.
  auto second = registry.Register("site-a", "cpu", "v1");
  ASSERT_THAT(attach(*second, "three"), IsOk());
  ASSERT_EQ(ended.size(), 2u);
  EXPECT_THAT(ended[1], HasSubstr("two: ABORTED: task stream displaced"));
}

TEST(ClientRegistryTest, EnforcesNameRulesAndClientLimit) {
  ClientRegistry registry({.max_clients = 2});
  EXPECT_THAT(registry.Register("", "cpu", ""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(registry.Register("a/b", "cpu", ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("[A-Za-z0-9._-]")));
  EXPECT_THAT(registry.Register("a", "cpu", ""), IsOk());
  EXPECT_THAT(registry.Register("b", "cpu", ""), IsOk());
  EXPECT_THAT(registry.Register("c", "cpu", ""),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("at most 2")));
  EXPECT_THAT(registry.Register("a", "cpu", ""), IsOk());  // known names may re-register
}

TEST(ClientRegistryTest, BadNamesAreRefusedNamingTheFieldWithoutEchoingThemRaw) {
  ClientRegistry registry({});
  EXPECT_THAT(registry.Register("site-a\nI1206 forged line", "cpu", ""),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "name: \"site-a\\nI1206 forged line\" may only use [A-Za-z0-9._-]"));
  EXPECT_THAT(registry.Register(std::string("a\0z", 3), "cpu", ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"a\\x00z\"")));
  EXPECT_THAT(registry.Register(std::string(100000, 'n'), "cpu", ""),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "name: must be 1..128 characters, got 100000"));
  EXPECT_THAT(registry.Info(std::string(20000, 'q')),
              StatusIs(absl::StatusCode::kNotFound,
                       "client \"" + std::string(128, 'q') + "...(20000 bytes)\" never registered"));
  EXPECT_TRUE(registry.List().empty());
}

TEST(ClientRegistryTest, EndSessionsIfEndsEveryStreamAndSessionOfARevokedCertificate) {
  ClientRegistry registry({});
  auto a = registry.Register("site-a", "cpu", "v1", "Org A", nullptr, "PEM-A");
  auto b = registry.Register("site-b", "cpu", "v1", "Org B", nullptr, "PEM-B");
  auto insecure = registry.Register("site-c", "cpu", "v1");
  int a_ended = 0, b_ended = 0, c_ended = 0;
  std::vector<absl::Status> a_why;
  auto send = [](const wire::v1::Task&) { return true; };
  auto end_a = [&](const absl::Status& why) {
    ++a_ended;
    a_why.push_back(why);
  };
  auto a_old = registry.Attach(*a, send, end_a);
  auto a_new = registry.Attach(*a, send, end_a);
  ASSERT_THAT(registry.Attach(*b, send, [&](const absl::Status&) { ++b_ended; }), IsOk());
  ASSERT_THAT(registry.Attach(*insecure, send, [&](const absl::Status&) { ++c_ended; }),
              IsOk());
  ASSERT_THAT(a_old, IsOk());
  ASSERT_THAT(a_new, IsOk());
  ASSERT_EQ(registry.NumConnected(), 3u);
  ASSERT_EQ(a_ended, 1) << "the newer stream displaced the older one";

  std::vector<std::string> asked;
  EXPECT_THAT(registry.EndSessionsIf([&](const std::string& pem) {
    asked.push_back(pem);
    return pem == "PEM-A";
  }),
              ElementsAre("site-a"));
  EXPECT_THAT(asked, ::testing::UnorderedElementsAre("PEM-A", "PEM-B"));
  EXPECT_EQ(a_ended, 2) << "site-a's newer stream ends too";
  ASSERT_EQ(a_why.size(), 2u);
  EXPECT_THAT(a_why[1], StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("revoked")));
  EXPECT_EQ(b_ended, 0);
  EXPECT_EQ(c_ended, 0);
  EXPECT_THAT(registry.Connected(), ElementsAre("site-b", "site-c"));
  EXPECT_THAT(registry.Lookup(*a), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_FALSE(registry.Send("site-a", wire::v1::Task()));
  EXPECT_FALSE(registry.Info("site-a")->connected());
  // The streams' own ends detach afterwards: nothing changes, and a second sweep finds
  // nothing more of site-a.
  registry.Detach("site-a", *a_new);
  EXPECT_TRUE(registry.EndSessionsIf([](const std::string&) { return true; }) ==
              std::vector<std::string>{"site-b"});
  EXPECT_THAT(registry.Connected(), ElementsAre("site-c"));
}

}  // namespace
}  // namespace tessera::coordinator
