// How the CLI shows differential privacy: config line, budget line, per-round table, JSON.
#include "tools/cli/privacy_status.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace tessera::cli {
namespace {

using ::testing::HasSubstr;

wire::v1::RunStatus Status() {
  wire::v1::RunStatus s;
  s.set_run_id("r1");
  auto* dp = s.mutable_config()->mutable_differential_privacy();
  dp->set_mode(wire::v1::DifferentialPrivacyConfig::DISTRIBUTED);
  dp->set_noise_multiplier(1.1);
  dp->set_clip_norm(0.5);
  dp->set_population(5);
  dp->set_expected_clients_per_round(5);
  dp->set_epsilon_budget(8);
  dp->set_delta(1e-5);
  dp->set_dataset("fmnist");
  auto* p = s.mutable_privacy();
  p->set_dataset("fmnist");
  p->set_epsilon_spent(2.5);
  p->set_epsilon_budget(8);
  p->set_delta(1e-5);
  p->set_rounds_charged(2);
  p->set_next_round_epsilon(3.1);
  for (int i = 1; i <= 3; ++i) {
    wire::v1::RoundSummary* r = s.add_rounds();
    r->set_round(i);
    r->set_attempt(1);
    r->set_state(i < 3 ? wire::v1::ROUND_COMPLETED : wire::v1::ROUND_TRAINING);
    r->mutable_privacy()->set_epsilon(i == 1 ? 1.7 : i == 2 ? 2.5 : 3.1);
    r->mutable_privacy()->set_round_epsilon(1.7);
    r->mutable_privacy()->set_clip_norm(0.5);
  }
  return s;
}

TEST(PrivacyStatusTest, ConfigAndBudgetLines) {
  const wire::v1::RunStatus s = Status();
  EXPECT_THAT(PrivacyConfigText(s.config().differential_privacy()),
              HasSubstr("differential privacy: distributed"));
  EXPECT_THAT(PrivacyConfigText(s.config().differential_privacy()),
              HasSubstr("budget epsilon 8 delta 1e-05 on dataset \"fmnist\""));
  EXPECT_EQ(PrivacyConfigText(wire::v1::DifferentialPrivacyConfig()), "");
  EXPECT_THAT(PrivacyBudgetText(s), HasSubstr("epsilon 2.5 of 8 spent (delta 1e-05) over 2 "
                                              "rounds; the next round would reach 3.1\n"));
  EXPECT_EQ(PrivacyBudgetText(wire::v1::RunStatus()), "");
}

TEST(PrivacyStatusTest, TableShowsEpsilonOnlyForChargedRounds) {
  const std::string table = PrivacyRoundsTable(Status());
  EXPECT_THAT(table, HasSubstr("2.5000"));
  EXPECT_THAT(table, ::testing::Not(HasSubstr("3.1000")));  // round 3 is still training
}

TEST(PrivacyStatusTest, JsonListsChargedRounds) {
  const nlohmann::json j = nlohmann::json::parse(PrivacyJson(Status()));
  EXPECT_EQ(j["dataset"], "fmnist");
  EXPECT_DOUBLE_EQ(j["epsilon_spent"].get<double>(), 2.5);
  ASSERT_EQ(j["rounds"].size(), 2u);
  EXPECT_DOUBLE_EQ(j["rounds"][1]["epsilon"].get<double>(), 2.5);
}

}  // namespace
}  // namespace tessera::cli
