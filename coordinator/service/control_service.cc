#include "coordinator/service/control_service.h"

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "coordinator/round/peer_text.h"
#include "coordinator/service/auth.h"
#include "coordinator/service/outbound_stream.h"
#include "coordinator/service/reactors.h"
#include "core/serde/grpc_status.h"
#include "core/serde/tensor_stream.h"

namespace tessera::coordinator {
namespace {

bool IsEnded(wire::v1::RunState s) {
  return s == wire::v1::COMPLETED || s == wire::v1::CANCELLED || s == wire::v1::FAILED;
}

// CreateRun: the config, then the initial weights, then (optionally) the TorchScript program.
class CreateRunReader final : public grpc::ServerReadReactor<wire::v1::CreateRunRequest> {
 public:
  CreateRunReader(RunManager* runs, std::string who, wire::v1::RunStatus* response)
      : runs_(runs), who_(std::move(who)), response_(response) {
    actor_.name = who_;
    TensorStreamLimits limits;
    limits.require_finite = true;
    reader_ = std::make_unique<TensorStreamReader>(limits);
    StartRead(&request_);
  }
  void OnReadDone(bool ok) override {
    if (!ok) {
      Complete();
      return;
    }
    absl::Status s = Handle();
    if (!s.ok()) {
      LOG(WARNING) << "CreateRun by " << who_ << " rejected: "
                   << PeerText(s.ToString(), 4 * kMaxPeerTextBytes);
      Finish(ToGrpcStatus(s));
      return;
    }
    StartRead(&request_);
  }
  void OnDone() override { delete this; }

 private:
  absl::Status Handle() {
    switch (request_.kind_case()) {
      case wire::v1::CreateRunRequest::kConfig:
        if (has_config_) return absl::InvalidArgumentError("CreateRun: second config message");
        if (request_.cli_version().size() > 128) {
          return absl::InvalidArgumentError("CreateRun: cli_version longer than 128 bytes");
        }
        config_ = request_.config();
        actor_.cli_version = request_.cli_version();
        has_config_ = true;
        return absl::OkStatus();
      case wire::v1::CreateRunRequest::kWeights:
        if (!has_config_) return absl::InvalidArgumentError("CreateRun: weights before config");
        return reader_->Add(request_.weights());
      case wire::v1::CreateRunRequest::kArtifact:
        if (!reader_->done()) {
          return absl::InvalidArgumentError("CreateRun: program before the weights' end");
        }
        if (artifact_.size() + request_.artifact().size() > kMaxArtifactBytes) {
          return absl::InvalidArgumentError(absl::StrCat(
              "CreateRun: TorchScript program exceeds ", kMaxArtifactBytes, " bytes"));
        }
        artifact_ += request_.artifact();
        return absl::OkStatus();
      default:
        return absl::InvalidArgumentError("CreateRun: empty message");
    }
  }
  void Complete() {
    if (!has_config_) {
      Finish(ToGrpcStatus(absl::InvalidArgumentError("CreateRun: no config")));
      return;
    }
    absl::StatusOr<ArrayRecord> weights = std::move(*reader_).Finish();
    if (!weights.ok()) {
      Finish(ToGrpcStatus(weights.status()));
      return;
    }
    absl::StatusOr<wire::v1::RunStatus> status =
        runs_->CreateRun(config_, std::move(*weights), std::move(artifact_), actor_);
    if (!status.ok()) {
      LOG(WARNING) << "CreateRun by " << who_ << " rejected: "
                   << PeerText(status.status().ToString(), 4 * kMaxPeerTextBytes);
      Finish(ToGrpcStatus(status.status()));
      return;
    }
    LOG(INFO) << "run " << status->run_id() << " (" << PeerText(config_.name()) << ") created by "
              << (who_.empty() ? "operator" : who_);
    *response_ = std::move(*status);
    Finish(grpc::Status::OK);
  }

  RunManager* const runs_;
  const std::string who_;
  wire::v1::RunStatus* const response_;
  wire::v1::CreateRunRequest request_;
  wire::v1::RunConfig config_;
  Actor actor_;
  bool has_config_ = false;
  std::unique_ptr<TensorStreamReader> reader_;
  std::string artifact_;
};


class ExportWriter final : public grpc::ServerWriteReactor<wire::v1::ExportModelResponse> {
 public:
  ExportWriter(std::string run_id, RunManager::Export e, RunManager::ExportDocuments docs)
      : export_(std::move(e)), run_id_(std::move(run_id)), writer_(&export_.model->weights, export_.model->digest) {
    auto* header = message_.mutable_header();
    header->set_run_id(run_id_);
    header->set_round(export_.round);
    *header->mutable_config() = export_.config;
    header->set_model_sha256(export_.model->digest);
    header->set_artifact_bytes(export_.artifact.size());
    for (auto& [k, v] : docs.safetensors_metadata) {
      (*header->mutable_safetensors_metadata())[k] = v;
    }
    header->set_model_card(std::move(docs.model_card));
    header->set_bill_of_materials(std::move(docs.bill_of_materials));
    StartWrite(&message_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "operator stopped reading"));
      return;
    }
    message_.Clear();
    if (writer_.Next(message_.mutable_weights())) {
      StartWrite(&message_);
      return;
    }
    message_.Clear();
    if (offset_ < export_.artifact.size()) {
      const size_t n = std::min(kMaxChunkBytes, export_.artifact.size() - offset_);
      message_.set_artifact(export_.artifact.substr(offset_, n));
      offset_ += n;
      StartWrite(&message_);
      return;
    }
    Finish(grpc::Status::OK);
  }
  void OnDone() override { delete this; }

 private:
  RunManager::Export export_;
  std::string run_id_;
  TensorStreamWriter writer_;
  wire::v1::ExportModelResponse message_;
  size_t offset_ = 0;
};

}  // namespace

grpc::ServerReadReactor<wire::v1::CreateRunRequest>* ControlService::CreateRun(
    grpc::CallbackServerContext* context, wire::v1::RunStatus* response) {
  absl::StatusOr<Caller> caller = Authenticate(*context, insecure_, Role::kOperator, trust_);
  if (!caller.ok()) return FailedReader<wire::v1::CreateRunRequest>(caller.status());
  return new CreateRunReader(runs_, caller->identity, response);
}

grpc::ServerUnaryReactor* ControlService::StartRun(grpc::CallbackServerContext* context,
                                                   const wire::v1::RunRef* request,
                                                   wire::v1::RunStatus* response) {
  absl::StatusOr<Caller> caller = Authenticate(*context, insecure_, Role::kOperator, trust_);
  if (!caller.ok()) return FinishUnary(context, caller.status());
  absl::StatusOr<wire::v1::RunStatus> s = runs_->StartRun(request->run_id(), Actor{caller->identity, ""});
  if (!s.ok()) return FinishUnary(context, s.status());
  LOG(INFO) << "run " << request->run_id() << " started by " << caller->identity;
  *response = std::move(*s);
  return FinishUnary(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* ControlService::CancelRun(grpc::CallbackServerContext* context,
                                                    const wire::v1::RunRef* request,
                                                    wire::v1::RunStatus* response) {
  absl::StatusOr<Caller> caller = Authenticate(*context, insecure_, Role::kOperator, trust_);
  if (!caller.ok()) return FinishUnary(context, caller.status());
  absl::StatusOr<wire::v1::RunStatus> s = runs_->CancelRun(request->run_id(), Actor{caller->identity, ""});
  if (!s.ok()) return FinishUnary(context, s.status());
  LOG(INFO) << "run " << request->run_id() << " cancelled by " << caller->identity;
  *response = std::move(*s);
  return FinishUnary(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* ControlService::GetRunStatus(grpc::CallbackServerContext* context,
                                                       const wire::v1::RunRef* request,
                                                       wire::v1::RunStatus* response) {
  absl::StatusOr<Caller> caller = Authenticate(*context, insecure_, Role::kOperator, trust_);
  if (!caller.ok()) return FinishUnary(context, caller.status());
  absl::StatusOr<wire::v1::RunStatus> s = runs_->GetRunStatus(request->run_id());
  if (!s.ok()) return FinishUnary(context, s.status());
  *response = std::move(*s);
  return FinishUnary(context, absl::OkStatus());
}

grpc::ServerWriteReactor<wire::v1::RunStatus>* ControlService::WatchRun(
    grpc::CallbackServerContext* context, const wire::v1::RunRef* request) {
  auto watcher = std::make_shared<std::atomic<uint64_t>>(0);
  auto revocation_id = std::make_shared<std::atomic<uint64_t>>(0);
  RunManager* runs = runs_;
  RevocationWatcher* revocation = revocation_;
  auto [stream, reactor] = OutboundStream<wire::v1::RunStatus>::Create(
      [runs, watcher, revocation, revocation_id] {
        runs->RemoveWatcher(watcher->load());
        if (revocation != nullptr) revocation->RemoveStream(revocation_id->load());
      });
  absl::StatusOr<Caller> caller = Authenticate(*context, insecure_, Role::kOperator, trust_);
  absl::StatusOr<wire::v1::RunStatus> now =
      caller.ok() ? runs_->GetRunStatus(request->run_id()) : caller.status();
  if (!now.ok()) {
    stream->Finish(ToGrpcStatus(now.status()));
    return reactor;
  }
  std::weak_ptr<OutboundStream<wire::v1::RunStatus>> weak = stream;
  absl::StatusOr<uint64_t> id =
      runs_->AddWatcher(request->run_id(), [weak](const wire::v1::RunStatus& status) {
        auto s = weak.lock();
        if (s == nullptr) return;
        s->Push(status);
        if (IsEnded(status.state())) s->Finish(grpc::Status::OK);
      });
  if (!id.ok()) {
    stream->Finish(ToGrpcStatus(id.status()));
    return reactor;
  }
  *watcher = *id;
  if (revocation_ != nullptr) {
    *revocation_id = revocation_->AddStream(caller->certificate_pem, [weak] {
      if (auto s = weak.lock()) {
        s->Finish(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                               "watch ended: the operator certificate is revoked or no longer "
                               "trusted"));
      }
    });
  }
  stream->Push(*now);
  if (IsEnded(now->state())) stream->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* ControlService::ListRuns(grpc::CallbackServerContext* context,
                                                   const wire::v1::ListRunsRequest* request,
                                                   wire::v1::ListRunsResponse* response) {
  absl::StatusOr<Caller> caller = Authenticate(*context, insecure_, Role::kOperator, trust_);
  if (!caller.ok()) return FinishUnary(context, caller.status());
  for (auto& run : runs_->ListRuns(request->include_archived())) {
    *response->add_runs() = std::move(run);
  }
  return FinishUnary(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* ControlService::ArchiveRun(grpc::CallbackServerContext* context,
                                                     const wire::v1::RunRef* request,
                                                     wire::v1::RunStatus* response) {
  absl::StatusOr<Caller> caller = Authenticate(*context, insecure_, Role::kOperator, trust_);
  if (!caller.ok()) return FinishUnary(context, caller.status());
  absl::StatusOr<wire::v1::RunStatus> s =
      runs_->ArchiveRun(request->run_id(), Actor{caller->identity, ""});
  if (!s.ok()) return FinishUnary(context, s.status());
  LOG(INFO) << "run " << PeerText(request->run_id()) << " archived by " << caller->identity;
  *response = std::move(*s);
  return FinishUnary(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* ControlService::DeleteRun(grpc::CallbackServerContext* context,
                                                    const wire::v1::RunRef* request,
                                                    wire::v1::DeleteRunResponse* response) {
  absl::StatusOr<Caller> caller = Authenticate(*context, insecure_, Role::kOperator, trust_);
  if (!caller.ok()) return FinishUnary(context, caller.status());
  absl::StatusOr<uint64_t> deleted =
      runs_->DeleteRun(request->run_id(), Actor{caller->identity, ""});
  if (!deleted.ok()) return FinishUnary(context, deleted.status());
  LOG(INFO) << "run " << PeerText(request->run_id()) << " deleted by " << caller->identity
            << " (" << *deleted << " round models removed)";
  response->set_run_id(request->run_id());
  response->set_deleted_models(*deleted);
  return FinishUnary(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* ControlService::ListClients(
    grpc::CallbackServerContext* context, const wire::v1::ListClientsRequest* /*request*/,
    wire::v1::ListClientsResponse* response) {
  absl::StatusOr<Caller> caller = Authenticate(*context, insecure_, Role::kOperator, trust_);
  if (!caller.ok()) return FinishUnary(context, caller.status());
  for (auto& c : registry_->List()) *response->add_clients() = std::move(c);
  return FinishUnary(context, absl::OkStatus());
}

grpc::ServerWriteReactor<wire::v1::ExportModelResponse>* ControlService::ExportModel(
    grpc::CallbackServerContext* context, const wire::v1::ExportModelRequest* request) {

  absl::StatusOr<Caller> caller = Authenticate(*context, insecure_, Role::kOperator, trust_);
  if (!caller.ok()) return FailedWriter<wire::v1::ExportModelResponse>(caller.status());
  absl::StatusOr<RunManager::Export> e = runs_->ExportModel(request->run_id(), request->round());
  if (!e.ok()) return FailedWriter<wire::v1::ExportModelResponse>(e.status());
  absl::StatusOr<RunManager::ExportDocuments> docs = runs_->DocumentExport(
      request->run_id(), *e, request->weights_file_name(), Actor{caller->identity, ""});
  if (!docs.ok()) {
    LOG(WARNING) << "export of run " << PeerText(request->run_id()) << " failed: "
                 << docs.status();
    return FailedWriter<wire::v1::ExportModelResponse>(docs.status());
  }
  LOG(INFO) << "round " << e->round << " of run " << request->run_id() << " exported by "
            << caller->identity;
  return new ExportWriter(request->run_id(), std::move(*e), std::move(*docs));
}

grpc::ServerWriteReactor<wire::v1::ExportAuditResponse>* ControlService::ExportAudit(
    grpc::CallbackServerContext* context, const wire::v1::ExportAuditRequest* /*request*/) {
  absl::StatusOr<Caller> caller = Authenticate(*context, insecure_, Role::kOperator, trust_);
  if (!caller.ok()) return FailedWriter<wire::v1::ExportAuditResponse>(caller.status());
  absl::StatusOr<RunManager::AuditLog> log = runs_->ExportAudit();
  if (!log.ok()) return FailedWriter<wire::v1::ExportAuditResponse>(log.status());
  std::vector<wire::v1::ExportAuditResponse> messages(log->entries.size() + 1);
  for (size_t i = 0; i < log->entries.size(); ++i) {
    *messages[i].mutable_entry() = std::move(log->entries[i]);
  }
  *messages.back().mutable_head() = std::move(log->head);
  return new VectorWriter<wire::v1::ExportAuditResponse>(std::move(messages));
}

grpc::ServerUnaryReactor* ControlService::RecordAuditEvent(
    grpc::CallbackServerContext* context, const wire::v1::RecordAuditEventRequest* request,
    wire::v1::AuditEntry* response) {
  absl::StatusOr<Caller> caller = Authenticate(*context, insecure_, Role::kOperator, trust_);
  if (!caller.ok()) return FinishUnary(context, caller.status());
  const std::map<std::string, std::string> details(request->details().begin(),
                                                   request->details().end());
  absl::StatusOr<wire::v1::AuditEntry> entry =
      runs_->RecordOperatorEvent(Actor{caller->identity, ""}, request->action(), details);
  if (!entry.ok()) return FinishUnary(context, entry.status());
  *response = *std::move(entry);
  return FinishUnary(context, absl::OkStatus());
}

}  // namespace tessera::coordinator
