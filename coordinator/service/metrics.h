// File: metrics.h
// The coordinator's Prometheus metrics in the text exposition format (version 0.0.4),
// derived at scrape time from what the coordinator already records: the registry's
// connections and every run's round history, secure-aggregation phases and privacy ledger,
// folded per run into a RunMetrics (coordinator/round/run_metrics.h) by
// RunManager::Metrics(). Nothing is counted on the hot path, and the numbers survive a
// restart because the history does. No HTTP here (metrics_http.h serves it).
#ifndef TESSERA_COORDINATOR_SERVICE_METRICS_H_
#define TESSERA_COORDINATOR_SERVICE_METRICS_H_

#include <cstddef>
#include <string>
#include <vector>

#include "coordinator/round/run_metrics.h"

namespace tessera::coordinator {

struct MetricsSnapshot {
  size_t connected_clients = 0;
  std::vector<RunMetrics> runs;
};

std::string RenderPrometheus(const MetricsSnapshot& snapshot);

// A label value with \, " and newline escaped as the exposition format requires.
std::string EscapeLabelValue(const std::string& value);

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_SERVICE_METRICS_H_
