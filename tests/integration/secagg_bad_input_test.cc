// Bad secure aggregation input over the real wire: an in-process coordinator with mTLS on
// 127.0.0.1 and five clients speaking SecAggExchange from this test, each driving a real
// SecAggClient. One client tampers with one message; it must get a clear status, be
// dropped, and the other four must still finish the round with the exact sum.
#include <deque>
#include <filesystem>
#include <functional>
#include <thread>

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/service/server.h"
#include "core/serde/tensor_stream.h"
#include "privacy/secagg/client/secagg_client.h"
#include "privacy/secagg/identity.h"
#include "privacy/secagg/update_codec.h"
#include "tessera/wire/v1/control.grpc.pb.h"
#include "tessera/wire/v1/fleet.grpc.pb.h"
#include "tests/integration/control_helpers.h"
#include "tests/integration/mtls_coordinator.h"
#include "tests/integration/process.h"

namespace tessera::testing_support {
namespace {

using ::testing::HasSubstr;
using secagg::v1::ClientToServer;

constexpr int kClients = 5;
constexpr int kBad = 4;

ArrayRecord Model(float value) {
  ArrayRecord r;
  r.tensors.push_back(*Tensor::FromFloats("w", {10, 100}, std::vector<float>(1000, value)));
  return r;
}

struct Case {
  const char* name;
  secagg::v1::Phase phase;  // the message to tamper with
  std::function<void(ClientToServer&)> tamper;
  grpc::StatusCode code;
  const char* message;
};

// ctest and gtest name a case by its name, not by its bytes.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class SecAggBadInputTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("secagg-bad");
    for (int i = 0; i < kClients; ++i) names_.push_back("c" + std::to_string(i));
    ASSERT_TRUE(MakePki(dir_ + "/pki", names_));
    auto server =
        coordinator::CoordinatorServer::Start(MtlsCoordinatorOptions(dir_, dir_ + "/pki"));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    control_ = wire::v1::Control::NewStub(Channel("operator"));
  }
  void TearDown() override {
    for (auto& c : subs_) c->TryCancel();
    for (auto& t : threads_) t.join();
    server_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  std::string Pki(const std::string& f) const { return dir_ + "/pki/" + f; }
  std::shared_ptr<grpc::Channel> Channel(const std::string& who) {
    return MtlsChannel(dir_, server_->port(), "pki", who);
  }

  std::string CreateAndStartRun() {
    wire::v1::RunConfig config;
    auto* c = &config;
    c->set_name("secagg-bad-input");
    c->set_rounds(1);
    c->mutable_model()->set_architecture("mlp");
    c->mutable_train()->set_local_epochs(1);
    c->mutable_train()->set_batch_size(1);
    c->mutable_train()->set_learning_rate(0.1);
    c->mutable_selection()->set_clients_per_round(kClients);
    c->mutable_selection()->set_min_clients(3);
    c->mutable_selection()->set_wait_for_clients_seconds(30);
    c->mutable_round()->set_deadline_seconds(60);
    c->mutable_evaluation()->set_deadline_seconds(10);
    auto* sa = c->mutable_secure_aggregation();
    sa->set_enabled(true);
    sa->set_dropout_fraction(0.2);
    sa->set_corrupt_fraction(0.1);
    sa->set_security_bits(40);
    sa->set_clip(1.0);
    sa->set_value_bits(24);
    sa->set_max_examples(1000);
    sa->set_phase_deadline_seconds(30);
    std::string error;
    const std::string run =
        testing_support::CreateAndStartRun(*control_, config, Model(0.0f), &error);
    EXPECT_FALSE(run.empty()) << error;
    return run;
  }

  wire::v1::RunStatus Status(const std::string& run) { return GetRunStatus(*control_, run); }

  // Client i: register, take its TRAIN task, send a delta of 0.01 * (i + 1) with weight
  // 10 masked, tampering with the `bad` phase's message when i == kBad. Returns the status
  // of the first failed exchange (OK if the protocol completed).
  grpc::Status Participate(int i, const Case* bad) {
    auto stub = wire::v1::Fleet::NewStub(Channel(names_[i]));
    wire::v1::RegisterResponse reg;
    {
      grpc::ClientContext ctx;
      wire::v1::RegisterRequest req;
      req.set_name(names_[i]);
      grpc::Status s = stub->Register(&ctx, req, &reg);
      if (!s.ok()) return s;
    }
    grpc::ClientContext* sub_ctx;
    {
      absl::MutexLock l(&mu_);
      subs_.push_back(std::make_unique<grpc::ClientContext>());
      sub_ctx = subs_.back().get();
    }
    wire::v1::SubscribeRequest sub;
    sub.set_session_id(reg.session_id());
    auto reader = stub->Subscribe(sub_ctx, sub);
    wire::v1::Task task;
    while (reader->Read(&task) && task.type() != wire::v1::TRAIN) {
    }
    if (!task.has_secagg()) return grpc::Status(grpc::StatusCode::INTERNAL, "no secagg task");
    const auto& st = task.secagg();
    auto params = secagg::MakeQuantizerParams({.clip = st.clip(), .max_weight = st.max_weight(),
                                               .max_clients = st.max_clients(),
                                               .value_bits = st.value_bits()});
    auto uniform = secagg::SecureUniformSource();
    auto inputs = secagg::QuantizeUpdate(Model(0.01f * (i + 1)), 10, *params, *uniform);
    auto signer = secagg::CertificateSigner(ReadFileOrEmpty(Pki(names_[i] + ".pem")),
                                            ReadFileOrEmpty(Pki(names_[i] + ".key")));
    secagg::ClientConfig cc;
    cc.client_index = st.client_index();
    cc.session_id = st.session_id();
    cc.round = task.round();
    cc.modulus_mask = params->modulus_mask;
    cc.inputs = *inputs;
    cc.weight = 10;
    cc.sign = signer->sign;
    cc.identity = signer->identity;
    cc.verify = secagg::CertificateVerifier(*secagg::FixedTrustSource(ReadFileOrEmpty(Pki("ca.pem")), ""));
    cc.threat_model = {.num_clients = st.num_clients(),
                       .dropout_fraction = st.dropout_fraction(),
                       .corrupt_fraction = st.corrupt_fraction(),
                       .security_bits = st.security_bits()};
    cc.max_clients = st.num_clients();
    auto client = *secagg::SecAggClient::Create(std::move(cc));
    ClientToServer next = *client->Start();
    while (true) {
      if (bad != nullptr && secagg::HeaderOf(next).phase() == bad->phase) bad->tamper(next);
      grpc::ClientContext ctx;
      ctx.AddMetadata("x-tessera-session", reg.session_id());
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(90));
      wire::v1::SecAggRequest req;
      req.set_task_id(task.task_id());
      *req.mutable_message() = next;
      wire::v1::SecAggResponse resp;
      grpc::Status s = stub->SecAggExchange(&ctx, req, &resp);
      if (!s.ok()) return s;
      auto reply = client->HandleMessage(resp.message());
      if (!reply.ok()) return grpc::Status(grpc::StatusCode::ABORTED, std::string(reply.status().message()));
      if (client->IsCompleted()) return grpc::Status::OK;
      if (!reply->has_value()) return grpc::Status(grpc::StatusCode::INTERNAL, "no reply");
      next = **reply;
    }
  }

  std::string dir_;
  std::vector<std::string> names_;
  std::unique_ptr<coordinator::CoordinatorServer> server_;
  std::unique_ptr<wire::v1::Control::Stub> control_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<grpc::ClientContext>> subs_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

TEST_P(SecAggBadInputTest, RejectedDroppedAndTheOthersFinish) {
  const Case& bad = GetParam();
  const std::string run = CreateAndStartRun();
  std::vector<grpc::Status> results(kClients);
  for (int i = 0; i < kClients; ++i) {
    threads_.emplace_back([this, i, &results, &bad] {
      results[i] = Participate(i, i == kBad ? &bad : nullptr);
    });
  }
  for (auto& t : threads_) t.join();
  threads_.clear();
  EXPECT_EQ(results[kBad].error_code(), bad.code) << results[kBad].error_message();
  EXPECT_THAT(results[kBad].error_message(), HasSubstr(bad.message));
  for (int i = 0; i < kBad; ++i) EXPECT_TRUE(results[i].ok()) << i << results[i].error_message();

  wire::v1::RunStatus s;
  for (int i = 0; i < 300; ++i) {
    s = Status(run);
    if (s.state() != wire::v1::RUNNING) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(s.state(), wire::v1::COMPLETED) << s.DebugString();
  const wire::v1::RoundSummary& round = s.rounds(0);
  EXPECT_EQ(round.reported(), 4u);
  EXPECT_EQ(round.num_examples(), 40u);
  bool listed = false;
  for (const auto& phase : round.secagg().phases()) {
    for (const auto& r : phase.rejected()) listed = listed || absl::StartsWith(r, "c4: ");
  }
  EXPECT_TRUE(listed) << round.secagg().DebugString();
  // The new model moved by the weighted mean of the four honest deltas (0.01 .. 0.04).
  absl::StatusOr<ArrayRecord> model = ExportLatestModel(*control_, run);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_NEAR(model->tensors[0].values<float>()[0], 0.025f, 1e-4);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SecAggBadInputTest,
    ::testing::Values(
        Case{"WrongNumberOfShares", secagg::v1::SHARE_KEYS,
             [](ClientToServer& m) { m.mutable_share_keys()->mutable_shares()->RemoveLast(); },
             grpc::StatusCode::INVALID_ARGUMENT, "shares for"},
        Case{"ShareForUnknownPeer", secagg::v1::SHARE_KEYS,
             [](ClientToServer& m) { m.mutable_share_keys()->mutable_shares(0)->set_receiver(77); },
             grpc::StatusCode::INVALID_ARGUMENT, "unknown client 77"},
        Case{"ReplayedAdvertisement", secagg::v1::SHARE_KEYS,
             [](ClientToServer& m) {
               ClientToServer replay;
               *replay.mutable_advertise_keys()->mutable_header() = m.share_keys().header();
               replay.mutable_advertise_keys()->mutable_header()->set_phase(
                   secagg::v1::ADVERTISE_KEYS);
               m = replay;
             },
             grpc::StatusCode::ALREADY_EXISTS, "replayed"},
        Case{"ReorderedPhase", secagg::v1::SHARE_KEYS,
             [](ClientToServer& m) {
               m.mutable_share_keys()->mutable_header()->set_phase(
                   secagg::v1::MASKED_INPUT_COLLECTION);
             },
             grpc::StatusCode::FAILED_PRECONDITION, "during phase SHARE_KEYS"},
        Case{"MismatchedSession", secagg::v1::MASKED_INPUT_COLLECTION,
             [](ClientToServer& m) {
               m.mutable_masked_input()->mutable_header()->set_session_id("forged");
             },
             grpc::StatusCode::INVALID_ARGUMENT, "session 'forged'"},
        Case{"MaskedVectorOfWrongLength", secagg::v1::MASKED_INPUT_COLLECTION,
             [](ClientToServer& m) {
               m.mutable_masked_input()->mutable_tensors(0)->mutable_values()->RemoveLast();
             },
             grpc::StatusCode::INVALID_ARGUMENT, "of length 999"},
        Case{"SignatureDoesNotVerify", secagg::v1::ADVERTISE_KEYS,
             [](ClientToServer& m) {
               (*m.mutable_advertise_keys()->mutable_signature())[3] ^= 1;
             },
             grpc::StatusCode::PERMISSION_DENIED, "signature"}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace tessera::testing_support
