// The coordinator server's operational endpoints on a real listening server: the standard
// gRPC health service and the Prometheus /metrics and /healthz HTTP endpoint.
#include "coordinator/service/server.h"

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include "absl/strings/str_cat.h"
#include "core/base/testing/status_matchers.h"

namespace tessera::coordinator {
namespace {

using ::testing::HasSubstr;

std::string TempDir() {
  std::mt19937_64 rng(std::random_device{}());
  auto dir = std::filesystem::temp_directory_path() / absl::StrCat("server-test-", rng());
  std::filesystem::create_directories(dir);
  return dir.string();
}

// grpc.health.v1.Health/Check with a serialized HealthCheckRequest; the serialized reply.
grpc::Status HealthCheck(int port, const std::string& request, std::string* reply) {
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                     grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Slice slice(request);
  grpc::ByteBuffer req(&slice, 1);
  auto call = stub.PrepareUnaryCall(&ctx, "/grpc.health.v1.Health/Check", req, &cq);
  call->StartCall();
  grpc::ByteBuffer resp;
  grpc::Status status;
  call->Finish(&resp, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  cq.Next(&tag, &ok);
  std::vector<grpc::Slice> slices;
  if (status.ok() && resp.Dump(&slices).ok()) {
    for (const grpc::Slice& s : slices) reply->append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return status;
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = TempDir(); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  CoordinatorServerOptions Options() {
    CoordinatorServerOptions o;
    o.listen_address = "127.0.0.1:0";
    o.state_dir = dir_ + "/state";
    o.insecure = true;
    o.metrics_address = "127.0.0.1:0";
    return o;
  }
  std::string dir_;
};

TEST_F(ServerTest, HealthServiceAnswersServing) {
  absl::StatusOr<std::unique_ptr<CoordinatorServer>> server = CoordinatorServer::Start(Options());
  ASSERT_THAT(server, IsOk());
  std::string reply;
  grpc::Status s = HealthCheck((*server)->port(), "", &reply);  // the server as a whole
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(reply, std::string("\x08\x01", 2));  // status: SERVING
  reply.clear();
  // HealthCheckRequest{service: "nope"}: not a registered service.
  s = HealthCheck((*server)->port(), std::string("\x0a\x04nope", 6), &reply);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ServerTest, MetricsEndpointServesPrometheusText) {
  absl::StatusOr<std::unique_ptr<CoordinatorServer>> server = CoordinatorServer::Start(Options());
  ASSERT_THAT(server, IsOk());
  ASSERT_GT((*server)->metrics_port(), 0);
  httplib::Client http("127.0.0.1", (*server)->metrics_port());
  auto res = http.Get("/metrics");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_THAT(res->get_header_value("Content-Type"), HasSubstr("version=0.0.4"));
  EXPECT_THAT(res->body, HasSubstr("# TYPE tessera_connected_clients gauge\n"
                                   "tessera_connected_clients 0\n"));
  res = http.Get("/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body, "ok\n");
  res = http.Get("/nope");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
}

TEST_F(ServerTest, BadMetricsAddressIsRefusedByName) {
  CoordinatorServerOptions o = Options();
  o.metrics_address = "9464";
  EXPECT_THAT(CoordinatorServer::Start(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--metrics-address")));
}

}  // namespace
}  // namespace tessera::coordinator
