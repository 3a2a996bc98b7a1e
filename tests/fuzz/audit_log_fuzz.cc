// File: audit_log_fuzz.cc
// Fuzzes the audit log JSON lines `tessera audit verify` reads: each line as the signed head
// (ParseAuditHeadJson) or as an entry (ParseAuditEntryJson), then the hash chain and head
// check (VerifyAuditChain), with and without a CA to check the head's signer against.
// A parsed entry must print back to a line that parses to the same entry.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "core/governance/audit_json.h"
#include "privacy/provenance/audit_chain.h"
#include "tests/fuzz/fuzz_pki.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tessera;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<wire::v1::AuditEntry> entries;
  std::optional<wire::v1::AuditHead> head;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    absl::StatusOr<wire::v1::AuditHead> h = governance::ParseAuditHeadJson(line);
    if (h.ok()) {
      head = *std::move(h);
      continue;
    }
    absl::StatusOr<wire::v1::AuditEntry> entry = governance::ParseAuditEntryJson(line);
    fuzz::Report(entry.status());
    if (!entry.ok()) continue;
    absl::StatusOr<wire::v1::AuditEntry> again =
        governance::ParseAuditEntryJson(governance::AuditEntryJson(*entry, true));
    fuzz::Check(again.ok(), "a parsed entry prints to a line that parses");
    fuzz::Check(governance::AuditEntryJson(*again, true) ==
                    governance::AuditEntryJson(*entry, true),
                "a parsed entry round-trips");
    entries.push_back(*std::move(entry));
  }
  const wire::v1::AuditHead* h = head.has_value() ? &*head : nullptr;
  const provenance::AuditVerification v = provenance::VerifyAuditChain(entries, h, "");
  fuzz::Report(v.ok() ? absl::OkStatus() : absl::InvalidArgumentError(v.problems[0]));
  (void)provenance::VerifyAuditChain(entries, h, fuzz::kFuzzCaPem).ok();
  return 0;
}
