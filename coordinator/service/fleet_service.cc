#include "coordinator/service/fleet_service.h"

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "coordinator/round/peer_text.h"
#include "coordinator/service/auth.h"
#include "coordinator/service/outbound_stream.h"
#include "coordinator/service/reactors.h"
#include "core/base/status_macros.h"
#include "core/base/version.h"
#include "core/config/data_card.h"
#include "core/crypto/sha256.h"
#include "core/serde/grpc_status.h"
#include "core/serde/tensor_stream.h"

namespace tessera::coordinator {
namespace {

// Streams a model snapshot; the snapshot stays alive while it is written. At most the gate's
// slots stream at once; the others wait unstarted, so memory does not grow with the number of
// clients fetching. A slot holds its chunk twice (the message and gRPC's serialized copy until
// the write completes), so chunks are kDownloadChunkBytes, not the 1 MiB the stream allows:
// 16 slots hold 8 MiB instead of 32 (0.8x of a 10M-parameter model).
constexpr size_t kDownloadChunkBytes = 256 << 10;

class ModelWriter final : public grpc::ServerWriteReactor<wire::v1::TensorChunk> {
 public:
  ModelWriter(std::shared_ptr<const ModelSnapshot> model, std::function<void(uint64_t)> done,
              UploadGate* gate)
      : model_(std::move(model)),
        writer_(&model_->weights, model_->digest, kDownloadChunkBytes),
        done_(std::move(done)),
        gate_(gate),
        guard_(std::make_shared<Guard>()) {
    guard_->reactor = this;
    guard_->waiting = true;
    std::shared_ptr<Guard> guard = guard_;
    gate_->Enter([guard, gate] {
      ModelWriter* start = nullptr;
      {
        absl::MutexLock l(&guard->mu);
        if (guard->reactor != nullptr && guard->waiting) {
          guard->waiting = false;
          guard->holds_slot = true;
          start = guard->reactor;
        }
      }
      if (start == nullptr) {
        gate->Leave();  // the fetch is gone; pass the slot on
        return;
      }
      // Not finished yet (waiting was set), so the reactor is alive.
      start->WriteNext();
    });
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "client stopped reading"));
      return;
    }
    WriteNext();
  }
  void OnCancel() override {
    bool finish = false;
    {
      absl::MutexLock l(&guard_->mu);
      finish = guard_->waiting;
      guard_->waiting = false;
    }
    if (finish) Finish(grpc::Status::CANCELLED);
  }
  void OnDone() override {
    bool release = false;
    {
      absl::MutexLock l(&guard_->mu);
      guard_->reactor = nullptr;
      release = guard_->holds_slot;
    }
    if (release) gate_->Leave();
    done_(writer_.data_bytes_sent());
    delete this;
  }

 private:
  struct Guard {
    absl::Mutex mu;
    ModelWriter* reactor = nullptr;
    bool waiting = false;
    bool holds_slot = false;
  };
  void WriteNext() {
    if (writer_.Next(&chunk_)) {
      StartWrite(&chunk_);
    } else {
      Finish(grpc::Status::OK);
    }
  }
  std::shared_ptr<const ModelSnapshot> model_;
  TensorStreamWriter writer_;
  wire::v1::TensorChunk chunk_;
  std::function<void(uint64_t)> done_;
  UploadGate* const gate_;
  std::shared_ptr<Guard> guard_;
};

class ArtifactWriter final : public grpc::ServerWriteReactor<wire::v1::ArtifactChunk> {
 public:
  explicit ArtifactWriter(std::string data) : data_(std::move(data)) { WriteNext(); }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "client stopped reading"));
      return;
    }
    WriteNext();
  }
  void OnDone() override { delete this; }

 private:
  void WriteNext() {
    if (offset_ > data_.size()) {
      Finish(grpc::Status::OK);
      return;
    }
    const size_t n = std::min(kMaxChunkBytes, data_.size() - offset_);
    chunk_.Clear();
    chunk_.set_data(data_.substr(offset_, n));
    offset_ += n;
    if (offset_ == data_.size()) {
      chunk_.set_sha256(crypto::Sha256Digest(data_));
      offset_ = data_.size() + 1;  // finish after this write
    }
    StartWrite(&chunk_);
  }
  std::string data_;
  size_t offset_ = 0;
  wire::v1::ArtifactChunk chunk_;
};


}  // namespace

absl::Status ValidateRegisterRequest(const wire::v1::RegisterRequest& request) {
  TESSERA_RETURN_IF_ERROR(ValidateClientName(request.name()));
  struct Field {
    const char* name;
    const std::string* value;
    size_t limit;  // bytes
  };
  const Field fields[] = {{"device", &request.device(), 64},
                          {"version", &request.version(), 128}};
  for (const auto& [field, value, limit] : fields) {
    if (value->size() > limit) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": at most ", limit, " bytes, got ", value->size()));
    }
    for (char c : *value) {
      if (c < 0x20 || c > 0x7e) {
        return absl::InvalidArgumentError(absl::StrCat(
            field, ": \"", PeerText(*value), "\" may only use printable ASCII (0x20 to 0x7E)"));
      }
    }
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* FleetService::Register(grpc::CallbackServerContext* context,
                                                 const wire::v1::RegisterRequest* request,
                                                 wire::v1::RegisterResponse* response) {
  absl::StatusOr<Caller> caller = Authenticate(*context, options_.insecure, Role::kClient, options_.trust);
  if (!caller.ok()) return FinishUnary(context, caller.status());
  // The name is checked first: everything below may log it.
  if (absl::Status s = ValidateRegisterRequest(*request); !s.ok()) {
    LOG(WARNING) << "refused registration at " << caller->peer << ": " << s.message();
    return FinishUnary(context, s);
  }
  if (!options_.insecure && request->name() != caller->identity) {
    LOG(WARNING) << "refused registration of \"" << request->name() << "\" by certificate "
                 << PeerText(caller->identity);
    return FinishUnary(context, absl::PermissionDeniedError(absl::StrCat(
                                    "name \"", request->name(), "\" does not match the "
                                    "certificate's CN \"", PeerText(caller->identity), "\"")));
  }
  if (request->has_data_card()) {
    if (absl::Status s = ValidateDataCard(request->data_card()); !s.ok()) {
      LOG(WARNING) << "refused registration of \"" << request->name() << "\": data card: "
                   << PeerText(s.message(), 4 * kMaxPeerTextBytes);
      return FinishUnary(context, absl::InvalidArgumentError(
                                      absl::StrCat("data_card.", s.message())));
    }
  }
  absl::StatusOr<std::string> session = registry_->Register(
      request->name(), request->device(), request->version(), caller->organization,
      request->has_data_card() ? &request->data_card() : nullptr, caller->certificate_pem);
  if (!session.ok()) return FinishUnary(context, session.status());
  storage::v1::ClientRecord record;
  record.set_name(request->name());
  record.set_device(request->device());
  record.set_version(request->version());
  record.set_organization(caller->organization);
  if (request->has_data_card()) *record.mutable_data_card() = request->data_card();
  record.set_last_seen_unix_ms(absl::ToUnixMillis(absl::Now()));
  // This client's entry only: copying and sorting the whole registry on every Register made
  // connecting N clients cost O(N^2 log N) under the registry's lock.
  if (absl::StatusOr<wire::v1::ClientInfo> info = registry_->Info(request->name()); info.ok()) {
    record.set_rounds_participated(info->rounds_participated());
  }
  if (absl::Status s = state_->PutClient(record); !s.ok()) {
    LOG(ERROR) << "cannot persist client " << request->name() << ": " << s;
  }
  LOG(INFO) << "client " << request->name() << " registered (" << PeerText(request->device())
            << ", " << caller->peer << ")";
  response->set_client_id(request->name());
  response->set_session_id(*session);
  return FinishUnary(context, absl::OkStatus());
}

grpc::ServerWriteReactor<wire::v1::Task>* FleetService::Subscribe(
    grpc::CallbackServerContext* context, const wire::v1::SubscribeRequest* request) {
  absl::StatusOr<Caller> caller = Authenticate(*context, options_.insecure, Role::kClient, options_.trust);
  if (!caller.ok()) return FailedWriter<wire::v1::Task>(caller.status());
  absl::StatusOr<std::string> name = registry_->Lookup(request->session_id());
  if (!name.ok()) return FailedWriter<wire::v1::Task>(name.status());
  if (!options_.insecure && *name != caller->identity) {
    return FailedWriter<wire::v1::Task>(
        absl::PermissionDeniedError("the session belongs to another client"));
  }
  auto token = std::make_shared<std::atomic<uint64_t>>(0);
  ClientRegistry* registry = registry_;
  std::string client = *name;
  auto [stream, reactor] = OutboundStream<wire::v1::Task>::Create([registry, client, token] {
    registry->Detach(client, token->load());
    LOG(INFO) << "client " << client << " unsubscribed";
  });
  std::weak_ptr<OutboundStream<wire::v1::Task>> weak = stream;
  absl::StatusOr<uint64_t> attached = registry_->Attach(
      request->session_id(),
      [weak](const wire::v1::Task& task) {
        auto s = weak.lock();
        return s != nullptr && s->Push(task);
      },
      // A newer Subscribe of the client displaced this stream (ABORTED), or EndSessionsIf:
      // the certificate is no longer trusted (PERMISSION_DENIED).
      [weak](const absl::Status& why) {
        if (auto s = weak.lock()) s->Finish(ToGrpcStatus(why));
      });
  if (!attached.ok()) {
    stream->Finish(ToGrpcStatus(attached.status()));
  } else {
    *token = *attached;
    // An initial ping tells the client its subscription is live.
    wire::v1::Task ping;
    ping.set_type(wire::v1::PING);
    stream->Push(ping);
    LOG(INFO) << "client " << client << " subscribed";
    // A revocation that landed between Authenticate and Attach was swept (RevocationWatcher)
    // before this stream existed: look again now that it can be ended.
    if (options_.trust != nullptr && !options_.trust->Verify(caller->certificate_pem).ok()) {
      const std::string pem = caller->certificate_pem;
      registry_->EndSessionsIf([&pem](const std::string& p) { return p == pem; });
      return reactor;
    }
    runs_->ResendOpenTasks(client);
  }
  return reactor;
}

grpc::ServerWriteReactor<wire::v1::TensorChunk>* FleetService::FetchModel(
    grpc::CallbackServerContext* context, const wire::v1::FetchModelRequest* request) {
  absl::StatusOr<std::string> client =
      AuthenticateClient(*context, options_.insecure, *registry_, options_.trust);
  if (!client.ok()) return FailedWriter<wire::v1::TensorChunk>(client.status());
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> model =
      runs_->ModelForTask(request->task_id(), *client);
  if (!model.ok()) {
    LOG(WARNING) << "FetchModel by " << *client << ": " << model.status().message();
    return FailedWriter<wire::v1::TensorChunk>(model.status());
  }
  RunManager* runs = runs_;
  std::string task_id = request->task_id();
  return new ModelWriter(
      *model, [runs, task_id](uint64_t bytes) { runs->CountBytesDown(task_id, bytes); },
      &download_gate_);
}

grpc::ServerWriteReactor<wire::v1::ArtifactChunk>* FleetService::FetchArtifact(
    grpc::CallbackServerContext* context, const wire::v1::FetchArtifactRequest* request) {
  absl::StatusOr<std::string> client =
      AuthenticateClient(*context, options_.insecure, *registry_, options_.trust);
  if (!client.ok()) return FailedWriter<wire::v1::ArtifactChunk>(client.status());
  absl::StatusOr<std::string> artifact = runs_->ArtifactForTask(request->task_id(), *client);
  if (!artifact.ok()) return FailedWriter<wire::v1::ArtifactChunk>(artifact.status());
  return new ArtifactWriter(std::move(*artifact));
}

grpc::ServerUnaryReactor* FleetService::PushEvaluation(
    grpc::CallbackServerContext* context, const wire::v1::PushEvaluationRequest* request,
    wire::v1::PushEvaluationResponse* /*response*/) {
  absl::StatusOr<std::string> client =
      AuthenticateClient(*context, options_.insecure, *registry_, options_.trust);
  if (!client.ok()) return FinishUnary(context, client.status());
  absl::Status s = runs_->SubmitEvaluation(request->task_id(), *client, request->num_examples(),
                                           request->loss(), request->accuracy());
  if (!s.ok()) LOG(WARNING) << "evaluation from " << *client << " rejected: " << s;
  return FinishUnary(context, s);
}

grpc::ServerUnaryReactor* FleetService::ReportData(grpc::CallbackServerContext* context,
                                                   const wire::v1::ReportDataRequest* request,
                                                   wire::v1::ReportDataResponse* /*response*/) {
  absl::StatusOr<std::string> client =
      AuthenticateClient(*context, options_.insecure, *registry_, options_.trust);
  if (!client.ok()) return FinishUnary(context, client.status());
  absl::Status s = runs_->SubmitDataReport(request->task_id(), *client, request->report());
  if (!s.ok()) LOG(WARNING) << "data report from " << *client << " rejected: " << s;
  return FinishUnary(context, s);
}

grpc::ServerUnaryReactor* FleetService::ReportSitePrivacy(
    grpc::CallbackServerContext* context, const wire::v1::SitePrivacyReport* request,
    wire::v1::SitePrivacyResponse* /*response*/) {
  absl::StatusOr<std::string> client =
      AuthenticateClient(*context, options_.insecure, *registry_, options_.trust);
  if (!client.ok()) return FinishUnary(context, client.status());
  absl::Status s = runs_->ReportSitePrivacy(request->task_id(), *client, *request);
  if (!s.ok()) LOG(WARNING) << "site privacy report from " << *client << " rejected: " << s;
  return FinishUnary(context, s);
}

grpc::ServerUnaryReactor* FleetService::SecAggExchange(grpc::CallbackServerContext* context,
                                                       const wire::v1::SecAggRequest* request,
                                                       wire::v1::SecAggResponse* response) {
  absl::StatusOr<std::string> client =
      AuthenticateClient(*context, options_.insecure, *registry_, options_.trust);
  if (!client.ok()) return FinishUnary(context, client.status());
  // The call stays open until the phase closes; the round answers it exactly once. The
  // reactor and `response` live until Finish, even if the client goes away meanwhile.
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::Status s = runs_->SubmitSecAgg(
      request->task_id(), *client, request->message(),
      [reactor, response](absl::StatusOr<secagg::v1::ServerToClient> reply) {
        if (reply.ok()) {
          *response->mutable_message() = *std::move(reply);
          reactor->Finish(grpc::Status::OK);
        } else {
          reactor->Finish(ToGrpcStatus(reply.status()));
        }
      });
  if (!s.ok()) reactor->Finish(ToGrpcStatus(s));
  return reactor;
}

grpc::ServerUnaryReactor* FleetService::Heartbeat(grpc::CallbackServerContext* context,
                                                  const wire::v1::HeartbeatRequest* /*request*/,
                                                  wire::v1::HeartbeatResponse* /*response*/) {
  absl::StatusOr<std::string> client =
      AuthenticateClient(*context, options_.insecure, *registry_, options_.trust);
  return FinishUnary(context, client.status());
}

}  // namespace tessera::coordinator
