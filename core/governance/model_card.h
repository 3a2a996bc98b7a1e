// File: model_card.h
// The model card of an exported model in the Hugging Face layout (README.md): YAML front
// matter (license, datasets, metrics, tags, model-index with the evaluation results), then
// Markdown sections: model description, preprocessing (input shape and the clients' input
// normalization; not for language-model adapters), intended use, training procedure,
// federated participants by organization, privacy guarantees, evaluation results,
// limitations, and provenance (where the signed bill of materials is).
#ifndef TESSERA_CORE_GOVERNANCE_MODEL_CARD_H_
#define TESSERA_CORE_GOVERNANCE_MODEL_CARD_H_

#include <string>

#include "absl/strings/string_view.h"
#include "core/governance/export_inputs.h"

namespace tessera::governance {

// The model card. `bom_file_name` is the bill of materials next to it. Every string that
// comes from a config, a data card or a certificate is quoted (YAML) or escaped (Markdown),
// so no input can break the front matter.
std::string RenderModelCard(const ExportInputs& inputs, absl::string_view bom_file_name);

}  // namespace tessera::governance

#endif  // TESSERA_CORE_GOVERNANCE_MODEL_CARD_H_
