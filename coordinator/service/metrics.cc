#include "coordinator/service/metrics.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tessera::coordinator {
namespace {

// One metric family: HELP and TYPE once, then its samples.
class Family {
 public:
  Family(std::string* out, absl::string_view name, absl::string_view type,
         absl::string_view help)
      : out_(out), name_(name) {
    absl::StrAppend(out_, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
  }
  // `labels`: pairs of name and (unescaped) value.
  void Sample(const std::vector<std::pair<std::string, std::string>>& labels, double value,
              absl::string_view suffix = "") {
    absl::StrAppend(out_, name_, suffix);
    if (!labels.empty()) {
      out_->push_back('{');
      for (size_t i = 0; i < labels.size(); ++i) {
        absl::StrAppend(out_, i ? "," : "", labels[i].first, "=\"",
                        EscapeLabelValue(labels[i].second), "\"");
      }
      out_->push_back('}');
    }
    absl::StrAppend(out_, " ", absl::StrFormat("%.17g", value), "\n");
  }

 private:
  std::string* out_;
  std::string name_;
};

using Labels = std::vector<std::pair<std::string, std::string>>;

Labels RunLabels(const RunMetrics& run) { return {{"run", run.run_id}, {"name", run.name}}; }

Labels With(Labels labels, std::string name, std::string value) {
  labels.emplace_back(std::move(name), std::move(value));
  return labels;
}

}  // namespace

std::string EscapeLabelValue(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string RenderPrometheus(const MetricsSnapshot& s) {
  std::string out;
  Family(&out, "tessera_connected_clients", "gauge",
         "Clients with an open task subscription.")
      .Sample({}, static_cast<double>(s.connected_clients));

  std::map<std::string, int> by_state;
  for (const auto& run : s.runs) by_state[wire::v1::RunState_Name(run.state)]++;
  Family runs(&out, "tessera_runs", "gauge", "Runs known to the coordinator, by state.");
  for (const auto& [state, n] : by_state) runs.Sample({{"state", state}}, n);

  // Each family's samples must follow its own header: one pass per family.
  Family started(&out, "tessera_rounds_started_total", "counter",
                 "Round attempts started, per run (retries count again).");
  for (const auto& run : s.runs) {
    started.Sample(RunLabels(run), static_cast<double>(run.rounds_started));
  }
  Family ended(&out, "tessera_rounds_total", "counter",
               "Round attempts that ended, per run and outcome.");
  for (const auto& run : s.runs) {
    ended.Sample(With(RunLabels(run), "outcome", "completed"),
                 static_cast<double>(run.rounds_completed));
    ended.Sample(With(RunLabels(run), "outcome", "failed"),
                 static_cast<double>(run.rounds_failed));
  }

  Family seconds(&out, "tessera_round_duration_seconds", "histogram",
                 "Wall time of ended round attempts (selection to aggregate), per run.");
  for (const auto& run : s.runs) {
    for (size_t i = 0; i < kRoundSecondsBuckets.size(); ++i) {
      seconds.Sample(With(RunLabels(run), "le", absl::StrFormat("%g", kRoundSecondsBuckets[i])),
                     static_cast<double>(run.seconds_buckets[i]), "_bucket");
    }
    seconds.Sample(With(RunLabels(run), "le", "+Inf"), static_cast<double>(run.seconds_count),
                   "_bucket");
    seconds.Sample(RunLabels(run), run.seconds_sum, "_sum");
    seconds.Sample(RunLabels(run), static_cast<double>(run.seconds_count), "_count");
  }

  Family phases(&out, "tessera_round_phase_seconds", "summary",
                "Wall time per phase of ended round attempts (select, train, aggregate, "
                "evaluate, secure-aggregation phases), per run.");
  for (const auto& run : s.runs) {
    for (const auto& [phase, total] : run.phases) {
      phases.Sample(With(RunLabels(run), "phase", phase), total.seconds, "_sum");
      phases.Sample(With(RunLabels(run), "phase", phase), static_cast<double>(total.count),
                    "_count");
    }
  }

  Family bytes(&out, "tessera_bytes_total", "counter",
               "Model bytes sent to clients (out) and update bytes received (in), per run.");
  for (const auto& run : s.runs) {
    bytes.Sample(With(RunLabels(run), "direction", "in"), static_cast<double>(run.bytes_in));
    bytes.Sample(With(RunLabels(run), "direction", "out"), static_cast<double>(run.bytes_out));
  }

  Family clients(&out, "tessera_round_clients", "gauge",
                 "Clients of the latest round attempt: selected, reported, dropped.");
  for (const auto& run : s.runs) {
    if (!run.latest_clients.has_value()) continue;
    clients.Sample(With(RunLabels(run), "kind", "selected"), run.latest_clients->selected);
    clients.Sample(With(RunLabels(run), "kind", "reported"), run.latest_clients->reported);
    clients.Sample(With(RunLabels(run), "kind", "dropped"), run.latest_clients->dropped);
  }

  Family dropouts(&out, "tessera_secagg_dropouts_total", "counter",
                  "Secure-aggregation participants lost (no answer or a rejected message), "
                  "per run and protocol phase.");
  for (const auto& run : s.runs) {
    for (const auto& [phase, n] : run.secagg_dropouts) {
      dropouts.Sample(With(RunLabels(run), "phase", phase), static_cast<double>(n));
    }
  }
  Family survivors(&out, "tessera_secagg_survivors", "gauge",
                   "Secure aggregation, latest ended attempt: clients whose inputs are in the "
                   "sum.");
  for (const auto& run : s.runs) {
    if (run.secagg_survivors.has_value()) survivors.Sample(RunLabels(run), *run.secagg_survivors);
  }

  Family epsilon(&out, "tessera_dp_epsilon_spent", "gauge",
                 "Differential privacy: epsilon spent on the run's dataset (all its runs).");
  for (const auto& run : s.runs) {
    if (!run.budget.has_value()) continue;
    epsilon.Sample(With(RunLabels(run), "dataset", run.budget->dataset()),
                   run.budget->epsilon_spent());
  }
  Family budget(&out, "tessera_dp_epsilon_budget", "gauge",
                "Differential privacy: the dataset's epsilon budget.");
  for (const auto& run : s.runs) {
    if (!run.budget.has_value()) continue;
    budget.Sample(With(RunLabels(run), "dataset", run.budget->dataset()),
                  run.budget->epsilon_budget());
  }
  Family unclipped(&out, "tessera_dp_unclipped_fraction", "gauge",
                   "Differential privacy, latest released round: the noised fraction of "
                   "updates whose norm was within the clip norm before clipping.");
  for (const auto& run : s.runs) {
    if (run.latest_released.has_value()) {
      unclipped.Sample(RunLabels(run), run.latest_released->unclipped_fraction);
    }
  }
  Family clip(&out, "tessera_dp_clip_norm", "gauge",
              "Differential privacy, latest released round: the clip norm used.");
  for (const auto& run : s.runs) {
    if (run.latest_released.has_value()) {
      clip.Sample(RunLabels(run), run.latest_released->clip_norm);
    }
  }
  Family site(&out, "tessera_site_epsilon", "gauge",
              "Record-level DP-SGD: the latest epsilon each site reported for its own records "
              "(at its own delta), per run and client.");
  for (const auto& run : s.runs) {
    for (const auto& [client, e] : run.site_epsilon) {
      site.Sample(With(RunLabels(run), "client", client), e);
    }
  }
  return out;
}

}  // namespace tessera::coordinator
