// File: site_ledger.h
// A site's own record-level privacy ledger (docs/privacy.md, "Each site owns its budget").
// Every DP-SGD task the site runs on a dataset is the Poisson-subsampled Gaussian mechanism
// applied `steps` times with sampling rate q and noise multiplier z to that dataset's records.
// The ledger keeps one entry per task in a file at the site, keyed by the dataset, so the
// site's epsilon composes across rounds, runs, coordinators and client restarts; the
// coordinator neither keeps nor can reset it. Before a task trains, Plan() says what the
// site's epsilon would be after it; the client refuses the task when that exceeds the budget,
// and otherwise Charge()s it (written and synced to disk) before the first step, so a crash
// mid-training can only over-count.
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(SiteLedger ledger,
//                            SiteLedger::Open(path, "fmnist-shard-a", budget, 12000));
//   TESSERA_ASSIGN_OR_RETURN(SiteLedger::Plan plan, ledger.PlanTask({q, z, steps}));
//   if (!plan.allowed) return Refuse(plan.reason);
//   TESSERA_RETURN_IF_ERROR(ledger.Charge(entry));
//
// Not thread-safe.
#ifndef TESSERA_CLIENT_RUNTIME_SITE_LEDGER_H_
#define TESSERA_CLIENT_RUNTIME_SITE_LEDGER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/config/privacy_budget.h"

namespace tessera {

// Which accountant turns the ledger into epsilon (both are upper bounds).
enum class SiteAccountant {
  // Rényi DP of the sampled Gaussian (Mironov, Talwar, Zhang 2019) summed over every step,
  // at the 156 dp_accounting orders (privacy/dp/rdp_accountant.h).
  kRdp,
  // The privacy loss distribution (privacy/dp/pld_accountant.h) when every entry has the
  // same q and z, and the smaller of it and RDP; with mixed entries RDP alone.
  kPld,
};

// "rdp" or "pld"; INVALID_ARGUMENT naming --privacy-accountant otherwise.
absl::StatusOr<SiteAccountant> ParseSiteAccountant(absl::string_view name);
absl::string_view SiteAccountantName(SiteAccountant accountant);

struct SiteLedgerEntry {
  double sampling_rate = 0;     // q
  double noise_multiplier = 0;  // z
  uint64_t steps = 0;
  // Where it was spent (for people reading the ledger).
  std::string run_id;
  uint32_t round = 0;
  std::string task_id;
  int64_t unix_ms = 0;
};

class SiteLedger {
 public:
  // Opens the ledger file at `path` (an absent file is an empty ledger, created on the first
  // Charge; an empty path keeps the ledger in memory only, for simulated clients). `dataset`
  // names what the budget protects; a file that belongs to another dataset is refused. The
  // file stays locked (flock on PATH.lock) while the ledger exists: a second process opening
  // it gets FAILED_PRECONDITION.
  // `num_examples` is the dataset's size: delta must be below 1 / num_examples (a larger
  // delta allows releasing a record outright).
  // Errors: INVALID_ARGUMENT for such a delta or an empty dataset; DATA_LOSS for a file that
  // does not parse (naming it: the ledger is never silently reset); FAILED_PRECONDITION for
  // another dataset's file, a file that cannot be checked, or one locked by another process.
  static absl::StatusOr<SiteLedger> Open(std::string path, std::string dataset,
                                         PrivacyBudget budget, uint64_t num_examples,
                                         SiteAccountant accountant = SiteAccountant::kRdp);

  struct Plan {
    bool allowed = false;
    double epsilon_before = 0;  // the site's epsilon so far
    double epsilon_after = 0;   // with the planned task
    std::string reason;         // why not, when !allowed
  };
  // What `planned` would cost. Errors: INVALID_ARGUMENT for q outside (0, 1], z <= 0 or
  // steps == 0.
  absl::StatusOr<Plan> PlanTask(const SiteLedgerEntry& planned) const;

  // Appends `entry` and writes the ledger (temporary file, fsync of the file and its folder,
  // rename) before returning. Every call charges, even for a task_id already in the ledger
  // (over-counting is the safe side). Errors: INTERNAL naming the file.
  absl::Status Charge(const SiteLedgerEntry& entry);

  // True when a task with this id was charged before (the client then refuses to train it
  // again: a replayed task would otherwise release a second model for it).
  bool HasTask(absl::string_view task_id) const;

  // The site's epsilon at its delta over every entry (0 when empty).
  absl::StatusOr<double> Epsilon() const;

  const std::vector<SiteLedgerEntry>& entries() const { return entries_; }
  const PrivacyBudget& budget() const { return budget_; }
  const std::string& dataset() const { return dataset_; }
  const std::string& path() const { return path_; }
  SiteAccountant accountant() const { return accountant_; }

 private:
  SiteLedger() = default;
  // The epsilon at budget_.delta of every entry plus `extra` (when not null).
  absl::StatusOr<double> EpsilonOf(const SiteLedgerEntry* extra) const;

  std::string path_;
  std::string dataset_;
  PrivacyBudget budget_;
  SiteAccountant accountant_ = SiteAccountant::kRdp;
  std::vector<SiteLedgerEntry> entries_;
  std::shared_ptr<int> lock_;  // the flock'ed descriptor of PATH.lock (file ledgers)
};

}  // namespace tessera

#endif  // TESSERA_CLIENT_RUNTIME_SITE_LEDGER_H_
