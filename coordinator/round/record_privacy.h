// File: record_privacy.h
// Record-level DP-SGD at every site at the round loop's stations (docs/privacy.md,
// "Record-level DP-SGD"; docs/architecture.md "The round loop"): the DP-SGD section of
// training tasks at dispatch, what each site reports about its own privacy budget before it
// trains (accept), its refusal once the budget is spent, and the sites that are never
// selected again (select). The coordinator does not account for record-level privacy
// itself (each site holds its own ledger); it shows what the sites report.
#ifndef TESSERA_COORDINATOR_ROUND_RECORD_PRIVACY_H_
#define TESSERA_COORDINATOR_ROUND_RECORD_PRIVACY_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/base/no_io_mutex.h"
#include "tessera/wire/v1/control.pb.h"
#include "tessera/wire/v1/fleet.pb.h"
#include "tessera/wire/v1/run_config.pb.h"

namespace tessera::coordinator {

// Thread-safe; its state is read under a NoIoMutex held for copies only.
class RecordPrivacy {
 public:
  explicit RecordPrivacy(wire::v1::RecordDpConfig config) : config_(std::move(config)) {}
  RecordPrivacy(const RecordPrivacy&) = delete;
  RecordPrivacy& operator=(const RecordPrivacy&) = delete;

  // Recover: a site that refused a task in `history` stays unselected after a restart.
  void RestoreRefusals(const std::vector<wire::v1::RoundSummary>& history);

  // ---- Stations ----
  // Select: `candidates` without the sites whose budget is spent; `*exhausted` gets how
  // many were left out.
  std::vector<std::string> Select(std::vector<std::string> candidates, size_t* exhausted) const;
  // Dispatch: the record-level DP-SGD section of a TRAIN task, when the run has it.
  void Dispatch(wire::v1::Task& task) const;
  // A training attempt starts: the live reports are for `round`'s `attempt`.
  void BeginAttempt(uint32_t round, uint32_t attempt);
  // Accept: the report of `client` as the round keeps it. INVALID_ARGUMENT naming the
  // field (epsilon, delta, epsilon_budget, sampling_rate, reason, accountant).
  static absl::StatusOr<wire::v1::SitePrivacy> Validate(absl::string_view client,
                                                        const wire::v1::SitePrivacyReport& r);
  // Accept, once the round took `site` (of `round`'s `attempt`): shown live while that
  // attempt runs; a refusal means the site is never selected again.
  void Accept(uint32_t round, uint32_t attempt, const wire::v1::SitePrivacy& site);
  // Aggregate: the attempt's reports into `summary`, sorted by client.
  static void Summarize(std::vector<wire::v1::SitePrivacy> sites,
                        wire::v1::RoundSummary* summary);

  // ---- Readers ----
  // RunStatus.budget_exhausted_clients.
  void AddExhaustedClients(wire::v1::RunStatus& status) const;
  // The attempt in progress shows its site reports as they arrive.
  void AddLiveSites(wire::v1::RoundSummary& current) const;

 private:
  const wire::v1::RecordDpConfig config_;
  mutable NoIoMutex mu_;
  uint32_t round_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t attempt_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<wire::v1::SitePrivacy> live_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> exhausted_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_ROUND_RECORD_PRIVACY_H_
