// File: grpc_transport.h
// The Fleet API over gRPC: a channel to the coordinator (mTLS, or plaintext for loopback
// demos) and FleetTransport calls as RPCs that carry the client's session. tessera-client
// (node_runner.cc) and the simulator's optional loopback transport (tools/sim) both use it.
// gRPC does not appear in this header.
#ifndef TESSERA_CLIENT_RUNTIME_GRPC_TRANSPORT_H_
#define TESSERA_CLIENT_RUNTIME_GRPC_TRANSPORT_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "client/runtime/task_executor.h"

namespace tessera {

struct FleetChannelOptions {
  std::string address = "127.0.0.1:7800";
  bool insecure = false;
  // mTLS: PEM text of the federation CA, this client's certificate and its key.
  std::string ca_pem, cert_pem, key_pem;
  // Or mTLS from files, re-read by gRPC every `cert_refresh_seconds` so every new connection
  // uses the current files (certificate rotation). Used when `cert_path` is set.
  std::string ca_path, cert_path, key_path;
  int cert_refresh_seconds = 60;
  // Per message; masked secure-aggregation inputs travel in one message.
  int max_message_bytes = 32 << 20;
};

// A gRPC channel and Fleet stub (defined in grpc_transport.cc); shared by the transports
// and the registration calls made on it.
class FleetChannel;

// Errors: INVALID_ARGUMENT when TLS is asked for without the three PEM texts.
absl::StatusOr<std::shared_ptr<FleetChannel>> MakeFleetChannel(const FleetChannelOptions& options);

class GrpcFleetTransport : public FleetTransport {
 public:
  // `session` is read at every call (a reconnecting client registers anew); `stopping` ends
  // the secure-aggregation retries early (may be empty).
  GrpcFleetTransport(std::shared_ptr<FleetChannel> channel, std::function<std::string()> session,
                     std::function<bool()> stopping = {});
  absl::StatusOr<ArrayRecord> FetchModel(const wire::v1::Task& task) override;
  absl::StatusOr<std::string> FetchArtifact(const wire::v1::Task& task) override;
  absl::Status PushUpdate(const wire::v1::Task& task, uint64_t num_examples,
                          const std::map<std::string, double>& metrics,
                          const ArrayRecord& update) override;
  absl::Status PushEvaluation(const wire::v1::Task& task, const EvalResult& eval) override;
  SecAggTransport SecAgg(const wire::v1::Task& task) override;
  absl::Status ReportData(const wire::v1::Task& task,
                          const wire::v1::DataReport& report) override;
  absl::Status ReportSitePrivacy(const wire::v1::Task& task,
                                 const wire::v1::SitePrivacyReport& report) override;

  // Calls started from now on use `channel` (a new connection, e.g. after rotation).
  void SetChannel(std::shared_ptr<FleetChannel> channel);

 private:
  std::shared_ptr<FleetChannel> channel() const;

  mutable absl::Mutex mu_;
  std::shared_ptr<FleetChannel> channel_ ABSL_GUARDED_BY(mu_);
  std::function<std::string()> session_;
  std::function<bool()> stopping_;
};

}  // namespace tessera

#endif  // TESSERA_CLIENT_RUNTIME_GRPC_TRANSPORT_H_
