// File: audit_json.h
// The JSON form of audit log entries and heads (docs/governance.md): one canonical JSON
// object per line in `tessera audit export`, and the bytes their hashes and signatures cover.
//
// Canonical JSON here (canonical_json.h): object keys sorted by byte value, no whitespace,
// integers as integers, strings as UTF-8 with only the escapes JSON requires. Every field of
// an entry is always present, so the same entry always gives the same bytes.
#ifndef TESSERA_CORE_GOVERNANCE_AUDIT_JSON_H_
#define TESSERA_CORE_GOVERNANCE_AUDIT_JSON_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tessera/wire/v1/governance.pb.h"

namespace tessera::governance {

// {"action":..,"actor":..,"details":{..},"hash":..,"prev_hash":..,"round":..,"run_id":..,
//  "seq":..,"unix_ms":..}; without "hash" when include_hash is false (what the hash covers).
std::string AuditEntryJson(const wire::v1::AuditEntry& entry, bool include_hash);

// Parses one line written by AuditEntryJson(entry, true). INVALID_ARGUMENT naming the
// member that is missing or has the wrong type, or for a line that is not a JSON object.
absl::StatusOr<wire::v1::AuditEntry> ParseAuditEntryJson(absl::string_view line);

// What the head's signature covers: {"hash":..,"seq":..,"unix_ms":..}.
std::string AuditHeadSignedJson(const wire::v1::AuditHead& head);
// The head's export line: {"head":{"hash","seq","signature","signer","unix_ms"}}.
std::string AuditHeadJson(const wire::v1::AuditHead& head);
// Parses AuditHeadJson's output; NOT_FOUND when the line is not a head line (no "head").
absl::StatusOr<wire::v1::AuditHead> ParseAuditHeadJson(absl::string_view line);

}  // namespace tessera::governance

#endif  // TESSERA_CORE_GOVERNANCE_AUDIT_JSON_H_
