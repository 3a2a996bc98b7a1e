// File: run_report.h
// `tessera run report RUN` (docs/observability.md): one self-contained HTML page about a
// run that a person opens in a browser. It has no scripts and loads nothing: the CSS is
// inline, the plots are inline SVG (tools/cli/svg_plot.h), and a Content-Security-Policy
// forbids everything else. Every string that comes from the run (names, client names,
// messages, failure reasons, the config) is HTML-escaped.
#ifndef TESSERA_TOOLS_CLI_RUN_REPORT_H_
#define TESSERA_TOOLS_CLI_RUN_REPORT_H_

#include <string>

#include "absl/time/time.h"
#include "tessera/wire/v1/control.pb.h"

namespace tessera::cli {

// The report of `status` (GetRunStatus, with its round history), generated at `generated`
// (shown in the header; pass absl::InfinitePast() to leave it out). Sections, by id:
//   #summary       run id, name, state, strategy, dates, rounds, message, SecAgg/DP lines,
//                  update compression (method, bytes per value, uploads and bytes up)
//   #plots         svg#plot-accuracy (test accuracy), svg#plot-loss (train and test loss),
//                  svg#plot-epsilon (only when the run uses differential privacy),
//                  svg#plot-participants (selected / reported / dropped per attempt)
//   #metrics       one tr.round per round attempt
//   #participants  one tr.participants per round attempt, a span.client per client
//   #config        the run config (protobuf text format) in a <pre>
// The line plots have one point per completed round that has the metric: train loss is
// absent under secure aggregation or DP, test metrics when the round was not evaluated,
// and non-finite values are left out. Epsilon has one point per charged round.
std::string RunReportHtml(const wire::v1::RunStatus& status, absl::Time generated);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_RUN_REPORT_H_
