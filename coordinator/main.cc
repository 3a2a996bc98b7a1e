// tessera-coordinator: serves the Fleet and Control APIs. Flags only here; see
// docs/architecture.md and `tessera-coordinator --help`.
#include <malloc.h>

#include <csignal>
#include <iostream>
#include <thread>
#include <tuple>

#include <CLI/CLI.hpp>
#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "coordinator/service/open_file_budget.h"
#include "coordinator/service/server.h"
#include "core/base/file.h"
#include "core/base/json_log.h"
#include "core/base/version.h"

int main(int argc, char** argv) {
  tessera::coordinator::CoordinatorServerOptions options;
  std::string port_file;
  CLI::App app{"Tessera coordinator: distributes models, aggregates updates, keeps run state."};
  app.set_version_flag("--version", std::string(tessera::kVersion));
  app.add_option("--listen", options.listen_address, "address:port to serve on (port 0: any)")
      ->capture_default_str();
  app.add_option("--state-dir", options.state_dir, "RocksDB state directory")->required();
  app.add_option("--ca", options.ca_cert_path, "federation CA certificate (PEM)");
  app.add_option("--cert", options.cert_path, "this coordinator's certificate (PEM)");
  app.add_option("--key", options.key_path, "this coordinator's private key (PEM)");
  app.add_option("--crl", options.crl_path,
                 "certificate revocation list (PEM, from tessera pki revoke); re-read on change");
  app.add_option("--cert-refresh-seconds", options.cert_refresh_seconds,
                 "re-read --ca/--cert/--key this often (rotation without restart)")
      ->capture_default_str();
  app.add_flag("--insecure", options.insecure,
               "plaintext, no client authentication (loopback demos only)");
  app.add_option("--max-clients", options.max_clients, "registered clients at most")
      ->capture_default_str()->check(CLI::Range(1u, 1000000u));
  app.add_option("--max-concurrent-uploads", options.max_concurrent_uploads,
                 "updates staged in memory at once")
      ->capture_default_str()->check(CLI::Range(1, 1024));
  app.add_option("--max-concurrent-downloads", options.max_concurrent_downloads,
                 "model streams in flight at once (others wait their turn)")
      ->capture_default_str()->check(CLI::Range(1, 4096));
  app.add_option("--transport-memory-bytes", options.transport_memory_bytes,
                 "memory gRPC may use for transport buffers")
      ->capture_default_str()->check(CLI::Range(int64_t{8} << 20, int64_t{1} << 40));
  app.add_option("--fold-memory-bytes", options.fold_memory_bytes,
                 "rounds whose exact accumulator (25 bytes per parameter) is larger stage each "
                 "update on disk under STATE_DIR/staging and average block by block")
      ->capture_default_str()->check(CLI::Range(uint64_t{0}, uint64_t{1} << 40));
  app.add_option("--max-message-bytes", options.max_message_bytes,
                 "largest gRPC message (secure aggregation sends a model's masked input in one)")
      ->check(CLI::Range(1 << 20, 1 << 30));
  app.add_option("--max-runs", options.max_runs, "runs CREATED or RUNNING at once")
      ->capture_default_str()->check(CLI::Range(1u, 1000000u));
  app.add_option("--retain-last", options.retain_last,
                 "round models kept per run: the last N (runs whose config has no "
                 "[retention]; round 0, exported rounds and the current one are always kept)")
      ->capture_default_str()->check(CLI::Range(1u, 99999999u));
  app.add_option("--retain-every", options.retain_every,
                 "also keep every Nth round's model (0: none; 1: every round)")
      ->capture_default_str()->check(CLI::Range(0u, 99999999u));
  app.add_option("--port-file", port_file, "write the bound port to this file");
  CLI::Option* metrics_address =
      app.add_option("--metrics-address", options.metrics_address,
                     "serve Prometheus /metrics and /healthz over plain HTTP on HOST:PORT "
                     "(e.g. 0.0.0.0:9464, port 0: any; default off)");
  std::string metrics_port_file;
  app.add_option("--metrics-port-file", metrics_port_file,
                 "write the bound metrics port to this file once it serves")
      ->needs(metrics_address);
  app.add_option("--fault-crash-at", options.fault_crash_at,
                 "TESTING ONLY, never in production: STATION:ROUND kills this process with "
                 "SIGKILL in that round after its evaluation, before its commit; STATION is "
                 "before-commit, cancel (once the run is cancelled) or shutdown (on SIGTERM)");
  std::string log_format = "text";
  app.add_option("--log-format", log_format, "text | json (one JSON object per log line)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  // Tensors are multi-megabyte buffers that live for a round: give them their own mappings
  // so freeing one returns it to the OS (glibc's dynamic threshold would otherwise keep freed
  // tensors in the heap and the process would hold its historical peak forever).
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
  google::InitGoogleLogging(argv[0]);
  if (absl::Status s = tessera::SetLogFormat(log_format); !s.ok()) {
    std::cerr << "tessera-coordinator: " << s.message() << "\n";
    return 2;
  }

  // Each client holds a connection, a file descriptor: check that the hard RLIMIT_NOFILE
  // holds what --max-clients may need, and raise the soft limit (often 1024) to it.
  absl::StatusOr<tessera::OpenFileLimit> files =
      tessera::coordinator::RaiseOpenFileLimitFor(options.max_clients);
  if (!files.ok()) {
    std::cerr << "tessera-coordinator: " << files.status().message() << "\n";
    return 1;
  }
  const std::string raised =
      files->soft < files->hard ? absl::StrCat(" (soft limit raised from ", files->soft, ")") : "";
  LOG(INFO) << "open files: limit " << files->hard << raised << "; --max-clients "
            << options.max_clients << " needs up to "
            << tessera::coordinator::OpenFilesNeeded(options.max_clients);

  // Block the signals before any thread starts, then wait for them on one thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto server = tessera::coordinator::CoordinatorServer::Start(options);
  if (!server.ok()) {
    std::cerr << "tessera-coordinator: " << server.status().message() << "\n";
    return 1;
  }
  // Atomically (temporary file and rename): a reader sees the whole port or no file.
  for (const auto& [path, port, flag] :
       {std::tuple{port_file, (*server)->port(), "--port-file"},
        std::tuple{metrics_port_file, (*server)->metrics_port(), "--metrics-port-file"}}) {
    if (path.empty()) continue;
    if (absl::Status s = tessera::WriteFileAtomically(path, absl::StrCat(port, "\n"), 0644,
                                                      /*replace=*/true);
        !s.ok()) {
      std::cerr << "tessera-coordinator: " << flag << ": " << s.message() << "\n";
      return 1;
    }
  }
  std::cout << "tessera-coordinator " << tessera::kVersion << " listening on port "
            << (*server)->port() << std::endl;
  if ((*server)->metrics_port() > 0) {
    std::cout << "metrics on port " << (*server)->metrics_port() << " (/metrics, /healthz)"
              << std::endl;
  }
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    LOG(INFO) << "signal " << sig << ": shutting down";
    (*server)->Shutdown();
  });
  (*server)->Wait();
  waiter.detach();
  return 0;
}
