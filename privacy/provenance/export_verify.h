// File: export_verify.h
// Signing an exported model's bill of materials and checking an export against it
// (`tessera model verify`, docs/governance.md).
#ifndef TESSERA_PRIVACY_PROVENANCE_EXPORT_VERIFY_H_
#define TESSERA_PRIVACY_PROVENANCE_EXPORT_VERIFY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "privacy/provenance/signer.h"

namespace tessera::provenance {

// The signed document: the unsigned canonical JSON object `bom_json` with a "signature"
// member {"algorithm","signer","value"} added, over the canonical bytes of `bom_json`,
// pretty-printed (2-space indent) for people. INVALID_ARGUMENT if `bom_json` is not a JSON
// object or already has a "signature".
absl::StatusOr<std::string> SignBillOfMaterials(absl::string_view bom_json,
                                                const ProvenanceSigner& signer);

// The files of an export as read from disk.
struct ExportFiles {
  std::string bill_of_materials;  // the signed JSON
  std::string weights;            // the safetensors file's bytes
  std::string model_card;         // README.md's bytes
};

struct ExportCheck {
  std::string name;    // "signature", "weights sha256", "weights tensors", "round chain",
                       // "model card", "safetensors metadata"
  bool ok = false;
  std::string detail;  // what matched, or exactly what did not (expected vs found)
};

struct ExportVerification {
  std::vector<ExportCheck> checks;
  SignerIdentity signer;       // when the signature verified
  // From the bill of materials, for a caller that also asks the coordinator.
  std::string run_id;
  uint32_t round = 0;
  std::string model_sha256_hex;   // tensor digest the bill of materials names
  bool ok() const;
};

// Checks everything that can be checked offline: the signature (against `ca_pem` when not
// empty), the weights file's SHA-256 and tensor digest, the chain from the exported round
// back through the run's committed rounds to the initial model, the model card's SHA-256,
// and the run id and round in the safetensors metadata. Never stops at the first problem.
// Errors (not checks): INVALID_ARGUMENT when the bill of materials is not JSON or lacks a
// member the checks need (named).
absl::StatusOr<ExportVerification> VerifyExport(const ExportFiles& files,
                                                absl::string_view ca_pem);

}  // namespace tessera::provenance

#endif  // TESSERA_PRIVACY_PROVENANCE_EXPORT_VERIFY_H_
