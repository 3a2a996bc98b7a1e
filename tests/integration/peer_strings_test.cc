// Untrusted strings over the wire (docs/wire_protocol.md): Register refuses bad names and
// devices naming the field, nothing a client sends can forge a coordinator log line, and a
// huge id echoed in an error still yields the right status instead of overflowing gRPC's
// status trailer.
#include <glog/logging.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "coordinator/service/server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tessera/wire/v1/control.grpc.pb.h"
#include "tessera/wire/v1/fleet.grpc.pb.h"
#include "tests/integration/log_capture.h"
#include "tests/integration/process.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

using testing_support::LogCapture;

class PeerStringsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing_support::MakeTempDir("peer-strings");
    coordinator::CoordinatorServerOptions o;
    o.listen_address = "127.0.0.1:0";
    o.state_dir = dir_ + "/state";
    o.insecure = true;
    server_ = coordinator::CoordinatorServer::Start(o).value();
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                       grpc::InsecureChannelCredentials());
    fleet_ = wire::v1::Fleet::NewStub(channel);
    control_ = wire::v1::Control::NewStub(channel);
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }
  grpc::Status Register(const wire::v1::RegisterRequest& req) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    wire::v1::RegisterResponse resp;
    return fleet_->Register(&ctx, req, &resp);
  }

  std::string dir_;
  std::unique_ptr<coordinator::CoordinatorServer> server_;
  std::unique_ptr<wire::v1::Fleet::Stub> fleet_;
  std::unique_ptr<wire::v1::Control::Stub> control_;
};

TEST_F(PeerStringsTest, RegisterRefusesBadNamesAndDevicesNamingTheFieldAndForgesNoLogLine) {
  LogCapture log;
  const std::string forged = "\nE1206 00:00:00.000000 1 fleet_service.cc:1] forged";
  wire::v1::RegisterRequest req;
  req.set_name("site-a" + forged);
  // A bad data card too: its refusal used to log the raw name.
  req.mutable_data_card()->set_name("x");
  req.mutable_data_card()->set_license("CC BY");
  grpc::Status s = Register(req);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), StartsWith("name: \"site-a\\nE1206"));

  req.set_name(std::string(100000, 'n'));
  s = Register(req);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "name: must be 1..128 characters, got 100000");

  req.set_name(std::string("nul\0zero", 8));
  s = Register(req);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("nul\\x00zero"));

  req.set_name("site-a");
  req.clear_data_card();
  req.set_device("cpu" + forged);
  s = Register(req);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), StartsWith("device: \"cpu\\nE1206"));
  req.set_device("cpu");
  req.set_version(std::string("0.1\x1b[2J", 7));
  s = Register(req);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), StartsWith("version: \"0.1\\x1b[2J\""));

  req.set_version("0.1.0");
  EXPECT_TRUE(Register(req).ok());
  bool saw_refusal = false;
  for (const std::string& m : log.messages()) {
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_EQ(m.find('\0'), std::string::npos) << m;
    EXPECT_EQ(m.find('\x1b'), std::string::npos) << m;
    EXPECT_LT(m.size(), 2000u);
    saw_refusal = saw_refusal || m.find("refused registration") != std::string::npos;
  }
  EXPECT_TRUE(saw_refusal) << "refusals are still logged, escaped";
}

TEST_F(PeerStringsTest, HugeRunIdIsNotFoundWithTheIdCappedInTheMessage) {
  grpc::ClientContext ctx;
  wire::v1::RunRef ref;
  ref.set_run_id(std::string(20000, 'r'));
  wire::v1::RunStatus status;
  grpc::Status s = control_->GetRunStatus(&ctx, ref, &status);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message().size();
  EXPECT_EQ(s.error_message(),
            "run \"" + std::string(128, 'r') + "...(20000 bytes)\" not found");
}

}  // namespace
}  // namespace tessera
