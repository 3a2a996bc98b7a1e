// File: format_test.cc
// Governance columns of `tessera clients list` and refused clients in `tessera run status`.
#include "tools/cli/format.h"

#include <cmath>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace tessera::cli {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(ClientListTextTest, ShowsOrganizationAndDataCard) {
  wire::v1::ListClientsResponse clients;
  wire::v1::ClientInfo* a = clients.add_clients();
  a->set_name("site-a");
  a->set_organization("Alpha Health");
  a->mutable_data_card()->set_name("xray-a");
  a->mutable_data_card()->set_license("CC-BY-4.0");
  wire::v1::ClientInfo* b = clients.add_clients();
  b->set_name("site-b");  // no organization (--insecure), no data card
  const std::string text = ClientListText(clients);
  EXPECT_THAT(text, AllOf(HasSubstr("organization"), HasSubstr("license")));
  EXPECT_THAT(text, AllOf(HasSubstr("Alpha Health"), HasSubstr("xray-a"), HasSubstr("CC-BY-4.0")));
  EXPECT_THAT(text, HasSubstr("site-b                   -"));
}

TEST(RunStatusTextTest, ListsRefusedClients) {
  wire::v1::RunStatus status;
  status.set_run_id("r1");
  EXPECT_THAT(RunStatusText(status), Not(HasSubstr("refused")));
  status.add_refused_clients("site-d: data card license \"proprietary\" is not allowed");
  EXPECT_THAT(RunStatusText(status),
              HasSubstr("  refused: site-d: data card license \"proprietary\" is not allowed\n"));
}

TEST(RunStatusTextTest, ShowsEachSitesEpsilonAndRefusals) {
  wire::v1::RunStatus status;
  status.set_run_id("r1");
  wire::v1::RecordDpConfig* record =
      status.mutable_config()->mutable_differential_privacy()->mutable_record();
  record->set_enabled(true);
  record->set_noise_multiplier(1.1);
  record->set_clip_norm(0.7);
  record->set_expected_batch_size(32);
  wire::v1::RoundSummary* r = status.add_rounds();
  r->set_round(1);
  r->set_state(wire::v1::ROUND_COMPLETED);
  wire::v1::SitePrivacy* a = r->add_site_privacy();
  a->set_client("site-a");
  a->set_epsilon(1.23456);
  a->set_delta(1e-5);
  a->set_epsilon_budget(8);
  a->set_steps(120);
  a->set_sampling_rate(0.032);
  a->set_accountant("rdp");
  wire::v1::SitePrivacy* c = r->add_site_privacy();
  c->set_client("site-c");
  c->set_refused(true);
  c->set_reason("epsilon would reach 8.4 of budget 8");
  status.add_budget_exhausted_clients("site-c");
  const std::string text = RunStatusText(status);
  EXPECT_THAT(text, HasSubstr("  record-level DP-SGD at every site: noise multiplier 1.1, clip "
                              "0.7 per example, expected batch 32"));
  EXPECT_THAT(text, HasSubstr("  budget exhausted (not selected again): site-c\n"));
  EXPECT_THAT(text, HasSubstr("\n    site site-a: epsilon 1.235 of 8 (delta 1e-05, rdp, 120 "
                              "steps at q = 0.032)\n"));
  EXPECT_THAT(text, HasSubstr("\n    site site-c: refused: epsilon would reach 8.4 of budget 8\n"));
  // Without record-level DP none of it shows.
  status.mutable_config()->clear_differential_privacy();
  status.clear_budget_exhausted_clients();
  status.mutable_rounds(0)->clear_site_privacy();
  EXPECT_THAT(RunStatusText(status),
              AllOf(Not(HasSubstr("record-level")), Not(HasSubstr("site ")),
                    Not(HasSubstr("budget exhausted"))));
}

TEST(RunStatusTextTest, LanguageModelRunsShowPerplexity) {
  wire::v1::RunStatus s;
  s.mutable_config()->mutable_model()->mutable_causal_lm();
  wire::v1::RoundSummary* r = s.add_rounds();
  r->set_round(1);
  r->set_state(wire::v1::ROUND_COMPLETED);
  r->set_evaluated(3);
  r->set_eval_loss(std::log(20.0));  // perplexity exp(ln 20) = 20
  r->set_eval_accuracy(0.25);
  const std::string text = RunStatusText(s);
  EXPECT_THAT(text, testing::HasSubstr("token_acc"));
  EXPECT_THAT(text, testing::HasSubstr("perplexity"));
  EXPECT_THAT(text, testing::HasSubstr(" 20.00"));
  // Other runs keep the old table.
  s.mutable_config()->mutable_model()->clear_causal_lm();
  EXPECT_THAT(RunStatusText(s), testing::Not(testing::HasSubstr("perplexity")));
}

}  // namespace
}  // namespace tessera::cli
