// File: bill_of_materials.h
// The AI bill of materials of an exported model (docs/governance.md): a JSON document that
// lists every component that went into the model (base model, run config, software builds,
// participants and their data cards, every round's global model digest, aggregation, secure
// aggregation and differential privacy settings, epsilon spent) and which components of the
// Model Openness Framework are present, with their licenses. The coordinator signs its
// canonical serialization (privacy/provenance/export_verify.h).
#ifndef TESSERA_CORE_GOVERNANCE_BILL_OF_MATERIALS_H_
#define TESSERA_CORE_GOVERNANCE_BILL_OF_MATERIALS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/governance/export_inputs.h"

namespace tessera::governance {

// The license Tessera itself (the training and evaluation code) is distributed under.
inline constexpr absl::string_view kTesseraLicense = "Apache-2.0";

// The unsigned bill of materials as canonical JSON (no "signature" member).
// `model_card_sha256_hex`: SHA-256 of the model card file's bytes.
// INVALID_ARGUMENT when an input cannot be represented (e.g. a string that is not UTF-8).
absl::StatusOr<std::string> BuildBillOfMaterials(const ExportInputs& inputs,
                                                 absl::string_view model_card_sha256_hex);

}  // namespace tessera::governance

#endif  // TESSERA_CORE_GOVERNANCE_BILL_OF_MATERIALS_H_
