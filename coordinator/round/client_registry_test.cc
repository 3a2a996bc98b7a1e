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

}  // namespace
}  // namespace tessera::coordinator
