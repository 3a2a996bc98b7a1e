// File: pki_cli.cc
// `tessera pki ...` flags (tools/cli/pki_commands.h), registered on the CLI's App.
#include "tools/cli/pki_cli.h"

#include <iostream>

#include "tools/cli/audit_commands.h"
#include "tools/cli/pki_commands.h"

namespace tessera::cli {
namespace {

// Records what issue/revoke did in the coordinator's audit log. The PKI operation has
// already succeeded, so a failure here is a note, not an error.
void RecordInAuditLog(const ConnectionOptions& conn, bool configured,
                      const std::vector<PkiEvent>& events) {
  if (events.empty()) return;
  if (!configured) {
    std::cerr << "tessera pki: not recorded in the coordinator's audit log: no coordinator "
                 "configured (--coordinator or TESSERA_COORDINATOR)\n";
    return;
  }
  for (const PkiEvent& e : events) {
    absl::StatusOr<wire::v1::AuditEntry> entry = RecordOperatorEvent(conn, e.action, e.details);
    if (!entry.ok()) {
      std::cerr << "tessera pki: " << e.action << " not recorded in the coordinator's audit log: "
                << entry.status().message() << "\n";
      return;  // the next one would fail the same way
    }
    std::cout << "recorded " << e.action << " in the coordinator's audit log (seq "
              << entry->seq() << ")\n";
  }
}

}  // namespace

void AddPkiCommands(CLI::App& app, int& rc, const bool& json, const ConnectionOptions& conn,
                    const CLI::Option& coordinator) {
  static PkiArgs args;  // lives as long as the App's callbacks
  int* code = &rc;      // the callbacks outlive this frame: capture pointers, by value
  const bool* as_json = &json;
  const ConnectionOptions* connection = &conn;
  const CLI::Option* coordinator_flag = &coordinator;
  // Given on the command line or through TESSERA_COORDINATOR, not just the default.
  auto record = [connection, coordinator_flag](const std::vector<PkiEvent>& events) {
    RecordInAuditLog(*connection, coordinator_flag->count() > 0, events);
  };
  CLI::App* pki = app.add_subcommand(
      "pki", "the federation's certificate authority: init, issue, csr, revoke, list, crl");
  pki->require_subcommand(1);
  auto dir = [](CLI::App* c) {
    c->add_option("--dir", args.dir, "the CA folder (ca.pem, ca.key, crl.pem, issued/)")
        ->required();
  };
  auto days = [](CLI::App* c, const char* help) { c->add_option("--days", args.days, help); };
  auto crl_days = [](CLI::App* c) {
    c->add_option("--crl-days", args.crl_days, "the CRL's validity (re-sign with pki crl)")
        ->capture_default_str();
  };

  CLI::App* init = pki->add_subcommand("init", "create the federation CA and an empty CRL");
  dir(init);
  init->add_option("--org", args.organization, "organization (O) of the federation");
  days(init, "CA validity in days (default 3650)");
  crl_days(init);
  init->callback([code] { *code = PkiInit(args); });

  CLI::App* issue = pki->add_subcommand(
      "issue", "issue a coordinator, operator or client certificate (new key, or --csr)");
  dir(issue);
  issue->add_option("--role", args.role, "coordinator | operator | client")->required();
  issue->add_option("--name", args.name, "the member's name (CN); from the CSR with --csr");
  issue->add_option("--org", args.organization, "organization (O); default the CA's or CSR's");
  issue->add_option("--san", args.san,
                    "coordinator names, e.g. DNS:coord.example.org,IP:10.0.0.1 (default "
                    "DNS:<name>,DNS:localhost,IP:127.0.0.1)")
      ->delimiter(',');
  issue->add_option("--csr", args.csr, "sign this partner-made request (no key is made here)");
  issue->add_option("--out", args.out, "where NAME.pem/NAME.key go (default --dir)");
  days(issue, "certificate validity in days (default 365)");
  issue->add_flag("--force", args.force, "replace existing NAME.pem/.key (rotation)");
  issue->callback([code, record] {
    std::vector<PkiEvent> events;
    *code = PkiIssue(args, &events);
    if (*code == 0) record(events);
  });

  CLI::App* csr = pki->add_subcommand(
      "csr", "partner side: make a key and a certificate request to send to the operator");
  csr->add_option("--name", args.name, "this member's name (CN)")->required();
  csr->add_option("--org", args.organization, "organization (O); default the name");
  csr->add_option("--out", args.out, "folder for NAME.key (secret) and NAME.csr")->required();
  csr->add_flag("--force", args.force, "replace an existing NAME.key");
  csr->callback([code] { *code = PkiCsr(args); });

  CLI::App* revoke = pki->add_subcommand("revoke", "revoke a certificate; rewrites crl.pem");
  dir(revoke);
  revoke->add_option("--serial", args.serial, "serial (hex) of one certificate");
  revoke->add_option("--name", args.name, "every unrevoked certificate of this member");
  crl_days(revoke);
  revoke->callback([code, record] {
    std::vector<PkiEvent> events;
    *code = PkiRevoke(args, &events);
    if (*code == 0) record(events);
  });

  CLI::App* list = pki->add_subcommand("list", "certificates issued, with expiry and state");
  dir(list);
  list->callback([code, as_json] {
    args.json = *as_json;
    *code = PkiList(args);
  });

  CLI::App* crl = pki->add_subcommand("crl", "re-sign crl.pem with a fresh next-update date");
  dir(crl);
  crl_days(crl);
  crl->callback([code] { *code = PkiCrl(args); });
}

}  // namespace tessera::cli
