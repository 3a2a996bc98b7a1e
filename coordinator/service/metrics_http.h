// File: metrics_http.h
// A small plaintext HTTP endpoint for Prometheus: GET /metrics answers with `render()`'s
// text (Content-Type text/plain; version=0.0.4), GET /healthz with "ok"; anything else is
// 404. Served by cpp-httplib on its own threads. It carries aggregate numbers only (no
// weights, no updates, no secrets); bind it to an address the monitoring network reaches.
#ifndef TESSERA_COORDINATOR_SERVICE_METRICS_HTTP_H_
#define TESSERA_COORDINATOR_SERVICE_METRICS_HTTP_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace tessera::coordinator {

class MetricsHttpServer {
 public:
  // `address` is HOST:PORT (port 0 picks a free one). Errors: INVALID_ARGUMENT for a
  // malformed address, UNAVAILABLE when it cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& address, std::function<std::string()> render);
  ~MetricsHttpServer();  // stops serving
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;
  int port() const;

 private:
  class Impl;
  explicit MetricsHttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_SERVICE_METRICS_HTTP_H_
