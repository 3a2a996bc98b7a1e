// File: pki_commands.h
// `tessera pki ...`: the federation's certificate authority on the operator's machine
// (docs/pki.md). Offline; no coordinator connection. The CA folder holds
//   ca.pem, ca.key (0600)   the federation CA
//   crl.pem                 the revocation list the coordinator reads (--crl)
//   issued/<serial>.pem     a copy of every certificate issued, for list and revoke
// Each command returns a process exit code and prints "tessera pki: <what>: <why>" on error.
#ifndef TESSERA_TOOLS_CLI_PKI_COMMANDS_H_
#define TESSERA_TOOLS_CLI_PKI_COMMANDS_H_

#include <map>
#include <string>
#include <vector>

namespace tessera::cli {

struct PkiArgs {
  std::string dir;                    // --dir, the CA folder
  std::string organization;           // --org
  std::string role;                   // --role coordinator|operator|client
  std::string name;                   // --name, the CN
  std::vector<std::string> san;       // --san DNS:x,IP:y (coordinator)
  std::string csr;                    // --csr FILE, a partner's request
  std::string out;                    // --out DIR; default: --dir
  std::string serial;                 // --serial HEX (revoke)
  int days = 0;                       // --days; 0: 3650 for the CA, 365 for certificates
  int crl_days = 30;                  // --crl-days, the CRL's validity
  bool force = false;                 // --force: replace existing files (rotation)
  bool json = false;
};

// What an issue or revoke did, for the coordinator's audit log (tools/cli/pki_cli.cc records
// it with RecordAuditEvent). Public facts only: never key material.
struct PkiEvent {
  std::string action;  // "certificate.issued" or "certificate.revoked"
  // name, role, serial; not_after (RFC 3339, UTC) when issued. name and role are missing
  // for a revoked serial that issued/ does not hold.
  std::map<std::string, std::string> details;
};

int PkiInit(const PkiArgs& args);
// On success, appends the event to `events` when it is not null.
int PkiIssue(const PkiArgs& args, std::vector<PkiEvent>* events = nullptr);
int PkiCsr(const PkiArgs& args);
// On success, appends one event per newly revoked serial to `events` when it is not null.
int PkiRevoke(const PkiArgs& args, std::vector<PkiEvent>* events = nullptr);
int PkiList(const PkiArgs& args);
int PkiCrl(const PkiArgs& args);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_PKI_COMMANDS_H_
