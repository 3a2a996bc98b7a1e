// The JSON form of audit entries and heads (audit_json.h, docs/governance.md).
#include "core/governance/audit_json.h"

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "core/governance/canonical_json.h"

namespace tessera::governance {
namespace {

using wire::v1::AuditEntry;
using wire::v1::AuditHead;

// The canonical bytes of a value built from protobuf fields. Proto strings that are not
// valid UTF-8 (only possible in memory: proto3 refuses to parse them) are written with
// U+FFFD in place of the bad bytes rather than failing, so these functions stay total;
// CoordinatorState::AppendAudit refuses such entries before they are hashed.
std::string Dump(const nlohmann::json& value) {
  absl::StatusOr<std::string> canonical = CanonicalJson(value);
  if (canonical.ok()) return *std::move(canonical);
  return value.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
}

nlohmann::json HeadSignedObject(const AuditHead& head) {
  nlohmann::json j = nlohmann::json::object();
  j["hash"] = head.hash();
  j["seq"] = head.seq();
  j["unix_ms"] = head.unix_ms();
  return j;
}

// Typed member access with errors that name the member.
class Members {
 public:
  Members(const nlohmann::json& object, absl::string_view what)
      : object_(object), what_(what) {}

  absl::StatusOr<const nlohmann::json*> Get(const char* name) const {
    auto it = object_.find(name);
    if (it == object_.end()) {
      return absl::InvalidArgumentError(absl::StrCat(what_, ": member \"", name, "\" is missing"));
    }
    return &*it;
  }
  absl::Status WrongType(const char* name, absl::string_view expected) const {
    return absl::InvalidArgumentError(
        absl::StrCat(what_, ": member \"", name, "\" must be ", expected));
  }
  absl::StatusOr<std::string> String(const char* name) const {
    TESSERA_ASSIGN_OR_RETURN(const nlohmann::json* v, Get(name));
    if (!v->is_string()) return WrongType(name, "a string");
    return v->get<std::string>();
  }
  absl::StatusOr<uint64_t> Unsigned(const char* name, uint64_t max) const {
    TESSERA_ASSIGN_OR_RETURN(const nlohmann::json* v, Get(name));
    if (!v->is_number_unsigned() || v->get<uint64_t>() > max) {
      return WrongType(name, absl::StrCat("an integer from 0 to ", max));
    }
    return v->get<uint64_t>();
  }
  absl::StatusOr<int64_t> Signed(const char* name) const {
    TESSERA_ASSIGN_OR_RETURN(const nlohmann::json* v, Get(name));
    if (v->is_number_unsigned() &&
        v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return WrongType(name, "a 64-bit signed integer");
    }
    if (!v->is_number_integer()) return WrongType(name, "an integer");
    return v->get<int64_t>();
  }
  // INVALID_ARGUMENT naming the first member not in `known`.
  absl::Status OnlyKnown(std::initializer_list<const char*> known) const {
    for (auto it = object_.begin(); it != object_.end(); ++it) {
      bool found = false;
      for (const char* k : known) found = found || it.key() == k;
      if (!found) {
        return absl::InvalidArgumentError(
            absl::StrCat(what_, ": unknown member \"", it.key(), "\""));
      }
    }
    return absl::OkStatus();
  }

 private:
  const nlohmann::json& object_;
  absl::string_view what_;
};

absl::StatusOr<nlohmann::json> ParseObject(absl::string_view line, absl::string_view what) {
  TESSERA_ASSIGN_OR_RETURN(nlohmann::json j, ParseJson(line));
  if (!j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not a JSON object"));
  }
  return j;
}

}  // namespace

std::string AuditEntryJson(const AuditEntry& entry, bool include_hash) {
  nlohmann::json j = nlohmann::json::object();
  j["action"] = entry.action();
  j["actor"] = entry.actor();
  nlohmann::json details = nlohmann::json::object();
  for (const auto& [key, value] : entry.details()) details[key] = value;
  j["details"] = std::move(details);
  if (include_hash) j["hash"] = entry.hash();
  j["prev_hash"] = entry.prev_hash();
  j["round"] = entry.round();
  j["run_id"] = entry.run_id();
  j["seq"] = entry.seq();
  j["unix_ms"] = entry.unix_ms();
  return Dump(j);
}

absl::StatusOr<AuditEntry> ParseAuditEntryJson(absl::string_view line) {
  constexpr absl::string_view kWhat = "audit entry";
  TESSERA_ASSIGN_OR_RETURN(nlohmann::json j, ParseObject(line, kWhat));
  const Members m(j, kWhat);
  TESSERA_RETURN_IF_ERROR(m.OnlyKnown({"action", "actor", "details", "hash", "prev_hash",
                                       "round", "run_id", "seq", "unix_ms"}));
  AuditEntry entry;
  TESSERA_ASSIGN_OR_RETURN(*entry.mutable_action(), m.String("action"));
  TESSERA_ASSIGN_OR_RETURN(*entry.mutable_actor(), m.String("actor"));
  TESSERA_ASSIGN_OR_RETURN(const nlohmann::json* details, m.Get("details"));
  if (!details->is_object()) return m.WrongType("details", "an object of strings");
  for (auto it = details->begin(); it != details->end(); ++it) {
    if (!it.value().is_string()) return m.WrongType("details", "an object of strings");
    (*entry.mutable_details())[it.key()] = it.value().get<std::string>();
  }
  TESSERA_ASSIGN_OR_RETURN(*entry.mutable_hash(), m.String("hash"));
  TESSERA_ASSIGN_OR_RETURN(*entry.mutable_prev_hash(), m.String("prev_hash"));
  TESSERA_ASSIGN_OR_RETURN(uint64_t round,
                           m.Unsigned("round", std::numeric_limits<uint32_t>::max()));
  entry.set_round(static_cast<uint32_t>(round));
  TESSERA_ASSIGN_OR_RETURN(*entry.mutable_run_id(), m.String("run_id"));
  TESSERA_ASSIGN_OR_RETURN(uint64_t seq,
                           m.Unsigned("seq", std::numeric_limits<uint64_t>::max()));
  entry.set_seq(seq);
  TESSERA_ASSIGN_OR_RETURN(int64_t unix_ms, m.Signed("unix_ms"));
  entry.set_unix_ms(unix_ms);
  return entry;
}

std::string AuditHeadSignedJson(const AuditHead& head) { return Dump(HeadSignedObject(head)); }

std::string AuditHeadJson(const AuditHead& head) {
  nlohmann::json inner = HeadSignedObject(head);
  inner["signature"] = head.signature();
  inner["signer"] = head.signer();
  nlohmann::json j = nlohmann::json::object();
  j["head"] = std::move(inner);
  return Dump(j);
}

absl::StatusOr<AuditHead> ParseAuditHeadJson(absl::string_view line) {
  constexpr absl::string_view kWhat = "audit head";
  TESSERA_ASSIGN_OR_RETURN(nlohmann::json j, ParseObject(line, kWhat));
  auto it = j.find("head");
  if (it == j.end()) return absl::NotFoundError("not an audit head line (no \"head\" member)");
  TESSERA_RETURN_IF_ERROR(Members(j, kWhat).OnlyKnown({"head"}));
  if (!it->is_object()) {
    return absl::InvalidArgumentError("audit head: member \"head\" must be an object");
  }
  const Members m(*it, kWhat);
  TESSERA_RETURN_IF_ERROR(m.OnlyKnown({"hash", "seq", "signature", "signer", "unix_ms"}));
  AuditHead head;
  TESSERA_ASSIGN_OR_RETURN(*head.mutable_hash(), m.String("hash"));
  TESSERA_ASSIGN_OR_RETURN(uint64_t seq,
                           m.Unsigned("seq", std::numeric_limits<uint64_t>::max()));
  head.set_seq(seq);
  TESSERA_ASSIGN_OR_RETURN(*head.mutable_signature(), m.String("signature"));
  TESSERA_ASSIGN_OR_RETURN(*head.mutable_signer(), m.String("signer"));
  TESSERA_ASSIGN_OR_RETURN(int64_t unix_ms, m.Signed("unix_ms"));
  head.set_unix_ms(unix_ms);
  return head;
}

}  // namespace tessera::governance
