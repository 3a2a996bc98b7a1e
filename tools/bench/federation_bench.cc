// tessera-bench-federation: end-to-end benchmarks of a real tessera-coordinator process over
// mTLS on 127.0.0.1, each printed as a table next to a baseline measured in the same run.
//
//   distribution  a model of --dist-mb MB fetched by 1 and 10 clients at once, in MB/s,
//                 next to a raw gRPC byte stream (1 MiB messages, same TLS) of the same bytes
//   rss           coordinator peak RSS (VmHWM) through one full round with 10 and 50
//                 uploading clients and a --rss-params float32 model, as a multiple of it
//   overhead      wall time per round with 10 and 50 tessera-client processes in
//                 --bench-fixed-update mode (no training) and a --overhead-params model,
//                 next to the same bytes through raw mTLS streams on loopback (OpenSSL, no
//                 framing, no hashing: privacy/crypto/tls_stream_baseline.h), --repeat times
//   secagg        the same rounds with secure aggregation on, next to plain FedAvg: the
//                 end-to-end ratio
//
// Usage: tessera-bench-federation [--only distribution|rss|overhead] [sizes...]
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <thread>

#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "core/crypto/sha256.h"
#include "core/serde/tensor_stream.h"
#include "privacy/crypto/tls_stream_baseline.h"
#include "tessera/wire/v1/control.grpc.pb.h"
#include "tessera/wire/v1/fleet.grpc.pb.h"
#include "tests/integration/process.h"
#include "tools/bench/federation_support.h"

namespace tessera::bench {
namespace {

using Clock = std::chrono::steady_clock;
using testing_support::BinDir;
using testing_support::MakePki;
using testing_support::MakeTempDir;
using testing_support::Process;
using testing_support::ReadFileOrEmpty;
using testing_support::WaitForPort;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

struct Env {
  std::string dir;
  std::string Pki(const std::string& f) const { return dir + "/pki/" + f; }
  std::shared_ptr<grpc::ChannelCredentials> Creds(const std::string& who) const {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadFileOrEmpty(Pki("ca.pem"));
    ssl.pem_cert_chain = ReadFileOrEmpty(Pki(who + ".pem"));
    ssl.pem_private_key = ReadFileOrEmpty(Pki(who + ".key"));
    return grpc::SslCredentials(ssl);
  }
  std::shared_ptr<grpc::Channel> Channel(int port, const std::string& who) const {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(4 << 20);
    args.SetInt("bench.unique", rand());  // one connection per simulated client
    return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port), Creds(who), args);
  }
};

std::vector<std::string> g_coordinator_args;  // extra flags (--coordinator-arg)
std::string g_bin_dir = BinDir();              // where tessera-coordinator/-client are (--bin-dir)

std::unique_ptr<Process> StartCoordinator(const Env& env, const std::string& tag) {
  const std::string port_file = env.dir + "/" + tag + ".port";
  std::vector<std::string> argv = {g_bin_dir + "/tessera-coordinator", "--listen", "127.0.0.1:0",
                                   "--port-file", port_file, "--state-dir", env.dir + "/" + tag,
                                   "--ca", env.Pki("ca.pem"), "--cert", env.Pki("coordinator.pem"),
                                   "--key", env.Pki("coordinator.key")};
  argv.insert(argv.end(), g_coordinator_args.begin(), g_coordinator_args.end());
  auto p = std::make_unique<Process>(argv, env.dir + "/" + tag + ".log");
  if (WaitForPort(port_file, 30) == 0) {
    std::fprintf(stderr, "coordinator did not start:\n%s\n", p->Log().c_str());
    return nullptr;
  }
  return p;
}

int PortOf(const Env& env, const std::string& tag) {
  return std::atoi(ReadFileOrEmpty(env.dir + "/" + tag + ".port").c_str());
}

// One simulated client inside this process: register, wait for a task, then the caller's
// steps. Uses its own TCP connection.
struct SimClient {
  std::unique_ptr<wire::v1::Fleet::Stub> stub;
  std::string session;
  wire::v1::Task task;

  bool Join(const Env& env, int port, const std::string& name) {
    stub = wire::v1::Fleet::NewStub(env.Channel(port, name));
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(true);
    wire::v1::RegisterRequest req;
    req.set_name(name);
    wire::v1::RegisterResponse resp;
    if (!stub->Register(&ctx, req, &resp).ok()) return false;
    session = resp.session_id();
    return true;
  }
  // Opens the task subscription on a thread; WaitTask() blocks until a TRAIN task arrived.
  void Subscribe() {
    sub_ctx = std::make_unique<grpc::ClientContext>();
    thread = std::thread([this] {
      wire::v1::SubscribeRequest req;
      req.set_session_id(session);
      auto reader = stub->Subscribe(sub_ctx.get(), req);
      wire::v1::Task t;
      while (reader->Read(&t)) {
        if (t.type() == wire::v1::TRAIN && !got) {
          task = t;
          got = true;
        }
      }
      reader->Finish();
    });
  }
  void WaitTask() {
    while (!got) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  // verify=false counts the bytes only (what the coordinator can serve); verify=true
  // reassembles the tensors and checks the SHA-256, as tessera-client does.
  uint64_t Fetch(ArrayRecord* out, bool verify = true) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-tessera-session", session);
    wire::v1::FetchModelRequest req;
    req.set_task_id(task.task_id());
    auto reader = stub->FetchModel(&ctx, req);
    TensorStreamReader stream;
    wire::v1::TensorChunk c;
    uint64_t raw = 0;
    while (reader->Read(&c)) {
      raw += c.data().size();
      if (verify && !stream.Add(std::move(c)).ok()) return 0;
    }
    if (!reader->Finish().ok()) return 0;
    if (!verify) return raw;
    const uint64_t bytes = stream.data_bytes_received();
    auto r = std::move(stream).Finish();
    if (!r.ok()) return 0;
    if (out != nullptr) *out = std::move(*r);
    return bytes;
  }
  grpc::Status Push(const ArrayRecord& update) {
    return PushBenchUpdate(*stub, session, task, update);
  }
  void Stop() {
    if (sub_ctx) sub_ctx->TryCancel();
    if (thread.joinable()) thread.join();
  }
  std::unique_ptr<grpc::ClientContext> sub_ctx;
  std::thread thread;
  std::atomic<bool> got{false};
};

// A raw byte stream over the same TLS: the Fleet.FetchArtifact RPC of a bare server that
// streams a preallocated buffer in 1 MiB messages with no hashing and no tensor framing.
class RawStreamService final : public wire::v1::Fleet::CallbackService {
 public:
  explicit RawStreamService(size_t bytes) : data_(bytes, 'x') {}
  grpc::ServerWriteReactor<wire::v1::ArtifactChunk>* FetchArtifact(
      grpc::CallbackServerContext*, const wire::v1::FetchArtifactRequest*) override {
    class Writer final : public grpc::ServerWriteReactor<wire::v1::ArtifactChunk> {
     public:
      explicit Writer(const std::string* data) : data_(data) { Next(); }
      void OnWriteDone(bool ok) override {
        if (!ok) {
          Finish(grpc::Status::CANCELLED);
          return;
        }
        Next();
      }
      void OnDone() override { delete this; }

     private:
      void Next() {
        if (off_ >= data_->size()) {
          Finish(grpc::Status::OK);
          return;
        }
        const size_t n = std::min<size_t>(kMaxChunkBytes, data_->size() - off_);
        chunk_.set_data(data_->data() + off_, n);
        off_ += n;
        StartWrite(&chunk_);
      }
      const std::string* data_;
      size_t off_ = 0;
      wire::v1::ArtifactChunk chunk_;
    };
    return new Writer(&data_);
  }

 private:
  std::string data_;
};

double RawBaseline(const Env& env, size_t bytes, int clients) {
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  ssl.pem_root_certs = ReadFileOrEmpty(env.Pki("ca.pem"));
  ssl.pem_key_cert_pairs.push_back(
      {ReadFileOrEmpty(env.Pki("coordinator.key")), ReadFileOrEmpty(env.Pki("coordinator.pem"))});
  RawStreamService service(bytes);
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(ssl), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  std::vector<std::unique_ptr<wire::v1::Fleet::Stub>> stubs;
  for (int i = 0; i < clients; ++i) {
    stubs.push_back(wire::v1::Fleet::NewStub(env.Channel(port, "c" + std::to_string(i))));
  }
  std::atomic<uint64_t> received{0};
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (auto& stub : stubs) {
    threads.emplace_back([&] {
      grpc::ClientContext ctx;
      auto reader = stub->FetchArtifact(&ctx, {});
      wire::v1::ArtifactChunk c;
      while (reader->Read(&c)) received += c.data().size();
      reader->Finish();
    });
  }
  for (auto& t : threads) t.join();
  const double seconds = Since(start);
  server->Shutdown();
  return static_cast<double>(received.load()) / seconds / 1e6;
}

int Distribution(const Env& env, double mb) {
  const int64_t params = static_cast<int64_t>(mb * 1e6 / 4);
  ArrayRecord model = BenchModel(params);
  std::printf("\n## Model distribution over mTLS on loopback (%.0f MB model)\n", mb);
  std::printf("%8s %18s %18s %14s %10s %10s\n", "clients", "fetch+verify MB/s",
              "fetch only MB/s", "raw gRPC MB/s", "ratio v", "ratio f");
  for (int n : {1, 10}) {
    auto coordinator = StartCoordinator(env, "dist" + std::to_string(n));
    if (!coordinator) return 1;
    const int port = PortOf(env, "dist" + std::to_string(n));
    auto control = wire::v1::Control::NewStub(env.Channel(port, "operator"));
    std::vector<SimClient> clients(n);
    for (int i = 0; i < n; ++i) clients[i].Join(env, port, "c" + std::to_string(i));
    CreateBenchRun(*control, model, n, 1);
    for (auto& c : clients) c.Subscribe();
    for (auto& c : clients) c.WaitTask();
    auto measure = [&](bool verify) {
      std::atomic<uint64_t> bytes{0};
      const auto start = Clock::now();
      std::vector<std::thread> threads;
      for (auto& c : clients) threads.emplace_back([&] { bytes += c.Fetch(nullptr, verify); });
      for (auto& t : threads) t.join();
      return static_cast<double>(bytes.load()) / Since(start) / 1e6;
    };
    const double verified = measure(true);
    const double fetched = measure(false);
    const double raw = RawBaseline(env, model.TotalBytes(), n);
    std::printf("%8d %18.0f %18.0f %14.0f %10.2f %10.2f\n", n, verified, fetched, raw,
                verified / raw, fetched / raw);
    for (auto& c : clients) c.Stop();
    coordinator->Kill(SIGKILL);
  }
  return 0;
}

int Rss(const Env& env, int64_t params, const std::vector<int>& client_counts) {
  const double model_mb = static_cast<double>(BenchModel(params).TotalBytes()) / 1e6;
  std::printf("\n## Coordinator peak RSS through one round (%lld params, %.0f MB model)\n",
              static_cast<long long>(params), model_mb);
  std::printf("%8s %12s %14s %14s %12s %10s\n", "clients", "idle RSS MB", "created RSS MB",
              "peak RSS MB", "peak/model", "round s");
  for (int n : client_counts) {
    const std::string tag = "rss" + std::to_string(n);
    auto coordinator = StartCoordinator(env, tag);
    if (!coordinator) return 1;
    const int port = PortOf(env, tag);
    const double idle = static_cast<double>(PeakRssBytes(coordinator->pid())) / 1e6;
    auto control = wire::v1::Control::NewStub(env.Channel(port, "operator"));
    std::vector<SimClient> clients(n);
    for (int i = 0; i < n; ++i) clients[i].Join(env, port, "c" + std::to_string(i));
    // The bench process holds one model record: the initial one, then (zeroed) the clients'
    // update; the clients do not reassemble what they fetch.
    ArrayRecord model = BenchModel(params);
    const std::string run = CreateBenchRun(*control, model, n, 1);
    const double created = static_cast<double>(PeakRssBytes(coordinator->pid())) / 1e6;
    const auto start = Clock::now();
    for (auto& c : clients) c.Subscribe();
    for (auto& c : clients) c.WaitTask();
    ArrayRecord& zeros = model;
    for (auto& t : zeros.tensors) std::fill(t.mutable_values<float>().begin(), t.mutable_values<float>().end(), 0.0f);
    std::vector<std::thread> threads;
    for (auto& c : clients) {
      threads.emplace_back([&] {
        c.Fetch(nullptr, /*verify=*/false);
        // A failed upload says why (its gRPC status), or the round's failure is a mystery.
        if (grpc::Status s = c.Push(zeros); !s.ok()) {
          std::fprintf(stderr, "upload of task %s failed: %s (code %d)\n",
                       c.task.task_id().c_str(), s.error_message().c_str(),
                       static_cast<int>(s.error_code()));
        }
      });
    }
    for (auto& t : threads) t.join();
    // A large model takes a while to aggregate and commit, more on a loaded machine.
    wire::v1::RunStatus status = AwaitRunEnd(*control, run, std::max(30.0, model_mb / 2));
    const double seconds = Since(start);
    const double peak = static_cast<double>(PeakRssBytes(coordinator->pid())) / 1e6;
    std::printf("%8d %12.0f %14.0f %14.0f %12.2f %10.2f%s\n", n, idle, created, peak,
                peak / model_mb, seconds,
                status.state() == wire::v1::COMPLETED ? "" : "  (round did not complete)");
    for (auto& c : clients) c.Stop();
    coordinator->Kill(SIGKILL);
  }
  return 0;
}

// Rounds 2.. of a run of `n` --bench-fixed-update clients (round 1 includes the client
// processes starting): the median and minimum of the rounds' own seconds (RoundSummary.seconds:
// select to evaluate, without the commit), the median start-to-start time of consecutive rounds
// (everything a run waits for per round, the commit included), and MB moved per round; ok is
// false on failure.
// cpu_*: CPU seconds per round of rounds 2.. (/proc/PID/stat), of the coordinator and of all
// client processes together.
struct RoundTimes {
  double median = 0, min = 0, cadence = 0, mb = 0;
  double gap = 0;  // median of start-to-start less the round's own seconds: commit and next select
  CpuSeconds cpu_coordinator, cpu_clients;
  bool ok = false;
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 == 1 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// Seconds for `n` mTLS connections (the bench PKI's c0.. and coordinator certificates) to
// each carry `bytes` down and then `bytes` up on loopback; 0 after printing the error.
double RawTlsRoundSeconds(const Env& env, int n, uint64_t bytes) {
  crypto::RawTlsRoundOptions o;
  o.ca_path = env.Pki("ca.pem");
  o.server = {env.Pki("coordinator.pem"), env.Pki("coordinator.key")};
  for (int i = 0; i < n; ++i) {
    const std::string name = "c" + std::to_string(i);
    o.clients.push_back({env.Pki(name + ".pem"), env.Pki(name + ".key")});
  }
  o.down_bytes = bytes;
  o.up_bytes = bytes;
  absl::StatusOr<crypto::RawTlsRoundResult> r = crypto::TimeRawTlsRound(o);
  if (!r.ok()) {
    std::fprintf(stderr, "raw TLS baseline: %s\n", r.status().ToString().c_str());
    return 0;
  }
  static bool printed = false;
  if (!printed) {
    std::printf("(raw TLS baseline: %s %s, 1 MiB writes)\n", r->version.c_str(),
                r->cipher.c_str());
    printed = true;
  }
  return r->seconds;
}

RoundTimes TimeRounds(const Env& env, const ArrayRecord& model, int n, int rounds, bool secure,
                      const std::string& tag);

// Flower 1.12's gRPC deployment (no TLS), 50 clients, 1M float32 parameters, no training:
// issue #20's side-by-side measurement on this machine. Flower is not installed here, so it
// is quoted, not re-measured.
constexpr double kFlowerRoundSeconds = 4.47;

int Overhead(const Env& env, int64_t params, int rounds, int repeat) {
  ArrayRecord model = BenchModel(params);
  std::printf("\n## Round overhead, clients doing no training (%lld params, mTLS, %d rounds)\n",
              static_cast<long long>(params), rounds);
  std::printf("round s: the round's own time (select..evaluate); start-to-start s: from one "
              "round's start to the next (the commit included); raw TLS s: the round's bytes\n"
              "through n raw mTLS streams, measured right after the run\n");
  std::printf("CPU s/round: rounds 2.., user+system, of the coordinator and of all clients\n");
  std::printf("between s: start-to-start less the round's own time (the commit, the next "
              "round's plan and select)\n");
  std::printf("%8s %4s %10s %10s %16s %10s %10s %10s %14s %10s %15s %15s\n", "clients", "rep",
              "round s", "min s", "start-to-start s", "between s", "MB/round", "raw TLS s",
              "s-t-s/raw TLS", "vs Flower", "coord CPU u+s", "clients CPU u+s");
  for (int n : {10, 50}) {
    std::vector<double> cadence, raw, ratio;
    for (int r = 0; r < repeat; ++r) {
      const RoundTimes t = TimeRounds(env, model, n, rounds, false,
                                      absl::StrCat("ovh", n, "-", r));
      if (!t.ok) return 1;
      const double tls = RawTlsRoundSeconds(env, n, model.TotalBytes());
      if (tls <= 0) return 1;
      cadence.push_back(t.cadence);
      raw.push_back(tls);
      ratio.push_back(t.cadence / tls);
      std::printf("%8d %4d %10.3f %10.3f %16.3f %10.3f %10.1f %10.3f %14.2f %9.1fx "
                  "%7.3f+%-7.3f %7.3f+%-7.3f\n", n, r + 1, t.median, t.min, t.cadence, t.gap,
                  t.mb, tls,
                  t.cadence / tls, kFlowerRoundSeconds / t.cadence, t.cpu_coordinator.user,
                  t.cpu_coordinator.system, t.cpu_clients.user, t.cpu_clients.system);
    }
    std::printf("%8d %4s %10s %10s %16.3f %10s %10s %10.3f %14.2f %9.1fx\n", n, "med", "", "",
                Median(cadence), "", "", Median(raw), Median(ratio),
                kFlowerRoundSeconds / Median(cadence));
  }
  std::printf("vs Flower: %.2f s (Flower 1.12 gRPC, no TLS, 50 clients, issue #20's measurement "
              "on this machine, not re-measured) / start-to-start s\n", kFlowerRoundSeconds);
  return 0;
}

// End-to-end round time with secure aggregation against plain FedAvg, same model, same
// client processes' code and the same coordinator build, measured one after the other.
int SecAggOverhead(const Env& env, int64_t params, int rounds) {
  ArrayRecord model = BenchModel(params);
  std::printf("\n## Secure aggregation round time vs plain FedAvg (%lld params, mTLS, %d rounds,"
              " no training)\n", static_cast<long long>(params), rounds);
  std::printf("%8s %14s %14s %8s %12s %12s\n", "clients", "plain s", "secagg s", "ratio",
              "plain MB", "secagg MB");
  for (int n : {10, 50}) {
    const RoundTimes plain = TimeRounds(env, model, n, rounds, false, "sap" + std::to_string(n));
    const RoundTimes secure = TimeRounds(env, model, n, rounds, true, "sas" + std::to_string(n));
    if (!plain.ok || !secure.ok) return 1;
    std::printf("%8d %14.3f %14.3f %8.2f %12.1f %12.1f\n", n, plain.median, secure.median,
                secure.median / plain.median, plain.mb, secure.mb);
  }
  return 0;
}

RoundTimes TimeRounds(const Env& env, const ArrayRecord& model, int n, int rounds, bool secure,
                      const std::string& tag) {
  RoundTimes times;
  {
    auto coordinator = StartCoordinator(env, tag);
    if (!coordinator) return times;
    const int port = PortOf(env, tag);
    std::vector<std::unique_ptr<Process>> procs;
    for (int i = 0; i < n; ++i) {
      const std::string name = "c" + std::to_string(i);
      procs.push_back(std::make_unique<Process>(
          std::vector<std::string>{g_bin_dir + "/tessera-client", "--coordinator",
                                   "127.0.0.1:" + std::to_string(port), "--name", name, "--ca",
                                   env.Pki("ca.pem"), "--cert", env.Pki(name + ".pem"), "--key",
                                   env.Pki(name + ".key"), "--bench-fixed-update"},
          env.dir + "/" + tag + "-" + name + ".log"));
    }
    auto control = wire::v1::Control::NewStub(env.Channel(port, "operator"));
    const std::string run = CreateBenchRun(*control, model, n, rounds, secure);
    // CPU used by the coordinator and the clients, summed: at the end of round 1, then at
    // the end of the run.
    auto cpu = [&] {
      std::pair<CpuSeconds, CpuSeconds> total{ProcessCpuSeconds(coordinator->pid()), {}};
      for (const auto& p : procs) {
        const CpuSeconds c = ProcessCpuSeconds(p->pid());
        total.second.user += c.user;
        total.second.system += c.system;
      }
      return total;
    };
    std::pair<CpuSeconds, CpuSeconds> cpu_first;
    uint32_t rounds_first = 0;
    wire::v1::RunStatus status;
    const auto until = Clock::now() + std::chrono::seconds(600);
    while (Clock::now() < until && status.state() != wire::v1::COMPLETED &&
           status.state() != wire::v1::FAILED) {
      status = AwaitRunEnd(*control, run, 0.02);
      if (rounds_first == 0 && status.completed_rounds() >= 1) {
        cpu_first = cpu();
        rounds_first = status.completed_rounds();
      }
    }
    const std::pair<CpuSeconds, CpuSeconds> cpu_last = cpu();
    std::vector<double> secs, cadence, gaps;
    double mb = 0;
    int64_t last_start = 0;
    double last_seconds = 0;
    for (const auto& r : status.rounds()) {
      if (r.state() != wire::v1::ROUND_COMPLETED) continue;
      // Round 1 includes waiting for all client processes to start; skip it.
      if (r.round() == 1) continue;
      secs.push_back(r.seconds());
      if (last_start > 0) {
        cadence.push_back(static_cast<double>(r.started_unix_ms() - last_start) / 1e3);
        gaps.push_back(cadence.back() - last_seconds);
      }
      last_start = r.started_unix_ms();
      last_seconds = r.seconds();
      mb = static_cast<double>(r.bytes_down() + r.bytes_up()) / 1e6;
    }
    std::sort(secs.begin(), secs.end());
    if (secs.empty() || cadence.empty()) {
      std::printf("%8d  (run %s: %s)\n", n, wire::v1::RunState_Name(status.state()).c_str(),
                  status.message().c_str());
    } else {
      times = {Median(secs), secs.front(), Median(cadence), mb, Median(gaps), {}, {}, true};
      const double counted = std::max<double>(1, status.completed_rounds() - rounds_first);
      times.cpu_coordinator = {(cpu_last.first.user - cpu_first.first.user) / counted,
                               (cpu_last.first.system - cpu_first.first.system) / counted};
      times.cpu_clients = {(cpu_last.second.user - cpu_first.second.user) / counted,
                           (cpu_last.second.system - cpu_first.second.system) / counted};
    }
    procs.clear();
    coordinator->Kill(SIGKILL);
  }
  return times;
}

}  // namespace
}  // namespace tessera::bench

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  std::string only;
  double dist_mb = 100;
  int64_t rss_params = 10'000'000;
  std::vector<int> rss_clients = {10, 50};
  int64_t overhead_params = 1'000'000;
  int rounds = 8;
  int repeat = 1;
  CLI::App app{"Tessera federation benchmarks (real coordinator process, mTLS, loopback)"};
  app.add_option("--only", only, "distribution | rss | overhead | secagg");
  app.add_option("--dist-mb", dist_mb, "model size for distribution")->capture_default_str();
  app.add_option("--rss-params", rss_params, "float32 params for the RSS bench")->capture_default_str();
  app.add_option("--rss-clients", rss_clients, "client counts for the RSS bench (1 to 50 each)")
      ->delimiter(',')->capture_default_str()->check(CLI::Range(1, 50));
  app.add_option("--overhead-params", overhead_params, "params for round overhead")->capture_default_str();
  app.add_option("--coordinator-arg", tessera::bench::g_coordinator_args,
                 "extra tessera-coordinator flag (repeatable), e.g. --coordinator-arg=--max-concurrent-uploads=1");
  app.add_option("--bin-dir", tessera::bench::g_bin_dir,
                 "directory of the tessera-coordinator and tessera-client to run (e.g. an "
                 "earlier build, for a before/after comparison in one session)")
      ->capture_default_str();
  app.add_option("--rounds", rounds, "rounds for round overhead")->capture_default_str();
  app.add_option("--repeat", repeat, "runs of each round overhead configuration")
      ->capture_default_str()->check(CLI::Range(1, 20));
  CLI11_PARSE(app, argc, argv);
  signal(SIGPIPE, SIG_IGN);
  tessera::bench::Env env;
  env.dir = tessera::testing_support::MakeTempDir("bench");
  std::vector<std::string> names;
  for (int i = 0; i < 50; ++i) names.push_back("c" + std::to_string(i));
  if (!tessera::testing_support::MakePki(env.dir + "/pki", names)) {
    std::fprintf(stderr, "cannot create the PKI\n");
    return 1;
  }
  std::printf("tessera-bench-federation (work dir %s)\n", env.dir.c_str());
  int rc = 0;
  if (only.empty() || only == "distribution") rc |= tessera::bench::Distribution(env, dist_mb);
  if (only.empty() || only == "rss") rc |= tessera::bench::Rss(env, rss_params, rss_clients);
  if (only.empty() || only == "overhead") rc |= tessera::bench::Overhead(env, overhead_params, rounds, repeat);
  if (only.empty() || only == "secagg") {
    rc |= tessera::bench::SecAggOverhead(env, overhead_params, rounds);
  }
  return rc;
}
