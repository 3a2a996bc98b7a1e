// The federation PKI against a real coordinator over mTLS: revoked, expired and foreign
// certificates are refused and the refusal is logged with the presented identity; a revoked
// certificate's open connection is cut off at its next RPC; a broken CRL keeps the previous
// one; the coordinator's and a client's rotated certificates take effect without a restart.
#include <glog/logging.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "client/runtime/grpc_transport.h"
#include "client/runtime/internal/fleet_channel.h"
#include "coordinator/service/server.h"
#include "core/base/file.h"
#include "core/base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "privacy/crypto/certificate.h"
#include "privacy/crypto/pki.h"
#include "privacy/crypto/testing/test_pki.h"
#include "tessera/wire/v1/control.grpc.pb.h"
#include "tests/integration/process.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;
using crypto::CertificateRole;

class LogCapture : public google::LogSink {
 public:
  LogCapture() { google::AddLogSink(this); }
  ~LogCapture() override { google::RemoveLogSink(this); }
  void send(google::LogSeverity, const char*, const char*, int, const google::LogMessageTime&,
            const char* message, size_t length) override {
    absl::MutexLock l(&mu_);
    text_.append(message, length).append("\n");
  }
  std::string text() {
    absl::MutexLock l(&mu_);
    return text_;
  }

 private:
  absl::Mutex mu_;
  std::string text_;
};

class PkiFederationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing_support::MakeTempDir("pki");
    ca_ = crypto::CreateCertificateAuthority("Test Federation", 30).value();
    Write("ca.pem", ca_.certificate_pem);
    Issue("coordinator", CertificateRole::kCoordinator);
    Issue("op", CertificateRole::kOperator);
    Issue("hospital-a", CertificateRole::kClient);
    Write("crl.pem", crypto::CreateRevocationList(ca_, {}, 7).value());
    coordinator::CoordinatorServerOptions o;
    o.listen_address = "127.0.0.1:0";
    o.state_dir = dir_ + "/state";
    o.ca_cert_path = dir_ + "/ca.pem";
    o.cert_path = dir_ + "/coordinator.pem";
    o.key_path = dir_ + "/coordinator.key";
    o.crl_path = dir_ + "/crl.pem";
    o.cert_refresh_seconds = 1;
    options_ = o;
    server_ = coordinator::CoordinatorServer::Start(o).value();
  }

  void Write(const std::string& name, const std::string& bytes) {
    ASSERT_THAT(WriteFileAtomically(dir_ + "/" + name, bytes, 0600, /*replace=*/true), IsOk());
  }

  // NAME.pem and NAME.key under the test CA (or `ca`); returns the serial.
  std::string Issue(const std::string& name, CertificateRole role,
                    const crypto::KeyAndCertificate* ca = nullptr, bool expired = false) {
    const std::string key = crypto::GeneratePrivateKey().value();
    crypto::IssueOptions o{role, name, "", {}, 30};
    if (role == CertificateRole::kCoordinator) o.subject_alt_names = {"IP:127.0.0.1"};
    const auto& issuer = ca != nullptr ? *ca : ca_;
    std::string cert = expired ? crypto::IssueExpiredCertificate(issuer, key, o).value()
                               : crypto::IssueCertificate(issuer, key, o).value();
    Write(name + ".key", key);
    Write(name + ".pem", cert);
    return crypto::ParseCertificateIdentity(cert)->serial_hex;
  }

  std::unique_ptr<wire::v1::Control::Stub> Operator(const std::string& who) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ca_.certificate_pem;
    ssl.pem_cert_chain = testing_support::ReadFileOrEmpty(dir_ + "/" + who + ".pem");
    ssl.pem_private_key = testing_support::ReadFileOrEmpty(dir_ + "/" + who + ".key");
    return wire::v1::Control::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(server_->port()), grpc::SslCredentials(ssl)));
  }

  static grpc::Status List(wire::v1::Control::Stub& stub, std::string* server_cert = nullptr) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    wire::v1::ListRunsResponse resp;
    grpc::Status s = stub.ListRuns(&ctx, wire::v1::ListRunsRequest(), &resp);
    if (server_cert != nullptr && ctx.auth_context() != nullptr) {
      auto pem = ctx.auth_context()->FindPropertyValues("x509_pem_cert");
      if (!pem.empty()) server_cert->assign(pem.front().data(), pem.front().size());
    }
    return s;
  }

  void Revoke(const std::vector<std::string>& serials) {
    crypto::RevocationList list;
    for (const std::string& s : serials) list.revoked.push_back({s, 1700000000});
    Write("crl.pem", crypto::CreateRevocationList(ca_, list, 7).value());
  }

  std::string dir_;
  crypto::KeyAndCertificate ca_;
  coordinator::CoordinatorServerOptions options_;
  std::unique_ptr<coordinator::CoordinatorServer> server_;
};

TEST_F(PkiFederationTest, RefusesExpiredForeignAndWrongRoleCertificatesAndLogsWhoPresentedThem) {
  LogCapture log;
  EXPECT_TRUE(List(*Operator("op")).ok());

  grpc::Status wrong_role = List(*Operator("hospital-a"));
  EXPECT_EQ(wrong_role.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(wrong_role.error_message(), HasSubstr("requires role \"operator\""));
  EXPECT_THAT(log.text(), HasSubstr("refused hospital-a (role \"client\")"));

  Issue("old-op", CertificateRole::kOperator, nullptr, /*expired=*/true);
  EXPECT_EQ(List(*Operator("old-op")).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(log.text(), HasSubstr("refused TLS connection from CN=old-op OU=operator"));
  EXPECT_THAT(log.text(), HasSubstr("certificate has expired"));

  crypto::KeyAndCertificate rogue = crypto::CreateCertificateAuthority("Rogue", 30).value();
  Issue("intruder", CertificateRole::kOperator, &rogue);
  EXPECT_EQ(List(*Operator("intruder")).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(log.text(), HasSubstr("CN=intruder OU=operator O=Rogue"));
  EXPECT_THAT(log.text(), HasSubstr("unable to get local issuer certificate"));
  EXPECT_THAT(log.text(), ::testing::Not(HasSubstr("PRIVATE KEY")));
}

TEST_F(PkiFederationTest, RevocationCutsOffNewAndOpenConnectionsAndABrokenCrlKeepsThePreviousOne) {
  const std::string op2_serial = Issue("op2", CertificateRole::kOperator);
  auto open = Operator("op");
  ASSERT_TRUE(List(*open).ok());  // connected before the revocation
  const std::string op_serial =
      crypto::ParseCertificateIdentity(testing_support::ReadFileOrEmpty(dir_ + "/op.pem"))
          ->serial_hex;
  LogCapture log;
  Revoke({op_serial});

  grpc::Status cut = List(*open);
  EXPECT_EQ(cut.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(cut.error_message(), HasSubstr("certificate revoked"));
  EXPECT_EQ(List(*Operator("op")).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(log.text(), HasSubstr("CN=op OU=operator O=Test Federation serial=" + op_serial));
  EXPECT_TRUE(List(*Operator("op2")).ok()) << "only the revoked serial is refused";

  // A CRL that does not parse, or that another CA signed, leaves the last good one in force.
  Write("crl.pem", "garbage");
  EXPECT_EQ(List(*Operator("op")).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(List(*Operator("op2")).ok());
  EXPECT_THAT(log.text(), HasSubstr("keeping the previous CA and CRL"));
  crypto::KeyAndCertificate rogue = crypto::CreateCertificateAuthority("Rogue", 30).value();
  Write("crl.pem", crypto::CreateRevocationList(rogue, {}, 7).value());
  EXPECT_EQ(List(*Operator("op")).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(log.text(), HasSubstr("not signed by this CA"));

  Revoke({op_serial, op2_serial});
  EXPECT_EQ(List(*Operator("op2")).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(PkiFederationTest, RotatedCoordinatorCertificateIsServedWithoutRestart) {
  std::string before, after;
  ASSERT_TRUE(List(*Operator("op"), &before).ok());
  const std::string old_serial = crypto::ParseCertificateIdentity(before)->serial_hex;
  const std::string new_serial = Issue("coordinator", CertificateRole::kCoordinator);
  ASSERT_NE(old_serial, new_serial);
  // gRPC's file watcher re-reads every second; each new connection then gets the new one.
  for (int i = 0; i < 100; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_TRUE(List(*Operator("op"), &after).ok());
    if (crypto::ParseCertificateIdentity(after)->serial_hex == new_serial) break;
  }
  EXPECT_EQ(crypto::ParseCertificateIdentity(after)->serial_hex, new_serial);
}

TEST_F(PkiFederationTest, ClientChannelPicksUpARotatedCertificateWithoutBeingRebuilt) {
  const std::string old_serial =
      crypto::ParseCertificateIdentity(testing_support::ReadFileOrEmpty(dir_ + "/hospital-a.pem"))
          ->serial_hex;
  Revoke({old_serial});
  FleetChannelOptions o;
  o.address = "127.0.0.1:" + std::to_string(server_->port());
  o.ca_path = dir_ + "/ca.pem";
  o.cert_path = dir_ + "/hospital-a.pem";
  o.key_path = dir_ + "/hospital-a.key";
  o.cert_refresh_seconds = 1;
  std::shared_ptr<FleetChannel> channel = MakeFleetChannel(o).value();
  auto call = [&](int seconds) {
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(true);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
    wire::v1::RegisterRequest req;
    req.set_name("hospital-a");
    wire::v1::RegisterResponse resp;
    return channel->stub->Register(&ctx, req, &resp);
  };
  EXPECT_FALSE(call(2).ok()) << "the revoked certificate must not get in";
  Issue("hospital-a", CertificateRole::kClient);  // the partner installs its new certificate
  grpc::Status s = call(20);  // the same channel reconnects with the new files
  EXPECT_TRUE(s.ok()) << s.error_message();
}

TEST_F(PkiFederationTest, StartRefusesACrlFromAnotherCaAndBadRefreshPeriods) {
  server_.reset();
  crypto::KeyAndCertificate rogue = crypto::CreateCertificateAuthority("Rogue", 30).value();
  Write("crl.pem", crypto::CreateRevocationList(rogue, {}, 7).value());
  EXPECT_THAT(coordinator::CoordinatorServer::Start(options_),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("--crl")));
  Revoke({});
  coordinator::CoordinatorServerOptions o = options_;
  o.cert_refresh_seconds = 0;
  EXPECT_THAT(coordinator::CoordinatorServer::Start(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--cert-refresh-seconds")));
  o = options_;
  o.crl_path = dir_ + "/missing.pem";
  EXPECT_THAT(coordinator::CoordinatorServer::Start(o),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing.pem")));
}

}  // namespace
}  // namespace tessera
