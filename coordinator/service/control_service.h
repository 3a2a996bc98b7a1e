// File: control_service.h
// The Control gRPC service (wire::v1::Control): the operator's API. Every RPC requires an
// operator certificate (role "operator") unless the coordinator runs --insecure.
#ifndef TESSERA_COORDINATOR_SERVICE_CONTROL_SERVICE_H_
#define TESSERA_COORDINATOR_SERVICE_CONTROL_SERVICE_H_

#include "coordinator/round/client_registry.h"
#include "coordinator/round/run_manager.h"
#include "coordinator/service/revocation_watcher.h"
#include "coordinator/service/trust_store.h"
#include "tessera/wire/v1/control.grpc.pb.h"

namespace tessera::coordinator {

inline constexpr uint64_t kMaxArtifactBytes = 1ull << 30;

class ControlService final : public wire::v1::Control::CallbackService {
 public:
  // `runs` and `registry` must outlive the service.
  // `trust` (null only when insecure) re-checks each operator certificate on every RPC.
  // `revocation` (null when insecure) ends run watches of revoked operators; like the
  // others it must outlive the service.
  ControlService(bool insecure, TrustStore* trust, RunManager* runs, ClientRegistry* registry,
                 RevocationWatcher* revocation = nullptr)
      : insecure_(insecure),
        trust_(trust),
        runs_(runs),
        registry_(registry),
        revocation_(revocation) {}

  grpc::ServerReadReactor<wire::v1::CreateRunRequest>* CreateRun(
      grpc::CallbackServerContext* context, wire::v1::RunStatus* response) override;
  grpc::ServerUnaryReactor* StartRun(grpc::CallbackServerContext* context,
                                     const wire::v1::RunRef* request,
                                     wire::v1::RunStatus* response) override;
  grpc::ServerUnaryReactor* CancelRun(grpc::CallbackServerContext* context,
                                      const wire::v1::RunRef* request,
                                      wire::v1::RunStatus* response) override;
  grpc::ServerUnaryReactor* GetRunStatus(grpc::CallbackServerContext* context,
                                         const wire::v1::RunRef* request,
                                         wire::v1::RunStatus* response) override;
  grpc::ServerWriteReactor<wire::v1::RunStatus>* WatchRun(
      grpc::CallbackServerContext* context, const wire::v1::RunRef* request) override;
  grpc::ServerUnaryReactor* ListRuns(grpc::CallbackServerContext* context,
                                     const wire::v1::ListRunsRequest* request,
                                     wire::v1::ListRunsResponse* response) override;
  grpc::ServerUnaryReactor* ArchiveRun(grpc::CallbackServerContext* context,
                                       const wire::v1::RunRef* request,
                                       wire::v1::RunStatus* response) override;
  grpc::ServerUnaryReactor* DeleteRun(grpc::CallbackServerContext* context,
                                      const wire::v1::RunRef* request,
                                      wire::v1::DeleteRunResponse* response) override;
  grpc::ServerUnaryReactor* ListClients(grpc::CallbackServerContext* context,
                                        const wire::v1::ListClientsRequest* request,
                                        wire::v1::ListClientsResponse* response) override;
  grpc::ServerWriteReactor<wire::v1::ExportModelResponse>* ExportModel(
      grpc::CallbackServerContext* context, const wire::v1::ExportModelRequest* request) override;
  grpc::ServerWriteReactor<wire::v1::ExportAuditResponse>* ExportAudit(
      grpc::CallbackServerContext* context, const wire::v1::ExportAuditRequest* request) override;
  grpc::ServerUnaryReactor* RecordAuditEvent(grpc::CallbackServerContext* context,
                                             const wire::v1::RecordAuditEventRequest* request,
                                             wire::v1::AuditEntry* response) override;

 private:
  const bool insecure_;
  TrustStore* const trust_;
  RunManager* const runs_;
  ClientRegistry* const registry_;
  RevocationWatcher* const revocation_;
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_SERVICE_CONTROL_SERVICE_H_
