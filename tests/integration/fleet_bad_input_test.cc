// Bad input over the real wire: an in-process coordinator with mTLS on 127.0.0.1, and this
// test speaking the Fleet/Control protocol directly to send what real clients never would.
#include <chrono>
#include <cmath>
#include <cstring>
#include <deque>
#include <filesystem>
#include <thread>

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/synchronization/mutex.h"
#include "coordinator/service/server.h"
#include "core/serde/tensor_stream.h"
#include "tessera/wire/v1/control.grpc.pb.h"
#include "tessera/wire/v1/fleet.grpc.pb.h"
#include "tests/integration/control_helpers.h"
#include "tests/integration/log_capture.h"
#include "tests/integration/mtls_coordinator.h"
#include "tests/integration/process.h"

namespace tessera::testing_support {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

ArrayRecord Model(float value, int64_t steps) {
  ArrayRecord r;
  std::vector<float> w(1000, value);
  r.tensors.push_back(*Tensor::FromFloats("w", {10, 100}, w));
  r.tensors.push_back(*Tensor::Create("steps", DType::kInt64, {},
                                      std::string(reinterpret_cast<char*>(&steps), 8)));
  return r;
}

std::vector<wire::v1::TensorChunk> Chunks(const ArrayRecord& r) {
  std::vector<wire::v1::TensorChunk> out;
  TensorStreamWriter w(&r);
  wire::v1::TensorChunk c;
  while (w.Next(&c)) out.push_back(c);
  return out;
}

class FleetBadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("badinput");
    ASSERT_TRUE(MakePki(dir_ + "/pki", {"good", "other"}));
    ASSERT_TRUE(MakePki(dir_ + "/rogue", {"good"}));  // another CA, same names
    coordinator::CoordinatorServerOptions o = MtlsCoordinatorOptions(dir_, dir_ + "/pki");
    o.fold_memory_bytes = fold_memory_bytes_;
    auto server = coordinator::CoordinatorServer::Start(o);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    control_ = wire::v1::Control::NewStub(Channel("pki", "operator"));
  }
  void TearDown() override {
    if (subscription_ctx_) subscription_ctx_->TryCancel();
    if (subscriber_.joinable()) subscriber_.join();
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::shared_ptr<grpc::Channel> Channel(const std::string& pki, const std::string& who) {
    return MtlsChannel(dir_, server_->port(), pki, who);
  }

  std::string CreateAndStartRun(const wire::v1::CompressionConfig* compression = nullptr,
                                uint32_t rounds = 1) {
    wire::v1::RunConfig config;
    auto* c = &config;
    if (compression != nullptr) *c->mutable_compression() = *compression;
    c->set_name("bad-input");
    c->set_rounds(rounds);
    c->mutable_model()->set_architecture("mlp");
    c->mutable_train()->set_local_epochs(1);
    c->mutable_train()->set_batch_size(1);
    c->mutable_train()->set_learning_rate(0.1);
    c->mutable_selection()->set_clients_per_round(1);
    c->mutable_selection()->set_min_clients(1);
    c->mutable_selection()->set_wait_for_clients_seconds(30);
    c->mutable_round()->set_deadline_seconds(60);
    c->mutable_evaluation()->set_every(0);
    c->mutable_evaluation()->set_deadline_seconds(10);
    std::string error;
    const std::string run = testing_support::CreateAndStartRun(*control_, config,
                                                               Model(1.0f, 5), &error);
    EXPECT_FALSE(run.empty()) << error;
    return run;
  }

  // Registers `name` and subscribes on a thread; tasks land in tasks_.
  std::string RegisterAndSubscribe(wire::v1::Fleet::Stub& stub, const std::string& name) {
    grpc::ClientContext ctx;
    wire::v1::RegisterRequest req;
    req.set_name(name);
    wire::v1::RegisterResponse resp;
    grpc::Status s = stub.Register(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    Subscribe(stub, resp.session_id());
    return resp.session_id();
  }

  // Subscribes with `session` on a thread; tasks land in tasks_.
  void Subscribe(wire::v1::Fleet::Stub& stub, const std::string& session) {
    subscription_ctx_ = std::make_unique<grpc::ClientContext>();
    subscriber_ = std::thread([this, &stub, session] {
      wire::v1::SubscribeRequest sub;
      sub.set_session_id(session);
      auto reader = stub.Subscribe(subscription_ctx_.get(), sub);
      wire::v1::Task t;
      while (reader->Read(&t)) {
        absl::MutexLock l(&mu_);
        if (t.type() == wire::v1::TRAIN) tasks_.push_back(t);
      }
      reader->Finish();
    });
  }

  wire::v1::Task NextTask() {
    absl::MutexLock l(&mu_);
    auto has = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !tasks_.empty(); };
    EXPECT_TRUE(mu_.AwaitWithTimeout(absl::Condition(&has), absl::Seconds(30)));
    wire::v1::Task t = tasks_.empty() ? wire::v1::Task() : tasks_.front();
    if (!tasks_.empty()) tasks_.pop_front();
    return t;
  }

  grpc::Status Push(wire::v1::Fleet::Stub& stub, const std::string& session,
                    const std::string& task_id, const std::vector<wire::v1::TensorChunk>& chunks,
                    uint64_t examples = 10,
                    const wire::v1::CompressionConfig* compression = nullptr) {
    grpc::ClientContext ctx;
    if (!session.empty()) ctx.AddMetadata("x-tessera-session", session);
    wire::v1::PushUpdateResponse resp;
    auto w = stub.PushUpdate(&ctx, &resp);
    wire::v1::PushUpdateRequest m;
    m.mutable_header()->set_task_id(task_id);
    m.mutable_header()->set_num_examples(examples);
    if (compression != nullptr) *m.mutable_header()->mutable_compression() = *compression;
    bool ok = w->Write(m);
    for (size_t i = 0; ok && i < chunks.size(); ++i) {
      m.Clear();
      *m.mutable_chunk() = chunks[i];
      ok = w->Write(m);
    }
    w->WritesDone();
    return w->Finish();
  }

  wire::v1::RunStatus Status(const std::string& run) { return GetRunStatus(*control_, run); }

  // Files under the coordinator's staging directory (staged updates of open rounds).
  size_t StagedFiles() const {
    size_t n = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir_ + "/state/staging")) {
      if (e.is_regular_file()) ++n;
    }
    return n;
  }

  void EveryBadUpdateIsRejectedAndTheRoundStillCompletes();

  uint64_t fold_memory_bytes_ = coordinator::CoordinatorServerOptions().fold_memory_bytes;
  std::string dir_;
  std::unique_ptr<coordinator::CoordinatorServer> server_;
  std::unique_ptr<wire::v1::Control::Stub> control_;
  std::unique_ptr<grpc::ClientContext> subscription_ctx_;
  std::thread subscriber_;
  absl::Mutex mu_;
  std::deque<wire::v1::Task> tasks_ ABSL_GUARDED_BY(mu_);
};

// A second Subscribe of the same session takes over the client's tasks: the first stream
// ends at once with ABORTED saying why (it used to stay open, silently getting nothing), and
// the run's task arrives on the second.
TEST_F(FleetBadInputTest, ASecondSubscribeOfTheSessionEndsTheFirstStream) {
  auto good = wire::v1::Fleet::NewStub(Channel("pki", "good"));
  grpc::ClientContext register_ctx;
  wire::v1::RegisterRequest req;
  req.set_name("good");
  wire::v1::RegisterResponse resp;
  ASSERT_TRUE(good->Register(&register_ctx, req, &resp).ok());
  grpc::ClientContext first_ctx;
  first_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  wire::v1::SubscribeRequest sub;
  sub.set_session_id(resp.session_id());
  auto first = good->Subscribe(&first_ctx, sub);
  wire::v1::Task t;
  ASSERT_TRUE(first->Read(&t));
  EXPECT_EQ(t.type(), wire::v1::PING);

  Subscribe(*good, resp.session_id());
  EXPECT_FALSE(first->Read(&t)) << "the first stream got " << t.ShortDebugString();
  const grpc::Status ended = first->Finish();
  EXPECT_EQ(ended.error_code(), grpc::ABORTED) << ended.error_message();
  EXPECT_EQ(ended.error_message(),
            "task stream displaced by a newer Subscribe of client good");

  CreateAndStartRun();
  EXPECT_FALSE(NextTask().task_id().empty());
}

// The same with every round staged on disk (--fold-memory-bytes 0): uploads stream into
// their staging file tensor by tensor, and a rejected one leaves no file behind.
class FleetStagedBadInputTest : public FleetBadInputTest {
 public:
  FleetStagedBadInputTest() { fold_memory_bytes_ = 0; }
};

TEST_F(FleetBadInputTest, EveryBadUpdateIsRejectedAndTheRoundStillCompletes) {
  EveryBadUpdateIsRejectedAndTheRoundStillCompletes();
}

TEST_F(FleetStagedBadInputTest, EveryBadUpdateIsRejectedAndTheRoundStillCompletes) {
  EveryBadUpdateIsRejectedAndTheRoundStillCompletes();
}

// An upload whose call the client cancels midway (all tensors sent, no end message) is
// refused as CANCELLED with the bytes that arrived, not as a truncated stream (which is what
// a client's early half-close is, above), its staging file is removed, and the same client's
// next, whole upload completes the round.
TEST_F(FleetStagedBadInputTest, ACancelledUploadIsReportedAsCancelledAndLeavesNoFile) {
  auto good = wire::v1::Fleet::NewStub(Channel("pki", "good"));
  const std::string run = CreateAndStartRun();
  const std::string session = RegisterAndSubscribe(*good, "good");
  const wire::v1::Task task = NextTask();
  ASSERT_FALSE(task.task_id().empty());
  const std::vector<wire::v1::TensorChunk> chunks = Chunks(Model(0.5f, 1));
  ASSERT_GE(chunks.size(), 2u);

  LogCapture log;
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-tessera-session", session);
    wire::v1::PushUpdateResponse resp;
    auto w = good->PushUpdate(&ctx, &resp);
    wire::v1::PushUpdateRequest m;
    m.mutable_header()->set_task_id(task.task_id());
    m.mutable_header()->set_num_examples(10);
    ASSERT_TRUE(w->Write(m));
    for (size_t i = 0; i + 1 < chunks.size(); ++i) {  // every chunk but the end message
      m.Clear();
      *m.mutable_chunk() = chunks[i];
      ASSERT_TRUE(w->Write(m));
    }
    // The coordinator has read the first tensor once its staging file exists.
    for (int i = 0; i < 600 && StagedFiles() == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_EQ(StagedFiles(), 1u);
    ctx.TryCancel();
    EXPECT_EQ(w->Finish().error_code(), grpc::CANCELLED);
  }
  const std::string expected = "the update stream was cancelled after ";
  for (int i = 0; i < 600 && log.text().find(expected) == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_THAT(log.text(), HasSubstr(expected));
  EXPECT_THAT(log.text(), HasSubstr("bytes of tensor data"));
  EXPECT_THAT(log.text(), Not(HasSubstr("truncated")));
  EXPECT_EQ(StagedFiles(), 0u);
  EXPECT_EQ(Status(run).rounds(0).reported(), 0u);

  grpc::Status ok = Push(*good, session, task.task_id(), chunks);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  for (int i = 0; i < 200 && Status(run).state() != wire::v1::COMPLETED; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(Status(run).state(), wire::v1::COMPLETED);
}

void FleetBadInputTest::EveryBadUpdateIsRejectedAndTheRoundStillCompletes() {
  auto good = wire::v1::Fleet::NewStub(Channel("pki", "good"));
  auto other = wire::v1::Fleet::NewStub(Channel("pki", "other"));
  const std::string run = CreateAndStartRun();
  const std::string session = RegisterAndSubscribe(*good, "good");
  const wire::v1::Task task = NextTask();
  ASSERT_FALSE(task.task_id().empty());

  ArrayRecord delta = Model(0.5f, 1);
  std::vector<wire::v1::TensorChunk> chunks = Chunks(delta);

  // Unknown task; no session; another client's session for this task.
  EXPECT_EQ(Push(*good, session, "no-such-task", chunks).error_code(), grpc::NOT_FOUND);
  EXPECT_EQ(Push(*good, "", task.task_id(), chunks).error_code(), grpc::UNAUTHENTICATED);
  {
    grpc::ClientContext ctx;
    wire::v1::RegisterRequest req;
    req.set_name("other");
    wire::v1::RegisterResponse resp;
    ASSERT_TRUE(other->Register(&ctx, req, &resp).ok());
    grpc::Status s = Push(*other, resp.session_id(), task.task_id(), chunks);
    EXPECT_EQ(s.error_code(), grpc::PERMISSION_DENIED) << s.error_message();
    // ...and "other" cannot use good's session either: the certificate must match.
    EXPECT_EQ(Push(*other, session, task.task_id(), chunks).error_code(),
              grpc::PERMISSION_DENIED);
  }
  // A data card with a bad field: the registration is refused naming the field.
  {
    grpc::ClientContext ctx;
    wire::v1::RegisterRequest req;
    req.set_name("other");
    req.mutable_data_card()->set_name("images");
    req.mutable_data_card()->set_description("d");
    req.mutable_data_card()->set_license("CC BY");
    req.mutable_data_card()->set_contact("c");
    wire::v1::RegisterResponse resp;
    grpc::Status s = other->Register(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("data_card.license"));
  }
  // A data report the task did not ask for (a class histogram) is refused.
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-tessera-session", session);
    wire::v1::ReportDataRequest req;
    req.set_task_id(task.task_id());
    req.mutable_report()->set_example_count_bucket(task.data_report().example_count_bucket());
    req.mutable_report()->add_class_histogram(7);
    wire::v1::ReportDataResponse resp;
    grpc::Status s = good->ReportData(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr("did not ask for a class histogram"));
  }
  // Oversized chunk.
  {
    std::vector<wire::v1::TensorChunk> big = chunks;
    big[2].set_data(std::string(kMaxChunkBytes + 1, '\0'));
    grpc::Status s = Push(*good, session, task.task_id(), big);
    EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("exceeds the limit"));
  }
  // A message over the coordinator's 32 MiB gRPC limit never reaches our code.
  {
    std::vector<wire::v1::TensorChunk> huge = chunks;
    huge[2].set_data(std::string(33 << 20, '\0'));
    EXPECT_EQ(Push(*good, session, task.task_id(), huge).error_code(),
              grpc::RESOURCE_EXHAUSTED);
  }
  // Truncated stream (no end message, data cut short).
  {
    std::vector<wire::v1::TensorChunk> cut(chunks.begin(), chunks.begin() + 3);
    cut[2].set_data(cut[2].data().substr(0, 100));
    grpc::Status s = Push(*good, session, task.task_id(), cut);
    EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("truncated"));
  }
  // Shape and dtype that do not match the model.
  {
    ArrayRecord wrong;
    wrong.tensors.push_back(*Tensor::FromFloats("w", {1000}, std::vector<float>(1000, 0.5f)));
    wrong.tensors.push_back(delta.tensors[1]);
    grpc::Status s = Push(*good, session, task.task_id(), Chunks(wrong));
    EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("expected w float32[10,100]"));
    ArrayRecord wrong_dtype = delta;
    wrong_dtype.tensors[1] = *Tensor::Create("steps", DType::kFloat64, {}, std::string(8, '\0'));
    EXPECT_EQ(Push(*good, session, task.task_id(), Chunks(wrong_dtype)).error_code(),
              grpc::INVALID_ARGUMENT);
  }
  // NaN and Inf.
  {
    ArrayRecord nan = delta;
    nan.tensors[0].mutable_values<float>()[17] = std::nanf("");
    grpc::Status s = Push(*good, session, task.task_id(), Chunks(nan));
    EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("non-finite value at index 17"));
    ArrayRecord inf = delta;
    inf.tensors[0].mutable_values<float>()[0] = INFINITY;
    EXPECT_EQ(Push(*good, session, task.task_id(), Chunks(inf)).error_code(),
              grpc::INVALID_ARGUMENT);
  }
  // Corrupted bytes: the SHA-256 does not match.
  {
    std::vector<wire::v1::TensorChunk> corrupt = chunks;
    (*corrupt[2].mutable_data())[5] ^= 0x40;
    grpc::Status s = Push(*good, session, task.task_id(), corrupt);
    EXPECT_EQ(s.error_code(), grpc::DATA_LOSS);
  }
  // Zero examples.
  EXPECT_EQ(Push(*good, session, task.task_id(), chunks, 0).error_code(), grpc::INVALID_ARGUMENT);

  // None of that changed the round, or left a staged file.
  EXPECT_EQ(StagedFiles(), 0u);
  wire::v1::RunStatus s = Status(run);
  EXPECT_EQ(s.state(), wire::v1::RUNNING);
  ASSERT_EQ(s.rounds_size(), 1);
  EXPECT_EQ(s.rounds(0).reported(), 0u);
  EXPECT_EQ(s.completed_rounds(), 0u);

  // The good update is accepted once; the round completes with exactly initial + delta.
  grpc::Status ok = Push(*good, session, task.task_id(), chunks);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_NE(Push(*good, session, task.task_id(), chunks).error_code(), grpc::OK);
  for (int i = 0; i < 200 && Status(run).state() != wire::v1::COMPLETED; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(Status(run).state(), wire::v1::COMPLETED);
  absl::StatusOr<ArrayRecord> final_model = ExportLatestModel(*control_, run);
  ASSERT_TRUE(final_model.ok()) << final_model.status();
  EXPECT_EQ(final_model->tensors[0].values<float>()[999], 1.5f);
  EXPECT_EQ(final_model->tensors[1].values<int64_t>()[0], 6);
  EXPECT_EQ(StagedFiles(), 0u);
}

// Compressed uploads (docs/compression.md): the coordinator decodes the encoding the run asked
// for and refuses a malformed payload, or any other encoding than the run's, with
// INVALID_ARGUMENT naming the tensor and the fault, before anything reaches the round; a
// well-formed int8 upload then completes it exactly, and so does float32 (an older client's)
// the next round.
TEST_F(FleetBadInputTest, CompressedUpdatesAreDecodedOrRejected) {
  auto good = wire::v1::Fleet::NewStub(Channel("pki", "good"));
  wire::v1::CompressionConfig int8;
  int8.set_method(wire::v1::CompressionConfig::INT8);
  int8.set_block_size(256);
  const std::string run = CreateAndStartRun(&int8, /*rounds=*/2);
  const std::string session = RegisterAndSubscribe(*good, "good");
  const wire::v1::Task task = NextTask();
  ASSERT_FALSE(task.task_id().empty());
  EXPECT_EQ(task.compression().method(), wire::v1::CompressionConfig::INT8);
  const ArrayRecord delta = Model(0.5f, 1);
  // w: 1000 values in 4 blocks = 4 scales (16 bytes) + 1000 codes.
  auto with_w = [&](std::string payload) {
    ArrayRecord r = delta;
    const int64_t n = static_cast<int64_t>(payload.size());
    r.tensors[0] = *Tensor::Create("w", DType::kUInt8, {n}, std::move(payload));
    return Chunks(r);
  };
  auto expect_invalid = [&](const std::vector<wire::v1::TensorChunk>& chunks,
                            const wire::v1::CompressionConfig* c, const std::string& why) {
    grpc::Status s = Push(*good, session, task.task_id(), chunks, 10, c);
    EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT) << why;
    EXPECT_THAT(s.error_message(), HasSubstr(why));
  };
  expect_invalid(with_w(std::string(1000, '\1')), &int8,
                 "tensor \"w\": int8 payload of 1000 values must be 1016 bytes, got 1000");
  std::string nan_scale(1016, '\1');
  const float nan = std::nanf("");
  std::memcpy(nan_scale.data() + 8, &nan, 4);
  expect_invalid(with_w(nan_scale), &int8, "int8 scale 2 must be finite and >= 0");
  // The float32 tensor itself under the int8 header; and a payload over the cap of twice the
  // model's bytes plus 16 per tensor (2 * 4008 + 32).
  expect_invalid(Chunks(delta), &int8, "\"w\" must be a rank-1 uint8 payload");
  expect_invalid(with_w(std::string(8100, '\0')), &int8, "bytes exceeds the limit of 8048");

  // Any other encoding than the run's is refused at the header, whatever its payload: a
  // client cannot choose a sparser or lossier update than the run allows, nor skip it.
  const std::string other = "is not the one task " + task.task_id() +
                            " asked for (method INT8, block_size 256";
  wire::v1::CompressionConfig topk;
  topk.set_method(wire::v1::CompressionConfig::TOPK);
  topk.set_topk_fraction(0.5);
  std::string top;
  for (uint32_t i : {5u, 7u}) top.append(reinterpret_cast<const char*>(&i), 4);
  for (float v : {1.0f, 1.0f}) top.append(reinterpret_cast<const char*>(&v), 4);
  expect_invalid(with_w(top), &topk, "(compression method TOPK, block_size 0, topk_fraction 0.5)");
  expect_invalid(with_w(top), &topk, other);
  wire::v1::CompressionConfig fp16;
  fp16.set_method(wire::v1::CompressionConfig::FLOAT16);
  std::string halves;
  for (int i = 0; i < 1000; ++i) halves.append("\x00\x38", 2);  // 0x3800 = 0.5
  expect_invalid(with_w(halves), &fp16, other);
  wire::v1::CompressionConfig int8_other_block = int8;
  int8_other_block.set_block_size(128);
  expect_invalid(with_w(std::string(1032, '\0')), &int8_other_block, other);
  wire::v1::CompressionConfig unknown;
  unknown.set_method(static_cast<wire::v1::CompressionConfig::Method>(9));
  expect_invalid(with_w(std::string(1016, '\0')), &unknown, "compression method number 9");
  EXPECT_EQ(Status(run).rounds(0).reported(), 0u);

  // int8: scales 0.5 and every code 1 decode to exactly 0.5, so the round ends at exactly
  // initial + delta; the int64 tensor travels as it is.
  std::string codes;
  for (int b = 0; b < 4; ++b) {
    const float scale = 0.5f;
    codes.append(reinterpret_cast<const char*>(&scale), 4);
  }
  codes.append(1000, '\1');
  grpc::Status ok = Push(*good, session, task.task_id(), with_w(codes), 10, &int8);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  const wire::v1::Task second = NextTask();
  ASSERT_FALSE(second.task_id().empty());
  ok = Push(*good, session, second.task_id(), Chunks(delta), 10, nullptr);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  for (int i = 0; i < 200 && Status(run).state() != wire::v1::COMPLETED; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(Status(run).state(), wire::v1::COMPLETED);
  // Each round counts the bytes that travelled: 1016 + 8, then 4000 + 8.
  EXPECT_EQ(Status(run).rounds(0).bytes_up(), 1024u);
  EXPECT_EQ(Status(run).rounds(1).bytes_up(), 4008u);
  absl::StatusOr<ArrayRecord> final_model = ExportLatestModel(*control_, run);
  ASSERT_TRUE(final_model.ok()) << final_model.status();
  EXPECT_EQ(final_model->tensors[0].values<float>()[999], 2.0f);
  EXPECT_EQ(final_model->tensors[1].values<int64_t>()[0], 7);
}

TEST_F(FleetBadInputTest, IdentityAndRoleChecks) {
  // A client certificate cannot call operator RPCs.
  auto as_client = wire::v1::Control::NewStub(Channel("pki", "good"));
  grpc::ClientContext c1;
  wire::v1::ListRunsResponse runs;
  grpc::Status s = as_client->ListRuns(&c1, {}, &runs);
  EXPECT_EQ(s.error_code(), grpc::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("requires role \"operator\""));
  // An operator certificate cannot register as a client, nor a client under another name.
  auto as_operator = wire::v1::Fleet::NewStub(Channel("pki", "operator"));
  grpc::ClientContext c2;
  wire::v1::RegisterRequest req;
  req.set_name("operator");
  wire::v1::RegisterResponse resp;
  EXPECT_EQ(as_operator->Register(&c2, req, &resp).error_code(), grpc::PERMISSION_DENIED);
  auto good = wire::v1::Fleet::NewStub(Channel("pki", "good"));
  grpc::ClientContext c3;
  req.set_name("other");
  s = good->Register(&c3, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("does not match the certificate"));
  // A certificate from another CA never gets through the TLS handshake.
  auto rogue = wire::v1::Fleet::NewStub(Channel("rogue", "good"));
  grpc::ClientContext c4;
  c4.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  req.set_name("good");
  EXPECT_EQ(rogue->Register(&c4, req, &resp).error_code(), grpc::UNAVAILABLE);
  // Unknown run; invalid config: clear statuses, nothing stored.
  grpc::ClientContext c5;
  wire::v1::RunRef ref;
  ref.set_run_id("does-not-exist");
  wire::v1::RunStatus status;
  s = control_->GetRunStatus(&c5, ref, &status);
  EXPECT_EQ(s.error_code(), grpc::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("does-not-exist"));
  grpc::ClientContext c6;
  auto w = control_->CreateRun(&c6, &status);
  wire::v1::CreateRunRequest m;
  m.mutable_config()->set_name("x");
  m.mutable_config()->set_rounds(0);
  w->Write(m);
  w->WritesDone();
  s = w->Finish();
  EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT);
  grpc::ClientContext c7;
  ASSERT_TRUE(control_->ListRuns(&c7, {}, &runs).ok());
  EXPECT_EQ(runs.runs_size(), 0);
}

}  // namespace
}  // namespace tessera::testing_support
