// File: fleet_service.h
// The Fleet gRPC service (wire::v1::Fleet) on the callback API. Handlers authenticate, parse,
// call RunManager / ClientRegistry and serialize; no round logic lives here.
#ifndef TESSERA_COORDINATOR_SERVICE_FLEET_SERVICE_H_
#define TESSERA_COORDINATOR_SERVICE_FLEET_SERVICE_H_

#include "coordinator/round/client_registry.h"
#include "coordinator/round/run_manager.h"
#include "coordinator/service/trust_store.h"
#include "coordinator/service/upload_gate.h"
#include "coordinator/state/coordinator_state.h"
#include "tessera/wire/v1/fleet.grpc.pb.h"

namespace tessera::coordinator {

struct FleetServiceOptions {
  bool insecure = false;
  size_t max_concurrent_uploads = 2;    // updates staged in memory at once
  size_t max_concurrent_downloads = 16;  // model streams in flight at once
  TrustStore* trust = nullptr;  // re-checks each client certificate per RPC (null: insecure)
};

// Register's checks of what a client says about itself, before anything is logged:
// INVALID_ARGUMENT naming the field, "name: ..." (ValidateClientName), "device: ..." (at most
// 64 bytes) or "version: ..." (at most 128 bytes), both printable ASCII without control
// characters. The offending value is quoted escaped and capped (PeerText).
absl::Status ValidateRegisterRequest(const wire::v1::RegisterRequest& request);

class FleetService final : public wire::v1::Fleet::CallbackService {
 public:
  // `runs`, `registry` and `state` must outlive the service.
  FleetService(FleetServiceOptions options, RunManager* runs, ClientRegistry* registry,
               CoordinatorState* state)
      : options_(options),
        runs_(runs),
        registry_(registry),
        state_(state),
        gate_(options.max_concurrent_uploads),
        download_gate_(options.max_concurrent_downloads) {}

  grpc::ServerUnaryReactor* Register(grpc::CallbackServerContext* context,
                                     const wire::v1::RegisterRequest* request,
                                     wire::v1::RegisterResponse* response) override;
  grpc::ServerWriteReactor<wire::v1::Task>* Subscribe(
      grpc::CallbackServerContext* context, const wire::v1::SubscribeRequest* request) override;
  grpc::ServerWriteReactor<wire::v1::TensorChunk>* FetchModel(
      grpc::CallbackServerContext* context, const wire::v1::FetchModelRequest* request) override;
  grpc::ServerWriteReactor<wire::v1::ArtifactChunk>* FetchArtifact(
      grpc::CallbackServerContext* context,
      const wire::v1::FetchArtifactRequest* request) override;
  grpc::ServerReadReactor<wire::v1::PushUpdateRequest>* PushUpdate(
      grpc::CallbackServerContext* context, wire::v1::PushUpdateResponse* response) override;
  grpc::ServerUnaryReactor* PushEvaluation(grpc::CallbackServerContext* context,
                                           const wire::v1::PushEvaluationRequest* request,
                                           wire::v1::PushEvaluationResponse* response) override;
  grpc::ServerUnaryReactor* Heartbeat(grpc::CallbackServerContext* context,
                                      const wire::v1::HeartbeatRequest* request,
                                      wire::v1::HeartbeatResponse* response) override;
  grpc::ServerUnaryReactor* SecAggExchange(grpc::CallbackServerContext* context,
                                           const wire::v1::SecAggRequest* request,
                                           wire::v1::SecAggResponse* response) override;
  grpc::ServerUnaryReactor* ReportData(grpc::CallbackServerContext* context,
                                       const wire::v1::ReportDataRequest* request,
                                       wire::v1::ReportDataResponse* response) override;
  grpc::ServerUnaryReactor* ReportSitePrivacy(grpc::CallbackServerContext* context,
                                              const wire::v1::SitePrivacyReport* request,
                                              wire::v1::SitePrivacyResponse* response) override;

 private:
  const FleetServiceOptions options_;
  RunManager* const runs_;
  ClientRegistry* const registry_;
  CoordinatorState* const state_;
  UploadGate gate_;
  UploadGate download_gate_;
};


}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_SERVICE_FLEET_SERVICE_H_
