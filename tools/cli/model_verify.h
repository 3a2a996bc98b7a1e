// File: model_verify.h
// `tessera model verify PATH [--online]` (docs/governance.md): checks an exported model
// folder (weights, README.md, bom.json) against its signed bill of materials with
// privacy/provenance/export_verify.h, and optionally against the coordinator's record.
#ifndef TESSERA_TOOLS_CLI_MODEL_VERIFY_H_
#define TESSERA_TOOLS_CLI_MODEL_VERIFY_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "privacy/provenance/export_verify.h"
#include "tessera/wire/v1/control.pb.h"

namespace tessera::cli {

// Exit codes of `tessera model verify` and `tessera audit verify`. Verified means every
// check passed AND the signer chains to the federation CA given with --ca. Without --ca
// every check may pass and the result is still only "unverified" (kVerifyUnverified): the
// signature then proves only that someone holding the embedded key signed, and anyone can
// make such a key and a self-signed "coordinator" certificate.
inline constexpr int kVerifyPassed = 0;
inline constexpr int kVerifyFailed = 1;
inline constexpr int kVerifyUnusable = 2;
inline constexpr int kVerifyUnverified = 3;

struct ExportOnDisk {
  std::string bom_path, weights_path, model_card_path;
  provenance::ExportFiles files;
};

// Reads the export at `path`: its folder or its bom.json, then the weights file bom.json
// names (model.weights.file, in the same folder) and README.md. NOT_FOUND naming the file
// that is missing; INVALID_ARGUMENT when bom.json names no weights file, or one outside the
// folder.
absl::StatusOr<ExportOnDisk> ReadExport(const std::string& path);

// ReadExport, then every offline check (provenance::VerifyExport; the signer against
// `ca_pem` when not empty). Errors are unusable input, as ReadExport's and VerifyExport's.
absl::StatusOr<provenance::ExportVerification> VerifyExportAt(const std::string& path,
                                                              absl::string_view ca_pem);

// The online check ("coordinator"): the run exists and its round `verification.round`
// committed the tensor digest the bill of materials names. `status` is the coordinator's
// GetRunStatus answer.
provenance::ExportCheck CoordinatorCheck(const provenance::ExportVerification& verification,
                                         const wire::v1::RunStatus& status);

// "OK   signature  signed by CN=coordinator O=Acme" or
// "FAIL weights sha256  expected ab12.. found cd34..".
std::string CheckLine(const provenance::ExportCheck& check);
// The summary: "verified: all N checks passed", "verification FAILED: N of M checks", or,
// when every check passed but `ca_checked` is false, "UNVERIFIED: all N checks passed, but
// no --ca was given ...".
std::string VerificationSummary(const std::vector<provenance::ExportCheck>& checks,
                                bool ca_checked);
// {"ok":..,"result":"verified"|"unverified"|"failed","run_id":..,"round":..,"ca_checked":..,
// "checks":[{"name","ok","detail"},..]}; "ok" is true only for "verified".
std::string VerificationJson(const provenance::ExportVerification& verification,
                             bool ca_checked);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_MODEL_VERIFY_H_
