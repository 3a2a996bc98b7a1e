#include "tools/sim/sim_output.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tessera::sim {
namespace {

std::string Num(double v) { return std::isnan(v) ? "" : absl::StrFormat("%.6g", v); }

nlohmann::json JsonNum(double v) {
  return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v);
}

}  // namespace

std::string ProgressLine(const RoundRow& r, uint32_t rounds) {
  std::string line = absl::StrFormat("round %u/%u  %u/%u clients", r.round, rounds,
                                     r.completed, r.selected);
  if (r.dropped > 0) absl::StrAppend(&line, absl::StrFormat(" (%u dropped)", r.dropped));
  if (!std::isnan(r.train_loss)) absl::StrAppend(&line, absl::StrFormat("  loss %.4f", r.train_loss));
  if (!std::isnan(r.test_accuracy)) {
    absl::StrAppend(&line, absl::StrFormat("  test acc %.2f%% (loss %.4f)",
                                           100 * r.test_accuracy, r.test_loss));
  }
  if (!std::isnan(r.epsilon)) absl::StrAppend(&line, absl::StrFormat("  eps %.3f", r.epsilon));
  absl::StrAppend(&line, absl::StrFormat("  up %.1f MB down %.1f MB  wall %.2f s  virtual %.1f s",
                                         r.bytes_up / 1e6, r.bytes_down / 1e6, r.wall_seconds,
                                         r.virtual_seconds));
  return line;
}

absl::Status WriteMetrics(const std::string& dir, const RunSummary& run,
                          const std::vector<RoundRow>& rows) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  std::ofstream csv(dir + "/metrics.csv");
  csv << "round,selected,completed,dropped,train_loss,test_loss,test_accuracy,epsilon,"
         "bytes_up,bytes_down,wall_seconds,virtual_seconds,train_seconds,examples,steps\n";
  nlohmann::json json_rows = nlohmann::json::array();
  for (const RoundRow& r : rows) {
    csv << r.round << ',' << r.selected << ',' << r.completed << ',' << r.dropped << ','
        << Num(r.train_loss) << ',' << Num(r.test_loss) << ',' << Num(r.test_accuracy) << ','
        << Num(r.epsilon) << ',' << r.bytes_up << ',' << r.bytes_down << ','
        << Num(r.wall_seconds) << ',' << Num(r.virtual_seconds) << ',' << Num(r.train_seconds)
        << ',' << r.examples << ',' << r.steps << '\n';
    json_rows.push_back({{"round", r.round},
                         {"selected", r.selected},
                         {"completed", r.completed},
                         {"dropped", r.dropped},
                         {"train_loss", JsonNum(r.train_loss)},
                         {"test_loss", JsonNum(r.test_loss)},
                         {"test_accuracy", JsonNum(r.test_accuracy)},
                         {"epsilon", JsonNum(r.epsilon)},
                         {"bytes_up", r.bytes_up},
                         {"bytes_down", r.bytes_down},
                         {"wall_seconds", r.wall_seconds},
                         {"virtual_seconds", r.virtual_seconds},
                         {"train_seconds", r.train_seconds},
                         {"examples", r.examples},
                         {"steps", r.steps}});
  }
  if (!csv) return absl::InternalError(absl::StrCat("cannot write ", dir, "/metrics.csv"));
  const nlohmann::json doc = {{"name", run.name},
                              {"strategy", run.strategy},
                              {"partition", run.partition},
                              {"clients", run.clients},
                              {"threads", run.threads},
                              {"seed", run.seed},
                              {"state", run.state},
                              {"wall_seconds", run.wall_seconds},
                              {"virtual_seconds", run.virtual_seconds},
                              {"peak_rss_bytes", run.peak_rss_bytes},
                              {"ranks", run.ranks},
                              {"peak_rss_bytes_all_ranks", run.peak_rss_bytes_all_ranks},
                              {"updates_in_partial_sums", run.updates_in_partial_sums},
                              {"model_sha256", run.model_sha256},
                              {"rounds", json_rows}};
  std::ofstream json(dir + "/metrics.json");
  json << doc.dump(2) << '\n';
  if (!json) return absl::InternalError(absl::StrCat("cannot write ", dir, "/metrics.json"));
  return absl::OkStatus();
}

absl::Status PlotMetrics(const std::string& dir, const std::string& title) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    return absl::FailedPreconditionError("gnuplot is not installed (apt install gnuplot-nox)");
  }
  const std::string script = dir + "/metrics.gp";
  {
    std::ofstream gp(script);
    gp << "set datafile separator ','\n"
       << "set terminal pngcairo size 1000,420 noenhanced\n"
       << "set output '" << dir << "/metrics.png'\n"
       << "set multiplot layout 1,2 title '" << title << "'\n"
       << "set key bottom right\nset grid\nset xlabel 'round'\n"
       << "set ylabel 'test accuracy (%)'\n"
       << "plot '" << dir << "/metrics.csv' every ::1 using 1:($7*100) with linespoints "
       << "title 'test accuracy'\n"
       << "set key top right\nset ylabel 'loss'\n"
       << "plot '" << dir << "/metrics.csv' every ::1 using 1:5 with linespoints title "
       << "'train loss', '' every ::1 using 1:6 with linespoints title 'test loss'\n"
       << "unset multiplot\n";
  }
  const std::string cmd = absl::StrCat("gnuplot '", script, "' 2>", dir, "/gnuplot.log");
  if (std::system(cmd.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("gnuplot failed; see ", dir, "/gnuplot.log"));
  }
  return absl::OkStatus();
}

uint64_t PeakRssBytes() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "VmHWM:") {
      uint64_t kb = 0;
      status >> kb;
      return kb * 1024;
    }
    status.ignore(1 << 20, '\n');
  }
  return 0;
}

}  // namespace tessera::sim
