// File: json_fields.h
// Typed, non-throwing reads of fields from the JSON files of a Hugging Face directory
// (config.json, adapter_config.json, model.safetensors.index.json). Every error is
// INVALID_ARGUMENT and starts with "<file>: <field> ...", so the message names both.
// Internal to client/lm/checkpoint.
#ifndef TESSERA_CLIENT_LM_CHECKPOINT_JSON_FIELDS_H_
#define TESSERA_CLIENT_LM_CHECKPOINT_JSON_FIELDS_H_

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera::lm::internal {

// Parses `text` as a JSON object. INVALID_ARGUMENT "<file>: not valid JSON" or "<file>: not a
// JSON object".
absl::StatusOr<nlohmann::json> ParseJsonObject(absl::string_view text, absl::string_view file);

// `value` as compact JSON for messages, cut to 80 characters.
std::string Dump(const nlohmann::json& value);

// INVALID_ARGUMENT "<file>: <field> <what>".
absl::Status FieldError(absl::string_view file, absl::string_view field, absl::string_view what);

// An integer (a float with an integral value, e.g. 8192.0, is accepted too), within
// [min, max].
absl::StatusOr<int64_t> GetInt(const nlohmann::json& value, absl::string_view file,
                               absl::string_view field, int64_t min, int64_t max);
// A finite number.
absl::StatusOr<double> GetNumber(const nlohmann::json& value, absl::string_view file,
                                 absl::string_view field);
absl::StatusOr<bool> GetBool(const nlohmann::json& value, absl::string_view file,
                             absl::string_view field);
absl::StatusOr<std::string> GetString(const nlohmann::json& value, absl::string_view file,
                                      absl::string_view field);

// True for null, {} and [] (PEFT writes all three for "nothing").
bool IsNullOrEmpty(const nlohmann::json& value);

// "[2, 3]"
std::string ShapeString(const std::vector<int64_t>& shape);

}  // namespace tessera::lm::internal

#endif  // TESSERA_CLIENT_LM_CHECKPOINT_JSON_FIELDS_H_
