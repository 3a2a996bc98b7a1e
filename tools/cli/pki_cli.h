// File: pki_cli.h
// Registers `tessera pki ...` on the operator CLI (tools/cli/pki_commands.h does the work).
#ifndef TESSERA_TOOLS_CLI_PKI_CLI_H_
#define TESSERA_TOOLS_CLI_PKI_CLI_H_

#include <CLI/CLI.hpp>

namespace tessera::cli {

// The chosen command's exit code goes to `rc`; `json` is the global --json flag.
void AddPkiCommands(CLI::App& app, int& rc, const bool& json);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_PKI_CLI_H_
