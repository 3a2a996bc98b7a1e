// File: tokenizer_json.h
// Shared reading of tokenizer.json sections for the byte-level BPE tokenizer's parts (the
// model, added tokens, normalizer, pre-tokenizer and post-processor): every error is
// INVALID_ARGUMENT "tokenizer.json: <field> <what>". Internal to client/lm/tokenizer.
#ifndef TESSERA_CLIENT_LM_TOKENIZER_TOKENIZER_JSON_H_
#define TESSERA_CLIENT_LM_TOKENIZER_TOKENIZER_JSON_H_

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera::lm::tokenizer_internal {

inline constexpr absl::string_view kTokenizerFile = "tokenizer.json";

// INVALID_ARGUMENT "tokenizer.json: <field> <what>".
absl::Status Invalid(absl::string_view field, absl::string_view what);

// `s` in double quotes, for messages.
std::string Quoted(absl::string_view s);

// The "type" of a json object, or "".
std::string TypeOf(const nlohmann::json& j);

// A boolean field that may be absent or null (then `fallback`); INVALID_ARGUMENT naming
// "<field>.<key>" when it is not a boolean.
absl::StatusOr<bool> OptionalBool(const nlohmann::json& j, const char* key,
                                  absl::string_view field, bool fallback);

// One step of a section that is either a single object or {"type": "Sequence", "<list_key>":
// [...]}, with the name messages give it: "<section>" for a single object, else
// "<section>.<list_key>[i]".
struct SectionItem {
  const nlohmann::json* item;
  std::string field;
};

// The steps of `section` (named `name` in tokenizer.json), in order. Errors: INVALID_ARGUMENT
// "tokenizer.json: <name>.<list_key> is missing" for a Sequence without that list.
absl::StatusOr<std::vector<SectionItem>> SectionItems(const nlohmann::json& section,
                                                      absl::string_view name,
                                                      const char* list_key);

}  // namespace tessera::lm::tokenizer_internal

#endif  // TESSERA_CLIENT_LM_TOKENIZER_TOKENIZER_JSON_H_
