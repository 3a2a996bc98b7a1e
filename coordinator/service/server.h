// File: server.h
// The coordinator process's server: state, registry, run manager, both gRPC services and the
// standard gRPC health service (grpc.health.v1.Health: SERVING until shutdown), plus an
// optional Prometheus endpoint, behind one handle. gRPC does not appear in this header.
#ifndef TESSERA_COORDINATOR_SERVICE_SERVER_H_
#define TESSERA_COORDINATOR_SERVICE_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "coordinator/round/run_retention.h"

namespace tessera::coordinator {

class ClientRegistry;
class CoordinatorState;
class RunManager;

// The flow-control window of one incoming stream, fixed (no BDP probing; server.cc says why)
// at gRPC's default initial window: what an upload parked at the upload gate may hold here.
inline constexpr int kStreamWindowBytes = 64 << 10;

struct CoordinatorServerOptions {
  std::string listen_address = "127.0.0.1:7800";  // port 0 picks a free port
  std::string state_dir;                           // RocksDB directory (required)
  // mTLS (default): PEM files of the federation CA, this server's certificate and key.
  std::string ca_cert_path;
  std::string cert_path;
  std::string key_path;
  // PEM CRL signed by the CA (`tessera pki revoke` writes it); empty: no revocation checks.
  // Re-read when it changes; checked in every TLS handshake and on every RPC.
  std::string crl_path;
  // How often gRPC re-reads the CA, certificate and key files (rotation without restart).
  int cert_refresh_seconds = 60;
  // How often the CA and CRL files are looked at for a change that must end open sessions
  // and streams of certificates no longer trusted (RevocationWatcher, docs/pki.md).
  int revocation_check_ms = 1000;
  // Plaintext without client authentication; only allowed on a loopback address.
  bool insecure = false;
  uint32_t max_clients = 10000;
  size_t max_concurrent_uploads = 2;  // updates staged in memory at once
  size_t max_concurrent_downloads = 16;  // model streams in flight at once
  int max_message_bytes = 32 << 20;   // per gRPC message; chunks are <= 1 MiB, masked inputs larger
  // Memory gRPC's transport may use for buffers (its ResourceQuota). Past it gRPC abandons
  // streams (RST_STREAM ENHANCE_YOUR_CALM), so it must exceed kStreamWindowBytes per stream
  // that can be sending at once (every uploading client's, parked at the upload gate or
  // not) plus the messages being read: 64 MiB covers about 1,000 concurrent uploads.
  int64_t transport_memory_bytes = 64 << 20;
  // A round whose exact accumulator (25 bytes per parameter) would be larger stages its
  // updates in STATE_DIR/staging and averages them block by block (RunManagerOptions).
  uint64_t fold_memory_bytes = 32ull << 20;
  // Calls one connection may have open at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS; gRPC's
  // own default is unlimited). A client uses a few: its task subscription, a fetch or push,
  // a heartbeat, a secure-aggregation exchange; further calls wait at the client for one to
  // end. Not applied to LoopbackFleetServer, whose one channel carries every virtual client.
  int max_streams_per_connection = 100;
  // HOST:PORT of the Prometheus endpoint (coordinator/service/metrics_http.h); empty: off.
  std::string metrics_address;
  // Runs CREATED or RUNNING at once, and the retention policy of runs whose config sets
  // none (RunManagerOptions, docs/operations.md "Runs and retention").
  uint32_t max_runs = 1000;
  uint32_t retain_last = kDefaultRetainLast;
  uint32_t retain_every = kDefaultRetainEvery;
  // Testing only: RunManagerOptions::fault_crash_at (--fault-crash-at).
  std::string fault_crash_at;
};

class CoordinatorServer {
 public:
  // Opens the state, resumes running runs and starts serving. Errors: INVALID_ARGUMENT for
  // bad options (e.g. --insecure on a non-loopback address), NOT_FOUND for missing PEM files,
  // UNAVAILABLE when the address cannot be bound or the state is locked.
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(CoordinatorServerOptions options);
  ~CoordinatorServer();  // Shutdown()
  CoordinatorServer(const CoordinatorServer&) = delete;
  CoordinatorServer& operator=(const CoordinatorServer&) = delete;

  int port() const;
  int metrics_port() const;  // 0 without metrics_address
  // Blocks until Shutdown() is called from another thread.
  void Wait();
  void Shutdown();

 private:
  class Impl;
  explicit CoordinatorServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The Fleet service alone, plaintext on 127.0.0.1 with a free port, over a RunManager,
// ClientRegistry and state that the caller owns and that outlive it: the simulator's
// loopback transport. Message, transport-memory and upload limits come from `limits` (its
// address, TLS and state fields are ignored). Stops serving on destruction.
class LoopbackFleetServer {
 public:
  // Errors: UNAVAILABLE when no loopback port can be bound.
  static absl::StatusOr<std::unique_ptr<LoopbackFleetServer>> Start(
      RunManager* runs, ClientRegistry* registry, CoordinatorState* state,
      const CoordinatorServerOptions& limits);
  ~LoopbackFleetServer();
  LoopbackFleetServer(const LoopbackFleetServer&) = delete;
  LoopbackFleetServer& operator=(const LoopbackFleetServer&) = delete;
  int port() const;

 private:
  class Impl;
  explicit LoopbackFleetServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// True for 127.0.0.0/8, [::1] and localhost addresses.
bool IsLoopbackAddress(const std::string& address);

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_SERVICE_SERVER_H_
