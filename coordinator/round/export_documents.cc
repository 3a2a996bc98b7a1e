// What goes next to exported weights (docs/governance.md): safetensors metadata, the model
// card and the signed bill of materials (RunManager::DocumentExport), and the operator's
// side of the audit log (audit_trail.h).
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "coordinator/round/run_manager.h"
#include "coordinator/round/run_manager_internal.h"
#include "core/base/status_macros.h"
#include "core/crypto/sha256.h"
#include "core/governance/bill_of_materials.h"
#include "core/governance/model_card.h"
#include "core/model/safetensors.h"
#include "privacy/provenance/export_verify.h"

namespace tessera::coordinator {

absl::StatusOr<wire::v1::AuditEntry> RunManager::RecordOperatorEvent(
    const Actor& actor, absl::string_view action,
    const std::map<std::string, std::string>& details) {
  return audit_.RecordOperatorEvent(actor.name, action, details);
}

absl::StatusOr<RunManager::AuditLog> RunManager::ExportAudit() { return audit_.Export(); }

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
  for (const Tensor& t : exported.model->weights.tensors) {
    in.num_parameters += static_cast<uint64_t>(t.numel());
    in.tensor_bytes += t.byte_size();
  }
  if (!exported.artifact.empty()) in.artifact_sha256 = crypto::Sha256Digest(exported.artifact);
  TESSERA_ASSIGN_OR_RETURN(in.rounds, state_->ListRounds(run_id));
  in.provenance = run->governance->Provenance();
  {
    NoIoMutexLock l(&run->mu);
    in.run_created_unix_ms = run->record.created_unix_ms();
    in.run_state = run->record.state();
    if (run->privacy != nullptr) in.privacy = run->privacy->Budget();
  }
  in.coordinator_version = options_.coordinator_version;
  in.exported_by = actor.name;
  in.exported_unix_ms = absl::ToUnixMillis(absl::Now());
  wire::v1::AuditEntry entry;
  entry.set_unix_ms(in.exported_unix_ms);
  entry.set_actor(AuditTrail::OperatorActor(actor.name));
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
