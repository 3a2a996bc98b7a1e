#include "tools/cli/run_report.h"

#include <cmath>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <google/protobuf/text_format.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/config/run_config.h"
#include "tools/cli/format.h"
#include "tools/cli/privacy_status.h"
#include "tools/cli/secagg_status.h"
#include "tools/cli/svg_plot.h"

namespace tessera::cli {
namespace {

using wire::v1::RoundSummary;
using wire::v1::RunStatus;

constexpr char kStyle[] = R"css(
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1340px; color: #222;
       padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dt { color: #666; } dd { margin: 0; }
.state { font-size: 0.7em; padding: 0.15em 0.5em; border-radius: 0.3em; background: #ddd; }
.state.COMPLETED { background: #cfe8cf; } .state.FAILED, .state.CANCELLED { background: #f3c9c9; }
.state.RUNNING { background: #cfe0f3; }
.message { background: #fff4d6; padding: 0.5em; border-left: 4px solid #e0b000; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
th { background: #f4f4f4; } td.text, th.text { text-align: left; }
tr.FAILED td { background: #fbeaea; }
span.client { display: inline-block; background: #eef; border-radius: 0.3em; padding: 0 0.4em;
              margin: 0.1em; font-family: ui-monospace, monospace; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; }
td pre { margin: 0.2em 0; padding: 0.3em; font-size: 0.85em; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; }
svg.plot { border: 1px solid #ddd; background: #fff; font-size: 11px; }
svg .title { font-size: 14px; font-weight: bold; } svg .grid { stroke: #eee; }
svg .axis { stroke: #888; } svg .tick, svg .legend { fill: #444; }
svg .line { stroke-width: 2; } svg .ref { stroke: #c00; } svg .ref-label { fill: #c00; }
svg .nodata { fill: #999; font-size: 16px; }
.empty { color: #666; font-style: italic; }
)css";

constexpr char kNoRounds[] = "<p class=\"empty\">No rounds yet.</p>\n</section>\n";

constexpr char kBlue[] = "#1f77b4";
constexpr char kOrange[] = "#ff7f0e";
constexpr char kGreen[] = "#2ca02c";
constexpr char kRed[] = "#d62728";
constexpr char kPurple[] = "#9467bd";

bool DpOn(const RunStatus& s) {
  return s.has_privacy() || s.config().differential_privacy().mode() !=
                                wire::v1::DifferentialPrivacyConfig::MODE_UNSPECIFIED;
}

// Under secure aggregation clients report no per-client loss, and under DP none is released.
double TrainLoss(const RoundSummary& r) {
  return r.has_secagg() || r.has_privacy() ? NAN : r.train_loss();
}
double EvalAccuracy(const RoundSummary& r) { return r.evaluated() > 0 ? r.eval_accuracy() : NAN; }
double EvalLoss(const RoundSummary& r) { return r.evaluated() > 0 ? r.eval_loss() : NAN; }

// The round's privacy cost is on the ledger (as `tessera privacy spent` counts it).
bool Charged(const RoundSummary& r) {
  return r.has_privacy() && (r.state() == wire::v1::ROUND_COMPLETED || r.privacy().released());
}

std::string StateName(wire::v1::RoundState state) {
  std::string name = wire::v1::RoundState_Name(state);
  return name.rfind("ROUND_", 0) == 0 ? name.substr(6) : name;
}

// "3", or "3 (try 2)" for a retried round.
std::string AttemptLabel(const RoundSummary& r) {
  return r.attempt() > 1 ? absl::StrCat(r.round(), " (try ", r.attempt(), ")")
                         : absl::StrCat(r.round());
}

// A number cell with `decimals` digits after the point; a dash when `v` is not finite.
std::string Cell(double v, int decimals, absl::string_view unit = "") {
  return std::isfinite(v) ? absl::StrFormat("<td>%.*f%s</td>", decimals, v, unit)
                          : "<td class=\"missing\">&ndash;</td>";
}

std::string Date(int64_t unix_ms) {
  if (unix_ms <= 0) return "unknown";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromUnixMillis(unix_ms),
                          absl::UTCTimeZone());
}

std::string Item(absl::string_view term, absl::string_view html_definition) {
  return absl::StrCat("<dt>", term, "</dt><dd>", html_definition, "</dd>\n");
}

std::string Summary(const RunStatus& s, absl::Time generated) {
  const std::string state = wire::v1::RunState_Name(s.state());
  std::string out = absl::StrFormat(
      "<header id=\"summary\">\n<h1>Run %s <span class=\"state %s\">%s</span></h1>\n<dl>\n",
      HtmlEscape(s.name().empty() ? s.run_id() : s.name()), state, state);
  absl::StrAppend(&out, Item("run id", absl::StrCat("<code>", HtmlEscape(s.run_id()), "</code>")),
                  Item("strategy", HtmlEscape(StrategyName(s.config().strategy().kind()))),
                  Item("rounds", absl::StrCat(s.completed_rounds(), " of ", s.total_rounds(),
                                              " completed")),
                  Item("created", Date(s.created_unix_ms())));
  if (s.config().model().architecture().empty()) {
    absl::StrAppend(&out, Item("model", "TorchScript program"));
  } else {
    absl::StrAppend(&out, Item("model", HtmlEscape(s.config().model().architecture())));
  }
  const std::string settings =
      absl::StrCat(SecAggConfigText(s.config().secure_aggregation()),
                   PrivacyConfigText(s.config().differential_privacy()), PrivacyBudgetText(s),
                   BudgetExhaustedText(s));
  for (absl::string_view line : absl::StrSplit(settings, '\n', absl::SkipEmpty())) {
    absl::string_view text = absl::StripAsciiWhitespace(line);
    const size_t colon = text.find(": ");
    if (colon == absl::string_view::npos) continue;
    absl::StrAppend(&out, Item(HtmlEscape(text.substr(0, colon)),
                               HtmlEscape(text.substr(colon + 2))));
  }
  const std::string compression = CompressionSummary(s.config().compression());
  if (!compression.empty()) {
    // The ratio is the codec's (docs/compression.md); the bytes are those of the accepted
    // uploads of the completed rounds (RoundSummary.bytes_up counts compressed bytes).
    uint64_t uploads = 0;
    uint64_t bytes = 0;
    for (const RoundSummary& r : s.rounds()) {
      if (r.state() != wire::v1::ROUND_COMPLETED) continue;
      uploads += static_cast<uint64_t>(r.participants_size());
      bytes += r.bytes_up();
    }
    absl::StrAppend(&out, Item("update compression",
                               HtmlEscape(absl::StrCat(compression, ". Completed rounds: ",
                                                       uploads, " upload",
                                                       uploads == 1 ? "" : "s", ", ",
                                                       HumanBytes(bytes), " up"))));
  }
  if (generated != absl::InfinitePast()) {
    absl::StrAppend(&out, Item("report generated",
                               absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", generated,
                                                absl::UTCTimeZone())));
  }
  absl::StrAppend(&out, "</dl>\n");
  if (!s.message().empty()) {
    absl::StrAppend(&out, "<p class=\"message\">", HtmlEscape(s.message()), "</p>\n");
  }
  absl::StrAppend(&out, "</header>\n");
  return out;
}

bool RecordDpOn(const RunStatus& s) {
  if (s.config().differential_privacy().record().enabled()) return true;
  for (const RoundSummary& r : s.rounds()) {
    if (r.site_privacy_size() > 0) return true;
  }
  return false;
}

// Record-level DP: one line per site through the epsilon it reported for its own records in
// each round (every attempt counts: a site charges its ledger before it trains). The dashed
// line is the sites' budget when they all state the same one.
LinePlot SiteEpsilonPlot(const RunStatus& s) {
  static constexpr const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                             "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                                             "#bcbd22", "#17becf"};
  LinePlot plot{"plot-site-epsilon", "Record-level DP: each site's epsilon", "round",
                "epsilon", {}, {}, ""};
  std::map<std::string, PlotSeries> by_site;
  std::set<double> budgets;
  for (const RoundSummary& r : s.rounds()) {
    for (const wire::v1::SitePrivacy& p : r.site_privacy()) {
      budgets.insert(p.epsilon_budget());
      if (p.refused()) continue;  // it did not train: its epsilon did not move
      PlotSeries& series = by_site[p.client()];
      series.x.push_back(r.round());
      series.y.push_back(p.epsilon());
    }
  }
  size_t i = 0;
  for (auto& [client, series] : by_site) {
    series.name = client;
    series.color = kPalette[i++ % std::size(kPalette)];
    plot.series.push_back(std::move(series));
  }
  if (budgets.size() == 1 && *budgets.begin() > 0) {
    plot.reference = *budgets.begin();
    plot.reference_label = absl::StrFormat("site budget %g", *budgets.begin());
  }
  return plot;
}

// A series over the completed rounds: `metric` of each, left out where not finite.
PlotSeries Series(const RunStatus& s, const std::string& name, const char* color,
                  double (*metric)(const RoundSummary&)) {
  PlotSeries series{name, color, {}, {}};
  for (const RoundSummary& r : s.rounds()) {
    if (r.state() != wire::v1::ROUND_COMPLETED) continue;
    const double v = metric(r);
    if (!std::isfinite(v)) continue;
    series.x.push_back(r.round());
    series.y.push_back(v);
  }
  return series;
}

// The series that have at least one point.
std::vector<PlotSeries> NonEmpty(std::vector<PlotSeries> all) {
  std::vector<PlotSeries> out;
  for (PlotSeries& s : all) {
    if (!s.x.empty()) out.push_back(std::move(s));
  }
  return out;
}

std::string Plots(const RunStatus& s) {
  std::string out = "<section id=\"plots\">\n<h2>Plots</h2>\n<div class=\"plots\">\n";
  LinePlot accuracy{"plot-accuracy", "Test accuracy", "round", "accuracy (%)", {}, {}, ""};
  accuracy.series = NonEmpty({Series(s, "test accuracy", kBlue, [](const RoundSummary& r) {
    return 100 * EvalAccuracy(r);
  })});
  LinePlot loss{"plot-loss", "Loss", "round", "loss", {}, {}, ""};
  loss.series = NonEmpty({Series(s, "train loss", kOrange, &TrainLoss),
                          Series(s, "test loss", kPurple, &EvalLoss)});
  absl::StrAppend(&out, LinePlotSvg(accuracy), LinePlotSvg(loss));
  if (s.config().model().has_causal_lm()) {
    // Language models: exp of the token-weighted mean held-out loss of all clients.
    LinePlot ppl{"plot-perplexity", "Held-out perplexity", "round", "perplexity", {}, {}, ""};
    ppl.series = NonEmpty({Series(s, "held-out perplexity", kBlue, [](const RoundSummary& r) {
      return std::exp(EvalLoss(r));
    })});
    absl::StrAppend(&out, LinePlotSvg(ppl));
  }
  if (DpOn(s)) {
    LinePlot eps{"plot-epsilon", "Privacy: epsilon spent", "round", "epsilon", {}, {}, ""};
    PlotSeries spent{"epsilon after the round", kRed, {}, {}};
    for (const RoundSummary& r : s.rounds()) {
      if (!Charged(r) || !std::isfinite(r.privacy().epsilon())) continue;
      spent.x.push_back(r.round());
      spent.y.push_back(r.privacy().epsilon());
    }
    eps.series = NonEmpty({std::move(spent)});
    const double budget = s.has_privacy() ? s.privacy().epsilon_budget()
                                          : s.config().differential_privacy().epsilon_budget();
    if (budget > 0) {
      eps.reference = budget;
      eps.reference_label = absl::StrFormat("budget %g", budget);
    }
    absl::StrAppend(&out, LinePlotSvg(eps));
  }
  if (RecordDpOn(s)) absl::StrAppend(&out, LinePlotSvg(SiteEpsilonPlot(s)));
  BarPlot clients{"plot-participants", "Clients per round", "round", "clients",
                  {"selected", "reported", "dropped"}, {kBlue, kGreen, kRed}, {}};
  for (const RoundSummary& r : s.rounds()) {
    clients.groups.push_back({AttemptLabel(r),
                              {static_cast<double>(r.selected()), static_cast<double>(r.reported()),
                               static_cast<double>(r.dropped())}});
  }
  absl::StrAppend(&out, BarPlotSvg(clients), "</div>\n</section>\n");
  return out;
}

// "select 0.01 · train 1.20 · ..." (RoundSummary.phases), escaped.
std::string PhasesText(const RoundSummary& r) {
  std::vector<std::string> parts;
  for (const auto& p : r.phases()) {
    parts.push_back(absl::StrFormat("%s&nbsp;%.2f", HtmlEscape(p.phase()), p.seconds()));
  }
  return absl::StrJoin(parts, " &middot; ");
}

std::string MetricsTable(const RunStatus& s) {
  std::string out = "<section id=\"metrics\">\n<h2>Rounds</h2>\n";
  if (s.rounds_size() == 0) return absl::StrCat(out, kNoRounds);
  absl::StrAppend(&out,
                  "<table>\n<thead><tr><th>round</th><th>try</th><th class=\"text\">state</th>"
                  "<th>selected</th><th>reported</th><th>dropped</th><th>examples</th>"
                  "<th>train loss</th><th>test loss</th><th>test accuracy</th><th>epsilon</th>"
                  "<th>bytes down</th><th>bytes up</th><th>seconds</th>"
                  "<th class=\"text\">seconds by phase</th>"
                  "<th class=\"text\">note</th></tr></thead>\n<tbody>\n");
  for (const RoundSummary& r : s.rounds()) {
    const std::string state = StateName(r.state());
    absl::StrAppend(
        &out,
        absl::StrFormat("<tr class=\"round %s\" data-round=\"%u\"><td>%u</td><td>%u</td>"
                        "<td class=\"text\">%s</td><td>%u</td><td>%u</td><td>%u</td><td>%u</td>",
                        state, r.round(), r.round(), r.attempt(), state, r.selected(),
                        r.reported(), r.dropped(), r.num_examples()),
        Cell(TrainLoss(r), 4), Cell(EvalLoss(r), 4),
        Cell(100 * EvalAccuracy(r), 2, "%"),
        Cell(Charged(r) ? r.privacy().epsilon() : NAN, 4),
        absl::StrFormat("<td>%s</td><td>%s</td>", HumanBytes(r.bytes_down()),
                        HumanBytes(r.bytes_up())),
        Cell(r.seconds(), 1), "<td class=\"text phases\">", PhasesText(r), "</td>",
        "<td class=\"text\">", HtmlEscape(r.failure_reason()),
        "</td></tr>\n");
  }
  absl::StrAppend(&out, "</tbody>\n</table>\n</section>\n");
  return out;
}

std::string ParticipantsTable(const RunStatus& s) {
  std::string out = "<section id=\"participants\">\n<h2>Participants</h2>\n";
  if (s.rounds_size() == 0) return absl::StrCat(out, kNoRounds);
  absl::StrAppend(&out,
                  "<table>\n<thead><tr><th>round</th><th>try</th><th class=\"text\">clients"
                  "</th><th class=\"text\">secure aggregation</th></tr></thead>\n<tbody>\n");
  for (const RoundSummary& r : s.rounds()) {
    std::string names;
    for (const std::string& name : r.participants()) {
      absl::StrAppend(&names, "<span class=\"client\">", HtmlEscape(name), "</span> ");
    }
    if (names.empty()) names = "<span class=\"empty\">none recorded</span>";
    const std::string secagg = SecAggRoundText(r);
    absl::StrAppend(
        &out,
        absl::StrFormat("<tr class=\"participants\" data-round=\"%u\"><td>%u</td><td>%u</td>"
                        "<td class=\"text\">%s</td><td class=\"text\">%s</td></tr>\n",
                        r.round(), r.round(), r.attempt(), names,
                        secagg.empty() ? "&ndash;"
                                       : absl::StrCat("<pre>", HtmlEscape(secagg), "</pre>")));
  }
  absl::StrAppend(&out, "</tbody>\n</table>\n</section>\n");
  return out;
}

std::string ConfigSection(const RunStatus& s) {
  std::string text;
  google::protobuf::TextFormat::Printer printer;
  printer.SetUseUtf8StringEscaping(true);
  if (!printer.PrintToString(s.config(), &text)) text = "(the config could not be printed)";
  return absl::StrCat("<section>\n<h2>Config</h2>\n<pre id=\"config\">", HtmlEscape(text),
                      "</pre>\n</section>\n");
}

}  // namespace

std::string RunReportHtml(const RunStatus& s, absl::Time generated) {
  const std::string title =
      HtmlEscape(absl::StrCat("tessera run ", s.run_id(), s.name().empty() ? "" : " (",
                              s.name(), s.name().empty() ? "" : ")"));
  return absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      // Nothing but the inline style may load or run, whatever the run's strings hold.
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
      "style-src 'unsafe-inline'\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
      title, "</title>\n<style>", kStyle, "</style>\n</head>\n<body>\n", Summary(s, generated),
      Plots(s), MetricsTable(s), ParticipantsTable(s), ConfigSection(s),
      "<footer><p class=\"empty\">Written by <code>tessera run report</code>.</p></footer>\n"
      "</body>\n</html>\n");
}

}  // namespace tessera::cli
