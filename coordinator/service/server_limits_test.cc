// The coordinator server's explicit gRPC limits, on a real listening server.
#include <chrono>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "coordinator/service/server.h"
#include "core/base/testing/status_matchers.h"
#include "core/serde/session_metadata.h"
#include "core/serde/tensor_stream.h"
#include "tessera/wire/v1/control.grpc.pb.h"
#include "tessera/wire/v1/fleet.grpc.pb.h"

namespace tessera::coordinator {
namespace {

class ServerLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937_64 rng(std::random_device{}());
    dir_ = (std::filesystem::temp_directory_path() / absl::StrCat("server-limits-", rng()))
               .string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Starts an insecure coordinator with `max_streams` streams per connection, and opens one
  // connection to it on which three clients register and hold their task subscriptions.
  void StartWithThreeSubscriptions(int max_streams) {
    CoordinatorServerOptions o;
    o.listen_address = "127.0.0.1:0";
    o.state_dir = dir_ + "/state";
    o.insecure = true;
    o.max_streams_per_connection = max_streams;
    absl::StatusOr<std::unique_ptr<CoordinatorServer>> server = CoordinatorServer::Start(o);
    ASSERT_THAT(server, IsOk());
    server_ = std::move(*server);
    stub_ = wire::v1::Fleet::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", server_->port()), grpc::InsecureChannelCredentials()));
    for (const char* name : {"a", "b", "c"}) {
      grpc::ClientContext ctx;
      wire::v1::RegisterRequest req;
      req.set_name(name);
      wire::v1::RegisterResponse resp;
      ASSERT_TRUE(stub_->Register(&ctx, req, &resp).ok());
      sessions_.push_back(resp.session_id());
      auto sub = std::make_unique<Subscription>();
      wire::v1::SubscribeRequest sreq;
      sreq.set_session_id(resp.session_id());
      sub->reader = stub_->Subscribe(&sub->ctx, sreq);
      wire::v1::Task ping;
      ASSERT_TRUE(sub->reader->Read(&ping));  // the subscription is open
      subscriptions_.push_back(std::move(sub));
    }
  }

  grpc::Status Heartbeat(std::chrono::milliseconds timeout) {
    grpc::ClientContext ctx;
    ctx.AddMetadata(kSessionMetadataKey, sessions_[0]);
    ctx.set_deadline(std::chrono::system_clock::now() + timeout);
    wire::v1::HeartbeatRequest req;
    wire::v1::HeartbeatResponse resp;
    return stub_->Heartbeat(&ctx, req, &resp);
  }

  void EndSubscriptions() {
    for (auto& s : subscriptions_) {
      s->ctx.TryCancel();
      s->reader->Finish().IgnoreError();
    }
    subscriptions_.clear();
  }

  struct Subscription {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReader<wire::v1::Task>> reader;
  };
  std::string dir_;
  std::unique_ptr<CoordinatorServer> server_;
  std::unique_ptr<wire::v1::Fleet::Stub> stub_;
  std::vector<std::string> sessions_;
  std::vector<std::unique_ptr<Subscription>> subscriptions_;
};

TEST_F(ServerLimitsTest, AFourthCallWaitsWhileThreeStreamsFillTheConnection) {
  StartWithThreeSubscriptions(3);
  // gRPC's default would start it at once; with 3 streams allowed it waits at the client.
  EXPECT_EQ(Heartbeat(std::chrono::milliseconds(1000)).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  subscriptions_[0]->ctx.TryCancel();
  EXPECT_EQ(subscriptions_[0]->reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  subscriptions_.erase(subscriptions_.begin());
  EXPECT_TRUE(Heartbeat(std::chrono::seconds(10)).ok());  // a stream is free again
  EndSubscriptions();
}

TEST_F(ServerLimitsTest, AFourthCallStartsWhenFourStreamsAreAllowed) {
  StartWithThreeSubscriptions(4);
  EXPECT_TRUE(Heartbeat(std::chrono::seconds(10)).ok());
  EndSubscriptions();
}

// gRPC abandons streams (RST_STREAM ENHANCE_YOUR_CALM, error code 11) once its transport
// buffers pass the ResourceQuota; with BDP probing each stream's window grew to many MiB on
// loopback, so large concurrent streams were cut short (CreateRun of a 400 MB model at a
// 16 MiB quota; 1-2 GB uploads at 64 MiB). With the window fixed (kStreamWindowBytes), three
// concurrent 32 MiB CreateRun streams fit the smallest quota the coordinator accepts (8 MiB);
// without it two of them were abandoned.
TEST_F(ServerLimitsTest, LargeConcurrentStreamsAtTheSmallestTransportQuotaAreNotAbandoned) {
  CoordinatorServerOptions o;
  o.listen_address = "127.0.0.1:0";
  o.state_dir = dir_ + "/state";
  o.insecure = true;
  o.transport_memory_bytes = 8 << 20;
  absl::StatusOr<std::unique_ptr<CoordinatorServer>> server = CoordinatorServer::Start(o);
  ASSERT_THAT(server, IsOk());
  const std::string address = absl::StrCat("127.0.0.1:", (*server)->port());
  ArrayRecord model;
  for (int i = 0; i < 8; ++i) {  // 8 tensors of 1M float32: 32 MiB
    model.tensors.push_back(*Tensor::Zeros(absl::StrCat("w", i), DType::kFloat32, {1 << 20}));
  }
  constexpr int kStreams = 3;
  std::vector<grpc::Status> results(kStreams);
  std::vector<std::thread> threads;
  for (int k = 0; k < kStreams; ++k) {
    threads.emplace_back([&, k] {
      // Its own connection, as separate operators (or clients) have.
      grpc::ChannelArguments args;
      args.SetInt("tessera.test.connection", k);
      auto control = wire::v1::Control::NewStub(grpc::CreateCustomChannel(
          address, grpc::InsecureChannelCredentials(), args));
      grpc::ClientContext ctx;
      wire::v1::RunStatus status;
      auto writer = control->CreateRun(&ctx, &status);
      wire::v1::CreateRunRequest m;
      wire::v1::RunConfig* c = m.mutable_config();
      c->set_name(absl::StrCat("big", k));
      c->set_rounds(1);
      c->mutable_model()->set_architecture("mlp");
      c->mutable_train()->set_local_epochs(1);
      c->mutable_train()->set_batch_size(32);
      c->mutable_train()->set_learning_rate(0.01);
      c->mutable_selection()->set_clients_per_round(1);
      c->mutable_selection()->set_min_clients(1);
      c->mutable_selection()->set_wait_for_clients_seconds(60);
      c->mutable_round()->set_deadline_seconds(60);
      c->mutable_evaluation()->set_every(0);
      c->mutable_evaluation()->set_deadline_seconds(60);
      writer->Write(m);
      TensorStreamWriter stream(&model);
      while (true) {
        m.Clear();
        if (!stream.Next(m.mutable_weights())) break;
        if (!writer->Write(m)) break;
      }
      writer->WritesDone();
      results[k] = writer->Finish();
    });
  }
  for (std::thread& t : threads) t.join();
  for (int k = 0; k < kStreams; ++k) {
    EXPECT_TRUE(results[k].ok()) << "stream " << k << ": " << results[k].error_code() << " "
                                 << results[k].error_message();
  }
}

TEST_F(ServerLimitsTest, ZeroStreamsPerConnectionIsRefused) {
  CoordinatorServerOptions o;
  o.listen_address = "127.0.0.1:0";
  o.state_dir = dir_ + "/state";
  o.insecure = true;
  o.max_streams_per_connection = 0;
  EXPECT_THAT(CoordinatorServer::Start(o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::HasSubstr("max_streams_per_connection")));
}

}  // namespace
}  // namespace tessera::coordinator
