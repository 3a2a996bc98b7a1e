// File: data_card.h
// A partner's data card (docs/data_cards.md): what the data holder states about its
// dataset (name, license, how it was collected and labeled, its intended use and
// restrictions, a contact) and whether it lets a class histogram leave the client. The
// partner writes it as TOML or YAML next to its data; tessera-client loads it with
// --data-card and sends it in RegisterRequest.data_card; the coordinator validates it
// again on Register and records it in the run's provenance.
//
// Example card.toml:
//   name = "st-mary-chest-xray-2023"
//   description = "Frontal chest X-rays, 2019-2023, adults"
//   license = "LicenseRef-st-mary-research"
//   contact = "data-office@st-mary.example"
//   allow_class_histogram = false
//
// The keys are flat (no tables): name, description, license, collection, labeling,
// intended_use, restrictions, contact, privacy_budget (strings) and allow_class_histogram
// (boolean). privacy_budget is the site's record-level budget, "epsilon=E,delta=D"
// (privacy_budget.h).
// Every error message starts with the field's name, e.g.
//   `license: "CC BY" is not an SPDX license identifier (letters, digits, '.', '+', '-')`.
#ifndef TESSERA_CORE_CONFIG_DATA_CARD_H_
#define TESSERA_CORE_CONFIG_DATA_CARD_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tessera/wire/v1/governance.pb.h"

namespace tessera {

enum class DataCardFormat { kToml, kYaml };

// Parses and validates (ValidateDataCard) a data card. Errors: INVALID_ARGUMENT for syntax
// errors ("line L, column C: ..."), a document that is not a table/mapping, an unknown or
// repeated key ("KEY: unknown key"), a value of the wrong type ("allow_class_histogram:
// must be a boolean, got string") and the errors of ValidateDataCard.
absl::StatusOr<wire::v1::DataCard> ParseDataCard(absl::string_view text, DataCardFormat format);

// Reads `path` and parses it in the format its extension names: .toml, or .yaml / .yml
// (case-insensitive). Errors: INVALID_ARGUMENT "PATH: ..." for another extension; NOT_FOUND
// when the file cannot be read; those of ParseDataCard prefixed with "PATH: ".
absl::StatusOr<wire::v1::DataCard> LoadDataCardFile(const std::string& path);

// Checks a card whatever it was written in (the coordinator calls this on Register):
// name, description, license and contact are required (non-empty); name is one line of at
// most 128 characters; license is an SPDX-like identifier of 1..64 characters matching
// [A-Za-z0-9][A-Za-z0-9.+-]*; the other text fields are at most 4096 bytes; all text is
// valid UTF-8 without control characters other than '\n' and '\t' (none in name); a
// privacy_budget, when set, parses with ParsePrivacyBudget.
// Errors: INVALID_ARGUMENT naming the first bad field, e.g. "contact: missing (required)".
absl::Status ValidateDataCard(const wire::v1::DataCard& card);

// True when `allowed` is empty (any license) or holds `license`. SPDX identifiers match
// case-insensitively ("mit" is "MIT"). The coordinator checks a data card's license against
// governance.allowed_data_licenses with this; ValidateRunConfig checks model.license
// against governance.allowed_base_model_licenses.
bool LicenseAllowed(absl::string_view license,
                    const google::protobuf::RepeatedPtrField<std::string>& allowed);

}  // namespace tessera

#endif  // TESSERA_CORE_CONFIG_DATA_CARD_H_
