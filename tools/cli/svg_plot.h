// File: svg_plot.h
// Small charts as inline SVG for the HTML run report (tools/cli/run_report.h): no scripts, no
// fonts, no external resources. Any input gives well-formed SVG: empty series, one point,
// non-finite values (left out) and constant series all render.
#ifndef TESSERA_TOOLS_CLI_SVG_PLOT_H_
#define TESSERA_TOOLS_CLI_SVG_PLOT_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace tessera::cli {

// Escapes &, <, >, " and ' so `text` is safe as HTML/SVG text and as a quoted attribute value.
std::string HtmlEscape(absl::string_view text);

struct PlotSeries {
  std::string name;    // the legend label
  std::string color;   // a CSS color, e.g. "#1f77b4"
  std::vector<double> x;
  std::vector<double> y;  // y[i] belongs to x[i]; points with a non-finite x or y are left out
};

struct LinePlot {
  std::string id;  // the <svg> element's id
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<PlotSeries> series;
  // A dashed horizontal line across the plot (e.g. the privacy budget), when set and finite.
  std::optional<double> reference;
  std::string reference_label;
};

// One <svg id=plot.id class="plot">: axes with ticks (integer ticks on x), per series a
// <polyline> through its points (when it has two or more) and one
// <circle class="pt" data-series="I"> per finite point with a <title> tooltip, and a legend.
// A plot without any finite point says "no data".
std::string LinePlotSvg(const LinePlot& plot);

struct BarGroup {
  std::string label;           // under the group, e.g. the round
  std::vector<double> values;  // one per BarPlot::names entry; negative or non-finite: 0
};

struct BarPlot {
  std::string id;
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<std::string> names;   // the legend, one per bar of a group
  std::vector<std::string> colors;  // one per name
  std::vector<BarGroup> groups;
};

// One <svg id=plot.id class="plot"> of grouped bars: one <rect class="bar" data-series="I">
// per value, with a <title> tooltip. No groups: "no data".
std::string BarPlotSvg(const BarPlot& plot);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_SVG_PLOT_H_
