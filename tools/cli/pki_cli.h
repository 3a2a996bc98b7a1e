// File: pki_cli.h
// Registers `tessera pki ...` on the operator CLI (tools/cli/pki_commands.h does the work).
#ifndef TESSERA_TOOLS_CLI_PKI_CLI_H_
#define TESSERA_TOOLS_CLI_PKI_CLI_H_

#include <CLI/CLI.hpp>

#include "tools/cli/connection.h"

namespace tessera::cli {

// The chosen command's exit code goes to `rc`; `json` is the global --json flag. After a
// successful issue or revoke the event goes to the coordinator's audit log over `conn` when
// `coordinator` (the global --coordinator option) was given on the command line or in the
// environment; otherwise, or when that fails, a one-line note goes to stderr and the exit
// code stays 0. All references must outlive the App's parse.
void AddPkiCommands(CLI::App& app, int& rc, const bool& json, const ConnectionOptions& conn,
                    const CLI::Option& coordinator);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_PKI_CLI_H_
