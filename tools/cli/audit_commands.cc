// File: audit_commands.cc
// `tessera audit export|verify` and recording operator events (audit_commands.h).
#include "tools/cli/audit_commands.h"

#include <chrono>
#include <iostream>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/base/file.h"
#include "core/base/status_macros.h"
#include "core/governance/audit_json.h"
#include "core/serde/grpc_status.h"
#include "tools/cli/commands.h"
#include "tools/cli/errors.h"
#include "tools/cli/model_verify.h"

namespace tessera::cli {

AuditLogFile ParseAuditLog(absl::string_view text) {
  AuditLogFile log;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    if (log.head.has_value()) {
      log.problems.push_back(absl::StrCat("line ", line_no, ": comes after the head line"));
      continue;
    }
    absl::StatusOr<wire::v1::AuditHead> head = governance::ParseAuditHeadJson(line);
    if (head.ok()) {
      log.head = *std::move(head);
      continue;
    }
    // A head line that does not parse; anything else is read as an entry.
    if (head.status().code() != absl::StatusCode::kNotFound &&
        absl::StrContains(line, "\"head\"")) {
      log.problems.push_back(
          absl::StrCat("line ", line_no, ": bad head line: ", head.status().message()));
      continue;
    }
    absl::StatusOr<wire::v1::AuditEntry> entry = governance::ParseAuditEntryJson(line);
    if (entry.ok()) {
      log.entries.push_back(*std::move(entry));
    } else {
      log.problems.push_back(
          absl::StrCat("line ", line_no, ": not an audit entry: ", entry.status().message()));
    }
  }
  return log;
}

absl::StatusOr<AuditLogReport> VerifyAuditLogFile(const std::string& path,
                                                  absl::string_view ca_pem) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return absl::NotFoundError(text.status().message());
  AuditLogFile log = ParseAuditLog(*text);
  const provenance::AuditVerification v = provenance::VerifyAuditChain(
      log.entries, log.head.has_value() ? &*log.head : nullptr, ca_pem);
  AuditLogReport report;
  report.entries = log.entries.size();
  report.has_head = log.head.has_value();
  report.head_seq = report.has_head ? log.head->seq() : 0;
  report.head_signer = v.head_signer;
  report.ca_checked = !ca_pem.empty();
  report.problems = std::move(log.problems);
  report.problems.insert(report.problems.end(), v.problems.begin(), v.problems.end());
  if (!report.has_head) {
    // Without the signed head, cutting entries off the end (or replacing the whole log with
    // a freshly chained one) cannot be detected: that is a failure, not a warning.
    report.problems.push_back(
        "no signed head line: entries cut off the end or a rewritten log cannot be detected");
  }
  if (!report.ca_checked) {
    report.warnings.push_back(
        "no --ca given: the head's signer was not checked against the federation CA, so "
        "anyone could have re-chained and signed this log");
  }
  return report;
}

std::string SignerText(const provenance::SignerIdentity& signer) {
  if (signer.common_name.empty()) {
    return absl::StrCat("a bare public key (sha256 ", signer.fingerprint_sha256_hex.substr(0, 16),
                        "..)");
  }
  std::string who = absl::StrCat("CN=", signer.common_name);
  if (!signer.organization.empty()) absl::StrAppend(&who, " O=", signer.organization);
  return who;
}

std::string AuditReportText(const AuditLogReport& r) {
  std::string out;
  if (r.ok()) {
    absl::StrAppend(&out, r.verified() ? "audit log OK: " : "audit log UNVERIFIED: ", r.entries,
                    " entries");
    if (r.has_head) absl::StrAppend(&out, ", head signed by ", SignerText(r.head_signer));
    absl::StrAppend(&out, "\n");
  } else {
    absl::StrAppend(&out, "audit log FAILED: ", r.problems.size(),
                    r.problems.size() == 1 ? " problem" : " problems", " in ", r.entries,
                    " entries\n");
    for (const std::string& p : r.problems) absl::StrAppend(&out, "  ", p, "\n");
  }
  for (const std::string& w : r.warnings) absl::StrAppend(&out, "warning: ", w, "\n");
  return out;
}

std::string AuditReportJson(const AuditLogReport& r) {
  nlohmann::json j = {{"ok", r.verified()},
                      {"result", !r.ok() ? "failed" : r.verified() ? "verified" : "unverified"},
                      {"entries", r.entries},
                      {"has_head", r.has_head}, {"head_seq", r.head_seq},
                      {"ca_checked", r.ca_checked}, {"problems", r.problems},
                      {"warnings", r.warnings}};
  if (r.has_head && r.ok()) j["head_signer"] = SignerText(r.head_signer);
  return j.dump();
}

absl::StatusOr<wire::v1::AuditEntry> RecordOperatorEvent(
    const ConnectionOptions& c, absl::string_view action,
    const std::map<std::string, std::string>& details) {
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<wire::v1::Control::Stub> stub, Connect(c));
  wire::v1::RecordAuditEventRequest req;
  req.set_action(std::string(action));
  req.mutable_details()->insert(details.begin(), details.end());
  wire::v1::AuditEntry entry;
  auto ctx = UnaryContext(c);
  grpc::Status s = stub->RecordAuditEvent(ctx.get(), req, &entry);
  if (!s.ok()) return FromGrpcStatus(s);
  return entry;
}

int ExportAudit(const ConnectionOptions& c, const OutputOptions& /*out: lines are JSON*/,
                const std::string& out_path) {
  auto stub = Connect(c);
  if (!stub.ok()) return Fail("connect", stub.status());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(10));
  auto reader = (*stub)->ExportAudit(&ctx, wire::v1::ExportAuditRequest());
  wire::v1::ExportAuditResponse msg;
  std::string text;  // for --out: written at once, so a failed export leaves no half file
  uint64_t entries = 0;
  std::optional<wire::v1::AuditHead> head;
  while (reader->Read(&msg)) {
    std::string line;
    if (msg.has_entry()) {
      line = governance::AuditEntryJson(msg.entry(), /*include_hash=*/true);
      ++entries;
    } else if (msg.has_head()) {
      head = msg.head();
      line = governance::AuditHeadJson(msg.head());
    } else {
      continue;
    }
    if (out_path.empty()) {
      std::cout << line << "\n";
    } else {
      absl::StrAppend(&text, line, "\n");
    }
  }
  grpc::Status s = reader->Finish();
  if (!s.ok()) return Fail("audit export", s);
  if (!out_path.empty()) {
    if (absl::Status w = WriteFileAtomically(out_path, text, 0644, /*replace=*/true); !w.ok()) {
      return Fail("audit export", w);
    }
    std::cerr << "exported " << entries << " audit entries to " << out_path;
    if (head.has_value()) {
      std::cerr << " (head seq " << head->seq() << ", hash " << head->hash() << ")";
    }
    std::cerr << "\n";
  } else {
    std::cout.flush();
  }
  if (!head.has_value()) {
    std::cerr << "tessera: audit export: warning: the coordinator sent no signed head\n";
  }
  return 0;
}

int VerifyAudit(const ConnectionOptions& c, const OutputOptions& out, const std::string& path) {
  std::string ca_pem;
  if (!c.ca_cert_path.empty()) {
    absl::StatusOr<std::string> ca = ReadFileToString(c.ca_cert_path);
    if (!ca.ok()) {
      std::cerr << "tessera: audit verify: --ca: " << ca.status().message() << "\n";
      return kVerifyUnusable;
    }
    ca_pem = *std::move(ca);
  }
  absl::StatusOr<AuditLogReport> report = VerifyAuditLogFile(path, ca_pem);
  if (!report.ok()) {
    std::cerr << "tessera: audit verify: " << report.status().message() << "\n";
    return kVerifyUnusable;
  }
  std::cout << (out.json ? AuditReportJson(*report) + "\n" : AuditReportText(*report));
  if (!report->ok()) return kVerifyFailed;
  return report->verified() ? kVerifyPassed : kVerifyUnverified;
}

}  // namespace tessera::cli
