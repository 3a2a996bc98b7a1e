// The HTML run report: escaping, empty and partial runs, one plot point per round, and the
// epsilon plot only under differential privacy.
#include "tools/cli/run_report.h"

#include <cmath>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "tools/cli/svg_plot.h"

namespace tessera::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

int Count(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

// The <svg> element with this id, or "" when the report has none.
std::string Svg(const std::string& html, const std::string& id) {
  const size_t begin = html.find("<svg id=\"" + id + "\"");
  if (begin == std::string::npos) return "";
  const size_t end = html.find("</svg>", begin);
  return end == std::string::npos ? "" : html.substr(begin, end + 6 - begin);
}

// A FedAvg run with `rounds` completed, evaluated rounds of two clients.
wire::v1::RunStatus FinishedRun(int rounds) {
  wire::v1::RunStatus s;
  s.set_run_id("3f2a0c1d9e8b");
  s.set_name("fmnist");
  s.set_state(rounds > 0 ? wire::v1::COMPLETED : wire::v1::CREATED);
  s.set_total_rounds(3);
  s.set_completed_rounds(rounds);
  s.set_created_unix_ms(1790000000000);
  s.mutable_config()->set_name("fmnist");
  s.mutable_config()->set_rounds(3);
  s.mutable_config()->mutable_model()->set_architecture("mlp");
  for (int i = 1; i <= rounds; ++i) {
    wire::v1::RoundSummary* r = s.add_rounds();
    r->set_round(i);
    r->set_attempt(1);
    r->set_state(wire::v1::ROUND_COMPLETED);
    r->set_selected(2);
    r->set_reported(2);
    r->set_evaluated(2);
    r->set_train_loss(1.0 / i);
    r->set_eval_loss(1.2 / i);
    r->set_eval_accuracy(0.5 + 0.1 * i);
    r->add_participants("site-a");
    r->add_participants("site-b");
    wire::v1::RoundPhase* train = r->add_phases();
    train->set_phase("train");
    train->set_seconds(1.25);
  }
  return s;
}

void AddDp(wire::v1::RunStatus* s) {
  auto* dp = s->mutable_config()->mutable_differential_privacy();
  dp->set_mode(wire::v1::DifferentialPrivacyConfig::CENTRAL);
  dp->set_epsilon_budget(8);
  dp->set_delta(1e-5);
  dp->set_dataset("fmnist");
  s->mutable_privacy()->set_dataset("fmnist");
  s->mutable_privacy()->set_epsilon_budget(8);
  for (int i = 0; i < s->rounds_size(); ++i) {
    s->mutable_rounds(i)->mutable_privacy()->set_epsilon(1.5 * (i + 1));
  }
}

std::string Report(const wire::v1::RunStatus& s) {
  return RunReportHtml(s, absl::FromUnixSeconds(1790000100));
}

TEST(RunReportTest, EscapesEveryStringFromTheRun) {
  wire::v1::RunStatus s = FinishedRun(2);
  const std::string evil = "<script>alert('x')</script>&\"";
  s.set_name(evil);
  s.set_message(evil);
  s.mutable_config()->set_name(evil);
  s.mutable_config()->mutable_model()->set_initial_weights_source("</pre>" + evil);
  s.mutable_rounds(0)->set_participants(0, evil);
  s.mutable_rounds(1)->set_failure_reason(evil);
  s.mutable_rounds(1)->mutable_secagg()->set_abort_reason(evil);
  const std::string html = Report(s);
  EXPECT_THAT(absl::AsciiStrToLower(html), Not(HasSubstr("<script")));
  EXPECT_THAT(html, HasSubstr("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"));
  EXPECT_THAT(html, HasSubstr("<span class=\"client\">&lt;script&gt;"));
  // The config is in a <pre>, escaped.
  EXPECT_THAT(html, HasSubstr("<pre id=\"config\">"));
  EXPECT_THAT(html, HasSubstr("&lt;/pre&gt;&lt;script&gt;"));
}

TEST(RunReportTest, LoadsNothingFromOutside) {
  const std::string html = Report(FinishedRun(3));
  for (const char* bad : {"http:", "https:", "src=", "href=", "url(", "@import", "<script",
                          "<link", "<img"}) {
    EXPECT_THAT(html, Not(HasSubstr(bad))) << bad;
  }
  EXPECT_THAT(html, HasSubstr("Content-Security-Policy\" content=\"default-src 'none'"));
}

TEST(RunReportTest, ZeroRoundsRendersWellFormedEmptyPlots) {
  const std::string html = Report(FinishedRun(0));
  EXPECT_THAT(html, HasSubstr("No rounds yet."));
  EXPECT_EQ(Count(html, "class=\"round "), 0);
  EXPECT_EQ(Count(html, "<svg "), Count(html, "</svg>"));
  for (const char* id : {"plot-accuracy", "plot-loss", "plot-participants"}) {
    const std::string svg = Svg(html, id);
    ASSERT_FALSE(svg.empty()) << id;
    EXPECT_THAT(svg, HasSubstr("no data")) << id;
    EXPECT_EQ(Count(svg, "class=\"pt\""), 0) << id;
  }
  EXPECT_THAT(html, HasSubstr("0 of 3 completed"));
  EXPECT_THAT(html, HasSubstr("</html>\n"));
}

TEST(RunReportTest, OnePointPerRound) {
  const std::string html = Report(FinishedRun(3));
  EXPECT_EQ(Count(Svg(html, "plot-accuracy"), "class=\"pt\""), 3);
  // Train and test loss.
  EXPECT_EQ(Count(Svg(html, "plot-loss"), "class=\"pt\" data-series=\"0\""), 3);
  EXPECT_EQ(Count(Svg(html, "plot-loss"), "class=\"pt\" data-series=\"1\""), 3);
  // Selected, reported and dropped per round.
  EXPECT_EQ(Count(Svg(html, "plot-participants"), "class=\"bar\""), 9);
  EXPECT_EQ(Count(html, "<tr class=\"round COMPLETED\""), 3);
  EXPECT_EQ(Count(html, "<tr class=\"participants\""), 3);
  EXPECT_EQ(Count(html, "<span class=\"client\">site-b</span>"), 3);
  EXPECT_THAT(html, HasSubstr("<td>80.00%</td>"));  // round 3's accuracy
  EXPECT_EQ(Count(html, "<td class=\"text phases\">train&nbsp;1.25</td>"), 3);
}

TEST(RunReportTest, MissingAndNonFiniteMetricsAreLeftOut) {
  wire::v1::RunStatus s = FinishedRun(3);
  s.mutable_rounds(0)->set_eval_loss(NAN);
  s.mutable_rounds(0)->set_train_loss(INFINITY);
  s.mutable_rounds(1)->set_evaluated(0);  // not evaluated: no test metrics
  wire::v1::RoundSummary* failed = s.add_rounds();  // a failed retry is in the table only
  failed->set_round(4);
  failed->set_attempt(2);
  failed->set_state(wire::v1::ROUND_FAILED);
  failed->set_selected(2);
  failed->set_dropped(1);
  failed->set_failure_reason("1 of 2 clients reported, min_clients is 2");
  const std::string html = Report(s);
  EXPECT_EQ(Count(Svg(html, "plot-accuracy"), "class=\"pt\""), 2);
  EXPECT_EQ(Count(Svg(html, "plot-loss"), "class=\"pt\" data-series=\"0\""), 2);  // train
  EXPECT_EQ(Count(Svg(html, "plot-loss"), "class=\"pt\" data-series=\"1\""), 1);  // test
  EXPECT_EQ(Count(Svg(html, "plot-participants"), "class=\"bar\""), 12);
  EXPECT_EQ(Count(html, "<tr class=\"round "), 4);
  EXPECT_THAT(html, HasSubstr("4 (try 2)"));
  EXPECT_THAT(html, HasSubstr("min_clients is 2"));
  for (const char* id : {"plot-accuracy", "plot-loss", "plot-participants"}) {
    const std::string svg = absl::AsciiStrToLower(Svg(html, id));
    EXPECT_THAT(svg, Not(HasSubstr("nan"))) << id;
    EXPECT_THAT(svg, Not(HasSubstr("inf"))) << id;
  }
}

TEST(RunReportTest, EpsilonPlotOnlyWithDifferentialPrivacy) {
  EXPECT_EQ(Svg(Report(FinishedRun(3)), "plot-epsilon"), "");
  wire::v1::RunStatus s = FinishedRun(3);
  AddDp(&s);
  const std::string html = Report(s);
  const std::string eps = Svg(html, "plot-epsilon");
  ASSERT_FALSE(eps.empty());
  EXPECT_EQ(Count(eps, "class=\"pt\""), 3);
  EXPECT_THAT(eps, HasSubstr("class=\"ref\""));  // the budget
  EXPECT_THAT(eps, HasSubstr("budget 8"));
  EXPECT_THAT(html, HasSubstr("<td>4.5000</td>"));  // epsilon after round 3
  // No training loss is released under DP.
  EXPECT_EQ(Count(Svg(html, "plot-loss"), "class=\"pt\""), 3);
}

TEST(RunReportTest, SummaryStatesTheUpdateCompression) {
  wire::v1::RunStatus s = FinishedRun(3);
  EXPECT_THAT(Report(s), Not(HasSubstr("update compression")));
  auto* c = s.mutable_config()->mutable_compression();
  c->set_method(wire::v1::CompressionConfig::FLOAT16);
  c->set_error_feedback(true);
  // 3 rounds of 2 uploads; 1,500 bytes up per round: 4,500 bytes = "4.5 KB".
  for (int i = 0; i < s.rounds_size(); ++i) s.mutable_rounds(i)->set_bytes_up(1500);
  EXPECT_THAT(Report(s),
              HasSubstr("<dt>update compression</dt><dd>fp16 (IEEE binary16, round to nearest "
                        "even): 2 bytes per float32 value, 2x fewer than float32; error "
                        "feedback on. Completed rounds: 6 uploads, 4.5 KB up</dd>"));
}

TEST(RunReportTest, SiteEpsilonPlotHasOneLinePerSite) {
  EXPECT_EQ(Svg(Report(FinishedRun(3)), "plot-site-epsilon"), "");
  wire::v1::RunStatus s = FinishedRun(3);
  s.mutable_config()->mutable_differential_privacy()->mutable_record()->set_enabled(true);
  for (int i = 0; i < s.rounds_size(); ++i) {
    for (const char* site : {"site-a", "site-<b>"}) {
      wire::v1::SitePrivacy* p = s.mutable_rounds(i)->add_site_privacy();
      p->set_client(site);
      p->set_epsilon_budget(4);
      // site-<b> refuses round 3: no point for it there.
      if (i == 2 && std::string(site) == "site-<b>") {
        p->set_refused(true);
        p->set_reason("budget spent");
      } else {
        p->set_epsilon(0.5 * (i + 1));
      }
    }
  }
  const std::string html = Report(s);
  const std::string plot = Svg(html, "plot-site-epsilon");
  ASSERT_FALSE(plot.empty());
  EXPECT_EQ(Count(plot, "<polyline"), 2);             // one line per site
  EXPECT_EQ(Count(plot, "class=\"pt\""), 5);          // 3 for site-a, 2 for site-<b>
  EXPECT_THAT(plot, HasSubstr("site-&lt;b&gt;"));      // escaped in the legend
  EXPECT_THAT(plot, Not(HasSubstr("site-<b>")));
  EXPECT_THAT(plot, HasSubstr("site budget 4"));       // the sites' common budget
  EXPECT_EQ(Svg(html, "plot-epsilon"), "");            // no organization-level ledger
  EXPECT_THAT(html, HasSubstr("record-level DP-SGD at every site"));
}

TEST(SvgPlotTest, SinglePointAndConstantSeriesRender) {
  LinePlot plot{"p", "t", "round", "y", {{"s", "#000", {1}, {5}}}, {}, ""};
  const std::string one = LinePlotSvg(plot);
  EXPECT_EQ(Count(one, "class=\"pt\""), 1);
  EXPECT_THAT(one, Not(HasSubstr("<polyline")));
  plot.series[0] = {"s", "#000", {1, 2, 3}, {5, 5, 5}};
  const std::string flat = absl::AsciiStrToLower(LinePlotSvg(plot));
  EXPECT_EQ(Count(flat, "class=\"pt\""), 3);
  EXPECT_THAT(flat, HasSubstr("<polyline"));
  EXPECT_THAT(flat, Not(HasSubstr("nan")));
}

TEST(SvgPlotTest, HtmlEscape) {
  EXPECT_EQ(HtmlEscape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
}

}  // namespace
}  // namespace tessera::cli
