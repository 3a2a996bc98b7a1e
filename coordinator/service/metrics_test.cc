// RenderPrometheus against hand-built run statuses, folded by RunMetrics::AddRound as
// RunManager::Metrics() folds a run: the numbers, the histogram's cumulative buckets, label
// escaping, and the exposition format's rule that a family's samples follow its own
// HELP/TYPE header. tests/integration/metrics_federation_test.cc scrapes a real run.
#include "coordinator/service/metrics.h"

#include <map>
#include <set>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"

namespace tessera::coordinator {
namespace {

using ::testing::HasSubstr;

wire::v1::RoundSummary Round(wire::v1::RoundState state, double seconds, uint64_t up,
                             uint64_t down) {
  wire::v1::RoundSummary r;
  r.set_state(state);
  r.set_seconds(seconds);
  r.set_bytes_up(up);
  r.set_bytes_down(down);
  r.set_selected(3);
  r.set_reported(2);
  r.set_dropped(1);
  for (const auto& [phase, part] : {std::pair<const char*, double>{"select", 0.25},
                                    {"train", 0.5}, {"aggregate", 0.25}}) {
    wire::v1::RoundPhase* p = r.add_phases();
    p->set_phase(phase);
    p->set_seconds(seconds * part);
  }
  return r;
}

void AddSite(wire::v1::RoundSummary& r, const std::string& client, double epsilon,
             bool refused = false) {
  wire::v1::SitePrivacy* p = r.add_site_privacy();
  p->set_client(client);
  p->set_epsilon(epsilon);
  p->set_refused(refused);
}

// A run folded from its rounds as RunManager::Metrics() folds a run's history.
RunMetrics Fold(const wire::v1::RunStatus& run) {
  RunMetrics m;
  m.run_id = run.run_id();
  m.name = run.name();
  m.state = run.state();
  if (run.has_privacy()) m.budget = run.privacy();
  for (const auto& r : run.rounds()) m.AddRound(r);
  return m;
}

MetricsSnapshot Snapshot() {
  MetricsSnapshot s;
  s.connected_clients = 4;
  wire::v1::RunStatus run;
  run.set_run_id("r1");
  run.set_name("fmnist \"dp\"");
  run.set_state(wire::v1::RUNNING);
  wire::v1::RoundSummary first = Round(wire::v1::ROUND_COMPLETED, 0.4, 100, 1000);
  AddSite(first, "site-a", 1.0);
  AddSite(first, "site-b", 0.5);
  first.mutable_secagg()->set_survivors(3);
  *run.add_rounds() = first;
  *run.add_rounds() = Round(wire::v1::ROUND_FAILED, 3, 50, 500);
  wire::v1::RoundSummary last = Round(wire::v1::ROUND_COMPLETED, 20, 10, 10);
  AddSite(last, "site-a", 1.75);
  AddSite(last, "site-b", 0, /*refused=*/true);  // keeps its last reported epsilon
  AddSite(last, "site-\"c\"", 0.25);
  auto* phase = last.mutable_secagg()->add_phases();
  phase->set_phase("ShareKeys");
  phase->add_dropped("client-2");
  phase->add_rejected("client-3: bad signature");
  last.mutable_secagg()->set_survivors(2);
  last.mutable_privacy()->set_released(true);
  last.mutable_privacy()->set_unclipped_fraction(0.75);
  last.mutable_privacy()->set_clip_norm(1.5);
  *run.add_rounds() = last;
  wire::v1::RoundSummary training = Round(wire::v1::ROUND_TRAINING, 0, 0, 0);  // in progress
  training.set_selected(5);
  training.mutable_secagg()->set_survivors(0);  // not ended: the last ended attempt counts
  *run.add_rounds() = training;
  run.mutable_privacy()->set_dataset("fmnist");
  run.mutable_privacy()->set_epsilon_spent(2.5);
  run.mutable_privacy()->set_epsilon_budget(8);
  s.runs.push_back(Fold(run));
  wire::v1::RunStatus done;
  done.set_run_id("r0");
  done.set_state(wire::v1::COMPLETED);
  s.runs.push_back(Fold(done));
  return s;
}

std::map<std::string, double> Samples(const std::string& text) {
  std::map<std::string, double> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    out[std::string(line.substr(0, space))] = std::stod(std::string(line.substr(space + 1)));
  }
  return out;
}

TEST(MetricsTest, DerivesTheNumbersFromTheRunStatuses) {
  const std::string text = RenderPrometheus(Snapshot());
  const auto m = Samples(text);
  const std::string r1 = "run=\"r1\",name=\"fmnist \\\"dp\\\"\"";
  EXPECT_EQ(m.at("tessera_connected_clients"), 4);
  EXPECT_EQ(m.at("tessera_runs{state=\"RUNNING\"}"), 1);
  EXPECT_EQ(m.at("tessera_runs{state=\"COMPLETED\"}"), 1);
  EXPECT_EQ(m.at("tessera_rounds_started_total{" + r1 + "}"), 4);
  EXPECT_EQ(m.at("tessera_rounds_total{" + r1 + ",outcome=\"completed\"}"), 2);
  EXPECT_EQ(m.at("tessera_rounds_total{" + r1 + ",outcome=\"failed\"}"), 1);
  // Ended attempts took 0.4, 3 and 20 s; buckets are cumulative.
  EXPECT_EQ(m.at("tessera_round_duration_seconds_bucket{" + r1 + ",le=\"0.5\"}"), 1);
  EXPECT_EQ(m.at("tessera_round_duration_seconds_bucket{" + r1 + ",le=\"5\"}"), 2);
  EXPECT_EQ(m.at("tessera_round_duration_seconds_bucket{" + r1 + ",le=\"10\"}"), 2);
  EXPECT_EQ(m.at("tessera_round_duration_seconds_bucket{" + r1 + ",le=\"30\"}"), 3);
  EXPECT_EQ(m.at("tessera_round_duration_seconds_bucket{" + r1 + ",le=\"+Inf\"}"), 3);
  EXPECT_DOUBLE_EQ(m.at("tessera_round_duration_seconds_sum{" + r1 + "}"), 23.4);
  EXPECT_EQ(m.at("tessera_round_duration_seconds_count{" + r1 + "}"), 3);
  // Phases of the 3 ended attempts: a quarter, a half and a quarter of each.
  EXPECT_DOUBLE_EQ(m.at("tessera_round_phase_seconds_sum{" + r1 + ",phase=\"train\"}"), 11.7);
  EXPECT_EQ(m.at("tessera_round_phase_seconds_count{" + r1 + ",phase=\"train\"}"), 3);
  EXPECT_DOUBLE_EQ(m.at("tessera_round_phase_seconds_sum{" + r1 + ",phase=\"select\"}"), 5.85);
  EXPECT_EQ(m.at("tessera_bytes_total{" + r1 + ",direction=\"in\"}"), 160);
  EXPECT_EQ(m.at("tessera_bytes_total{" + r1 + ",direction=\"out\"}"), 1510);
  // The latest attempt is the one in progress.
  EXPECT_EQ(m.at("tessera_round_clients{" + r1 + ",kind=\"selected\"}"), 5);
  EXPECT_EQ(m.at("tessera_round_clients{" + r1 + ",kind=\"dropped\"}"), 1);
  EXPECT_EQ(m.count("tessera_round_clients{run=\"r0\",name=\"\",kind=\"selected\"}"), 0u);
  EXPECT_EQ(m.at("tessera_secagg_dropouts_total{" + r1 + ",phase=\"ShareKeys\"}"), 2);
  EXPECT_EQ(m.at("tessera_secagg_survivors{" + r1 + "}"), 2);
  EXPECT_EQ(m.count("tessera_secagg_survivors{run=\"r0\",name=\"\"}"), 0u);
  EXPECT_EQ(m.at("tessera_dp_epsilon_spent{" + r1 + ",dataset=\"fmnist\"}"), 2.5);
  EXPECT_EQ(m.at("tessera_dp_epsilon_budget{" + r1 + ",dataset=\"fmnist\"}"), 8);
  EXPECT_EQ(m.at("tessera_dp_unclipped_fraction{" + r1 + "}"), 0.75);
  EXPECT_EQ(m.at("tessera_dp_clip_norm{" + r1 + "}"), 1.5);
  EXPECT_EQ(m.count("tessera_dp_epsilon_spent{run=\"r0\",name=\"\",dataset=\"\"}"), 0u);
}

TEST(MetricsTest, SiteEpsilonIsEachSitesLatestReport) {
  const auto m = Samples(RenderPrometheus(Snapshot()));
  const std::string r1 = "run=\"r1\",name=\"fmnist \\\"dp\\\"\"";
  EXPECT_EQ(m.at("tessera_site_epsilon{" + r1 + ",client=\"site-a\"}"), 1.75);
  EXPECT_EQ(m.at("tessera_site_epsilon{" + r1 + ",client=\"site-b\"}"), 0.5);
  EXPECT_EQ(m.at("tessera_site_epsilon{" + r1 + ",client=\"site-\\\"c\\\"\"}"), 0.25);
  size_t sites = 0;
  for (const auto& [name, value] : m) sites += absl::StartsWith(name, "tessera_site_epsilon{");
  EXPECT_EQ(sites, 3u);  // none for r0, which has no site reports
}

TEST(MetricsTest, EachFamilysSamplesFollowItsHeader) {
  const std::string text = RenderPrometheus(Snapshot());
  std::string current;
  std::set<std::string> seen;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, "# TYPE ")) {
      std::vector<std::string> f = absl::StrSplit(line, ' ');
      current = f[2];
      EXPECT_TRUE(seen.insert(current).second) << "family declared twice: " << current;
      continue;
    }
    if (line[0] == '#') continue;
    const std::string name(line.substr(0, line.find_first_of("{ ")));
    EXPECT_TRUE(name == current || name == current + "_bucket" || name == current + "_sum" ||
                name == current + "_count")
        << name << " appears under " << current;
  }
}

TEST(MetricsTest, EscapesLabelValues) {
  EXPECT_EQ(EscapeLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_THAT(RenderPrometheus({}), HasSubstr("tessera_connected_clients 0\n"));
}

}  // namespace
}  // namespace tessera::coordinator
