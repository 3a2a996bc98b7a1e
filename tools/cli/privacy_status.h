// File: privacy_status.h
// How `tessera run status|watch|create` and `tessera privacy spent` show differential
// privacy (docs/privacy.md) to people: the run's mechanism from its config, the dataset's
// budget from the coordinator's ledger, and epsilon round by round. Every line is indented
// and ends in '\n'.
#ifndef TESSERA_TOOLS_CLI_PRIVACY_STATUS_H_
#define TESSERA_TOOLS_CLI_PRIVACY_STATUS_H_

#include <string>

#include "tessera/wire/v1/control.pb.h"
#include "tessera/wire/v1/run_config.pb.h"

namespace tessera::cli {

// "  differential privacy: distributed, noise multiplier 1.1, clip 0.5, q = 1 (5 of 5
//  clients), budget epsilon 8 delta 1e-05 on dataset \"fmnist\"\n", followed by
// RecordDpConfigText; "" without DP.
std::string PrivacyConfigText(const wire::v1::DifferentialPrivacyConfig& config);

// Record-level DP-SGD: "  record-level DP-SGD at every site: noise multiplier 1.1, clip 1
// per example, expected batch 64 (each site accounts for its own records)\n"; "" when off.
std::string RecordDpConfigText(const wire::v1::DifferentialPrivacyConfig& config);

// What each site reported about its own record-level budget in the round, one line each:
// "    site a: epsilon 1.234 of 8 (delta 1e-05, rdp, 120 steps at q = 0.02)\n" or
// "    site b: refused: REASON\n"; "" when the round has no site reports.
std::string SitePrivacyText(const wire::v1::RoundSummary& round);

// "  budget exhausted (not selected again): a, b\n"; "" when no site refused.
std::string BudgetExhaustedText(const wire::v1::RunStatus& status);

// "  privacy budget of \"fmnist\": epsilon 2.31 of 8 spent (delta 1e-05) over 4 rounds;
//  the next round would reach 2.87\n"; "" when the status has no budget.
std::string PrivacyBudgetText(const wire::v1::RunStatus& status);

// The per-round table of `tessera privacy spent`: round, attempt, state, clients, clip,
// this round's epsilon and the dataset's epsilon after it.
std::string PrivacyRoundsTable(const wire::v1::RunStatus& status);

// The same as one JSON object: run_id, dataset, epsilon_spent, epsilon_budget, delta,
// rounds_charged, next_round_epsilon and rounds [{round, attempt, state, clients,
// clip_norm, round_epsilon, epsilon}].
std::string PrivacyJson(const wire::v1::RunStatus& status);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_PRIVACY_STATUS_H_
