// File: model_export.h
// What `tessera model export` writes (docs/governance.md): the weights as safetensors with
// the coordinator's metadata, the model card (README.md) and the signed bill of materials
// (bom.json) next to them. Separate from the RPC so it can be tested without a coordinator.
#ifndef TESSERA_TOOLS_CLI_MODEL_EXPORT_H_
#define TESSERA_TOOLS_CLI_MODEL_EXPORT_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/model/tensor.h"
#include "tessera/wire/v1/control.pb.h"

namespace tessera::cli {

inline constexpr absl::string_view kModelCardFileName = "README.md";
inline constexpr absl::string_view kBillOfMaterialsFileName = "bom.json";

struct ExportedFiles {
  std::string weights_path;
  std::string weights_sha256_hex;  // of the bytes written
  std::string model_card_path;     // empty when the coordinator sent no model card
  std::string bom_path;            // empty when the coordinator sent no bill of materials
  std::string signer;              // "CN=coordinator O=Acme", from the bill of materials
};

// Writes `weights` to `weights_path` with header.safetensors_metadata (or
// `fallback_metadata` when the header has none: an older coordinator), and, when the header
// carries them, README.md and bom.json in the same folder. The serialized weights must hash
// to the bill of materials' model.weights.sha256 (checked before anything is written).
// Errors: DATA_LOSS when they do not; ALREADY_EXISTS for a README.md that is not a Tessera
// model card (unless `force`); INVALID_ARGUMENT for a bill of materials without
// model.weights.sha256; I/O errors naming the path.
absl::StatusOr<ExportedFiles> WriteExport(
    const wire::v1::ExportHeader& header, const ArrayRecord& weights,
    const std::string& weights_path,
    const std::map<std::string, std::string>& fallback_metadata, bool force);

// `tessera model export --torchscript PATH` needs a run whose model is a TorchScript program:
// FAILED_PRECONDITION naming the flag and the run's model (built-in architecture or LoRA
// adapter) otherwise, so nothing is written. OK when `torchscript_path` is empty.
absl::Status CheckTorchScriptRequested(const wire::v1::ExportHeader& header,
                                       absl::string_view torchscript_path);

// What `tessera model export` prints about the model's input, as the model card states it
// (core/model/image_input.h): "input float32 [batch, 1, 28, 28] (...); IDX pixels x
// normalized as (x / 255 - 0.2860) / 0.3530 ...". "" for a language-model adapter.
std::string PreprocessingText(const wire::v1::ModelSpec& model);

// The string member at a dotted path of a JSON document, e.g. "model.weights.sha256".
// INVALID_ARGUMENT when `json` is not JSON or the member is missing or not a string.
absl::StatusOr<std::string> JsonStringMember(absl::string_view json, absl::string_view path);

// Who signed a bill of materials, from its signature.signer PEM, without checking it:
// "CN=coordinator O=Acme", or "a bare public key" for an --insecure coordinator.
std::string BillOfMaterialsSigner(absl::string_view bom_json);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_MODEL_EXPORT_H_
