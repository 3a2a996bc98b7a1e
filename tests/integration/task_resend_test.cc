// A task the coordinator re-sends after the client reconnects is answered, not dropped: an
// in-process coordinator (mTLS on 127.0.0.1) and a real NodeRunner (tessera-client's loop).
// The defect: a client whose connection died mid-task (its upload failed with it) dropped the
// re-sent copy as "already received", so the round waited for its deadline.
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "client/runtime/local_data.h"
#include "client/runtime/node_runner.h"
#include "coordinator/service/server.h"
#include "tessera/wire/v1/control.grpc.pb.h"
#include "tessera/wire/v1/fleet.grpc.pb.h"
#include "tests/integration/control_helpers.h"
#include "tests/integration/log_capture.h"
#include "tests/integration/mtls_client.h"
#include "tests/integration/mtls_coordinator.h"
#include "tests/integration/process.h"

namespace tessera::testing_support {
namespace {

using ::testing::ElementsAre;

constexpr int kRoundDeadlineSeconds = 120;

ArrayRecord Model() {
  ArrayRecord r;
  r.tensors.push_back(*Tensor::FromFloats("w", {2, 3}, std::vector<float>(6, 1.0f)));
  return r;
}

// Polls `done` every 50 ms for up to `seconds`; true once it holds.
template <typename F>
bool WaitFor(double seconds, F done) {
  const auto until = std::chrono::steady_clock::now() +
                     std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

// A NodeRunner running on its own thread until this goes out of scope.
class RunningClient {
 public:
  explicit RunningClient(std::unique_ptr<NodeRunner> runner)
      : runner_(std::move(runner)), thread_([this] { runner_->Run().IgnoreError(); }) {}
  ~RunningClient() {
    runner_->Stop();
    thread_.join();
  }

 private:
  std::unique_ptr<NodeRunner> runner_;
  std::thread thread_;
};

class TaskResendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("resend");
    ASSERT_TRUE(MakePki(dir_ + "/pki", {"site"}));
    auto server =
        coordinator::CoordinatorServer::Start(MtlsCoordinatorOptions(dir_, dir_ + "/pki"));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    control_ = wire::v1::Control::NewStub(MtlsChannel(dir_, server_->port(), "pki", "operator"));
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string dir_;
  std::unique_ptr<coordinator::CoordinatorServer> server_;
  std::unique_ptr<wire::v1::Control::Stub> control_;
};

TEST_F(TaskResendTest, ATaskThatFailedWithTheOldConnectionIsAnsweredOnceAfterTheReconnect) {
  LogCapture log;
  NodeRunnerOptions o = MtlsClientOptions(server_->port(), "site", dir_ + "/pki");
  o.bench_fixed_update = true;  // a zero update of the model's layout: no training needed
  o.max_backoff_seconds = 1;
  RunningClient client(NodeRunner::Create(o, LocalData()).value());
  ASSERT_TRUE(WaitFor(30, [&] { return log.text().find("client site subscribed") !=
                                       std::string::npos; }));

  // Registering as "site" from here ends the client's session but leaves its task stream
  // open (ClientRegistry::Register): the task arrives, and every call the client makes for it
  // carries the ended session and fails, as calls on a connection that timed out do.
  auto fleet = wire::v1::Fleet::NewStub(MtlsChannel(dir_, server_->port(), "pki", "site"));
  wire::v1::RegisterResponse registered;
  {
    grpc::ClientContext ctx;
    wire::v1::RegisterRequest req;
    req.set_name("site");
    ASSERT_TRUE(fleet->Register(&ctx, req, &registered).ok());
  }
  wire::v1::RunConfig config;
  config.set_name("resend");
  config.set_rounds(1);
  config.mutable_model()->set_architecture("mlp");
  config.mutable_train()->set_local_epochs(1);
  config.mutable_train()->set_batch_size(1);
  config.mutable_train()->set_learning_rate(0.1);
  config.mutable_selection()->set_clients_per_round(1);
  config.mutable_selection()->set_min_clients(1);
  config.mutable_selection()->set_wait_for_clients_seconds(30);
  config.mutable_round()->set_deadline_seconds(kRoundDeadlineSeconds);
  config.mutable_evaluation()->set_every(0);
  config.mutable_evaluation()->set_deadline_seconds(10);
  std::string error;
  const std::string run = CreateAndStartRun(*control_, config, Model(), &error);
  ASSERT_FALSE(run.empty()) << error;
  ASSERT_TRUE(WaitFor(30, [&] { return log.text().find(") failed: ") != std::string::npos; }))
      << log.text();

  // Subscribing with the new session displaces the client's stream; the client registers and
  // subscribes again (displacing this one), and the coordinator re-sends the open task to it.
  const auto start = std::chrono::steady_clock::now();
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    wire::v1::SubscribeRequest sub;
    sub.set_session_id(registered.session_id());
    auto reader = fleet->Subscribe(&ctx, sub);
    wire::v1::Task ignored;
    while (reader->Read(&ignored)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::ABORTED) << "displaced";
  }
  wire::v1::RunStatus status;
  const bool completed = WaitFor(30, [&] {
    status = GetRunStatus(*control_, run);
    return status.state() == wire::v1::COMPLETED;
  });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(completed) << "the round waits for its " << kRoundDeadlineSeconds
                         << " s deadline: " << status.ShortDebugString();
  EXPECT_LT(seconds, kRoundDeadlineSeconds / 4);
  ASSERT_EQ(status.rounds_size(), 1);
  EXPECT_EQ(status.rounds(0).reported(), 1u) << "the update counted once";
  EXPECT_THAT(status.rounds(0).participants(), ElementsAre("site"));
}

}  // namespace
}  // namespace tessera::testing_support
