// File: audit_commands.h
// The coordinator's audit log on the operator's side (docs/governance.md):
//   tessera audit export [--out FILE]   every entry as one JSON line, then the signed head
//   tessera audit verify FILE           the hash chain and the head's signature, offline
// and the operator events `tessera pki` records in it (certificate.issued/revoked).
#ifndef TESSERA_TOOLS_CLI_AUDIT_COMMANDS_H_
#define TESSERA_TOOLS_CLI_AUDIT_COMMANDS_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "privacy/provenance/audit_chain.h"
#include "tessera/wire/v1/governance.pb.h"
#include "tools/cli/connection.h"

namespace tessera::cli {

// An exported log as read back: the entries in file order and the head line, if any.
struct AuditLogFile {
  std::vector<wire::v1::AuditEntry> entries;
  std::optional<wire::v1::AuditHead> head;
  // Lines that are neither an entry nor the head, or come after the head:
  // "line 7: <why>". Blank lines are skipped.
  std::vector<std::string> problems;
};

// Parses the lines of `tessera audit export`. Never fails: a bad line is a problem.
AuditLogFile ParseAuditLog(absl::string_view text);

struct AuditLogReport {
  uint64_t entries = 0;
  bool has_head = false;
  uint64_t head_seq = 0;
  provenance::SignerIdentity head_signer;  // when the head verified
  bool ca_checked = false;                 // the head's signer was checked against a CA
  std::vector<std::string> problems;       // the file's, then the chain's
  std::vector<std::string> warnings;
  // No problem: the chain is intact and ends at the signed head (a log without a head line
  // has the problem "no signed head").
  bool ok() const { return problems.empty(); }
  // ok(), and the head's signer chains to the CA that was given.
  bool verified() const { return ok() && ca_checked; }
};

// Reads the log at `path` and checks it with provenance::VerifyAuditChain (the head's signer
// against `ca_pem` when not empty). NOT_FOUND naming the path when it cannot be read.
absl::StatusOr<AuditLogReport> VerifyAuditLogFile(const std::string& path,
                                                  absl::string_view ca_pem);

// "audit log OK: 12 entries, head signed by CN=coordinator O=Acme" (verified, with --ca),
// "audit log UNVERIFIED: 12 entries, head signed by ..." (intact, no --ca), or "audit log
// FAILED: 2 problems" followed by one line per problem; then the warnings.
std::string AuditReportText(const AuditLogReport& report);
std::string AuditReportJson(const AuditLogReport& report);

// "CN=coordinator O=Acme", or "a bare public key (sha256 ab12..)" for an --insecure signer.
std::string SignerText(const provenance::SignerIdentity& signer);

// Appends an operator event to the coordinator's audit log (RecordAuditEvent) with the
// operator's credentials in `c`. Errors: the call's status.
absl::StatusOr<wire::v1::AuditEntry> RecordOperatorEvent(
    const ConnectionOptions& c, absl::string_view action,
    const std::map<std::string, std::string>& details);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_AUDIT_COMMANDS_H_
