// File: pki_commands.h
// `tessera pki ...`: the federation's certificate authority on the operator's machine
// (docs/pki.md). Offline; no coordinator connection. The CA folder holds
//   ca.pem, ca.key (0600)   the federation CA
//   crl.pem                 the revocation list the coordinator reads (--crl)
//   issued/<serial>.pem     a copy of every certificate issued, for list and revoke
// Each command returns a process exit code and prints "tessera pki: <what>: <why>" on error.
#ifndef TESSERA_TOOLS_CLI_PKI_COMMANDS_H_
#define TESSERA_TOOLS_CLI_PKI_COMMANDS_H_

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

int PkiInit(const PkiArgs& args);
int PkiIssue(const PkiArgs& args);
int PkiCsr(const PkiArgs& args);
int PkiRevoke(const PkiArgs& args);
int PkiList(const PkiArgs& args);
int PkiCrl(const PkiArgs& args);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_PKI_COMMANDS_H_
