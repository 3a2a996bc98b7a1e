// RunManager's governance side (docs/governance.md): the provenance of every run, license
// rules at selection, what clients report about their data, the audit log, and the model
// card and signed bill of materials of every export.
#include <algorithm>

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "coordinator/round/run_manager.h"
#include "coordinator/round/run_manager_internal.h"
#include "core/base/status_macros.h"
#include "core/config/data_card.h"
#include "core/crypto/sha256.h"
#include "core/governance/bill_of_materials.h"
#include "core/governance/model_card.h"
#include "core/model/safetensors.h"
#include "privacy/provenance/audit_chain.h"
#include "privacy/provenance/export_verify.h"

namespace tessera::coordinator {
namespace {

constexpr uint64_t kDefaultExampleBucket = 100;
constexpr size_t kMaxHistogramClasses = 4096;

uint64_t ExampleBucket(const wire::v1::RunConfig& config) {
  const uint64_t b = config.governance().example_count_bucket();
  return b == 0 ? kDefaultExampleBucket : b;
}

// The participant record of `client` in `p`, added if missing.
wire::v1::Participant& ParticipantOf(wire::v1::RunProvenance& p, absl::string_view client) {
  for (wire::v1::Participant& q : *p.mutable_participants()) {
    if (q.client() == client) return q;
  }
  wire::v1::Participant* q = p.add_participants();
  q->set_client(std::string(client));
  q->set_first_seen_unix_ms(absl::ToUnixMillis(absl::Now()));
  return *q;
}

// Why the run's license rules refuse a client with `info`, or "" when they accept it.
std::string RefusalReason(const wire::v1::RunConfig& config, const wire::v1::ClientInfo& info) {
  const auto& allowed = config.governance().allowed_data_licenses();
  if (allowed.empty()) return "";
  const std::string list = absl::StrCat("[", absl::StrJoin(allowed, ", "), "]");
  if (!info.has_data_card()) {
    return absl::StrCat("no data card; the run accepts only data licensed ", list,
                        " (governance.allowed_data_licenses)");
  }
  const std::string& license = info.data_card().license();
  if (LicenseAllowed(license, allowed)) return "";
  return absl::StrCat("data card license \"", license,
                      "\" is not in governance.allowed_data_licenses ", list);
}

}  // namespace

std::string RunManager::OperatorActor(const Actor& actor) {
  return actor.name.empty() ? "operator" : absl::StrCat("operator:", actor.name);
}

void RunManager::Audit(absl::string_view actor, absl::string_view action,
                       absl::string_view run_id, uint32_t round,
                       std::map<std::string, std::string> details) {
  wire::v1::AuditEntry entry;
  entry.set_unix_ms(absl::ToUnixMillis(absl::Now()));
  entry.set_actor(std::string(actor));
  entry.set_action(std::string(action));
  entry.set_run_id(std::string(run_id));
  entry.set_round(round);
  for (auto& [k, v] : details) (*entry.mutable_details())[k] = std::move(v);
  absl::StatusOr<wire::v1::AuditEntry> sealed = state_->AppendAudit(std::move(entry));
  if (!sealed.ok()) {
    LOG(ERROR) << "cannot append \"" << action << "\" to the audit log: " << sealed.status();
  }
}

absl::Status RunManager::CreateProvenance(const std::shared_ptr<Run>& run, const Actor& actor,
                                          const ModelSnapshot& initial) {
  wire::v1::RunProvenance p;
  wire::v1::RunConfig config;
  {
    NoIoMutexLock l(&run->mu);
    config = run->record.config();
    p.set_created_unix_ms(run->record.created_unix_ms());
  }
  p.set_run_id(run->id);
  p.set_created_by(actor.name);
  p.set_cli_version(actor.cli_version);
  p.set_coordinator_version(options_.coordinator_version);
  p.add_coordinator_versions(options_.coordinator_version);
  p.set_initial_model_sha256(initial.digest);
  p.set_initial_file_sha256(config.model().initial_weights_file_sha256());
  p.set_torchscript_sha256(config.model().torchscript_sha256());
  TESSERA_RETURN_IF_ERROR(state_->PutProvenance(p));
  {
    NoIoMutexLock l(&run->mu);
    run->provenance = p;
  }
  Audit(OperatorActor(actor), "run.created", run->id, 0,
        {{"name", config.name()},
         {"rounds", absl::StrCat(config.rounds())},
         {"base_model_source", config.model().source()},
         {"base_model_license", config.model().license()},
         {"initial_model_sha256", crypto::HexEncode(initial.digest)},
         {"model_license", config.governance().model_license()},
         {"cli_version", actor.cli_version}});
  return absl::OkStatus();
}

absl::Status RunManager::RestoreProvenance(const std::shared_ptr<Run>& run,
                                           bool add_this_build) {
  TESSERA_ASSIGN_OR_RETURN(std::optional<wire::v1::RunProvenance> stored,
                           state_->GetProvenance(run->id));
  // A run stored before provenance existed gets an empty record (nothing is invented).
  wire::v1::RunProvenance p = stored.value_or(wire::v1::RunProvenance());
  p.set_run_id(run->id);
  const auto& versions = p.coordinator_versions();
  if (add_this_build && std::find(versions.begin(), versions.end(),
                                  options_.coordinator_version) == versions.end()) {
    p.add_coordinator_versions(options_.coordinator_version);
    TESSERA_RETURN_IF_ERROR(state_->PutProvenance(p));
  }
  NoIoMutexLock l(&run->mu);
  run->provenance = std::move(p);
  return absl::OkStatus();
}

std::vector<std::string> RunManager::EligibleClients(const std::shared_ptr<Run>& run,
                                                     std::vector<std::string> connected) {
  std::vector<std::string> eligible;
  std::vector<std::pair<std::string, std::string>> refused_now;  // client, reason
  {
    // The provenance changes under the run's commit sequence: a copy is updated, stored
    // (synced) without run->mu, and published after, so status calls never wait for the put.
    absl::MutexLock sequence(&run->commit_mu);
    wire::v1::RunProvenance provenance;
    wire::v1::RunConfig config;
    {
      NoIoMutexLock l(&run->mu);
      provenance = run->provenance;
      config = run->record.config();
    }
    bool changed = false;
    for (std::string& client : connected) {
      absl::StatusOr<wire::v1::ClientInfo> info = registry_->Info(client);
      if (!info.ok()) continue;
      wire::v1::Participant& p = ParticipantOf(provenance, client);
      const std::string before = p.SerializeAsString();
      p.set_organization(info->organization());
      p.set_client_version(info->version());
      if (info->has_data_card()) {
        *p.mutable_data_card() = info->data_card();
      } else {
        p.clear_data_card();
      }
      const std::string reason = RefusalReason(config, *info);
      if (!reason.empty() && reason != p.refused()) refused_now.emplace_back(client, reason);
      p.set_refused(reason);
      changed = changed || p.SerializeAsString() != before;
      if (reason.empty()) eligible.push_back(std::move(client));
    }
    if (changed) {
      // A failed put is logged; the selection still uses what the clients told us now.
      if (absl::Status s = state_->PutProvenance(provenance); !s.ok()) {
        LOG(ERROR) << "run " << run->id << ": cannot store participants: " << s;
      }
      NoIoMutexLock l(&run->mu);
      run->provenance = std::move(provenance);
    }
  }
  for (const auto& [client, reason] : refused_now) {
    LOG(WARNING) << "run " << run->id << " refused client " << client << ": " << reason;
    Audit("coordinator", "client.refused", run->id, 0, {{"client", client}, {"reason", reason}});
    wire::v1::Task notice;
    notice.set_type(wire::v1::REFUSED);
    notice.set_run_id(run->id);
    notice.set_refusal(reason);
    registry_->Send(client, notice);
  }
  return eligible;
}

void RunManager::RequestDataReport(Run& run, absl::string_view client, wire::v1::Task& task) {
  if (task.type() != wire::v1::TRAIN) return;
  NoIoMutexLock l(&run.mu);
  for (const wire::v1::Participant& p : run.provenance.participants()) {
    if (p.client() == client && p.has_data_report()) return;
  }
  const wire::v1::RunConfig& config = run.record.config();
  task.mutable_data_report()->set_example_count_bucket(ExampleBucket(config));
  task.mutable_data_report()->set_class_histogram(config.governance().class_histogram());
}

absl::Status RunManager::SubmitDataReport(absl::string_view task_id, absl::string_view client,
                                          const wire::v1::DataReport& report) {
  TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<Task> task, FindTask(task_id, client));
  if (!task->task.has_data_report()) {
    return absl::FailedPreconditionError(
        absl::StrCat("task ", task_id, " asked for no data report"));
  }
  const wire::v1::DataReportRequest& asked = task->task.data_report();
  if (report.example_count_bucket() != asked.example_count_bucket()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "data report: example_count_bucket must be ", asked.example_count_bucket(), ", got ",
        report.example_count_bucket()));
  }
  if (report.examples_rounded() % asked.example_count_bucket() != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "data report: examples_rounded ", report.examples_rounded(),
        " is not a multiple of the bucket ", asked.example_count_bucket()));
  }
  TESSERA_ASSIGN_OR_RETURN(wire::v1::ClientInfo info, registry_->Info(client));
  if (report.class_histogram_size() > 0) {
    if (!asked.class_histogram()) {
      return absl::InvalidArgumentError(
          "data report: the run did not ask for a class histogram; it is not accepted");
    }
    if (!info.has_data_card() || !info.data_card().allow_class_histogram()) {
      return absl::InvalidArgumentError(
          "data report: the client's data card does not allow a class histogram");
    }
    if (static_cast<size_t>(report.class_histogram_size()) > kMaxHistogramClasses) {
      return absl::InvalidArgumentError(absl::StrCat("data report: more than ",
                                                     kMaxHistogramClasses, " classes"));
    }
  }
  TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<Run> run, FindRun(task->task.run_id()));
  // Prepared under run->mu, stored (synced) without it, published once stored.
  absl::MutexLock sequence(&run->commit_mu);
  wire::v1::RunProvenance provenance;
  {
    NoIoMutexLock l(&run->mu);
    provenance = run->provenance;
  }
  wire::v1::Participant& p = ParticipantOf(provenance, client);
  *p.mutable_data_report() = report;
  // Exact class counts would sum to the exact example count the bucket hides: each class is
  // kept (and so published) rounded down to the bucket, like the count (docs/data_cards.md).
  for (uint64_t& n : *p.mutable_data_report()->mutable_class_histogram()) {
    n = n / asked.example_count_bucket() * asked.example_count_bucket();
  }
  TESSERA_RETURN_IF_ERROR(state_->PutProvenance(provenance));
  NoIoMutexLock l(&run->mu);
  run->provenance = std::move(provenance);
  return absl::OkStatus();
}

void RunManager::AuditRound(const std::shared_ptr<Run>& run,
                            const wire::v1::RoundSummary& summary) {
  std::map<std::string, std::string> details = {
      {"attempt", absl::StrCat(summary.attempt())},
      {"participants", absl::StrJoin(summary.participants(), ",")},
      {"selected", absl::StrCat(summary.selected())},
      {"reported", absl::StrCat(summary.reported())}};
  const bool ok = summary.state() == wire::v1::ROUND_COMPLETED;
  if (ok) {
    details["model_sha256"] = crypto::HexEncode(summary.model_sha256());
  } else {
    details["reason"] = summary.failure_reason();
  }
  if (summary.has_privacy()) details["epsilon"] = absl::StrCat(summary.privacy().epsilon());
  Audit("coordinator", ok ? "round.committed" : "round.failed", run->id, summary.round(),
        std::move(details));
}

absl::StatusOr<wire::v1::AuditEntry> RunManager::RecordOperatorEvent(
    const Actor& actor, absl::string_view action,
    const std::map<std::string, std::string>& details) {
  if (action != "certificate.issued" && action != "certificate.revoked") {
    return absl::InvalidArgumentError(absl::StrCat(
        "action \"", action, "\" cannot be recorded by an operator; only certificate.issued "
        "and certificate.revoked"));
  }
  if (details.size() > 16) return absl::InvalidArgumentError("details: more than 16 entries");
  for (const auto& [k, v] : details) {
    if (k.empty() || k.size() > 64 || v.size() > 1024) {
      return absl::InvalidArgumentError(absl::StrCat(
          "details: key \"", k.substr(0, 64), "\" must be 1..64 bytes and its value at most "
          "1024 bytes"));
    }
  }
  wire::v1::AuditEntry entry;
  entry.set_unix_ms(absl::ToUnixMillis(absl::Now()));
  entry.set_actor(OperatorActor(actor));
  entry.set_action(std::string(action));
  for (const auto& [k, v] : details) (*entry.mutable_details())[k] = v;
  return state_->AppendAudit(std::move(entry));
}

absl::StatusOr<RunManager::AuditLog> RunManager::ExportAudit() {
  if (options_.signer == nullptr) {
    return absl::FailedPreconditionError("this coordinator has no provenance signing key");
  }
  AuditLog log;
  TESSERA_ASSIGN_OR_RETURN(log.entries, state_->ListAudit());
  TESSERA_ASSIGN_OR_RETURN(
      log.head, provenance::SignAuditHead(log.entries.empty() ? nullptr : &log.entries.back(),
                                          absl::ToUnixMillis(absl::Now()), *options_.signer));
  return log;
}

absl::StatusOr<RunManager::ExportDocuments> RunManager::DocumentExport(
    absl::string_view run_id, const Export& exported, absl::string_view weights_file_name,
    const Actor& actor) {
  if (options_.signer == nullptr) {
    return absl::FailedPreconditionError("this coordinator has no provenance signing key");
  }
  const std::string file_name =
      weights_file_name.empty() ? "model.safetensors" : std::string(weights_file_name);
  if (file_name.size() > 255 || file_name.find('/') != std::string::npos || file_name == "." ||
      file_name == ".." || file_name == "README.md" || file_name == "bom.json") {
    return absl::InvalidArgumentError(absl::StrCat(
        "weights_file_name \"", file_name.substr(0, 64),
        "\" must be a plain file name (no '/'), other than README.md and bom.json"));
  }
  TESSERA_ASSIGN_OR_RETURN(std::shared_ptr<Run> run, FindLoadedRun(run_id));
  ExportDocuments docs;
  docs.safetensors_metadata = {
      {"format", "pt"},
      {"tessera.run_id", std::string(run_id)},
      {"tessera.run_name", exported.config.name()},
      {"tessera.round", absl::StrCat(exported.round)},
      {"tessera.model_sha256", crypto::HexEncode(exported.model->digest)},
      {"tessera.architecture", exported.config.model().has_causal_lm()
                                   ? std::string("causal_lm+lora")
                                   : exported.config.model().architecture()},
  };
  if (exported.config.model().has_causal_lm()) {
    docs.safetensors_metadata["tessera.base_sha256"] =
        crypto::HexEncode(exported.config.model().causal_lm().base_sha256());
  }
  TESSERA_ASSIGN_OR_RETURN(std::string file,
                           SerializeSafetensors(exported.model->weights,
                                                docs.safetensors_metadata));
  governance::ExportInputs in;
  in.run_id = std::string(run_id);
  in.config = exported.config;
  in.round = exported.round;
  in.model_sha256 = exported.model->digest;
  in.weights_file_sha256 = crypto::Sha256Digest(file);
  in.weights_file_name = file_name;
  in.weights_file_bytes = file.size();
  in.num_tensors = exported.model->weights.tensors.size();
  for (const Tensor& t : exported.model->weights.tensors) in.num_parameters += static_cast<uint64_t>(t.numel());
  if (!exported.artifact.empty()) in.artifact_sha256 = crypto::Sha256Digest(exported.artifact);
  TESSERA_ASSIGN_OR_RETURN(in.rounds, state_->ListRounds(run_id));
  {
    NoIoMutexLock l(&run->mu);
    in.run_created_unix_ms = run->record.created_unix_ms();
    in.run_state = run->record.state();
    in.provenance = run->provenance;
    if (run->privacy.has_value()) in.privacy = run->budget;
  }
  in.coordinator_version = options_.coordinator_version;
  in.exported_by = actor.name;
  in.exported_unix_ms = absl::ToUnixMillis(absl::Now());
  wire::v1::AuditEntry entry;
  entry.set_unix_ms(in.exported_unix_ms);
  entry.set_actor(OperatorActor(actor));
  entry.set_action("model.exported");
  entry.set_run_id(std::string(run_id));
  entry.set_round(exported.round);
  (*entry.mutable_details())["weights_sha256"] = crypto::HexEncode(in.weights_file_sha256);
  (*entry.mutable_details())["model_sha256"] = crypto::HexEncode(in.model_sha256);
  (*entry.mutable_details())["weights_file"] = file_name;
  TESSERA_ASSIGN_OR_RETURN(wire::v1::AuditEntry sealed, state_->AppendAudit(std::move(entry)));
  // An exported round's model stays whatever the retention policy says.
  TESSERA_RETURN_IF_ERROR(PinRound(run, exported.round));
  in.audit_head_seq = sealed.seq();
  in.audit_head_hash = sealed.hash();
  docs.model_card = governance::RenderModelCard(in, "bom.json");
  TESSERA_ASSIGN_OR_RETURN(
      std::string bom,
      governance::BuildBillOfMaterials(in, crypto::HexEncode(crypto::Sha256Digest(docs.model_card))));
  TESSERA_ASSIGN_OR_RETURN(docs.bill_of_materials,
                           provenance::SignBillOfMaterials(bom, *options_.signer));
  return docs;
}

}  // namespace tessera::coordinator
