// Fleet.PushUpdate: header, then the update as a tensor stream. The update is staged (one
// model-sized buffer, admitted by the UploadGate), verified (layout, SHA-256, then finiteness),
// decoded to float32 when compressed (core/serde/compressed_upload.h), and then folded into
// the round's running sum, so a bad upload never touches the sum.
#include <glog/logging.h>

#include <map>

#include "absl/strings/str_cat.h"
#include "coordinator/round/peer_text.h"
#include "coordinator/round/update_staging.h"
#include "coordinator/service/auth.h"
#include "coordinator/service/fleet_service.h"
#include "coordinator/service/reactors.h"
#include "core/base/status_macros.h"
#include "core/serde/compressed_upload.h"
#include "core/serde/grpc_status.h"
#include "core/serde/tensor_stream.h"

namespace tessera::coordinator {
namespace {

class UpdateReader final : public grpc::ServerReadReactor<wire::v1::PushUpdateRequest> {
 public:
  UpdateReader(grpc::CallbackServerContext* context, RunManager* runs, UploadGate* gate,
               std::string client, wire::v1::PushUpdateResponse* response)
      : context_(context), runs_(runs), gate_(gate), client_(std::move(client)),
        response_(response),
        guard_(std::make_shared<Guard>()) {
    guard_->reactor = this;
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Complete();
      return;
    }
    const bool header = request_.has_header();
    absl::Status s = Handle();
    if (!s.ok()) {
      Fail(s);
      return;
    }
    // After a header the gate's callback starts the next read (maybe already has): request_
    // must not be touched here any more.
    if (header) return;
    StartRead(&request_);
  }

  void OnCancel() override {
    bool finish = false;
    {
      absl::MutexLock l(&guard_->mu);
      guard_->cancelled = true;
      // Not reading while parked at the gate: finish now; the gate callback sees the flag.
      finish = guard_->waiting;
      guard_->waiting = false;
    }
    if (finish) Finish(grpc::Status::CANCELLED);  // a completion: never under the lock
  }

  void OnDone() override {
    bool release = false;
    {
      absl::MutexLock l(&guard_->mu);
      guard_->reactor = nullptr;
      release = holds_slot_;
    }
    if (release) gate_->Leave();
    delete this;
  }

 private:
  struct Guard {
    absl::Mutex mu;
    UpdateReader* reactor = nullptr;
    bool waiting = false;
    bool cancelled = false;
  };

  absl::Status Handle() {
    if (request_.has_header()) {
      if (reader_ != nullptr) return absl::InvalidArgumentError("second update header");
      header_ = request_.header();
      absl::StatusOr<std::shared_ptr<const ModelSnapshot>> model =
          runs_->BeginUpdate(header_.task_id(), client_);
      if (!model.ok()) return model.status();
      TESSERA_RETURN_IF_ERROR(
          runs_->CheckUpdateEncoding(header_.task_id(), client_, header_.compression()));
      model_ = *model;
      TensorStreamLimits limits;
      if (IsCompressed(header_.compression())) {
        // Each float32 tensor arrives as its payload (docs/compression.md); DecodeUpload checks
        // the layout once the stream is complete.
        limits.max_tensors = static_cast<uint32_t>(model_->weights.tensors.size());
        limits.max_total_bytes = MaxCompressedUploadBytes(model_->weights);
      } else {
        limits.expected_layout = &model_->weights;
        // A round that stages its updates on disk takes this one chunk at a time into its
        // file, so neither the upload nor one of its tensors sits whole in memory
        // (docs/architecture.md, "Coordinator memory"). The file counts only once the
        // stream's digest verified (Complete). The file is opened at the first data, once
        // the upload holds a slot: uploads waiting at the gate hold no descriptor.
        TESSERA_ASSIGN_OR_RETURN(staging_, runs_->UploadStaging(header_.task_id(), client_));
        if (staging_ != nullptr) {
          limits.on_data = [this](size_t tensor, absl::string_view data,
                                  bool end) -> absl::Status {
            if (staged_ == nullptr) {
              TESSERA_ASSIGN_OR_RETURN(staged_, staging_->Begin());
            }
            return end ? staged_->EndTensor(tensor) : staged_->AppendData(tensor, data);
          };
        }
      }
      // Finiteness is checked once: by the StagedWriter as chunks are staged, otherwise by
      // RunManager::SubmitUpdate (outside the round lock).
      reader_ = std::make_unique<TensorStreamReader>(limits);
      WaitForSlot();
      return absl::OkStatus();
    }
    if (!request_.has_chunk()) return absl::InvalidArgumentError("empty PushUpdate message");
    if (reader_ == nullptr) return absl::InvalidArgumentError("update data before its header");
    // Hashes as it goes; a chunk that is its tensor's whole data is taken, not copied.
    return reader_->Add(std::move(*request_.mutable_chunk()));
  }

  void WaitForSlot() {
    {
      absl::MutexLock l(&guard_->mu);
      guard_->waiting = true;
    }
    std::shared_ptr<Guard> guard = guard_;
    UploadGate* gate = gate_;
    gate_->Enter([guard, gate] {
      UpdateReader* start = nullptr;
      {
        absl::MutexLock l(&guard->mu);
        if (guard->reactor != nullptr && !guard->cancelled && guard->waiting) {
          guard->waiting = false;
          guard->reactor->holds_slot_ = true;
          start = guard->reactor;
        }
      }
      if (start == nullptr) {
        gate->Leave();  // the upload is gone; pass the slot on
        return;
      }
      // Not finished (it was waiting and not cancelled), so the reactor is alive; reactions
      // may run inline, hence outside the lock.
      start->StartRead(&start->request_);
    });
  }

  void Complete() {
    if (reader_ == nullptr) {
      Fail(absl::InvalidArgumentError("the update stream ended before its header"));
      return;
    }
    // The bytes that travelled: compressed, when the update was.
    const uint64_t bytes = reader_->data_bytes_received();
    if (!reader_->done()) {
      // gRPC ends the reads the same way when the client half-closes early and when the call
      // is cancelled (by the client, its deadline, a broken connection, keepalive, or gRPC's
      // transport quota abandoning the stream); OnCancel or the context tell the latter.
      bool cancelled = context_->IsCancelled();
      {
        absl::MutexLock l(&guard_->mu);
        cancelled = cancelled || guard_->cancelled;
      }
      if (cancelled) {
        Fail(absl::CancelledError(absl::StrCat(
            "the update stream was cancelled after ", bytes, " bytes of tensor data (the "
            "client's own status says why: it cancelled, its deadline passed, its connection "
            "was lost or closed by keepalive, or the transport memory quota abandoned it)")));
        return;
      }
    }
    absl::StatusOr<ArrayRecord> received = std::move(*reader_).Finish();
    if (!received.ok()) {
      Fail(received.status());
      return;
    }
    std::map<std::string, double> metrics(header_.metrics().begin(), header_.metrics().end());
    if (staging_ != nullptr) {  // the verified update is in its staging file
      if (staged_ == nullptr) {  // a layout without tensors
        absl::StatusOr<std::unique_ptr<StagedWriter>> writer = staging_->Begin();
        if (!writer.ok()) {
          Fail(writer.status());
          return;
        }
        staged_ = *std::move(writer);
      }
      absl::StatusOr<StagedFile> file = std::move(*staged_).Finish();
      ReleaseModel();
      absl::Status s = file.ok() ? runs_->SubmitStagedUpdate(header_.task_id(), client_,
                                                             header_.num_examples(), metrics,
                                                             *std::move(file), bytes)
                                 : file.status();
      if (!s.ok()) {
        Fail(s);
        return;
      }
      response_->set_accepted(true);
      Finish(grpc::Status::OK);
      return;
    }
    absl::StatusOr<ArrayRecord> update =
        DecodeUpload(header_.compression(), *std::move(received), model_->weights);
    ReleaseModel();
    if (!update.ok()) {
      Fail(update.status());
      return;
    }
    absl::Status s = runs_->SubmitUpdate(header_.task_id(), client_, header_.num_examples(),
                                         metrics, *update, bytes);
    if (!s.ok()) {
      Fail(s);
      return;
    }
    response_->set_accepted(true);
    Finish(grpc::Status::OK);
  }

  // The round's model is no longer needed once the update is read: released before the
  // update is submitted, not when gRPC destroys the reactor later, so that the round's
  // aggregate, which the last update can start, finds itself the model's only owner and
  // computes the next model in its buffers (docs/architecture.md, "Coordinator memory").
  void ReleaseModel() {
    reader_.reset();  // it points into the model's layout
    model_.reset();
  }

  void Fail(const absl::Status& s) {
    ReleaseModel();
    // An unfinished staging file goes before the log line and the reply, not when the reactor
    // is destroyed after them: once the refusal is logged or seen, nothing of the upload is
    // left on disk (FleetStagedBadInputTest reads the log, then counts the files).
    staged_.reset();
    LOG(WARNING) << "update from " << client_ << " for task " << PeerText(header_.task_id())
                 << " rejected: " << s;
    Finish(ToGrpcStatus(s));
  }

  grpc::CallbackServerContext* const context_;
  RunManager* const runs_;
  UploadGate* const gate_;
  const std::string client_;
  wire::v1::PushUpdateResponse* const response_;
  std::shared_ptr<Guard> guard_;
  wire::v1::PushUpdateRequest request_;
  wire::v1::UpdateHeader header_;
  std::shared_ptr<const ModelSnapshot> model_;
  std::unique_ptr<TensorStreamReader> reader_;
  // Set when the round stages updates: the reader's tensors go to `staged_`'s file, in
  // `staging_`'s directory (kept alive as long as the writer).
  std::shared_ptr<UpdateStaging> staging_;
  std::unique_ptr<StagedWriter> staged_;
  bool holds_slot_ = false;  // written under guard_->mu or before any concurrency
};


}  // namespace

grpc::ServerReadReactor<wire::v1::PushUpdateRequest>* FleetService::PushUpdate(
    grpc::CallbackServerContext* context, wire::v1::PushUpdateResponse* response) {
  absl::StatusOr<std::string> client =
      AuthenticateClient(*context, options_.insecure, *registry_, options_.trust);
  if (!client.ok()) return FailedReader<wire::v1::PushUpdateRequest>(client.status());
  return new UpdateReader(context, runs_, &gate_, *client, response);
}

}  // namespace tessera::coordinator
