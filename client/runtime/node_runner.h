// File: node_runner.h
// The long-running client ("SuperNode"): registers (with the partner's data card, if any),
// keeps a task subscription open, runs each task (fetch the global model, train or evaluate
// locally, report; answer a TRAIN task's data report request) and reconnects with jittered
// exponential backoff whenever the coordinator goes away. A run that refuses the client
// (REFUSED task) is logged and otherwise ignored.
#ifndef TESSERA_CLIENT_RUNTIME_NODE_RUNNER_H_
#define TESSERA_CLIENT_RUNTIME_NODE_RUNNER_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "client/runtime/local_data.h"
#include "client/runtime/site_ledger.h"
#include "core/config/privacy_budget.h"
#include "tessera/wire/v1/governance.pb.h"

namespace tessera {

struct NodeRunnerOptions {
  std::string coordinator = "127.0.0.1:7800";
  std::string name;  // must equal the certificate's CN under mTLS
  std::string ca_cert_path, cert_path, key_path;
  // The federation's CRL (PEM, --crl; empty: none): secure aggregation peers on it are
  // refused. Re-read when the file changes.
  std::string crl_path;
  // Secure aggregation policy (SecAggParticipantOptions).
  double secagg_min_corrupt_fraction = 0.0;
  double secagg_max_dropout_fraction = 0.5;
  uint32_t secagg_min_security_bits = 40;
  // New connections use the current --ca/--cert/--key files (gRPC re-reads them this often).
  // When --cert or --key changes on disk the client reconnects with them at its next idle
  // moment (no task running), and whenever the coordinator refuses its certificate.
  int cert_refresh_seconds = 60;
  bool insecure = false;
  std::string device = "auto";  // auto | cpu | cuda | cuda:N
  // Language-model runs: this partner's copy of the base checkpoint (--base-checkpoint DIR,
  // a Hugging Face model directory); checked against the run's base_sha256.
  std::string base_checkpoint;
  double max_backoff_seconds = 30;
  // Benchmark mode: skip training and send a zero update of the right layout.
  bool bench_fixed_update = false;
  // Exit after this many tasks (0 = run until stopped); for tests and benchmarks.
  uint32_t max_tasks = 0;
  // Secure aggregation: see SecAggParticipantOptions (secagg_participant.h).
  std::string secagg_dump_dir;
  std::string fault_drop_before;
  bool fault_hang = false;  // hang (staying connected) instead of exiting
  // The partner's data card (--data-card, validated), sent on every registration. A class
  // histogram leaves the client only when a task asks and the card allows it; without a
  // card, never (data_report.h).
  std::optional<wire::v1::DataCard> data_card;
  // Record-level DP (docs/privacy.md, "Each site owns its budget"): the site's budget
  // (--privacy-budget, or the data card's privacy_budget; unset: the site refuses record-level
  // DP tasks), its ledger file (--privacy-ledger), the dataset the budget protects
  // (--privacy-dataset; default the data card's name, else the --data spec and partition) and
  // the accountant (--privacy-accountant).
  std::optional<PrivacyBudget> privacy_budget;
  std::string privacy_ledger_path;
  std::string privacy_dataset;
  SiteAccountant privacy_accountant = SiteAccountant::kRdp;
  // With a budget, also train tasks that have no record-level DP (--train-without-record-dp;
  // their updates are then not covered by the site's budget). Off: such tasks are refused.
  bool train_without_record_dp = false;
};

class NodeRunner {
 public:
  // Loads the TLS files. Errors: NOT_FOUND / INVALID_ARGUMENT naming the flag.
  static absl::StatusOr<std::unique_ptr<NodeRunner>> Create(NodeRunnerOptions options,
                                                            LocalData data);
  ~NodeRunner();
  NodeRunner(const NodeRunner&) = delete;
  NodeRunner& operator=(const NodeRunner&) = delete;

  // Runs until Stop() (or max_tasks); returns the reason it stopped.
  absl::Status Run();
  // Thread-safe; may be called from a signal-handling thread.
  void Stop();

 private:
  class Impl;
  explicit NodeRunner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera

#endif  // TESSERA_CLIENT_RUNTIME_NODE_RUNNER_H_
