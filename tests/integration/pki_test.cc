// The federation PKI against a real coordinator over mTLS: revoked, expired and foreign
// certificates are refused and the refusal is logged with the presented identity; a revoked
// certificate's open connection is cut off at its next RPC; a broken CRL keeps the previous
// one; the coordinator's and a client's rotated certificates take effect without a restart.
#include <glog/logging.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <optional>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "client/runtime/grpc_transport.h"
#include "client/runtime/internal/fleet_channel.h"
#include "client/runtime/local_data.h"
#include "client/runtime/node_runner.h"
#include "coordinator/service/server.h"
#include "core/base/file.h"
#include "core/base/testing/status_matchers.h"
#include "core/serde/session_metadata.h"
#include "core/serde/tensor_stream.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "privacy/crypto/certificate.h"
#include "privacy/crypto/pki.h"
#include "privacy/crypto/testing/test_pki.h"
#include "tessera/wire/v1/control.grpc.pb.h"
#include "tessera/wire/v1/fleet.grpc.pb.h"
#include "tests/integration/control_helpers.h"
#include "tests/integration/log_capture.h"
#include "tests/integration/mtls_client.h"
#include "tests/integration/mtls_coordinator.h"
#include "tests/integration/process.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using crypto::CertificateRole;

using testing_support::BinDir;
using testing_support::LogCapture;
using testing_support::RunCommand;

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
    coordinator::CoordinatorServerOptions o = testing_support::MtlsCoordinatorOptions(dir_, dir_);
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

// `tessera run list` as NAME (NAME.pem/.key, the test CA as --ca): exit code and stderr.
int OperatorCli(const std::string& dir, int port, const std::string& who, std::string* out) {
  return RunCommand({BinDir() + "/tessera", "--coordinator", "127.0.0.1:" + std::to_string(port),
                     "--ca", dir + "/ca.pem", "--cert", dir + "/" + who + ".pem", "--key",
                     dir + "/" + who + ".key", "--timeout", "5", "run", "list"},
                    out, 60);
}

// The CLI used to print only "Socket closed (UNAVAILABLE)" for a refused certificate. It must
// say the coordinator refused it and which one was presented, and still tell a coordinator
// that is down apart from a refusal.
TEST_F(PkiFederationTest, CliSaysTheCoordinatorRefusedWhichCertificate) {
  std::string out;
  ASSERT_EQ(OperatorCli(dir_, server_->port(), "op", &out), 0) << out;

  const std::string revoked = Issue("old-op", CertificateRole::kOperator);
  Revoke({revoked});
  EXPECT_EQ(OperatorCli(dir_, server_->port(), "old-op", &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("refused the client certificate CN=old-op OU=operator "
                             "O=Test Federation serial=" + revoked +
                             " issued by CN=Test Federation federation CA O=Test Federation"));
  EXPECT_THAT(out, HasSubstr("(--cert " + dir_ + "/old-op.pem)"));
  EXPECT_THAT(out, HasSubstr("closed the connection right after the TLS handshake"));
  // Here the certificate chains to --ca: the CLI does not know it is revoked and says so.
  EXPECT_THAT(out, HasSubstr("chains to --ca"));
  EXPECT_THAT(out, Not(HasSubstr("PRIVATE KEY")));

  crypto::KeyAndCertificate rogue = crypto::CreateCertificateAuthority("Rogue", 30).value();
  const std::string foreign = Issue("intruder", CertificateRole::kOperator, &rogue);
  EXPECT_EQ(OperatorCli(dir_, server_->port(), "intruder", &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("refused the client certificate CN=intruder OU=operator O=Rogue "
                             "serial=" + foreign + " issued by CN=Rogue federation CA O=Rogue"));
  EXPECT_THAT(out, HasSubstr("checked here against --ca " + dir_ + "/ca.pem: "));
  EXPECT_THAT(out, HasSubstr("unable to get local issuer certificate"));

  const int port = server_->port();
  server_.reset();
  EXPECT_EQ(OperatorCli(dir_, port, "op", &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("cannot reach the coordinator at 127.0.0.1:" +
                             std::to_string(port) + " (Connection refused)"));
  EXPECT_THAT(out, Not(HasSubstr("refused the client certificate")));
}

// tessera-client's log, which used to say only "connection ... lost (Deadline Exceeded)".
TEST_F(PkiFederationTest, ClientLogsThatTheCoordinatorRefusedItsCertificate) {
  const std::string serial = Issue("hospital-c", CertificateRole::kClient);
  Revoke({serial});
  LogCapture log;
  std::unique_ptr<NodeRunner> runner =
      NodeRunner::Create(testing_support::MtlsClientOptions(server_->port(), "hospital-c", dir_),
                         LocalData())
          .value();
  std::thread run([&runner] { runner->Run().IgnoreError(); });
  const std::string expected =
      "refused the client certificate CN=hospital-c OU=client O=Test Federation serial=" + serial;
  for (int i = 0; i < 300 && log.text().find(expected) == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  runner->Stop();
  run.join();
  EXPECT_THAT(log.text(), HasSubstr(expected));
  EXPECT_THAT(log.text(), HasSubstr("(--cert " + dir_ + "/hospital-c.pem)"));
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

// A client subscribed over mTLS as NAME (NAME.pem/.key): its TRAIN tasks queue up, and the
// subscription's final status is kept when the coordinator ends it.
class Subscriber {
 public:
  Subscriber(const std::string& dir, const std::string& ca_pem, int port, const std::string& name)
      : name_(name) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ca_pem;
    ssl.pem_cert_chain = testing_support::ReadFileOrEmpty(dir + "/" + name + ".pem");
    ssl.pem_private_key = testing_support::ReadFileOrEmpty(dir + "/" + name + ".key");
    stub_ = wire::v1::Fleet::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::SslCredentials(ssl)));
    grpc::ClientContext ctx;
    wire::v1::RegisterRequest req;
    req.set_name(name);
    wire::v1::RegisterResponse resp;
    registered_ = stub_->Register(&ctx, req, &resp);
    session_ = resp.session_id();
    thread_ = std::thread([this] {
      wire::v1::SubscribeRequest sub;
      sub.set_session_id(session_);
      auto reader = stub_->Subscribe(&ctx_, sub);
      wire::v1::Task t;
      while (reader->Read(&t)) {
        absl::MutexLock l(&mu_);
        if (t.type() == wire::v1::PING) subscribed_ = true;
        if (t.type() == wire::v1::TRAIN) tasks_.push_back(t);
      }
      grpc::Status end = reader->Finish();
      absl::MutexLock l(&mu_);
      end_ = end;
      ended_ = true;
    });
  }
  ~Subscriber() {
    ctx_.TryCancel();
    thread_.join();
  }
  const grpc::Status& registered() const { return registered_; }
  bool AwaitSubscribed() { return Await([this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return subscribed_; }, 10); }
  wire::v1::Task NextTask() {
    absl::MutexLock l(&mu_);
    auto has = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !tasks_.empty(); };
    mu_.AwaitWithTimeout(absl::Condition(&has), absl::Seconds(30));
    if (tasks_.empty()) return {};
    wire::v1::Task t = tasks_.front();
    tasks_.erase(tasks_.begin());
    return t;
  }
  // The subscription's end status, if it ended within `seconds`.
  std::optional<grpc::Status> AwaitEnd(int seconds) {
    if (!Await([this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return ended_; }, seconds)) {
      return std::nullopt;
    }
    absl::MutexLock l(&mu_);
    return end_;
  }
  // Uploads `weights` as the update for `task`.
  grpc::Status Push(const wire::v1::Task& task, const ArrayRecord& weights) {
    grpc::ClientContext ctx;
    ctx.AddMetadata(kSessionMetadataKey, session_);
    wire::v1::PushUpdateResponse resp;
    auto w = stub_->PushUpdate(&ctx, &resp);
    wire::v1::PushUpdateRequest m;
    m.mutable_header()->set_task_id(task.task_id());
    m.mutable_header()->set_num_examples(10);
    bool ok = w->Write(m);
    TensorStreamWriter stream(&weights);
    m.Clear();
    while (ok && stream.Next(m.mutable_chunk())) {
      ok = w->Write(m);
      m.Clear();
    }
    w->WritesDone();
    return w->Finish();
  }

 private:
  template <typename F>
  bool Await(F done, int seconds) {
    absl::MutexLock l(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(seconds));
  }

  const std::string name_;
  std::unique_ptr<wire::v1::Fleet::Stub> stub_;
  grpc::Status registered_;
  std::string session_;
  grpc::ClientContext ctx_;
  std::thread thread_;
  absl::Mutex mu_;
  bool subscribed_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status end_ ABSL_GUARDED_BY(mu_);
  std::vector<wire::v1::Task> tasks_ ABSL_GUARDED_BY(mu_);
};

ArrayRecord SmallModel(float value) {
  ArrayRecord r;
  r.tensors.push_back(*Tensor::FromFloats("w", {4}, {value, value, value, value}));
  return r;
}

TEST_F(PkiFederationTest, RevocationEndsAnOpenSubscriptionAtOnceAndNoRoundWaitsForIt) {
  const std::string b_serial = Issue("hospital-b", CertificateRole::kClient);
  Subscriber a(dir_, ca_.certificate_pem, server_->port(), "hospital-a");
  Subscriber b(dir_, ca_.certificate_pem, server_->port(), "hospital-b");
  ASSERT_TRUE(a.registered().ok()) << a.registered().error_message();
  ASSERT_TRUE(b.registered().ok()) << b.registered().error_message();
  ASSERT_TRUE(a.AwaitSubscribed());
  ASSERT_TRUE(b.AwaitSubscribed());

  wire::v1::RunConfig config;
  config.set_name("revocation");
  config.set_rounds(2);
  config.mutable_model()->set_architecture("mlp");
  config.mutable_train()->set_local_epochs(1);
  config.mutable_train()->set_batch_size(1);
  config.mutable_train()->set_learning_rate(0.1);
  config.mutable_selection()->set_fraction(1.0);
  config.mutable_selection()->set_min_clients(1);
  config.mutable_selection()->set_wait_for_clients_seconds(2);
  config.mutable_round()->set_deadline_seconds(60);
  config.mutable_evaluation()->set_every(0);
  config.mutable_evaluation()->set_deadline_seconds(10);
  auto control = Operator("op");
  std::string error;
  const std::string run =
      testing_support::CreateAndStartRun(*control, config, SmallModel(1.0f), &error);
  ASSERT_FALSE(run.empty()) << error;
  const wire::v1::Task a1 = a.NextTask();
  ASSERT_EQ(a1.round(), 1u);
  ASSERT_EQ(b.NextTask().round(), 1u) << "hospital-b was selected before its revocation";

  LogCapture log;
  const absl::Time revoked_at = absl::Now();
  Revoke({b_serial});
  std::optional<grpc::Status> end = b.AwaitEnd(10);
  ASSERT_TRUE(end.has_value()) << "the revoked client's subscription stayed open";
  EXPECT_EQ(end->error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(end->error_message(), HasSubstr("revoked"));
  {
    grpc::ClientContext ctx;
    wire::v1::ListClientsResponse clients;
    ASSERT_TRUE(control->ListClients(&ctx, wire::v1::ListClientsRequest(), &clients).ok());
    for (const auto& c : clients.clients()) {
      EXPECT_EQ(c.connected(), c.name() == "hospital-a") << c.name();
    }
  }
  EXPECT_FALSE(a.AwaitEnd(0).has_value()) << "only the revoked certificate is cut off";

  // Round 1 no longer waits for hospital-b (60 s deadline); round 2 does not select it.
  ASSERT_TRUE(a.Push(a1, SmallModel(0.5f)).ok());
  const wire::v1::Task a2 = a.NextTask();
  ASSERT_EQ(a2.round(), 2u);
  ASSERT_TRUE(a.Push(a2, SmallModel(0.25f)).ok());
  wire::v1::RunStatus status;
  for (int i = 0; i < 100 && status.state() != wire::v1::COMPLETED; ++i) {
    status = testing_support::GetRunStatus(*control, run);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(status.state(), wire::v1::COMPLETED) << status.DebugString();
  EXPECT_LT(absl::Now() - revoked_at, absl::Seconds(30));
  ASSERT_EQ(status.rounds_size(), 2);
  EXPECT_EQ(status.rounds(0).selected(), 2u);
  EXPECT_EQ(status.rounds(0).reported(), 1u);
  EXPECT_EQ(status.rounds(1).selected(), 1u);
  EXPECT_EQ(status.rounds(1).reported(), 1u);
  EXPECT_THAT(log.text(), HasSubstr("client hospital-b: certificate no longer trusted"));
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
