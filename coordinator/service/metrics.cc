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

Labels RunLabels(const wire::v1::RunStatus& run) {
  return {{"run", run.run_id()}, {"name", run.name()}};
}

Labels With(Labels labels, std::string name, std::string value) {
  labels.emplace_back(std::move(name), std::move(value));
  return labels;
}

bool Finished(const wire::v1::RoundSummary& r) {
  return r.state() == wire::v1::ROUND_COMPLETED || r.state() == wire::v1::ROUND_FAILED;
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
  for (const auto& run : s.runs) by_state[wire::v1::RunState_Name(run.state())]++;
  Family runs(&out, "tessera_runs", "gauge", "Runs known to the coordinator, by state.");
  for (const auto& [state, n] : by_state) runs.Sample({{"state", state}}, n);

  Family started(&out, "tessera_rounds_started_total", "counter",
                 "Round attempts started, per run (retries count again).");
  for (const auto& run : s.runs) started.Sample(RunLabels(run), run.rounds_size());
  Family ended(&out, "tessera_rounds_total", "counter",
               "Round attempts that ended, per run and outcome.");
  for (const auto& run : s.runs) {
    int completed = 0, failed = 0;
    for (const auto& r : run.rounds()) {
      completed += r.state() == wire::v1::ROUND_COMPLETED;
      failed += r.state() == wire::v1::ROUND_FAILED;
    }
    ended.Sample(With(RunLabels(run), "outcome", "completed"), completed);
    ended.Sample(With(RunLabels(run), "outcome", "failed"), failed);
  }

  Family seconds(&out, "tessera_round_duration_seconds", "histogram",
                 "Wall time of ended round attempts (selection to aggregate), per run.");
  for (const auto& run : s.runs) {
    uint64_t count = 0;
    double sum = 0;
    std::vector<uint64_t> buckets(std::size(kRoundSecondsBuckets), 0);
    for (const auto& r : run.rounds()) {
      if (!Finished(r)) continue;
      ++count;
      sum += r.seconds();
      for (size_t i = 0; i < buckets.size(); ++i) buckets[i] += r.seconds() <= kRoundSecondsBuckets[i];
    }
    for (size_t i = 0; i < buckets.size(); ++i) {
      seconds.Sample(With(RunLabels(run), "le", absl::StrFormat("%g", kRoundSecondsBuckets[i])),
                     static_cast<double>(buckets[i]), "_bucket");
    }
    seconds.Sample(With(RunLabels(run), "le", "+Inf"), static_cast<double>(count), "_bucket");
    seconds.Sample(RunLabels(run), sum, "_sum");
    seconds.Sample(RunLabels(run), static_cast<double>(count), "_count");
  }

  Family phases(&out, "tessera_round_phase_seconds", "summary",
                "Wall time per phase of ended round attempts (select, train, aggregate, "
                "evaluate, secure-aggregation phases), per run.");
  for (const auto& run : s.runs) {
    std::map<std::string, std::pair<double, uint64_t>> by_phase;  // sum, count
    for (const auto& r : run.rounds()) {
      if (!Finished(r)) continue;
      for (const auto& p : r.phases()) {
        by_phase[p.phase()].first += p.seconds();
        ++by_phase[p.phase()].second;
      }
    }
    for (const auto& [phase, v] : by_phase) {
      phases.Sample(With(RunLabels(run), "phase", phase), v.first, "_sum");
      phases.Sample(With(RunLabels(run), "phase", phase), static_cast<double>(v.second), "_count");
    }
  }

  Family bytes(&out, "tessera_bytes_total", "counter",
               "Model bytes sent to clients (out) and update bytes received (in), per run.");
  for (const auto& run : s.runs) {
    uint64_t in = 0, sent = 0;
    for (const auto& r : run.rounds()) {
      in += r.bytes_up();
      sent += r.bytes_down();
    }
    bytes.Sample(With(RunLabels(run), "direction", "in"), static_cast<double>(in));
    bytes.Sample(With(RunLabels(run), "direction", "out"), static_cast<double>(sent));
  }

  Family clients(&out, "tessera_round_clients", "gauge",
                 "Clients of the latest round attempt: selected, reported, dropped.");
  for (const auto& run : s.runs) {
    if (run.rounds().empty()) continue;
    const auto& r = *run.rounds().rbegin();
    clients.Sample(With(RunLabels(run), "kind", "selected"), r.selected());
    clients.Sample(With(RunLabels(run), "kind", "reported"), r.reported());
    clients.Sample(With(RunLabels(run), "kind", "dropped"), r.dropped());
  }

  Family dropouts(&out, "tessera_secagg_dropouts_total", "counter",
                  "Secure-aggregation participants lost (no answer or a rejected message), "
                  "per run and protocol phase.");
  for (const auto& run : s.runs) {
    std::map<std::string, uint64_t> per_phase;
    for (const auto& r : run.rounds()) {
      for (const auto& p : r.secagg().phases()) {
        per_phase[p.phase()] += static_cast<uint64_t>(p.dropped_size() + p.rejected_size());
      }
    }
    for (const auto& [phase, n] : per_phase) {
      dropouts.Sample(With(RunLabels(run), "phase", phase), static_cast<double>(n));
    }
  }

  // Each family's samples must follow its own header: one pass per family.
  auto latest_released = [](const wire::v1::RunStatus& run) -> const wire::v1::RoundSummary* {
    for (auto r = run.rounds().rbegin(); r != run.rounds().rend(); ++r) {
      if (r->has_privacy() && r->privacy().released()) return &*r;
    }
    return nullptr;
  };
  Family epsilon(&out, "tessera_dp_epsilon_spent", "gauge",
                 "Differential privacy: epsilon spent on the run's dataset (all its runs).");
  for (const auto& run : s.runs) {
    if (!run.has_privacy()) continue;
    epsilon.Sample(With(RunLabels(run), "dataset", run.privacy().dataset()),
                   run.privacy().epsilon_spent());
  }
  Family budget(&out, "tessera_dp_epsilon_budget", "gauge",
                "Differential privacy: the dataset's epsilon budget.");
  for (const auto& run : s.runs) {
    if (!run.has_privacy()) continue;
    budget.Sample(With(RunLabels(run), "dataset", run.privacy().dataset()),
                  run.privacy().epsilon_budget());
  }
  Family unclipped(&out, "tessera_dp_unclipped_fraction", "gauge",
                   "Differential privacy, latest released round: the noised fraction of "
                   "updates whose norm was within the clip norm before clipping.");
  for (const auto& run : s.runs) {
    if (const auto* r = latest_released(run)) {
      unclipped.Sample(RunLabels(run), r->privacy().unclipped_fraction());
    }
  }
  Family clip(&out, "tessera_dp_clip_norm", "gauge",
              "Differential privacy, latest released round: the clip norm used.");
  for (const auto& run : s.runs) {
    if (const auto* r = latest_released(run)) clip.Sample(RunLabels(run), r->privacy().clip_norm());
  }
  Family site(&out, "tessera_site_epsilon", "gauge",
              "Record-level DP-SGD: the latest epsilon each site reported for its own records "
              "(at its own delta), per run and client.");
  for (const auto& run : s.runs) {
    std::map<std::string, double> latest;  // by client; a refusal keeps the last epsilon
    for (const auto& r : run.rounds()) {
      for (const auto& p : r.site_privacy()) {
        if (!p.refused()) {
          latest[p.client()] = p.epsilon();
        } else {
          latest.emplace(p.client(), p.epsilon());
        }
      }
    }
    for (const auto& [client, e] : latest) site.Sample(With(RunLabels(run), "client", client), e);
  }
  return out;
}

}  // namespace tessera::coordinator
