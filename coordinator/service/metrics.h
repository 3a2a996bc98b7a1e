// File: metrics.h
// The coordinator's Prometheus metrics in the text exposition format (version 0.0.4),
// derived at scrape time from what the coordinator already records: the registry's
// connections and every run's status (its round history, secure-aggregation phases and
// privacy ledger). Nothing is counted on the hot path, and the numbers survive a restart
// because the history does. No HTTP here (metrics_http.h serves it).
#ifndef TESSERA_COORDINATOR_SERVICE_METRICS_H_
#define TESSERA_COORDINATOR_SERVICE_METRICS_H_

#include <cstddef>
#include <string>
#include <vector>

#include "tessera/wire/v1/control.pb.h"

namespace tessera::coordinator {

struct MetricsSnapshot {
  size_t connected_clients = 0;
  std::vector<wire::v1::RunStatus> runs;
};

// Upper bounds (seconds) of the round-duration histogram's buckets.
inline constexpr double kRoundSecondsBuckets[] = {0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600};

std::string RenderPrometheus(const MetricsSnapshot& snapshot);

// A label value with \, " and newline escaped as the exposition format requires.
std::string EscapeLabelValue(const std::string& value);

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_SERVICE_METRICS_H_
