// RecordPrivacy alone, at the stations the round loop calls it: the DP-SGD section of
// training tasks (dispatch), a site's report and refusal (accept), the sites left out of
// selection (select), and the attempt's reports in the summary (aggregate).
#include "coordinator/round/record_privacy.h"

#include <limits>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/testing/status_matchers.h"

namespace tessera::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

wire::v1::RecordDpConfig Enabled() {
  wire::v1::RecordDpConfig c;
  c.set_enabled(true);
  c.set_noise_multiplier(1.1);
  return c;
}

wire::v1::SitePrivacyReport Report(double epsilon, double budget) {
  wire::v1::SitePrivacyReport r;
  r.set_epsilon(epsilon);
  r.set_delta(1e-5);
  r.set_epsilon_budget(budget);
  r.set_sampling_rate(0.01);
  r.set_steps(100);
  r.set_accountant("rdp");
  return r;
}

wire::v1::SitePrivacyReport Refusal(const std::string& reason) {
  wire::v1::SitePrivacyReport r;
  r.set_refused(true);
  r.set_reason(reason);
  return r;
}

TEST(RecordPrivacyTest, DispatchAddsTheConfigToTrainingTasksOnly) {
  RecordPrivacy enabled(Enabled());
  wire::v1::Task train;
  train.set_type(wire::v1::TRAIN);
  enabled.Dispatch(train);
  EXPECT_TRUE(train.dp().record().enabled());
  EXPECT_EQ(train.dp().record().noise_multiplier(), 1.1);
  wire::v1::Task evaluate;
  evaluate.set_type(wire::v1::EVALUATE);
  enabled.Dispatch(evaluate);
  EXPECT_FALSE(evaluate.has_dp());

  RecordPrivacy off{wire::v1::RecordDpConfig()};
  wire::v1::Task plain;
  plain.set_type(wire::v1::TRAIN);
  off.Dispatch(plain);
  EXPECT_FALSE(plain.has_dp());
}

TEST(RecordPrivacyTest, ValidateNamesTheField) {
  EXPECT_THAT(RecordPrivacy::Validate("a", Report(-1, 8)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("epsilon")));
  EXPECT_THAT(RecordPrivacy::Validate("a", Report(1, 0)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("epsilon_budget")));
  wire::v1::SitePrivacyReport pld = Report(1, 8);
  pld.set_accountant("moments");
  EXPECT_THAT(RecordPrivacy::Validate("a", pld),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("accountant")));
  EXPECT_THAT(RecordPrivacy::Validate("a", Refusal("")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("reason")));
  EXPECT_THAT(RecordPrivacy::Validate("a", Refusal("spent\n")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("printable ASCII")));
  EXPECT_THAT(RecordPrivacy::Validate("a", Refusal(std::string(1025, 'x'))),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at most 1024 bytes")));
  // A refusal may carry the epsilon the task would have reached, even an infinite one: only
  // a finite one is kept.
  wire::v1::SitePrivacyReport inf = Refusal("budget spent");
  inf.set_epsilon(std::numeric_limits<double>::infinity());
  absl::StatusOr<wire::v1::SitePrivacy> site = RecordPrivacy::Validate("a", inf);
  ASSERT_THAT(site, IsOk());
  EXPECT_EQ(site->client(), "a");
  EXPECT_TRUE(site->refused());
  EXPECT_EQ(site->epsilon(), 0);
}

TEST(RecordPrivacyTest, ARefusalLeavesTheSiteOutOfEverySelection) {
  RecordPrivacy p(Enabled());
  p.BeginAttempt(1, 1);
  p.Accept(1, 1, *RecordPrivacy::Validate("b", Report(2.5, 8)));
  p.Accept(1, 1, *RecordPrivacy::Validate("a", Refusal("budget spent")));
  size_t exhausted = 0;
  EXPECT_THAT(p.Select({"a", "b", "c"}, &exhausted), ElementsAre("b", "c"));
  EXPECT_EQ(exhausted, 1u);
  wire::v1::RunStatus status;
  p.AddExhaustedClients(status);
  EXPECT_THAT(status.budget_exhausted_clients(), ElementsAre("a"));

  // The attempt in progress shows its reports by client; another attempt does not.
  wire::v1::RoundSummary current;
  current.set_round(1);
  current.set_attempt(1);
  p.AddLiveSites(current);
  ASSERT_EQ(current.site_privacy_size(), 2);
  EXPECT_EQ(current.site_privacy(0).client(), "a");
  EXPECT_EQ(current.site_privacy(1).client(), "b");
  EXPECT_EQ(current.site_privacy(1).epsilon(), 2.5);
  wire::v1::RoundSummary other;
  other.set_round(1);
  other.set_attempt(2);
  p.AddLiveSites(other);
  EXPECT_THAT(other.site_privacy(), IsEmpty());
  // A new attempt starts with no live reports, but the refusal stays.
  p.BeginAttempt(1, 2);
  p.AddLiveSites(other);
  EXPECT_THAT(other.site_privacy(), IsEmpty());
  EXPECT_THAT(p.Select({"a", "b"}, &exhausted), ElementsAre("b"));
}

TEST(RecordPrivacyTest, RefusalsSurviveARestartThroughTheHistory) {
  wire::v1::RoundSummary h;
  wire::v1::SitePrivacy* refused = h.add_site_privacy();
  refused->set_client("c");
  refused->set_refused(true);
  wire::v1::SitePrivacy* fine = h.add_site_privacy();
  fine->set_client("d");
  RecordPrivacy p(Enabled());
  p.RestoreRefusals({h});
  size_t exhausted = 0;
  EXPECT_THAT(p.Select({"c", "d"}, &exhausted), ElementsAre("d"));
  EXPECT_EQ(exhausted, 1u);
}

TEST(RecordPrivacyTest, SummarizeSortsByClient) {
  std::vector<wire::v1::SitePrivacy> sites(3);
  sites[0].set_client("c");
  sites[1].set_client("a");
  sites[2].set_client("b");
  wire::v1::RoundSummary summary;
  summary.add_site_privacy()->set_client("stale");
  RecordPrivacy::Summarize(sites, &summary);
  ASSERT_EQ(summary.site_privacy_size(), 3);
  EXPECT_EQ(summary.site_privacy(0).client(), "a");
  EXPECT_EQ(summary.site_privacy(1).client(), "b");
  EXPECT_EQ(summary.site_privacy(2).client(), "c");
}

}  // namespace
}  // namespace tessera::coordinator
