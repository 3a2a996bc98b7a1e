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
#include "client/runtime/grpc_transport.h"
#include "client/runtime/internal/fleet_channel.h"
#include "client/runtime/secagg_participant.h"
#include "client/runtime/task_executor.h"
#include "core/base/file.h"
#include "core/base/status_macros.h"
#include "core/base/version.h"
#include "core/serde/grpc_status.h"
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

}  // namespace

class NodeRunner::Impl {
 public:
  NodeRunnerOptions options;
  SecAggParticipantOptions secagg;
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

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::string session_ ABSL_GUARDED_BY(mu_);
  grpc::ClientContext* subscription_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::deque<wire::v1::Task> queue_ ABSL_GUARDED_BY(mu_);
  uint32_t tasks_done_ ABSL_GUARDED_BY(mu_) = 0;
};

absl::Status NodeRunner::Impl::RunTask(const wire::v1::Task& task) {
  const absl::Time start = absl::Now();
  TESSERA_ASSIGN_OR_RETURN(TaskReport r,
                           executor->Run(task, data.train, data.test, state, secagg, *transport));
  if (task.type() == wire::v1::EVALUATE) {
    LOG(INFO) << "round " << task.round() << " evaluation: accuracy " << r.eval.accuracy
              << ", loss " << r.eval.loss << " on " << r.eval.num_examples << " examples";
    return absl::OkStatus();
  }
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
    }
    absl::Status s = RunTask(task);
    if (!s.ok()) {
      LOG(WARNING) << "task " << task.task_id() << " (round " << task.round() << ") failed: " << s;
    }
    absl::MutexLock l(&mu_);
    ++tasks_done_;
    if (options.max_tasks > 0 && tasks_done_ >= options.max_tasks) {
      stopping_ = true;
      if (subscription_ != nullptr) subscription_->TryCancel();
    }
  }
}

absl::Status NodeRunner::Impl::RegisterAndSubscribe() {
  wire::v1::RegisterRequest req;
  req.set_name(options.name);
  req.set_device(options.bench_fixed_update ? "bench" : options.device);
  req.set_version(kVersion);
  wire::v1::RegisterResponse resp;
  {
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(true);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    TESSERA_RETURN_IF_ERROR(FromGrpcStatus(channel->stub->Register(&ctx, req, &resp)));
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
    absl::MutexLock l(&mu_);
    queue_.push_back(task);
  }
  absl::Status s = FromGrpcStatus(reader->Finish());
  absl::MutexLock l(&mu_);
  subscription_ = nullptr;
  return s.ok() ? absl::UnavailableError("the coordinator closed the subscription") : s;
}

absl::Status NodeRunner::Impl::Run() {
  std::thread worker([this] { Worker(); });
  std::mt19937_64 rng(std::random_device{}());
  double backoff = 0.5;
  while (!stopping()) {
    const absl::Time attempt = absl::Now();
    absl::Status s = RegisterAndSubscribe();
    if (stopping()) break;
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
  FleetChannelOptions channel;
  channel.address = options.coordinator;
  channel.insecure = options.insecure;
  if (options.insecure) {
    TESSERA_ASSIGN_OR_RETURN(secagg.signer, secagg::EphemeralSigner());
    secagg.verify = secagg::InsecureVerifier();
  } else {
    TESSERA_ASSIGN_OR_RETURN(channel.ca_pem, ReadFlagFile(options.ca_cert_path, "--ca"));
    TESSERA_ASSIGN_OR_RETURN(channel.cert_pem, ReadFlagFile(options.cert_path, "--cert"));
    TESSERA_ASSIGN_OR_RETURN(channel.key_pem, ReadFlagFile(options.key_path, "--key"));
    TESSERA_ASSIGN_OR_RETURN(secagg.signer,
                             secagg::CertificateSigner(channel.cert_pem, channel.key_pem));
    secagg.verify = secagg::CertificateVerifier(channel.ca_pem);
  }
  auto impl = std::make_unique<Impl>();
  TESSERA_ASSIGN_OR_RETURN(impl->channel, MakeFleetChannel(channel));
  Impl* raw = impl.get();
  impl->transport = std::make_unique<GrpcFleetTransport>(
      impl->channel, [raw] { return raw->session(); }, [raw] { return raw->stopping(); });
  impl->options = std::move(options);
  impl->secagg = std::move(secagg);
  impl->data = std::move(data);
  TaskExecutorOptions exec;
  exec.device = impl->options.device;
  exec.bench_fixed_update = impl->options.bench_fixed_update;
  exec.name = impl->options.name;
  impl->executor = std::make_unique<TaskExecutor>(std::move(exec));
  return std::unique_ptr<NodeRunner>(new NodeRunner(std::move(impl)));
}

NodeRunner::NodeRunner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NodeRunner::~NodeRunner() = default;
absl::Status NodeRunner::Run() { return impl_->Run(); }
void NodeRunner::Stop() { impl_->Stop(); }

}  // namespace tessera
