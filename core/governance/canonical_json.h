// File: canonical_json.h
// The canonical JSON serialization that governance records are hashed and signed in
// (docs/governance.md): the same value always gives the same bytes, so a verifier can
// re-serialize what it parsed and check a hash or signature over it.
//
// Canonical form: object keys sorted by byte value (nlohmann::json keeps objects in a
// std::map), no whitespace, integers exact, doubles in nlohmann's shortest round-trip form,
// strings UTF-8 as given with only the escapes JSON requires (", \ and control characters).
//
// Example:
//   nlohmann::json card = {{"name", "fmnist"}, {"license", "CC-BY-4.0"}};
//   TESSERA_ASSIGN_OR_RETURN(std::string bytes, governance::CanonicalJson(card));
//   // bytes == R"({"license":"CC-BY-4.0","name":"fmnist"})"
#ifndef TESSERA_CORE_GOVERNANCE_CANONICAL_JSON_H_
#define TESSERA_CORE_GOVERNANCE_CANONICAL_JSON_H_

#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera::governance {

// The canonical bytes of `value`. INVALID_ARGUMENT when a string (key or value) is not
// valid UTF-8, naming nlohmann's reason (e.g. "invalid UTF-8 byte at index 3: 0xFF").
// Never throws.
absl::StatusOr<std::string> CanonicalJson(const nlohmann::json& value);

// Parses JSON text (RFC 8259; duplicate object keys keep the last value). INVALID_ARGUMENT
// with the parser's message (which names the byte offset) for text that is not one JSON
// value or not valid UTF-8. Never throws.
absl::StatusOr<nlohmann::json> ParseJson(absl::string_view text);

// True when `text` is well-formed UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF), i.e. CanonicalJson accepts it as a string.
bool IsValidUtf8(absl::string_view text);

}  // namespace tessera::governance

#endif  // TESSERA_CORE_GOVERNANCE_CANONICAL_JSON_H_
