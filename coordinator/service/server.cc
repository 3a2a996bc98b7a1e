#include "coordinator/service/server.h"


#include <glog/logging.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "coordinator/round/client_registry.h"
#include "coordinator/round/run_manager.h"
#include "coordinator/service/control_service.h"
#include "coordinator/service/fleet_service.h"
#include "coordinator/service/metrics.h"
#include "coordinator/service/metrics_http.h"
#include "coordinator/service/revocation_watcher.h"
#include "coordinator/service/tls_credentials.h"
#include "coordinator/service/trust_store.h"
#include "coordinator/state/coordinator_state.h"
#include "core/base/file.h"
#include "core/base/status_macros.h"
#include "core/base/version.h"
#include "privacy/provenance/signer.h"
#include "privacy/secagg/identity.h"

namespace tessera::coordinator {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path, absl::string_view what) {
  if (path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", what, " is required for mTLS (or use --insecure on a loopback address)"));
  }
  absl::StatusOr<std::string> pem = ReadFileToString(path);
  if (!pem.ok()) {
    return absl::Status(pem.status().code(), absl::StrCat("--", what, ": ", pem.status().message()));
  }
  return pem;
}

// Limits and keep-alive shared by both servers.
void ConfigureBuilder(const CoordinatorServerOptions& options, grpc::ServerBuilder& builder) {
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  grpc::ResourceQuota quota("tessera-coordinator");
  quota.Resize(static_cast<size_t>(options.transport_memory_bytes));
  builder.SetResourceQuota(quota);
  // What one incoming stream may hold in the transport before it is read: a fixed window of
  // kStreamWindowBytes. With gRPC's default BDP probing a fast link grows every stream's
  // window to many MiB, and the uploads parked at the upload gate (not read) fill theirs:
  // once the transport's buffers pass the quota above, gRPC abandons streams (RST_STREAM
  // ENHANCE_YOUR_CALM), which cut 1-2 GB uploads and CreateRun streams short
  // (docs/architecture.md, "Coordinator memory"). A larger message still arrives whole: the
  // window is raised for the message being read.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, kStreamWindowBytes);
  // Detect dead clients within ~15 s; let clients ping idle subscriptions.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
}

}  // namespace

bool IsLoopbackAddress(const std::string& address) {
  return absl::StartsWith(address, "127.") || absl::StartsWith(address, "localhost:") ||
         absl::StartsWith(address, "[::1]:");
}

class CoordinatorServer::Impl {
 public:
  std::shared_ptr<TrustStore> trust;  // null when insecure
  std::unique_ptr<CoordinatorState> state;
  std::unique_ptr<ClientRegistry> registry;
  std::unique_ptr<RunManager> runs;
  std::unique_ptr<FleetService> fleet;
  std::unique_ptr<RevocationWatcher> revocation;  // null when insecure; stops before `runs`
  std::unique_ptr<ControlService> control;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<MetricsHttpServer> metrics;
  int port = 0;
  bool stopped = false;
};

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(
    CoordinatorServerOptions options) {
  if (options.state_dir.empty()) return absl::InvalidArgumentError("--state-dir is required");
  if (options.max_streams_per_connection < 1) {
    return absl::InvalidArgumentError(absl::StrCat("max_streams_per_connection must be at least "
                                                   "1, got ", options.max_streams_per_connection));
  }
  std::shared_ptr<grpc::ServerCredentials> creds;
  std::shared_ptr<TrustStore> trust_store;
  RunManagerOptions run_options;
  run_options.insecure = options.insecure;
  run_options.max_message_bytes = static_cast<uint64_t>(options.max_message_bytes);
  run_options.fault_crash_at = options.fault_crash_at;
  run_options.max_runs = options.max_runs;
  run_options.fold_memory_bytes = options.fold_memory_bytes;
  run_options.staging_dir = options.state_dir + "/staging";
  run_options.retention.set_keep_last(options.retain_last);
  run_options.retention.set_keep_every(options.retain_every);
  TESSERA_RETURN_IF_ERROR(ValidateRetentionDefaults(run_options.retention));
  if (options.insecure) {
    if (!IsLoopbackAddress(options.listen_address)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--insecure is only allowed on a loopback address, not ", options.listen_address));
    }
    creds = grpc::InsecureServerCredentials();
  } else {
    absl::StatusOr<std::string> ca = ReadPem(options.ca_cert_path, "ca");
    if (!ca.ok()) return ca.status();
    absl::StatusOr<std::string> cert = ReadPem(options.cert_path, "cert");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadPem(options.key_path, "key");
    if (!key.ok()) return key.status();
    absl::StatusOr<std::unique_ptr<TrustStore>> trust =
        TrustStore::Open(options.ca_cert_path, options.crl_path);
    if (!trust.ok()) {
      return absl::Status(trust.status().code(),
                          absl::StrCat(options.crl_path.empty() ? "--ca: " : "--ca/--crl: ",
                                       trust.status().message()));
    }
    if (options.cert_refresh_seconds < 1 || options.cert_refresh_seconds > 86400) {
      return absl::InvalidArgumentError("--cert-refresh-seconds must be 1 to 86400");
    }
    trust_store = std::move(*trust);
    // Roster certificates are checked against the same CA and CRL as every handshake.
    run_options.peer_trust =
        [trust = trust_store]() -> absl::StatusOr<std::shared_ptr<const crypto::TrustAnchors>> {
      return trust->anchors();
    };
    // Bills of materials and audit heads are signed with this coordinator's own key.
    absl::StatusOr<provenance::ProvenanceSigner> signer =
        provenance::ProvenanceSigner::FromPem(*key, *cert);
    if (!signer.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--key/--cert cannot sign provenance: ", signer.status().message()));
    }
    run_options.signer = std::make_shared<provenance::ProvenanceSigner>(*std::move(signer));
    creds = MakeServerCredentials(
        TlsFiles{options.ca_cert_path, options.cert_path, options.key_path,
                 static_cast<unsigned>(options.cert_refresh_seconds)},
        trust_store);
  }

  auto impl = std::make_unique<Impl>();
  impl->trust = trust_store;
  absl::StatusOr<std::unique_ptr<CoordinatorState>> state =
      CoordinatorState::Open(options.state_dir);
  if (!state.ok()) return state.status();
  impl->state = std::move(*state);
  if (options.insecure) {
    // No certificate: an Ed25519 key of this state directory signs (docs/governance.md).
    absl::StatusOr<provenance::ProvenanceSigner> signer =
        provenance::ProvenanceSigner::LoadOrCreateEd25519(options.state_dir +
                                                          "/provenance-signing.key");
    if (!signer.ok()) return signer.status();
    run_options.signer = std::make_shared<provenance::ProvenanceSigner>(*std::move(signer));
  }
  run_options.coordinator_version = kVersion;
  impl->registry = std::make_unique<ClientRegistry>(ClientRegistry::Options{options.max_clients});
  impl->runs = std::make_unique<RunManager>(run_options, impl->state.get(),
                                            impl->registry.get());
  impl->fleet = std::make_unique<FleetService>(
      FleetServiceOptions{options.insecure, options.max_concurrent_uploads,
                          options.max_concurrent_downloads, trust_store.get()},
      impl->runs.get(),
      impl->registry.get(), impl->state.get());
  if (trust_store != nullptr) {
    impl->revocation = std::make_unique<RevocationWatcher>(
        trust_store.get(), impl->registry.get(), impl->runs.get(),
        absl::Milliseconds(options.revocation_check_ms));
  }
  impl->control =
      std::make_unique<ControlService>(options.insecure, trust_store.get(), impl->runs.get(),
                                       impl->registry.get(), impl->revocation.get());

  grpc::EnableDefaultHealthCheckService(true);  // grpc.health.v1.Health, for probes
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen_address, creds, &impl->port);
  builder.RegisterService(impl->fleet.get());
  builder.RegisterService(impl->control.get());
  ConfigureBuilder(options, builder);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options.max_streams_per_connection);
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || impl->port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen_address));
  }
  if (absl::Status s = impl->runs->Recover(); !s.ok()) {
    impl->server->Shutdown();
    return s;
  }
  if (!options.metrics_address.empty()) {
    RunManager* runs = impl->runs.get();
    ClientRegistry* registry = impl->registry.get();
    absl::StatusOr<std::unique_ptr<MetricsHttpServer>> metrics = MetricsHttpServer::Start(
        options.metrics_address, [runs, registry] {
          return RenderPrometheus({registry->NumConnected(), runs->Metrics()});
        });
    if (!metrics.ok()) {
      impl->runs->Shutdown();
      impl->server->Shutdown();
      return metrics.status();
    }
    impl->metrics = std::move(*metrics);
  }
  LOG(INFO) << "coordinator listening on " << options.listen_address << " (port " << impl->port
            << ", " << (options.insecure ? "INSECURE" : "mTLS") << "), state in "
            << options.state_dir;
  return std::unique_ptr<CoordinatorServer>(new CoordinatorServer(std::move(impl)));
}

CoordinatorServer::CoordinatorServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

CoordinatorServer::~CoordinatorServer() { Shutdown(); }

int CoordinatorServer::port() const { return impl_->port; }

int CoordinatorServer::metrics_port() const {
  return impl_->metrics != nullptr ? impl_->metrics->port() : 0;
}

void CoordinatorServer::Wait() { impl_->server->Wait(); }

void CoordinatorServer::Shutdown() {
  if (impl_ == nullptr || impl_->stopped) return;
  impl_->stopped = true;
  impl_->metrics.reset();
  impl_->revocation.reset();
  if (auto* health = impl_->server->GetHealthCheckService()) health->SetServingStatus(false);
  impl_->runs->Shutdown();
  impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

class LoopbackFleetServer::Impl {
 public:
  std::unique_ptr<FleetService> fleet;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
};

absl::StatusOr<std::unique_ptr<LoopbackFleetServer>> LoopbackFleetServer::Start(
    RunManager* runs, ClientRegistry* registry, CoordinatorState* state,
    const CoordinatorServerOptions& limits) {
  auto impl = std::make_unique<Impl>();
  impl->fleet = std::make_unique<FleetService>(
      FleetServiceOptions{/*insecure=*/true, limits.max_concurrent_uploads,
                          limits.max_concurrent_downloads},
      runs, registry, state);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &impl->port);
  builder.RegisterService(impl->fleet.get());
  ConfigureBuilder(limits, builder);
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || impl->port == 0) {
    return absl::UnavailableError("cannot listen on a loopback port");
  }
  return std::unique_ptr<LoopbackFleetServer>(new LoopbackFleetServer(std::move(impl)));
}

LoopbackFleetServer::LoopbackFleetServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

LoopbackFleetServer::~LoopbackFleetServer() {
  impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

int LoopbackFleetServer::port() const { return impl_->port; }

}  // namespace tessera::coordinator
