// File: export_inputs.h
// Everything the coordinator knows about an exported model, gathered from its state: the
// input of the bill of materials (bill_of_materials.h) and the model card (model_card.h).
#ifndef TESSERA_CORE_GOVERNANCE_EXPORT_INPUTS_H_
#define TESSERA_CORE_GOVERNANCE_EXPORT_INPUTS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tessera/wire/v1/control.pb.h"
#include "tessera/wire/v1/governance.pb.h"
#include "tessera/wire/v1/run_config.pb.h"

namespace tessera::governance {

struct ExportInputs {
  std::string run_id;
  wire::v1::RunConfig config;
  int64_t run_created_unix_ms = 0;
  wire::v1::RunState run_state = wire::v1::RUN_STATE_UNSPECIFIED;
  wire::v1::RunProvenance provenance;
  // Committed rounds and failed attempts, in (round, attempt) order.
  std::vector<wire::v1::RoundSummary> rounds;
  uint32_t round = 0;          // the exported round (0: the initial weights)
  // Raw 32-byte digests.
  std::string model_sha256;         // tensor digest (DigestArrayRecord) of the exported round
  std::string weights_file_sha256;  // SHA-256 of the safetensors file bytes
  std::string weights_file_name;    // e.g. "model.safetensors" (base name only)
  uint64_t weights_file_bytes = 0;
  uint64_t num_tensors = 0;
  uint64_t num_parameters = 0;      // elements over all tensors
  uint64_t tensor_bytes = 0;        // data bytes over all tensors: one uncompressed update
  std::string artifact_sha256;      // TorchScript program, empty when none
  // The DP ledger of the run's dataset when the run uses differential privacy.
  std::optional<wire::v1::PrivacyBudgetStatus> privacy;
  std::string coordinator_version;  // the exporting coordinator's build
  std::string exported_by;          // operator CN ("" when --insecure)
  int64_t exported_unix_ms = 0;
  uint64_t audit_head_seq = 0;      // the audit log when the export was recorded
  std::string audit_head_hash;      // hex
  std::string model_card_file_name = "README.md";
};

}  // namespace tessera::governance

#endif  // TESSERA_CORE_GOVERNANCE_EXPORT_INPUTS_H_
