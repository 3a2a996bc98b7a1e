// tessera-client: a partner's training node. Flags only here; see docs/architecture.md.
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <thread>

#include <CLI/CLI.hpp>
#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "client/runtime/local_data.h"
#include "client/runtime/node_runner.h"
#include "client/training/device.h"
#include "client/training/memory_policy.h"
#include "core/base/json_log.h"
#include "core/base/version.h"
#include "core/config/data_card.h"
#include "core/config/privacy_budget.h"
#include "core/crypto/sha256.h"

namespace {

// The site's record-level privacy options from the flags and the data card.
absl::Status ConfigurePrivacy(const std::string& budget_flag, const std::string& accountant,
                              const tessera::LocalDataOptions& data,
                              tessera::NodeRunnerOptions& options) {
  absl::StatusOr<tessera::SiteAccountant> a = tessera::ParseSiteAccountant(accountant);
  if (!a.ok()) return a.status();
  options.privacy_accountant = *a;
  std::optional<tessera::PrivacyBudget> flag, card;
  if (!budget_flag.empty()) {
    absl::StatusOr<tessera::PrivacyBudget> b = tessera::ParsePrivacyBudget(budget_flag);
    if (!b.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--privacy-budget: ", b.status().message()));
    }
    flag = *b;
  }
  if (options.data_card.has_value() && !options.data_card->privacy_budget().empty()) {
    absl::StatusOr<tessera::PrivacyBudget> b =
        tessera::ParsePrivacyBudget(options.data_card->privacy_budget());
    if (!b.ok()) return b.status();
    card = *b;
  }
  if (flag && card && !(*flag == *card)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--privacy-budget ", budget_flag, " differs from the data card's privacy_budget ",
        options.data_card->privacy_budget(), ": state the site's budget once"));
  }
  options.privacy_budget = flag ? flag : card;
  if (!options.privacy_budget) return absl::OkStatus();
  if (options.privacy_dataset.empty()) {
    options.privacy_dataset =
        options.data_card.has_value()
            ? options.data_card->name()
            : absl::StrCat(data.source, "#", data.partition, "/", data.num_partitions, "/",
                           data.partition_index, "/", data.partition_seed);
  }
  if (options.privacy_ledger_path.empty()) {
    const char* state = std::getenv("XDG_STATE_HOME");
    const char* home = std::getenv("HOME");
    const std::string dir = state != nullptr && *state != '\0'
                                ? std::string(state)
                                : absl::StrCat(home != nullptr ? home : ".", "/.local/state");
    const std::string key =
        tessera::crypto::HexEncode(tessera::crypto::Sha256Digest(options.privacy_dataset))
            .substr(0, 16);
    options.privacy_ledger_path = absl::StrCat(dir, "/tessera/privacy-ledger-", key, ".json");
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  tessera::UseTrainingMallocPolicy();  // client/training/memory_policy.h
  tessera::NodeRunnerOptions options;
  tessera::LocalDataOptions data;
  int threads = 0;
  std::string data_card_path;
  CLI::App app{"Tessera client: trains the federation's model on this site's private data."};
  app.set_version_flag("--version", std::string(tessera::kVersion));
  app.add_option("--coordinator", options.coordinator, "coordinator address host:port")
      ->capture_default_str();
  app.add_option("--name", options.name, "this client's name (the certificate's CN)")->required();
  app.add_option("--ca", options.ca_cert_path, "federation CA certificate (PEM)");
  app.add_option("--cert", options.cert_path, "this client's certificate (PEM)");
  app.add_option("--key", options.key_path, "this client's private key (PEM)");
  app.add_option("--crl", options.crl_path,
                 "the federation's certificate revocation list (PEM): secure aggregation "
                 "peers on it are refused (re-read when it changes)");
  app.add_option("--secagg-min-corrupt-fraction", options.secagg_min_corrupt_fraction,
                 "refuse secure aggregation tasks assuming fewer corrupt clients")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.99));
  app.add_option("--secagg-max-dropout-fraction", options.secagg_max_dropout_fraction,
                 "refuse secure aggregation tasks assuming more dropouts")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.99));
  app.add_option("--secagg-min-security-bits", options.secagg_min_security_bits,
                 "refuse secure aggregation tasks with a weaker statistical security level")
      ->capture_default_str()
      ->check(CLI::Range(1, 128));
  app.add_option("--cert-refresh-seconds", options.cert_refresh_seconds,
                 "re-read --ca/--cert/--key this often (rotation without restart)")
      ->capture_default_str();
  app.add_flag("--insecure", options.insecure, "plaintext (loopback demos only)");
  app.add_option("--device", options.device, "auto | cpu | cuda | cuda:N")->capture_default_str();
  app.add_option("--threads", threads, "LibTorch intra-op threads (0: LibTorch's default)");
  app.add_option("--data", data.source, "idx:DIR, csv:FILE or jsonl:FILE (language models)")
      ->capture_default_str();
  app.add_option("--base-checkpoint", options.base_checkpoint,
                 "language-model runs: this partner's copy of the base model (a Hugging Face "
                 "checkpoint directory)");
  app.add_option("--test-data", data.test_source, "csv:FILE test split (csv sources)");
  app.add_option("--label-column", data.label_column, "CSV label column")->capture_default_str();
  app.add_option("--partition", data.partition,
                 "none | iid | dirichlet:A[,min_size=N] | label_quantity:K | shards[:K] | "
                 "quantity_skew:B[,min_size=N] | feature_noise:SIGMA (split of the train data)")
      ->capture_default_str();
  app.add_option("--num-partitions", data.num_partitions, "parties in the partition")
      ->capture_default_str();
  app.add_option("--partition-index", data.partition_index, "which party this client is")
      ->capture_default_str();
  app.add_option("--partition-seed", data.partition_seed, "partition seed")->capture_default_str();
  app.add_option("--limit", data.limit, "use at most N examples of each split (0: all)");
  std::string privacy_budget, privacy_accountant = "rdp";
  app.add_option("--privacy-budget", privacy_budget,
                 "record-level DP: this site's budget for its dataset, epsilon=E,delta=D "
                 "(or the data card's privacy_budget; both set: they must agree; unset: "
                 "record-level DP tasks are refused). With a budget, tasks without "
                 "record-level DP are refused");
  app.add_flag("--train-without-record-dp", options.train_without_record_dp,
               "with a privacy budget, also train tasks that have no record-level DP (their "
               "updates are not covered by the budget)");
  app.add_option("--privacy-ledger", options.privacy_ledger_path,
                 "record-level DP: the site's ledger file (kept across runs and restarts; "
                 "default $XDG_STATE_HOME/tessera/privacy-ledger-<hash of the dataset>.json)");
  app.add_option("--privacy-dataset", options.privacy_dataset,
                 "record-level DP: the dataset the budget protects (default: the data card's "
                 "name, else the --data spec and partition)");
  app.add_option("--privacy-accountant", privacy_accountant, "record-level DP: rdp | pld")
      ->capture_default_str();
  app.add_option("--data-card", data_card_path,
                 "this site's data card (.toml, .yaml or .yml; docs/data_cards.md), sent to "
                 "the coordinator when registering");
  app.add_flag("--bench-fixed-update", options.bench_fixed_update,
               "benchmark mode: no training, send a zero update");
  app.add_option("--max-tasks", options.max_tasks, "exit after N tasks (0: never)");
  app.add_option("--secagg-dump-dir", options.secagg_dump_dir,
                 "write each secure aggregation input (quantized) here, for audits");
  app.add_option("--fault-drop-before", options.fault_drop_before,
                 "testing: crash before sending this secure aggregation phase's message")
      ->check(CLI::IsMember({"advertise", "share", "masked", "consistency", "unmask"}));
  app.add_flag("--fault-hang", options.fault_hang,
               "testing: with --fault-drop-before, hang (staying connected) instead of exiting");
  std::string log_format = "text";
  app.add_option("--log-format", log_format, "text | json (one JSON object per log line)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  google::InitGoogleLogging(argv[0]);
  if (absl::Status s = tessera::SetLogFormat(log_format); !s.ok()) {
    std::cerr << "tessera-client: " << s.message() << "\n";
    return 2;
  }
  if (!options.insecure && (options.ca_cert_path.empty() || options.cert_path.empty() ||
                            options.key_path.empty())) {
    std::cerr << "tessera-client: --ca, --cert and --key are required (or --insecure for a "
                 "loopback demo)\n";
    return 2;
  }
  if (!data_card_path.empty()) {
    absl::StatusOr<tessera::wire::v1::DataCard> card = tessera::LoadDataCardFile(data_card_path);
    if (!card.ok()) {
      std::cerr << "tessera-client: --data-card: " << card.status().message() << "\n";
      return 2;
    }
    LOG(INFO) << "data card \"" << card->name() << "\", license " << card->license();
    options.data_card = *std::move(card);
  }
  if (absl::Status s = ConfigurePrivacy(privacy_budget, privacy_accountant, data, options);
      !s.ok()) {
    std::cerr << "tessera-client: " << s.message() << "\n";
    return 2;
  }
  if (absl::Status s = tessera::SetTorchThreads(threads); !s.ok()) {
    std::cerr << "tessera-client: --threads: " << s.message() << "\n";
    return 2;
  }
  if (!options.bench_fixed_update) {
    absl::StatusOr<std::string> device = tessera::ResolveDevice(options.device);
    if (!device.ok()) {
      std::cerr << "tessera-client: --device: " << device.status().message() << "\n";
      return 2;
    }
    options.device = *device;
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  tessera::LocalData local;
  if (!options.bench_fixed_update) {
    absl::StatusOr<tessera::LocalData> loaded = tessera::LoadLocalData(data);
    if (!loaded.ok()) {
      std::cerr << "tessera-client: " << loaded.status().message() << "\n";
      return 2;
    }
    local = std::move(*loaded);
    LOG(INFO) << options.name << ": " << local.train.size() << " training and "
              << local.test.size() << " test examples";
  }
  auto runner = tessera::NodeRunner::Create(options, std::move(local));
  if (!runner.ok()) {
    std::cerr << "tessera-client: " << runner.status().message() << "\n";
    return 2;
  }
  std::thread stopper([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    (*runner)->Stop();
  });
  stopper.detach();
  absl::Status s = (*runner)->Run();
  if (!s.ok()) {
    std::cerr << "tessera-client: " << s.message() << "\n";
    return 1;
  }
  return 0;
}
