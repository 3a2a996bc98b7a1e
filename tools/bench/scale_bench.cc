// tessera-bench-scale: one real tessera-coordinator process and --clients clients connected
// to it at once over real gRPC on 127.0.0.1, all of them in this process, each with its own
// channel, TCP connection and (under mTLS) its own client certificate:
//
//   connect   what the idle connected clients cost the coordinator: RSS, open file
//             descriptors (/proc/PID/fd) and threads before and after they registered and
//             opened their task subscription, per client
//   round     a FedAvg run of --rounds rounds that selects every client, with a --params
//             float32 model; the clients do no training (they fetch the model, counting its
//             bytes, and push a zero update of its layout). Round time as the coordinator
//             reports it, and the coordinator's peak RSS.
//
//   tessera-bench-scale --clients=1000 --params=100000 --rounds=3 --security=both
//
// --coordinator_soft_nofile=1024 starts the coordinator with the soft RLIMIT_NOFILE that
// systemd gives services by default, to show that it raises it (docs/operations.md,
// "Limits"). Exits 1 when a client cannot connect, when the coordinator's descriptors do not
// grow by about one per client (clients sharing a connection would measure nothing), or when
// a round does not complete with every client's update.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "core/base/file.h"
#include "core/base/open_file_limit.h"
#include "core/base/program_flags.h"
#include "core/serde/session_metadata.h"
#include "core/serde/tensor_stream.h"
#include "privacy/crypto/pki.h"
#include "tessera/wire/v1/control.grpc.pb.h"
#include "tessera/wire/v1/fleet.grpc.pb.h"
#include "tests/integration/process.h"
#include "tools/bench/federation_support.h"

ABSL_FLAG(int32_t, clients, 1000, "clients connected at once, each with its own connection");
ABSL_FLAG(int64_t, params, 100000, "float32 parameters of the model");
ABSL_FLAG(int32_t, rounds, 3, "rounds of the run that selects every client (median reported)");
ABSL_FLAG(std::string, security, "mtls",
          "mtls | insecure | both: mutual TLS with a certificate per client as in production, "
          "or plaintext without client certificates (--insecure, loopback only)");
ABSL_FLAG(int32_t, workers, 8,
          "threads of this process that register the clients and run their fetch and push");
ABSL_FLAG(int32_t, coordinator_soft_nofile, 0,
          "start the coordinator with this soft RLIMIT_NOFILE (1024 is systemd's default) to "
          "check that it raises it; 0: this process's limit");

ABSL_FLAG(std::string, coordinator, "",
          "the tessera-coordinator binary to run (default: the one built with this bench)");

namespace tessera::bench {
namespace {

using Clock = std::chrono::steady_clock;
using testing_support::BinDir;
using testing_support::Process;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

struct Identity {
  std::string certificate_pem;
  std::string key_pem;
};

// A federation PKI made in memory with the code `tessera pki` uses: the CA, the
// coordinator's certificate (written to `dir` for the coordinator process), the operator's
// and one client certificate per client (CN c0000, c0001, ...).
struct BenchPki {
  std::string dir;
  std::string ca_pem;
  Identity operator_identity;
  std::vector<Identity> clients;
};

std::string ClientName(int i) { return absl::StrFormat("c%04d", i); }

absl::StatusOr<BenchPki> MakeBenchPki(const std::string& dir, int clients) {
  BenchPki pki;
  pki.dir = dir;
  absl::StatusOr<crypto::KeyAndCertificate> ca =
      crypto::CreateCertificateAuthority("Tessera bench", 30);
  if (!ca.ok()) return ca.status();
  pki.ca_pem = ca->certificate_pem;
  auto issue = [&](crypto::CertificateRole role, const std::string& name,
                   std::vector<std::string> sans) -> absl::StatusOr<Identity> {
    absl::StatusOr<std::string> key = crypto::GeneratePrivateKey();
    if (!key.ok()) return key.status();
    crypto::IssueOptions o;
    o.role = role;
    o.common_name = name;
    o.subject_alt_names = std::move(sans);
    o.days = 30;
    absl::StatusOr<std::string> cert = crypto::IssueCertificate(*ca, *key, o);
    if (!cert.ok()) return cert.status();
    return Identity{*cert, *key};
  };
  absl::StatusOr<Identity> coordinator = issue(crypto::CertificateRole::kCoordinator,
                                               "coordinator", {"DNS:localhost", "IP:127.0.0.1"});
  if (!coordinator.ok()) return coordinator.status();
  absl::StatusOr<Identity> op = issue(crypto::CertificateRole::kOperator, "operator", {});
  if (!op.ok()) return op.status();
  pki.operator_identity = *op;
  for (int i = 0; i < clients; ++i) {
    absl::StatusOr<Identity> c = issue(crypto::CertificateRole::kClient, ClientName(i), {});
    if (!c.ok()) return c.status();
    pki.clients.push_back(*std::move(c));
  }
  for (const auto& [file, text, mode] :
       {std::tuple{"ca.pem", pki.ca_pem, 0644u},
        std::tuple{"coordinator.pem", coordinator->certificate_pem, 0644u},
        std::tuple{"coordinator.key", coordinator->key_pem, 0600u}}) {
    if (absl::Status s = WriteFileAtomically(dir + "/" + file, text, mode, true); !s.ok()) {
      return s;
    }
  }
  return pki;
}

// A channel with its own TCP connection (a local subchannel pool: channels to the same
// address with the same arguments would otherwise share one), set up as tessera-client sets
// up its channel (client/runtime/grpc_transport.cc).
std::shared_ptr<grpc::Channel> MakeChannel(int port, const BenchPki& pki,
                                           const Identity* identity) {
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (identity == nullptr) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = pki.ca_pem;
    ssl.pem_cert_chain = identity->certificate_pem;
    ssl.pem_private_key = identity->key_pem;
    creds = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(32 << 20);
  args.SetMaxSendMessageSize(32 << 20);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port), creds, args);
}

// Work for the worker threads: a client's TRAIN task.
class Client;
struct Job {
  Client* client = nullptr;
  wire::v1::Task task;
};

struct Shared {
  std::atomic<int> live{0};          // subscriptions that got their first PING
  std::atomic<int> ended_early{0};   // subscriptions that ended before we cancelled them
  std::atomic<int> task_failures{0};
  absl::Mutex mu;
  std::deque<Job> jobs ABSL_GUARDED_BY(mu);
  bool stop ABSL_GUARDED_BY(mu) = false;
  std::string first_error ABSL_GUARDED_BY(mu);

  void Fail(const std::string& what) {
    absl::MutexLock l(&mu);
    if (first_error.empty()) first_error = what;
  }
};

// One client: a registered session and its task subscription, read with the callback API
// so that 1,000 idle subscriptions cost this process no threads.
class Client final : public grpc::ClientReadReactor<wire::v1::Task> {
 public:
  Client(Shared* shared, std::string name) : shared_(shared), name_(std::move(name)) {}

  // Waits up to 20 s for the connection (a coordinator out of descriptors never accepts it).
  bool Register(std::shared_ptr<grpc::Channel> channel) {
    stub_ = wire::v1::Fleet::NewStub(std::move(channel));
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(true);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    wire::v1::RegisterRequest req;
    req.set_name(name_);
    req.set_device("cpu");
    req.set_version("bench");
    wire::v1::RegisterResponse resp;
    grpc::Status s = stub_->Register(&ctx, req, &resp);
    if (!s.ok()) {
      shared_->Fail(absl::StrCat("Register ", name_, ": ", s.error_message()));
      return false;
    }
    session_ = resp.session_id();
    return true;
  }

  void Subscribe() {
    request_.set_session_id(session_);
    stub_->async()->Subscribe(&ctx_, &request_, this);
    StartRead(&task_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    if (task_.type() == wire::v1::PING && !live_) {
      live_ = true;
      shared_->live.fetch_add(1);
    } else if (task_.type() == wire::v1::TRAIN) {
      absl::MutexLock l(&shared_->mu);
      shared_->jobs.push_back({this, task_});
    }
    StartRead(&task_);
  }

  void OnDone(const grpc::Status& s) override {
    absl::MutexLock l(&mu_);
    done_ = true;
    if (!cancelled_) {
      shared_->ended_early.fetch_add(1);
      shared_->Fail(absl::StrCat("subscription of ", name_, " ended: ", s.error_message()));
    }
  }

  // Ends the subscription and waits until gRPC is done with this reactor.
  void Stop() {
    {
      absl::MutexLock l(&mu_);
      cancelled_ = true;
      if (!subscribed_) return;
    }
    ctx_.TryCancel();
    absl::MutexLock l(&mu_);
    mu_.Await(absl::Condition(&done_));
  }
  void MarkSubscribed() {
    absl::MutexLock l(&mu_);
    subscribed_ = true;
  }

  // FetchModel, counting its bytes (not reassembled: the hashing would be this process's
  // CPU, taken from the coordinator on a small machine). Returns the bytes, 0 on failure.
  uint64_t Fetch(const wire::v1::Task& task) {
    grpc::ClientContext ctx;
    ctx.AddMetadata(kSessionMetadataKey, session_);
    wire::v1::FetchModelRequest req;
    req.set_task_id(task.task_id());
    auto reader = stub_->FetchModel(&ctx, req);
    wire::v1::TensorChunk c;
    uint64_t bytes = 0;
    while (reader->Read(&c)) bytes += c.data().size();
    grpc::Status s = reader->Finish();
    if (!s.ok()) {
      shared_->Fail(absl::StrCat("FetchModel ", name_, ": ", s.error_message()));
      return 0;
    }
    return bytes;
  }

  bool Push(const wire::v1::Task& task, const ArrayRecord& update, const std::string& digest) {
    grpc::Status s = PushBenchUpdate(*stub_, session_, task, update, digest);
    if (!s.ok()) shared_->Fail(absl::StrCat("PushUpdate ", name_, ": ", s.error_message()));
    return s.ok();
  }

 private:
  Shared* const shared_;
  const std::string name_;
  std::unique_ptr<wire::v1::Fleet::Stub> stub_;
  std::string session_;
  grpc::ClientContext ctx_;
  wire::v1::SubscribeRequest request_;
  wire::v1::Task task_;
  bool live_ = false;  // reactor callbacks are serialized per call
  absl::Mutex mu_;
  bool subscribed_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

// Runs fn(0..n-1) on `threads` threads.
template <typename Fn>
void ParallelFor(int n, int threads, Fn fn) {
  std::atomic<int> next{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (int i = next.fetch_add(1); i < n; i = next.fetch_add(1)) fn(i);
    });
  }
  for (auto& t : pool) t.join();
}

struct Sample {
  double rss_mb = 0;
  double peak_mb = 0;
  uint64_t fds = 0;
  uint64_t threads = 0;
};

Sample Measure(pid_t pid) {
  return {static_cast<double>(ProcStatusField(pid, "VmRSS")) / 1024.0,
          static_cast<double>(ProcStatusField(pid, "VmHWM")) / 1024.0, OpenFileCount(pid),
          ProcStatusField(pid, "Threads")};
}

// "soft/hard" of the process's "Max open files" line in /proc/PID/limits.
std::string OpenFileLimits(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/limits"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Max open files", 0) != 0) continue;
    std::istringstream fields(line.substr(14));
    std::string soft, hard;
    fields >> soft >> hard;
    return soft + "/" + hard;
  }
  return "?";
}

struct Result {
  bool ok = false;
  std::string security;
  int clients = 0;
  double connect_s = 0;
  Sample idle, connected, after;
  std::string limits;
  std::vector<double> round_s, train_s, aggregate_s;
  double mb_per_round = 0;
  double run_wall_s = 0;
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

Result RunOnce(const BenchPki& pki, bool secure, int n, int64_t params, int rounds,
               int workers, int soft_nofile) {
  Result r;
  r.security = secure ? "mTLS" : "insecure";
  r.clients = n;
  const std::string tag = secure ? "mtls" : "insecure";
  const std::string port_file = pki.dir + "/" + tag + ".port";
  std::string binary = absl::GetFlag(FLAGS_coordinator);
  if (binary.empty()) binary = BinDir() + "/tessera-coordinator";
  std::vector<std::string> argv = {binary, "--listen",
                                   "127.0.0.1:0", "--port-file", port_file, "--state-dir",
                                   pki.dir + "/" + tag + "-state", "--max-clients",
                                   std::to_string(n)};
  if (secure) {
    for (const char* f : {"--ca", "ca.pem", "--cert", "coordinator.pem", "--key",
                          "coordinator.key"}) {
      argv.push_back(f[0] == '-' ? std::string(f) : pki.dir + "/" + f);
    }
  } else {
    argv.push_back("--insecure");
  }
  if (soft_nofile > 0) {
    argv.insert(argv.begin(), {"/bin/bash", "-c",
                               absl::StrCat("ulimit -Sn ", soft_nofile, " && exec \"$0\" \"$@\"")});
  }
  Process coordinator(argv, pki.dir + "/" + tag + "-coordinator.log");
  const int port = testing_support::WaitForPort(port_file, 30);
  if (port <= 0) {
    std::fprintf(stderr, "the coordinator did not start:\n%s\n", coordinator.Log().c_str());
    return r;
  }
  const pid_t pid = coordinator.pid();
  r.limits = OpenFileLimits(pid);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  r.idle = Measure(pid);

  Shared shared;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < n; ++i) clients.push_back(std::make_unique<Client>(&shared, ClientName(i)));
  const auto connect_start = Clock::now();
  std::atomic<int> registered{0};
  std::atomic<bool> failed{false};  // after the first failure the others are not tried
  ParallelFor(n, workers, [&](int i) {
    if (failed.load()) return;
    if (!clients[i]->Register(MakeChannel(port, pki, secure ? &pki.clients[i] : nullptr))) {
      failed = true;
    } else {
      registered.fetch_add(1);
    }
  });
  bool ok = registered.load() == n;
  if (ok) {
    for (auto& c : clients) {
      c->MarkSubscribed();
      c->Subscribe();
    }
    const auto until = Clock::now() + std::chrono::seconds(120);
    while (shared.live.load() < n && shared.ended_early.load() == 0 && Clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ok = shared.live.load() == n;
  }
  r.connect_s = Since(connect_start);
  if (!ok) {
    absl::MutexLock l(&shared.mu);
    std::fprintf(stderr, "%s: %d of %d clients registered, %d subscribed; first error: %s\n",
                 r.security.c_str(), registered.load(), n, shared.live.load(),
                 shared.first_error.c_str());
  }
  if (ok) {
    std::this_thread::sleep_for(std::chrono::seconds(1));  // let the last handshakes settle
    r.connected = Measure(pid);
    if (static_cast<double>(r.connected.fds - r.idle.fds) < 0.9 * n) {
      std::fprintf(stderr, "%s: the coordinator's descriptors grew by %llu for %d clients: "
                   "clients share connections, nothing is measured\n", r.security.c_str(),
                   static_cast<unsigned long long>(r.connected.fds - r.idle.fds), n);
      ok = false;
    }
  }

  // The round: workers fetch and push for each TRAIN task.
  const ArrayRecord model = BenchModel(params);
  ArrayRecord zeros = BenchModel(params);
  for (auto& t : zeros.tensors) {
    std::fill(t.mutable_values<float>().begin(), t.mutable_values<float>().end(), 0.0f);
  }
  const std::string zeros_digest = DigestArrayRecord(zeros);
  std::atomic<uint64_t> fetched{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < workers; ++t) {
    pool.emplace_back([&] {
      while (true) {
        Job job;
        {
          absl::MutexLock l(&shared.mu);
          shared.mu.Await(absl::Condition(
              +[](Shared* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) {
                return s->stop || !s->jobs.empty();
              },
              &shared));
          if (shared.jobs.empty()) return;
          job = std::move(shared.jobs.front());
          shared.jobs.pop_front();
        }
        const uint64_t bytes = job.client->Fetch(job.task);
        fetched.fetch_add(bytes);
        if (bytes == 0 || !job.client->Push(job.task, zeros, zeros_digest)) {
          shared.task_failures.fetch_add(1);
        }
      }
    });
  }
  if (ok) {
    std::unique_ptr<wire::v1::Control::Stub> control = wire::v1::Control::NewStub(
        MakeChannel(port, pki, secure ? &pki.operator_identity : nullptr));
    const auto run_start = Clock::now();
    const std::string run =
        CreateBenchRun(*control, model, static_cast<uint32_t>(n), static_cast<uint32_t>(rounds));
    wire::v1::RunStatus status;
    if (!run.empty()) status = AwaitRunEnd(*control, run, 600);
    r.run_wall_s = Since(run_start);
    r.after = Measure(pid);
    for (const auto& round : status.rounds()) {
      if (round.state() != wire::v1::ROUND_COMPLETED) continue;
      if (round.reported() != static_cast<uint32_t>(n)) {
        std::fprintf(stderr, "%s: round %u completed with %u of %d updates\n",
                     r.security.c_str(), round.round(), round.reported(), n);
        ok = false;
      }
      r.round_s.push_back(round.seconds());
      for (const auto& phase : round.phases()) {
        if (phase.phase() == "train") r.train_s.push_back(phase.seconds());
        if (phase.phase() == "aggregate") r.aggregate_s.push_back(phase.seconds());
      }
      r.mb_per_round = static_cast<double>(round.bytes_down() + round.bytes_up()) / 1e6;
    }
    if (status.state() != wire::v1::COMPLETED ||
        r.round_s.size() != static_cast<size_t>(rounds)) {
      absl::MutexLock l(&shared.mu);
      std::fprintf(stderr, "%s: run %s ended %s (%s), %zu of %d rounds; first client error: %s\n",
                   r.security.c_str(), run.c_str(),
                   wire::v1::RunState_Name(status.state()).c_str(), status.message().c_str(),
                   r.round_s.size(), rounds, shared.first_error.c_str());
      ok = false;
    }
  }
  {
    absl::MutexLock l(&shared.mu);
    shared.stop = true;
  }
  for (auto& t : pool) t.join();
  if (shared.task_failures.load() > 0) {
    absl::MutexLock l(&shared.mu);
    std::fprintf(stderr, "%s: %d fetch/push failures; first: %s\n", r.security.c_str(),
                 shared.task_failures.load(), shared.first_error.c_str());
  }
  for (auto& c : clients) c->Stop();
  clients.clear();
  coordinator.Kill(SIGKILL);
  r.ok = ok;
  return r;
}

void PrintTables(const std::vector<Result>& results, int64_t params, int rounds) {
  std::printf("\n## Idle connected clients: coordinator cost\n\n");
  std::printf("| security | clients | connect s | RSS idle MB | RSS connected MB | KB/client |"
              " fds idle | fds connected | fds/client | threads idle / connected |"
              " open files soft/hard |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
  for (const Result& r : results) {
    if (r.connected.fds == 0) {
      std::printf("| %s | %d | %.1f | %.1f | (not all clients connected) | | %llu | | | | %s |\n",
                  r.security.c_str(), r.clients, r.connect_s, r.idle.rss_mb,
                  static_cast<unsigned long long>(r.idle.fds), r.limits.c_str());
      continue;
    }
    const double kb = (r.connected.rss_mb - r.idle.rss_mb) * 1024.0 / r.clients;
    const double fds = static_cast<double>(r.connected.fds - r.idle.fds) / r.clients;
    std::printf("| %s | %d | %.1f | %.1f | %.1f | %.1f | %llu | %llu | %.2f | %llu / %llu | %s |\n",
                r.security.c_str(), r.clients, r.connect_s, r.idle.rss_mb, r.connected.rss_mb,
                kb, static_cast<unsigned long long>(r.idle.fds),
                static_cast<unsigned long long>(r.connected.fds), fds,
                static_cast<unsigned long long>(r.idle.threads),
                static_cast<unsigned long long>(r.connected.threads), r.limits.c_str());
  }
  std::printf("\n## A round that selects every client (%lld params, %.1f MB model, %d rounds,"
              " no training)\n\n",
              static_cast<long long>(params), static_cast<double>(params) * 4 / 1e6, rounds);
  std::printf("| security | clients | round median s | min s | max s | train median s |"
              " aggregate median s | MB moved/round | peak RSS MB | fds after |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const Result& r : results) {
    if (r.round_s.empty()) continue;
    std::printf("| %s | %d | %.2f | %.2f | %.2f | %.2f | %.3f | %.0f | %.0f | %llu |\n",
                r.security.c_str(), r.clients, Median(r.round_s),
                *std::min_element(r.round_s.begin(), r.round_s.end()),
                *std::max_element(r.round_s.begin(), r.round_s.end()), Median(r.train_s),
                Median(r.aggregate_s), r.mb_per_round, r.after.peak_mb,
                static_cast<unsigned long long>(r.after.fds));
  }
}

int Main() {
  const int n = absl::GetFlag(FLAGS_clients);
  const int64_t params = absl::GetFlag(FLAGS_params);
  const int rounds = absl::GetFlag(FLAGS_rounds);
  const int workers = absl::GetFlag(FLAGS_workers);
  const std::string security = absl::GetFlag(FLAGS_security);
  if (n < 1 || n > 100000 || params < 4 || rounds < 1 || rounds > 100 || workers < 1 ||
      workers > 256) {
    std::fprintf(stderr, "--clients must be 1 to 100000, --params at least 4, --rounds 1 to "
                 "100, --workers 1 to 256\n");
    return 2;
  }
  std::vector<bool> modes;
  if (security == "mtls" || security == "both") modes.push_back(true);
  if (security == "insecure" || security == "both") modes.push_back(false);
  if (modes.empty()) {
    std::fprintf(stderr, "--security: \"%s\" is not mtls, insecure or both\n", security.c_str());
    return 2;
  }
  // This process holds a connection per client too.
  absl::StatusOr<OpenFileLimit> files = RaiseOpenFileSoftLimit();
  if (!files.ok() || files->soft < static_cast<uint64_t>(n) + 256) {
    std::fprintf(stderr, "%d clients need about %d open files in this process; the limit is "
                 "%llu (ulimit -Hn)\n", n, n + 256,
                 files.ok() ? static_cast<unsigned long long>(files->soft) : 0ull);
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  const std::string dir = testing_support::MakeTempDir("bench-scale");
  const auto pki_start = Clock::now();
  absl::StatusOr<BenchPki> pki = MakeBenchPki(dir, n);
  if (!pki.ok()) {
    std::fprintf(stderr, "cannot create the PKI: %s\n", pki.status().ToString().c_str());
    return 1;
  }
  std::printf("tessera-bench-scale: %d clients, %lld params, %d rounds, %d worker threads "
              "(PKI of %d certificates in %.1f s; work dir %s)\n", n,
              static_cast<long long>(params), rounds, workers, n + 2, Since(pki_start),
              dir.c_str());
  std::vector<Result> results;
  bool ok = true;
  for (bool secure : modes) {
    results.push_back(RunOnce(*pki, secure, n, params, rounds, workers,
                              absl::GetFlag(FLAGS_coordinator_soft_nofile)));
    ok = ok && results.back().ok;
  }
  PrintTables(results, params, rounds);
  if (ok) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  } else {
    std::printf("\nFAILED (coordinator logs in %s)\n", dir.c_str());
  }
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace tessera::bench

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  tessera::ParseProgramFlags(
      argc, argv,
      "Many clients connected at once to one real tessera-coordinator over gRPC on loopback "
      "(in-process clients, a connection each): the coordinator's memory, file descriptors "
      "and threads per idle client, and the time of rounds that select them all.");
  return tessera::bench::Main();
}
