#include "tools/cli/privacy_status.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace tessera::cli {
namespace {

using Dp = wire::v1::DifferentialPrivacyConfig;

bool Charged(const wire::v1::RoundSummary& r) {
  return r.has_privacy() && (r.state() == wire::v1::ROUND_COMPLETED || r.privacy().released());
}

}  // namespace

std::string RecordDpConfigText(const Dp& c) {
  const wire::v1::RecordDpConfig& r = c.record();
  if (!r.enabled()) return "";
  return absl::StrFormat(
      "  record-level DP-SGD at every site: noise multiplier %g, clip %g per example, expected "
      "batch %g (each site accounts for its own records)\n",
      r.noise_multiplier(), r.clip_norm(), r.expected_batch_size());
}

std::string SitePrivacyText(const wire::v1::RoundSummary& round) {
  std::string out;
  for (const wire::v1::SitePrivacy& p : round.site_privacy()) {
    if (p.refused()) {
      absl::StrAppend(&out, "    site ", p.client(), ": refused: ", p.reason(), "\n");
      continue;
    }
    absl::StrAppend(&out, absl::StrFormat(
                              "    site %s: epsilon %.4g of %g (delta %g, %s, %u steps at "
                              "q = %.4g)\n",
                              p.client(), p.epsilon(), p.epsilon_budget(), p.delta(),
                              p.accountant(), p.steps(), p.sampling_rate()));
  }
  return out;
}

std::string BudgetExhaustedText(const wire::v1::RunStatus& s) {
  if (s.budget_exhausted_clients().empty()) return "";
  return absl::StrCat("  budget exhausted (not selected again): ",
                      absl::StrJoin(s.budget_exhausted_clients(), ", "), "\n");
}

std::string PrivacyConfigText(const Dp& c) {
  if (c.mode() == Dp::MODE_UNSPECIFIED) return RecordDpConfigText(c);
  std::string out = absl::StrFormat(
      "  differential privacy: %s, noise multiplier %g, clip %g%s, q = %g (%g of %u clients "
      "expected), budget epsilon %g delta %g on dataset \"%s\"\n",
      c.mode() == Dp::DISTRIBUTED ? "distributed (discrete Gaussian under secure aggregation)"
                                  : "central (Gaussian noise added by the coordinator)",
      c.noise_multiplier(), c.clip_norm(),
      c.adaptive_clipping().enabled()
          ? absl::StrFormat(" (adaptive, target quantile %g)",
                            c.adaptive_clipping().target_quantile())
          : "",
      c.expected_clients_per_round() / c.population(), c.expected_clients_per_round(),
      c.population(), c.epsilon_budget(), c.delta(), c.dataset());
  return out + RecordDpConfigText(c);
}

std::string PrivacyBudgetText(const wire::v1::RunStatus& s) {
  if (!s.has_privacy()) return "";
  const wire::v1::PrivacyBudgetStatus& p = s.privacy();
  return absl::StrFormat(
      "  privacy budget of \"%s\": epsilon %.4g of %g spent (delta %g) over %u rounds; the "
      "next round would reach %.4g%s\n",
      p.dataset(), p.epsilon_spent(), p.epsilon_budget(), p.delta(), p.rounds_charged(),
      p.next_round_epsilon(), p.next_round_epsilon() > p.epsilon_budget() ? " (refused)" : "");
}

std::string PrivacyRoundsTable(const wire::v1::RunStatus& s) {
  std::string out = absl::StrFormat("%5s %3s %-10s %8s %9s %9s %9s\n", "round", "try", "state",
                                    "clients", "clip", "round_eps", "epsilon");
  for (const wire::v1::RoundSummary& r : s.rounds()) {
    if (!r.has_privacy()) continue;
    std::string state = wire::v1::RoundState_Name(r.state());
    if (state.rfind("ROUND_", 0) == 0) state = state.substr(6);
    absl::StrAppend(&out, absl::StrFormat(
                              "%5u %3u %-10s %8s %9.4g %9.4g %9s\n", r.round(), r.attempt(),
                              state, absl::StrCat(r.reported(), "/", r.selected()),
                              r.privacy().clip_norm(), r.privacy().round_epsilon(),
                              Charged(r) ? absl::StrFormat("%.4f", r.privacy().epsilon())
                                         : "-"));
  }
  return out;
}

std::string PrivacyJson(const wire::v1::RunStatus& s) {
  const wire::v1::PrivacyBudgetStatus& p = s.privacy();
  nlohmann::json j = {{"run_id", s.run_id()},
                      {"dataset", p.dataset()},
                      {"epsilon_spent", p.epsilon_spent()},
                      {"epsilon_budget", p.epsilon_budget()},
                      {"delta", p.delta()},
                      {"rounds_charged", p.rounds_charged()},
                      {"next_round_epsilon", p.next_round_epsilon()}};
  nlohmann::json rounds = nlohmann::json::array();
  for (const wire::v1::RoundSummary& r : s.rounds()) {
    if (!Charged(r)) continue;
    rounds.push_back({{"round", r.round()},
                      {"attempt", r.attempt()},
                      {"state", wire::v1::RoundState_Name(r.state())},
                      {"clients", r.reported()},
                      {"clip_norm", r.privacy().clip_norm()},
                      {"round_epsilon", r.privacy().round_epsilon()},
                      {"epsilon", r.privacy().epsilon()}});
  }
  j["rounds"] = std::move(rounds);
  return j.dump();
}

}  // namespace tessera::cli
