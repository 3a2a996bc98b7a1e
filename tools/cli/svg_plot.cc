#include "tools/cli/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tessera::cli {
namespace {

// The drawing area inside the viewBox, in SVG user units.
constexpr double kWidth = 640;
constexpr double kHeight = 300;
constexpr double kLeft = 64;
constexpr double kRight = 16;
constexpr double kTop = 44;
constexpr double kBottom = 48;
constexpr double kPlotWidth = kWidth - kLeft - kRight;
constexpr double kPlotHeight = kHeight - kTop - kBottom;

struct Range {
  double lo = 0;
  double hi = 1;
  double step = 1;
};

// 1, 2 or 5 times a power of ten, near span / target.
double NiceStep(double span, int target) {
  const double raw = span / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  return (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
}

// A range covering [lo, hi] that starts and ends on ticks. REQUIRES: lo, hi finite, lo <= hi.
Range NiceRange(double lo, double hi, bool integer) {
  if (hi - lo < 1e-12 * std::max(1.0, std::abs(hi))) {
    const double pad = integer || lo == 0 ? 1.0 : std::abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  Range r;
  r.step = NiceStep(hi - lo, integer ? 8 : 5);
  if (integer) r.step = std::max(1.0, std::round(r.step));
  r.lo = std::floor(lo / r.step) * r.step;
  r.hi = std::ceil(hi / r.step) * r.step;
  if (r.hi <= r.lo) r.hi = r.lo + r.step;
  return r;
}

std::string Num(double v) { return absl::StrFormat("%.1f", v); }

std::string TickLabel(double v, double step) {
  if (std::abs(v) < step * 1e-9) v = 0;  // no "-0" or "1e-17"
  return absl::StrFormat("%.4g", v);
}

double Px(double x, const Range& r) { return kLeft + (x - r.lo) / (r.hi - r.lo) * kPlotWidth; }
double Py(double y, const Range& r) {
  return kTop + kPlotHeight - (y - r.lo) / (r.hi - r.lo) * kPlotHeight;
}

std::string Open(const std::string& id, const std::string& title) {
  return absl::StrFormat(
      "<svg id=\"%s\" class=\"plot\" viewBox=\"0 0 %g %g\" width=\"%g\" height=\"%g\" "
      "role=\"img\" aria-label=\"%s\">\n<text class=\"title\" x=\"%g\" y=\"18\">%s</text>\n",
      HtmlEscape(id), kWidth, kHeight, kWidth, kHeight, HtmlEscape(title), kLeft,
      HtmlEscape(title));
}

std::string NoData(const std::string& id, const std::string& title) {
  return absl::StrCat(Open(id, title),
                      absl::StrFormat("<text class=\"nodata\" x=\"%g\" y=\"%g\" "
                                      "text-anchor=\"middle\">no data</text>\n</svg>\n",
                                      kWidth / 2, kHeight / 2));
}

// The legend on one row under the title; text widths are estimated at 7 units a character.
std::string Legend(const std::vector<std::string>& names, const std::vector<std::string>& colors) {
  std::string out;
  double x = kLeft;
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string color = i < colors.size() ? colors[i] : "#444";
    absl::StrAppend(&out, absl::StrFormat(
                              "<rect class=\"key\" x=\"%s\" y=\"26\" width=\"12\" height=\"8\" "
                              "fill=\"%s\"/><text class=\"legend\" x=\"%s\" y=\"34\">%s</text>\n",
                              Num(x), HtmlEscape(color), Num(x + 16), HtmlEscape(names[i])));
    x += 28 + 7.0 * static_cast<double>(names[i].size());
  }
  return out;
}

// The y grid, tick labels and axis label.
std::string YAxis(const Range& y, const std::string& label) {
  std::string out;
  for (double v = y.lo; v <= y.hi + y.step * 1e-6; v += y.step) {
    const double py = Py(v, y);
    absl::StrAppend(&out, absl::StrFormat(
                              "<line class=\"grid\" x1=\"%g\" y1=\"%s\" x2=\"%g\" y2=\"%s\"/>"
                              "<text class=\"tick\" x=\"%g\" y=\"%s\" text-anchor=\"end\">%s"
                              "</text>\n",
                              kLeft, Num(py), kWidth - kRight, Num(py), kLeft - 6, Num(py + 4),
                              TickLabel(v, y.step)));
  }
  absl::StrAppend(&out, absl::StrFormat(
                            "<text class=\"axis-label\" transform=\"translate(14 %g) rotate(-90)\" "
                            "text-anchor=\"middle\">%s</text>\n"
                            "<line class=\"axis\" x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\"/>\n",
                            kTop + kPlotHeight / 2, HtmlEscape(label), kLeft, kTop + kPlotHeight,
                            kWidth - kRight, kTop + kPlotHeight));
  return out;
}

std::string XTick(double px, const std::string& label) {
  return absl::StrFormat(
      "<text class=\"tick\" x=\"%s\" y=\"%g\" text-anchor=\"middle\">%s</text>\n", Num(px),
      kTop + kPlotHeight + 16, HtmlEscape(label));
}

std::string XLabel(const std::string& label) {
  return absl::StrFormat(
      "<text class=\"axis-label\" x=\"%g\" y=\"%g\" text-anchor=\"middle\">%s</text>\n",
      kLeft + kPlotWidth / 2, kHeight - 8, HtmlEscape(label));
}

}  // namespace

std::string HtmlEscape(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string LinePlotSvg(const LinePlot& plot) {
  // The finite points of each series, and the data's extent.
  std::vector<std::vector<std::pair<double, double>>> points(plot.series.size());
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (size_t s = 0; s < plot.series.size(); ++s) {
    const PlotSeries& series = plot.series[s];
    for (size_t i = 0; i < std::min(series.x.size(), series.y.size()); ++i) {
      const double x = series.x[i], y = series.y[i];
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      points[s].emplace_back(x, y);
      xlo = std::min(xlo, x);
      xhi = std::max(xhi, x);
      ylo = std::min(ylo, y);
      yhi = std::max(yhi, y);
    }
  }
  if (!(xlo <= xhi)) return NoData(plot.id, plot.title);
  const bool reference = plot.reference.has_value() && std::isfinite(*plot.reference);
  if (reference) {
    ylo = std::min(ylo, *plot.reference);
    yhi = std::max(yhi, *plot.reference);
  }
  const Range x = NiceRange(xlo, xhi, /*integer=*/true);
  const Range y = NiceRange(ylo, yhi, /*integer=*/false);

  std::vector<std::string> names, colors;
  for (const PlotSeries& s : plot.series) {
    names.push_back(s.name);
    colors.push_back(s.color);
  }
  std::string out = absl::StrCat(Open(plot.id, plot.title), Legend(names, colors),
                                 YAxis(y, plot.y_label));
  for (double v = x.lo; v <= x.hi + 1e-9; v += x.step) {
    absl::StrAppend(&out, XTick(Px(v, x), TickLabel(v, x.step)));
  }
  absl::StrAppend(&out, XLabel(plot.x_label));
  if (reference) {
    const double py = Py(*plot.reference, y);
    absl::StrAppend(&out, absl::StrFormat(
                              "<line class=\"ref\" x1=\"%g\" y1=\"%s\" x2=\"%g\" y2=\"%s\" "
                              "stroke-dasharray=\"6 4\"/><text class=\"ref-label\" x=\"%g\" "
                              "y=\"%s\" text-anchor=\"end\">%s</text>\n",
                              kLeft, Num(py), kWidth - kRight, Num(py), kWidth - kRight - 4,
                              Num(py - 4), HtmlEscape(plot.reference_label)));
  }
  for (size_t s = 0; s < plot.series.size(); ++s) {
    const std::string color = HtmlEscape(plot.series[s].color);
    if (points[s].size() >= 2) {
      std::string coords;
      for (const auto& [px, py] : points[s]) {
        absl::StrAppend(&coords, coords.empty() ? "" : " ", Num(Px(px, x)), ",", Num(Py(py, y)));
      }
      absl::StrAppend(&out, absl::StrFormat("<polyline class=\"line\" data-series=\"%u\" "
                                            "points=\"%s\" fill=\"none\" stroke=\"%s\"/>\n",
                                            s, coords, color));
    }
    for (const auto& [px, py] : points[s]) {
      absl::StrAppend(&out, absl::StrFormat(
                                "<circle class=\"pt\" data-series=\"%u\" cx=\"%s\" cy=\"%s\" "
                                "r=\"3.5\" fill=\"%s\"><title>%s, %s %g: %.6g</title></circle>\n",
                                s, Num(Px(px, x)), Num(Py(py, y)), color,
                                HtmlEscape(plot.series[s].name), HtmlEscape(plot.x_label), px, py));
    }
  }
  absl::StrAppend(&out, "</svg>\n");
  return out;
}

std::string BarPlotSvg(const BarPlot& plot) {
  if (plot.groups.empty() || plot.names.empty()) return NoData(plot.id, plot.title);
  double ymax = 1;
  for (const BarGroup& g : plot.groups) {
    for (const double v : g.values) {
      if (std::isfinite(v)) ymax = std::max(ymax, v);
    }
  }
  const Range y = NiceRange(0, ymax, /*integer=*/true);
  std::string out = absl::StrCat(Open(plot.id, plot.title), Legend(plot.names, plot.colors),
                                 YAxis(y, plot.y_label));
  const size_t n = plot.groups.size();
  const double group_width = kPlotWidth / static_cast<double>(n);
  const double bar_width =
      std::min(24.0, group_width * 0.8 / static_cast<double>(plot.names.size()));
  const size_t label_every = std::max<size_t>(1, (n + 15) / 16);  // at most 16 labels
  for (size_t g = 0; g < n; ++g) {
    const double center = kLeft + group_width * (static_cast<double>(g) + 0.5);
    double left = center - bar_width * static_cast<double>(plot.names.size()) / 2;
    for (size_t s = 0; s < plot.names.size(); ++s, left += bar_width) {
      double v = s < plot.groups[g].values.size() ? plot.groups[g].values[s] : 0;
      if (!std::isfinite(v) || v < 0) v = 0;
      const double top = Py(v, y);
      absl::StrAppend(&out, absl::StrFormat(
                                "<rect class=\"bar\" data-series=\"%u\" x=\"%s\" y=\"%s\" "
                                "width=\"%s\" height=\"%s\" fill=\"%s\"><title>%s %s: %g</title>"
                                "</rect>\n",
                                s, Num(left), Num(top), Num(bar_width),
                                Num(kTop + kPlotHeight - top),
                                HtmlEscape(s < plot.colors.size() ? plot.colors[s] : "#444"),
                                HtmlEscape(plot.groups[g].label), HtmlEscape(plot.names[s]), v));
    }
    if (g % label_every == 0) absl::StrAppend(&out, XTick(center, plot.groups[g].label));
  }
  absl::StrAppend(&out, XLabel(plot.x_label), "</svg>\n");
  return out;
}

}  // namespace tessera::cli
