// File: commands.h
// The operator CLI's subcommands. Each returns a process exit code and prints its own
// errors ("tessera: <what>: <why>").
#ifndef TESSERA_TOOLS_CLI_COMMANDS_H_
#define TESSERA_TOOLS_CLI_COMMANDS_H_

#include <string>

#include "tools/cli/connection.h"

namespace tessera::cli {

struct OutputOptions {
  bool json = false;
};

int CreateRun(const ConnectionOptions& c, const OutputOptions& out, const std::string& config,
              bool start);
int StartRun(const ConnectionOptions& c, const OutputOptions& out, const std::string& run_id);
int CancelRun(const ConnectionOptions& c, const OutputOptions& out, const std::string& run_id);
int RunStatus(const ConnectionOptions& c, const OutputOptions& out, const std::string& run_id);
int WatchRun(const ConnectionOptions& c, const OutputOptions& out, const std::string& run_id);
int ListRuns(const ConnectionOptions& c, const OutputOptions& out);
int ListClients(const ConnectionOptions& c, const OutputOptions& out);
// Writes the weights to `out_path` (safetensors) and, for TorchScript runs, the program with
// the federated weights to `torchscript_path` (default: out_path with .pt).
int ExportModel(const ConnectionOptions& c, const OutputOptions& out, const std::string& run_id,
                int round, const std::string& out_path, std::string torchscript_path);

// Runs the torch-linked tessera-model tool (found next to this binary or on PATH).
int RunModelTool(const std::vector<std::string>& args);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_COMMANDS_H_
