// File: commands.h
// The operator CLI's subcommands. Each returns a process exit code and prints its own
// errors ("tessera: <what>: <why>").
#ifndef TESSERA_TOOLS_CLI_COMMANDS_H_
#define TESSERA_TOOLS_CLI_COMMANDS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "tools/cli/connection.h"

namespace tessera::cli {

struct OutputOptions {
  bool json = false;
};

int CreateRun(const ConnectionOptions& c, const OutputOptions& out, const std::string& config,
              bool start);
int StartRun(const ConnectionOptions& c, const OutputOptions& out, const std::string& run_id);
int CancelRun(const ConnectionOptions& c, const OutputOptions& out, const std::string& run_id);
int ArchiveRun(const ConnectionOptions& c, const OutputOptions& out, const std::string& run_id);
// Refuses (exit 2) without `yes`: the deletion cannot be undone.
int DeleteRun(const ConnectionOptions& c, const OutputOptions& out, const std::string& run_id,
              bool yes);
int RunStatus(const ConnectionOptions& c, const OutputOptions& out, const std::string& run_id);
int WatchRun(const ConnectionOptions& c, const OutputOptions& out, const std::string& run_id);
// Archived runs only with `include_archived`.
int ListRuns(const ConnectionOptions& c, const OutputOptions& out, bool include_archived);
// `tessera run report RUN`: writes the run's self-contained HTML report (tools/cli/run_report.h)
// to `out_path` (default: RUN.html in the current directory) and prints where and its size.
int ReportRun(const ConnectionOptions& c, const OutputOptions& out, const std::string& run_id,
              std::string out_path);
int ListClients(const ConnectionOptions& c, const OutputOptions& out);
// Writes the weights to `out_path` (safetensors), the model card (README.md) and the signed
// bill of materials (bom.json) next to it (tools/cli/model_export.h) and, for TorchScript
// runs, the program with the federated weights to `torchscript_path` (default: out_path
// with .pt). `force`: replace a README.md that is not a Tessera model card.
int ExportModel(const ConnectionOptions& c, const OutputOptions& out, const std::string& run_id,
                int round, const std::string& out_path, std::string torchscript_path,
                bool force);
// `tessera model verify PATH [--online]` (tools/cli/model_verify.h): exit 0 when every check
// passes and the signer chains to --ca, 1 when one fails, 2 when the export cannot be read,
// 3 ("unverified") when every check passes but no --ca was given.
int VerifyModel(const ConnectionOptions& c, const OutputOptions& out, const std::string& path,
                bool online);

// `tessera audit export [--out FILE]` and `tessera audit verify FILE`
// (tools/cli/audit_commands.h). `audit verify` exits as `model verify` does: 0 verified,
// 1 a problem (a missing signed head is one), 2 unreadable, 3 intact but no --ca.
int ExportAudit(const ConnectionOptions& c, const OutputOptions& out,
                const std::string& out_path);
int VerifyAudit(const ConnectionOptions& c, const OutputOptions& out, const std::string& path);

// Runs the torch-linked tessera-model tool (found next to this binary or on PATH).
int RunModelTool(const std::vector<std::string>& args);
// A fresh path in the temporary folder ending in `suffix`, for tessera-model's files.
std::string TempPath(absl::string_view suffix);

// `tessera privacy epsilon|noise`: offline privacy accounting for DP-FedAvg / DP-SGD with
// Poisson sampling (privacy/dp/rdp_accountant.h, privacy/dp/pld_accountant.h). They need no
// coordinator connection.
struct PrivacyArgs {
  double q = -1;                 // --q, the per-step sampling probability
  double noise_multiplier = -1;  // --noise-multiplier (epsilon only)
  double epsilon = -1;           // --epsilon, the target (noise only)
  uint64_t steps = 0;            // --steps
  double delta = -1;             // --delta
  std::string orders;            // --orders, comma-separated; empty: the default orders
  std::string conversion = "improved";  // --conversion improved|classic
  std::string accountant = "rdp";  // --accountant rdp|pld; pld ignores orders and conversion
};
int PrivacyEpsilon(const OutputOptions& out, const PrivacyArgs& args);
// `tessera privacy spent RUN`: the run's dataset budget and epsilon round by round, from the
// coordinator's ledger.
int PrivacySpent(const ConnectionOptions& c, const OutputOptions& out, const std::string& run_id);
int PrivacyNoise(const OutputOptions& out, const PrivacyArgs& args);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_COMMANDS_H_
