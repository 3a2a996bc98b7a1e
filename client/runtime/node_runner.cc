#include "client/runtime/node_runner.h"

#include <deque>
#include <functional>
#include <optional>
#include <random>
#include <thread>

#include <glog/logging.h>
#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/runtime/data_report.h"
#include "client/runtime/grpc_transport.h"
#include "client/runtime/internal/fleet_channel.h"
#include "client/runtime/internal/task_deliveries.h"
#include "client/runtime/secagg_participant.h"
#include "client/runtime/task_executor.h"
#include "core/base/free_memory.h"
#include "core/base/file.h"
#include "core/base/status_macros.h"
#include "core/base/version.h"
#include "core/serde/grpc_status.h"
#include "privacy/crypto/tls_probe.h"
#include "tessera/wire/v1/fleet.grpc.pb.h"

namespace tessera {
namespace {

// The file's bytes, or the error prefixed with the flag that named it.
absl::StatusOr<std::string> ReadFlagFile(const std::string& path, absl::string_view flag) {
  absl::StatusOr<std::string> bytes = ReadFileToString(path);
  if (!bytes.ok()) {
    return absl::Status(bytes.status().code(), absl::StrCat(flag, ": ", bytes.status().message()));
  }
  return bytes;
}

// What a TLS connection and the secure-aggregation signer are made from.
struct Credentials {
  std::string cert_pem, key_pem;
};

absl::StatusOr<Credentials> ReadCredentials(const NodeRunnerOptions& o) {
  Credentials c;
  TESSERA_ASSIGN_OR_RETURN(c.cert_pem, ReadFlagFile(o.cert_path, "--cert"));
  TESSERA_ASSIGN_OR_RETURN(c.key_pem, ReadFlagFile(o.key_path, "--key"));
  return c;
}

}  // namespace

class NodeRunner::Impl {
 public:
  NodeRunnerOptions options;
  FleetChannelOptions channel_options;
  Credentials credentials;  // in use; Run()'s thread only
  Credentials credentials_seen_ ABSL_GUARDED_BY(mu_);  // the watcher's last look at the files
  SecAggParticipantOptions secagg ABSL_GUARDED_BY(mu_);
  LocalData data;
  std::shared_ptr<FleetChannel> channel;
  std::unique_ptr<GrpcFleetTransport> transport;  // the task calls, with session()
  std::unique_ptr<TaskExecutor> executor;
  ClientState state;  // worker thread only

  absl::Status Run();
  void Stop();
  std::string session() {
    absl::MutexLock l(&mu_);
    return session_;
  }
  bool stopping() {
    absl::MutexLock l(&mu_);
    return stopping_;
  }

 private:
  void Worker();
  absl::Status RunTask(const wire::v1::Task& task);
  absl::Status RegisterAndSubscribe();
  // `s` (a failed Register) with the reason a diagnostic TLS connection finds, when it is
  // UNAVAILABLE or DEADLINE_EXCEEDED (privacy/crypto/tls_probe.h DiagnoseTlsFailure).
  absl::Status ExplainConnectionFailure(absl::Status s) const;
  // New channel and signer from the files on disk, when they changed or `force`.
  void RenewCredentials(bool force);
  void WatchCredentials();

  bool renew_ ABSL_GUARDED_BY(mu_) = false;
  bool busy_ ABSL_GUARDED_BY(mu_) = false;  // the worker is running a task

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::string session_ ABSL_GUARDED_BY(mu_);
  grpc::ClientContext* subscription_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::deque<wire::v1::Task> queue_ ABSL_GUARDED_BY(mu_);
  uint32_t tasks_done_ ABSL_GUARDED_BY(mu_) = 0;
  // Each task received and where it stands, to answer re-sent copies (task_deliveries.h).
  TaskDeliveries deliveries_ ABSL_GUARDED_BY(mu_);
};

absl::Status NodeRunner::Impl::RunTask(const wire::v1::Task& task) {
  const absl::Time start = absl::Now();
  SecAggParticipantOptions secagg_now;
  {
    absl::MutexLock l(&mu_);
    secagg_now = secagg;
  }
  if (task.type() == wire::v1::TRAIN && task.has_data_report()) {
    // Before training, so the report does not wait behind a secure sum. Not fatal.
    const bool histogram_allowed =
        options.data_card.has_value() && options.data_card->allow_class_histogram();
    // Text (jsonl:) has no classes: its report is the bucketed record count alone.
    absl::Status s =
        data.text_path.empty()
            ? AnswerDataReport(task, data.train, histogram_allowed, *transport)
            : transport->ReportData(task, MakeDataReport(task.data_report(), data.text_records,
                                                         {}, /*histogram_allowed=*/false));
    if (!s.ok()) {
      LOG(WARNING) << "task " << task.task_id() << " (round " << task.round()
                   << "): the data report failed: " << s;
    }
  }
  TESSERA_ASSIGN_OR_RETURN(
      TaskReport r, executor->Run(task, data.train, data.test, state, secagg_now, *transport));
  if (task.type() == wire::v1::EVALUATE) return absl::OkStatus();  // logged by the executor
  if (task.has_secagg()) {
    LOG(INFO) << "round " << task.round() << ": masked update is in the secure sum of "
              << r.secagg_survivors << " clients";
  }
  LOG(INFO) << "round " << task.round() << ": trained on " << r.train.num_examples
            << " examples (" << r.train.steps << " steps, loss " << r.train.train_loss
            << ") in " << absl::ToDoubleSeconds(absl::Now() - start) << " s, update sent";
  return absl::OkStatus();
}

void NodeRunner::Impl::Worker() {
  while (true) {
    wire::v1::Task task;
    {
      absl::MutexLock l(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !queue_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      task = std::move(queue_.front());
      queue_.pop_front();
      deliveries_.Start(task.task_id());
      busy_ = true;
    }
    absl::Status s = RunTask(task);
    if (!s.ok()) {
      LOG(WARNING) << "task " << task.task_id() << " (round " << task.round() << ") failed: " << s;
    }
    ReleaseFreeMemory();  // what training kept for its next step (core/base/free_memory.h)
    absl::MutexLock l(&mu_);
    busy_ = false;
    if (deliveries_.Finish(task.task_id(), s)) {
      LOG(INFO) << "task " << task.task_id() << " (round " << task.round()
                << ") was re-sent while it ran and it failed: running it again";
      queue_.push_back(std::move(task));
      continue;
    }
    ++tasks_done_;
    if (options.max_tasks > 0 && tasks_done_ >= options.max_tasks) {
      stopping_ = true;
      if (subscription_ != nullptr) subscription_->TryCancel();
    }
  }
}

absl::Status NodeRunner::Impl::ExplainConnectionFailure(absl::Status s) const {
  // gRPC says only "Socket closed", "failed to connect" or "Deadline Exceeded" (Register
  // waits for the channel) when the coordinator refuses the certificate or is down.
  if (options.insecure || (s.code() != absl::StatusCode::kUnavailable &&
                           s.code() != absl::StatusCode::kDeadlineExceeded)) {
    return s;
  }
  crypto::TlsFailureContext c;
  c.address = options.coordinator;
  c.ca_path = options.ca_cert_path;
  c.cert_path = options.cert_path;
  c.key_path = options.key_path;
  const std::string why = crypto::DiagnoseTlsFailure(c);
  if (why.empty()) return s;
  return absl::Status(s.code(), absl::StrCat(why, " [gRPC: ", s.message(), "]"));
}

absl::Status NodeRunner::Impl::RegisterAndSubscribe() {
  wire::v1::RegisterRequest req;
  req.set_name(options.name);
  req.set_device(options.bench_fixed_update ? "bench" : options.device);
  req.set_version(kVersion);
  if (options.data_card.has_value()) *req.mutable_data_card() = *options.data_card;
  wire::v1::RegisterResponse resp;
  {
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(true);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    absl::Status registered = FromGrpcStatus(channel->stub->Register(&ctx, req, &resp));
    if (!registered.ok()) return ExplainConnectionFailure(std::move(registered));
  }
  grpc::ClientContext ctx;
  {
    absl::MutexLock l(&mu_);
    if (stopping_) return absl::CancelledError("stopping");
    session_ = resp.session_id();
    subscription_ = &ctx;
  }
  LOG(INFO) << "registered as " << options.name << "; waiting for tasks";
  wire::v1::SubscribeRequest sub;
  sub.set_session_id(resp.session_id());
  auto reader = channel->stub->Subscribe(&ctx, sub);
  wire::v1::Task task;
  while (reader->Read(&task)) {
    if (task.type() == wire::v1::PING) continue;
    if (task.type() == wire::v1::REFUSED) {  // nothing to run and nothing to answer
      LOG(WARNING) << "run " << task.run_id() << " refused this client: " << task.refusal();
      continue;
    }
    if (task.type() != wire::v1::TRAIN && task.type() != wire::v1::EVALUATE) {
      LOG(WARNING) << "task " << task.task_id() << " has an unknown type "
                   << static_cast<int>(task.type()) << "; ignoring it";
      continue;
    }
    absl::MutexLock l(&mu_);
    // A coordinator re-sends unanswered tasks when we subscribe again: never run one twice at
    // once, but answer every copy the coordinator still waits for (task_deliveries.h).
    const char* copy = nullptr;
    switch (deliveries_.Receive(task.task_id())) {
      case TaskDeliveries::Action::kRun:
        queue_.push_back(task);
        break;
      case TaskDeliveries::Action::kAlreadyQueued:
        copy = "is queued; the queued one answers it";
        break;
      case TaskDeliveries::Action::kRunning:
        copy = "is running; its result goes over the new connection (if it fails, it runs again)";
        break;
      case TaskDeliveries::Action::kAnswered:
        copy = "was already answered; the copy crossed the coordinator's reply";
        break;
    }
    if (copy != nullptr) {
      LOG(INFO) << "task " << task.task_id() << " (round " << task.round() << ") was re-sent: it "
                << copy;
    }
  }
  absl::Status s = FromGrpcStatus(reader->Finish());
  absl::MutexLock l(&mu_);
  subscription_ = nullptr;
  return s.ok() ? absl::UnavailableError("the coordinator closed the subscription") : s;
}

void NodeRunner::Impl::RenewCredentials(bool force) {
  absl::StatusOr<Credentials> now = ReadCredentials(options);
  if (!now.ok()) {
    LOG(ERROR) << "keeping the current certificate: " << now.status();
    return;
  }
  if (!force && now->cert_pem == credentials.cert_pem && now->key_pem == credentials.key_pem) {
    return;
  }
  absl::StatusOr<secagg::Signer> signer = secagg::CertificateSigner(now->cert_pem, now->key_pem);
  absl::StatusOr<std::shared_ptr<FleetChannel>> fresh = MakeFleetChannel(channel_options);
  if (!signer.ok() || !fresh.ok()) {
    LOG(ERROR) << "keeping the current certificate: "
               << (signer.ok() ? fresh.status() : signer.status());
    return;
  }
  LOG(INFO) << "reconnecting with " << (force ? "a new connection" : "the rotated certificate")
            << " from " << options.cert_path;
  credentials = *std::move(now);
  channel = *fresh;
  transport->SetChannel(*std::move(fresh));
  absl::MutexLock l(&mu_);
  secagg.signer = *std::move(signer);
  credentials_seen_ = credentials;
}

void NodeRunner::Impl::WatchCredentials() {
  const absl::Duration period = absl::Seconds(std::max(1, options.cert_refresh_seconds));
  absl::MutexLock l(&mu_);
  while (true) {
    auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&stop), period)) return;
    if (busy_ || !queue_.empty() || renew_) continue;
    absl::StatusOr<Credentials> now = ReadCredentials(options);
    if (!now.ok() || (now->cert_pem == credentials_seen_.cert_pem &&
                      now->key_pem == credentials_seen_.key_pem)) {
      continue;
    }
    credentials_seen_ = *std::move(now);
    renew_ = true;  // Run() renews between subscriptions
    if (subscription_ != nullptr) subscription_->TryCancel();
  }
}

absl::Status NodeRunner::Impl::Run() {
  std::thread worker([this] { Worker(); });
  std::thread watcher;
  if (!options.insecure) watcher = std::thread([this] { WatchCredentials(); });
  std::mt19937_64 rng(std::random_device{}());
  double backoff = 0.5;
  while (!stopping()) {
    const absl::Time attempt = absl::Now();
    absl::Status s = RegisterAndSubscribe();
    if (stopping()) break;
    bool renew = false;
    {
      absl::MutexLock l(&mu_);
      std::swap(renew, renew_);
    }
    const bool refused = s.code() == absl::StatusCode::kPermissionDenied ||
                         s.code() == absl::StatusCode::kUnauthenticated;
    if (!options.insecure && (renew || refused)) {
      RenewCredentials(/*force=*/refused);
      if (renew && !refused) continue;  // a planned reconnect: no backoff
    }
    if (absl::Now() - attempt > absl::Seconds(10)) backoff = 0.5;  // it was a live session
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    const double wait = backoff * jitter(rng);
    LOG(WARNING) << "connection to " << options.coordinator << " lost (" << s.message()
                 << "); retrying in " << wait << " s";
    {
      absl::MutexLock l(&mu_);
      auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
      mu_.AwaitWithTimeout(absl::Condition(&stop), absl::Seconds(wait));
    }
    backoff = std::min(backoff * 2, options.max_backoff_seconds);
  }
  worker.join();
  if (watcher.joinable()) watcher.join();
  return absl::OkStatus();
}

void NodeRunner::Impl::Stop() {
  absl::MutexLock l(&mu_);
  stopping_ = true;
  if (subscription_ != nullptr) subscription_->TryCancel();
}

absl::StatusOr<std::unique_ptr<NodeRunner>> NodeRunner::Create(NodeRunnerOptions options,
                                                                LocalData data) {
  if (options.name.empty()) return absl::InvalidArgumentError("--name: required");
  SecAggParticipantOptions secagg;
  secagg.dump_dir = options.secagg_dump_dir;
  secagg.drop_before = options.fault_drop_before;
  secagg.drop_by_exit = !options.fault_hang;
  secagg.min_corrupt_fraction = options.secagg_min_corrupt_fraction;
  secagg.max_dropout_fraction = options.secagg_max_dropout_fraction;
  secagg.min_security_bits = options.secagg_min_security_bits;
  FleetChannelOptions channel;
  channel.address = options.coordinator;
  channel.insecure = options.insecure;
  Credentials credentials;
  if (options.insecure) {
    TESSERA_ASSIGN_OR_RETURN(secagg.signer, secagg::EphemeralSigner());
    secagg.verify = secagg::InsecureVerifier();
  } else {
    TESSERA_ASSIGN_OR_RETURN(channel.ca_pem, ReadFlagFile(options.ca_cert_path, "--ca"));
    TESSERA_ASSIGN_OR_RETURN(credentials, ReadCredentials(options));
    TESSERA_ASSIGN_OR_RETURN(secagg.signer,
                             secagg::CertificateSigner(credentials.cert_pem, credentials.key_pem));
    if (!options.crl_path.empty()) {
      TESSERA_RETURN_IF_ERROR(ReadFlagFile(options.crl_path, "--crl").status());
    }
    // Peers are checked against the CA and CRL files as they are at each roster.
    secagg.verify = secagg::CertificateVerifier(
        secagg::FileTrustSource(options.ca_cert_path, options.crl_path));
    // gRPC reads the files itself (and re-reads them): rotation needs no restart.
    channel.ca_path = options.ca_cert_path;
    channel.cert_path = options.cert_path;
    channel.key_path = options.key_path;
    channel.cert_refresh_seconds = options.cert_refresh_seconds;
  }
  auto impl = std::make_unique<Impl>();
  TESSERA_ASSIGN_OR_RETURN(impl->channel, MakeFleetChannel(channel));
  Impl* raw = impl.get();
  impl->transport = std::make_unique<GrpcFleetTransport>(
      impl->channel, [raw] { return raw->session(); }, [raw] { return raw->stopping(); });
  impl->options = std::move(options);
  impl->channel_options = channel;
  impl->credentials = credentials;
  impl->credentials_seen_ = credentials;
  impl->secagg = std::move(secagg);
  impl->data = std::move(data);
  TaskExecutorOptions exec;
  exec.device = impl->options.device;
  exec.bench_fixed_update = impl->options.bench_fixed_update;
  exec.name = impl->options.name;
  exec.base_checkpoint = impl->options.base_checkpoint;
  exec.text_path = impl->data.text_path;
  impl->executor = std::make_unique<TaskExecutor>(std::move(exec));
  if (impl->options.privacy_budget.has_value()) {
    if (impl->options.privacy_ledger_path.empty() || impl->options.privacy_dataset.empty()) {
      return absl::InvalidArgumentError(
          "--privacy-budget needs --privacy-ledger FILE and a dataset name");
    }
    // The dataset's size for the delta < 1/n rule: its examples, or for text (jsonl:) its
    // records, which a run tokenizes into sequences only later.
    const uint64_t dataset_size =
        impl->data.text_path.empty() ? impl->data.train.size() : impl->data.text_records;
    TESSERA_ASSIGN_OR_RETURN(
        SiteLedger ledger,
        SiteLedger::Open(impl->options.privacy_ledger_path, impl->options.privacy_dataset,
                         *impl->options.privacy_budget, dataset_size,
                         impl->options.privacy_accountant));
    TESSERA_ASSIGN_OR_RETURN(double spent, ledger.Epsilon());
    LOG(INFO) << "record-level privacy budget of dataset \"" << ledger.dataset() << "\": "
              << FormatPrivacyBudget(ledger.budget()) << ", spent epsilon " << spent << " over "
              << ledger.entries().size() << " tasks (" << ledger.path() << ", "
              << SiteAccountantName(ledger.accountant()) << ")";
    impl->state.ledger = std::make_shared<SiteLedger>(std::move(ledger));
    impl->state.train_without_record_dp = impl->options.train_without_record_dp;
  }
  return std::unique_ptr<NodeRunner>(new NodeRunner(std::move(impl)));
}

NodeRunner::NodeRunner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NodeRunner::~NodeRunner() = default;
absl::Status NodeRunner::Run() { return impl_->Run(); }
void NodeRunner::Stop() { impl_->Stop(); }

}  // namespace tessera
