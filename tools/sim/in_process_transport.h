// File: in_process_transport.h
// The Fleet API of one virtual client as direct calls into the in-process RunManager: what
// tessera-client does over gRPC (client/runtime/node_runner.cc), without serialization.
#ifndef TESSERA_TOOLS_SIM_IN_PROCESS_TRANSPORT_H_
#define TESSERA_TOOLS_SIM_IN_PROCESS_TRANSPORT_H_

#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <string>

#include "client/runtime/task_executor.h"
#include "coordinator/round/run_manager.h"
#include "core/base/status_macros.h"
#include "core/serde/compressed_upload.h"

namespace tessera::sim {

class InProcessTransport : public FleetTransport {
 public:
  InProcessTransport(coordinator::RunManager* runs, std::string client)
      : runs_(runs), client_(std::move(client)) {}
  absl::StatusOr<ArrayRecord> FetchModel(const wire::v1::Task& task) override {
    TESSERA_ASSIGN_OR_RETURN(auto model, runs_->ModelForTask(task.task_id(), client_));
    return model->weights;
  }
  absl::StatusOr<std::string> FetchArtifact(const wire::v1::Task& task) override {
    return runs_->ArtifactForTask(task.task_id(), client_);
  }
  // Decodes a compressed update as push_update.cc does, and counts the bytes that would have
  // travelled (the encoded ones).
  absl::Status PushUpdate(const wire::v1::Task& task, uint64_t num_examples,
                          const std::map<std::string, double>& metrics,
                          const ArrayRecord& update) override {
    if (!IsCompressed(task.compression())) {
      return runs_->SubmitUpdate(task.task_id(), client_, num_examples, metrics, update,
                                 update.TotalBytes());
    }
    TESSERA_ASSIGN_OR_RETURN(auto model, runs_->ModelForTask(task.task_id(), client_));
    TESSERA_ASSIGN_OR_RETURN(ArrayRecord decoded,
                             DecodeUpload(task.compression(), update, model->weights));
    return runs_->SubmitUpdate(task.task_id(), client_, num_examples, metrics, decoded,
                               update.TotalBytes());
  }
  absl::Status PushEvaluation(const wire::v1::Task& task, const EvalResult& e) override {
    return runs_->SubmitEvaluation(task.task_id(), client_, e.num_examples, e.loss, e.accuracy);
  }
  absl::Status ReportData(const wire::v1::Task& task,
                          const wire::v1::DataReport& report) override {
    return runs_->SubmitDataReport(task.task_id(), client_, report);
  }
  absl::Status ReportSitePrivacy(const wire::v1::Task& task,
                                 const wire::v1::SitePrivacyReport& report) override {
    return runs_->ReportSitePrivacy(task.task_id(), client_, report);
  }
  SecAggTransport SecAgg(const wire::v1::Task& task) override {
    return [runs = runs_, client = client_, id = task.task_id()](
               const secagg::v1::ClientToServer& m,
               double timeout) -> absl::StatusOr<secagg::v1::ServerToClient> {
      auto done = std::make_shared<std::promise<absl::StatusOr<secagg::v1::ServerToClient>>>();
      auto reply = done->get_future();
      TESSERA_RETURN_IF_ERROR(runs->SubmitSecAgg(
          id, client, m, [done](absl::StatusOr<secagg::v1::ServerToClient> r) {
            done->set_value(std::move(r));
          }));
      if (reply.wait_for(std::chrono::milliseconds(static_cast<int64_t>(timeout * 1000))) !=
          std::future_status::ready) {
        return absl::DeadlineExceededError("no reply from the coordinator");
      }
      return reply.get();
    };
  }

 private:
  coordinator::RunManager* runs_;
  std::string client_;
};

}  // namespace tessera::sim

#endif  // TESSERA_TOOLS_SIM_IN_PROCESS_TRANSPORT_H_
