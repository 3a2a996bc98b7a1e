// File: main.cc
// tessera: the operator CLI. Talks to the coordinator's Control API.
//   tessera run create CONFIG.toml [--start]   tessera run start|status|watch|cancel|report RUN
//   tessera run list   tessera clients list
//   tessera model export --run RUN --out DIR/NAME.safetensors [--round N] [--force]
//   tessera model verify DIR|DIR/bom.json [--online]
//   tessera audit export [--out FILE]   tessera audit verify FILE
//   tessera pki init|issue|csr|revoke|list|crl ...   tessera privacy epsilon|noise|spent ...
// Every command takes --json. Connection flags may also come from the environment
// (TESSERA_COORDINATOR, TESSERA_CA, TESSERA_CERT, TESSERA_KEY).
#include <iostream>

#include <CLI/CLI.hpp>

#include "core/base/version.h"
#include "tools/cli/commands.h"
#include "tools/cli/pki_cli.h"

int main(int argc, char** argv) {
  using namespace tessera::cli;  // NOLINT: main only
  ConnectionOptions conn;
  OutputOptions out;
  CLI::App app{"tessera: operate a Tessera federation (runs, clients, models, audit, PKI)."};
  app.set_version_flag("--version", std::string(tessera::kVersion));
  app.require_subcommand(1);
  // Global options may follow the subcommand: `tessera model verify DIR --ca ca.pem`.
  // Subcommands inherit this, so it comes before any add_subcommand.
  app.fallthrough();
  CLI::Option* coordinator =
      app.add_option("--coordinator", conn.coordinator, "coordinator host:port")
          ->envname("TESSERA_COORDINATOR")->capture_default_str();
  app.add_option("--ca", conn.ca_cert_path,
                 "federation CA certificate (PEM); model/audit verify check signers against it")
      ->envname("TESSERA_CA");
  app.add_option("--cert", conn.cert_path, "operator certificate (PEM)")->envname("TESSERA_CERT");
  app.add_option("--key", conn.key_path, "operator private key (PEM)")->envname("TESSERA_KEY");
  app.add_flag("--insecure", conn.insecure, "plaintext (loopback demos only)");
  app.add_option("--timeout", conn.timeout_seconds, "seconds per call")->capture_default_str();
  app.add_flag("--json", out.json, "machine-readable output");

  int rc = 0;
  std::string run_id, config_path, out_path, torchscript_path;
  int round = -1;
  bool start = false, force = false, online = false;

  CLI::App* run = app.add_subcommand("run", "create, start, watch and cancel runs");
  run->require_subcommand(1);
  CLI::App* create = run->add_subcommand("create", "create a run from a TOML config");
  create->add_option("config", config_path, "run config (TOML)")->required()->check(CLI::ExistingFile);
  create->add_flag("--start", start, "start the run right away");
  create->callback([&] { rc = CreateRun(conn, out, config_path, start); });
  struct RunCmd {
    const char* name;
    const char* help;
    int (*fn)(const ConnectionOptions&, const OutputOptions&, const std::string&);
  };
  for (const RunCmd& cmd : {RunCmd{"start", "start a created run", &StartRun},
                            RunCmd{"status", "show a run and its rounds", &RunStatus},
                            RunCmd{"watch", "follow a run live until it ends", &WatchRun},
                            RunCmd{"cancel", "cancel a run", &CancelRun},
                            RunCmd{"archive",
                                   "archive an ended run: keep only its final and exported "
                                   "models, hide it from `run list`",
                                   &ArchiveRun}}) {
    CLI::App* sub = run->add_subcommand(cmd.name, cmd.help);
    sub->add_option("run", run_id, "run id")->required();
    auto fn = cmd.fn;
    sub->callback([&, fn] { rc = fn(conn, out, run_id); });
  }
  bool all_runs = false;
  CLI::App* list = run->add_subcommand("list", "list runs");
  list->add_flag("--all", all_runs, "include archived runs");
  list->callback([&] { rc = ListRuns(conn, out, all_runs); });
  bool yes = false;
  CLI::App* del = run->add_subcommand(
      "delete", "delete an ended run's record, rounds and models (its audit entries, "
                "provenance and privacy charges stay)");
  del->add_option("run", run_id, "run id")->required();
  del->add_flag("--yes", yes, "confirm: deleting cannot be undone");
  del->callback([&] { rc = DeleteRun(conn, out, run_id, yes); });
  CLI::App* report = run->add_subcommand("report", "write a run's self-contained HTML report");
  report->add_option("run", run_id, "run id")->required();
  report->add_option("--out", out_path, "HTML file to write (default: RUN.html)");
  report->callback([&] { rc = ReportRun(conn, out, run_id, out_path); });

  CLI::App* clients = app.add_subcommand("clients", "registered clients");
  clients->require_subcommand(1);
  clients->add_subcommand("list", "list clients: organization, data card, last seen")
      ->callback([&] { rc = ListClients(conn, out); });

  // The federation's CA, offline: tools/cli/pki_commands.h, docs/pki.md.
  AddPkiCommands(app, rc, out.json, conn, *coordinator);

  CLI::App* model = app.add_subcommand("model", "global models: export, verify provenance");
  model->require_subcommand(1);
  CLI::App* exp = model->add_subcommand(
      "export", "export a round's global model, its model card and signed bill of materials");
  exp->add_option("--run", run_id, "run id")->required();
  exp->add_option("--round", round, "round (-1: last completed, 0: initial)")->capture_default_str();
  exp->add_option("--out", out_path,
                  "safetensors file to write; README.md (model card) and bom.json (signed bill "
                  "of materials) go next to it")
      ->required();
  exp->add_option("--torchscript", torchscript_path,
                  "TorchScript file to write (TorchScript runs; default: --out with .pt)");
  exp->add_flag("--force", force, "replace a README.md that is not a Tessera model card");
  exp->callback([&] {
    rc = ExportModel(conn, out, run_id, round, out_path, torchscript_path, force);
  });
  CLI::App* verify = model->add_subcommand(
      "verify", "check an exported model against its signed bill of materials");
  verify->add_option("path", out_path, "the export folder or its bom.json")->required();
  verify->add_flag("--online", online, "also ask the coordinator that the run committed it");
  verify->callback([&] { rc = VerifyModel(conn, out, out_path, online); });

  // The coordinator's hash-chained audit log (docs/governance.md).
  CLI::App* audit = app.add_subcommand("audit", "export and verify the audit log");
  audit->require_subcommand(1);
  CLI::App* audit_export = audit->add_subcommand(
      "export", "every audit entry as one JSON line, then the signed head");
  audit_export->add_option("--out", out_path, "file to write (default: stdout)");
  audit_export->callback([&] { rc = ExportAudit(conn, out, out_path); });
  CLI::App* audit_verify = audit->add_subcommand(
      "verify", "check an exported log's hash chain and signed head, offline");
  audit_verify->add_option("file", out_path, "the exported log")->required();
  audit_verify->callback([&] { rc = VerifyAudit(conn, out, out_path); });

  // Privacy accounting: offline (epsilon, noise) and a run's ledger (spent); docs/privacy.md.
  PrivacyArgs dp_args;
  CLI::App* privacy = app.add_subcommand("privacy", "differential-privacy accounting");
  privacy->require_subcommand(1);
  CLI::App* spent = privacy->add_subcommand("spent", "a run's privacy budget, round by round");
  spent->add_option("run_id", run_id, "run id")->required();
  spent->add_flag("--json", out.json, "machine-readable output");
  spent->callback([&] { rc = PrivacySpent(conn, out, run_id); });
  CLI::App* eps = privacy->add_subcommand("epsilon", "epsilon spent by a DP schedule");
  eps->add_option("--noise-multiplier", dp_args.noise_multiplier, "noise stddev / clip norm")
      ->required();
  CLI::App* noise = privacy->add_subcommand("noise", "smallest noise multiplier for a target");
  noise->add_option("--epsilon", dp_args.epsilon, "target epsilon")->required();
  for (CLI::App* sub : {eps, noise}) {
    sub->add_option("--q", dp_args.q, "per-step Poisson sampling probability")->required();
    sub->add_option("--steps", dp_args.steps, "number of steps (rounds)")
        ->required()
        ->check(CLI::Validator(
            [](std::string& v) { return v.rfind('-', 0) == 0 ? "must be >= 0" : ""; },
            "NONNEGATIVE"));
    sub->add_option("--delta", dp_args.delta, "target delta")->required();
    sub->add_option("--orders", dp_args.orders,
                    "comma-separated RDP orders (default: dp_accounting's 156)");
    sub->add_option("--conversion", dp_args.conversion, "RDP -> (eps, delta): improved|classic")
        ->capture_default_str();
    sub->add_option("--accountant", dp_args.accountant,
                    "rdp (Renyi DP) or pld (privacy loss distribution: tighter, ignores "
                    "--orders/--conversion)")
        ->capture_default_str();
    sub->add_flag("--json", out.json, "machine-readable output");
  }
  eps->callback([&] { rc = PrivacyEpsilon(out, dp_args); });
  noise->callback([&] { rc = PrivacyNoise(out, dp_args); });

  CLI11_PARSE(app, argc, argv);
  return rc;
}
