// File: format.cc
// Tables and JSON for runs, rounds and clients (format.h).
#include "tools/cli/format.h"

#include <cmath>

#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tools/cli/privacy_status.h"
#include "tools/cli/secagg_status.h"

namespace tessera::cli {

std::string ToJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

std::string HumanBytes(uint64_t bytes) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  return u == 0 ? absl::StrCat(bytes, " B") : absl::StrFormat("%.1f %s", v, units[u]);
}

std::string RoundTableHeader(bool language_model) {
  std::string out = absl::StrFormat(
      "%5s %3s %-10s %8s %10s %9s %9s %8s %10s %10s %7s", "round", "try", "state", "clients",
      "train_loss", language_model ? "token_acc" : "test_acc", "test_loss", "epsilon",
      "bytes_down", "bytes_up", "seconds");
  if (language_model) absl::StrAppend(&out, absl::StrFormat(" %10s", "perplexity"));
  return out;
}

std::string RoundTableRow(const wire::v1::RoundSummary& r, bool language_model) {
  std::string state = wire::v1::RoundState_Name(r.state());
  if (state.rfind("ROUND_", 0) == 0) state = state.substr(6);
  const bool evaluated = r.evaluated() > 0;
  // Under secure aggregation clients report no per-client training loss, and under
  // differential privacy none is released. Epsilon: the dataset's, once this round is in.
  std::string row = absl::StrFormat(
      "%5u %3u %-10s %8s %10s %9s %9s %8s %10s %10s %7.1f", r.round(), r.attempt(), state,
      absl::StrCat(r.reported(), "/", r.selected()),
      r.has_secagg() || r.has_privacy() ? "-" : absl::StrFormat("%.4f", r.train_loss()),
      evaluated ? absl::StrFormat("%.2f%%", 100 * r.eval_accuracy()) : "-",
      evaluated ? absl::StrFormat("%.4f", r.eval_loss()) : "-",
      r.has_privacy() ? absl::StrFormat("%.4f", r.privacy().epsilon()) : "-",
      HumanBytes(r.bytes_down()), HumanBytes(r.bytes_up()), r.seconds());
  if (language_model) {
    absl::StrAppend(&row, absl::StrFormat(" %10s", evaluated ? absl::StrFormat(
                                                                   "%.2f", std::exp(r.eval_loss()))
                                                             : "-"));
  }
  if (!r.failure_reason().empty()) absl::StrAppend(&row, "  (", r.failure_reason(), ")");
  return row;
}

std::string RunStatusText(const wire::v1::RunStatus& s) {
  std::string out = absl::StrFormat(
      "run %s (%s): %s, %u/%u rounds completed\n", s.run_id(), s.name(),
      wire::v1::RunState_Name(s.state()), s.completed_rounds(), s.total_rounds());
  if (!s.message().empty()) absl::StrAppend(&out, "  ", s.message(), "\n");
  absl::StrAppend(&out, SecAggConfigText(s.config().secure_aggregation()),
                  PrivacyConfigText(s.config().differential_privacy()), PrivacyBudgetText(s));
  for (const std::string& refused : s.refused_clients()) {
    absl::StrAppend(&out, "  refused: ", refused, "\n");
  }
  absl::StrAppend(&out, BudgetExhaustedText(s));
  if (s.rounds_size() > 0) {
    const bool lm = s.config().model().has_causal_lm();
    absl::StrAppend(&out, RoundTableHeader(lm), "\n");
    for (const auto& r : s.rounds()) {
      absl::StrAppend(&out, RoundTableRow(r, lm), "\n", SecAggRoundText(r), SitePrivacyText(r));
    }
  }
  return out;
}

std::string RunListText(const wire::v1::ListRunsResponse& runs) {
  std::string out = absl::StrFormat("%-18s %-24s %-10s %s\n", "run", "name", "state", "rounds");
  for (const auto& s : runs.runs()) {
    absl::StrAppend(&out, absl::StrFormat("%-18s %-24s %-10s %u/%u%s\n", s.run_id(), s.name(),
                                          wire::v1::RunState_Name(s.state()),
                                          s.completed_rounds(), s.total_rounds(),
                                          s.archived() ? " (archived)" : ""));
  }
  return out;
}

std::string ClientListText(const wire::v1::ListClientsResponse& clients) {
  std::string out = absl::StrFormat("%-24s %-20s %-10s %-8s %-8s %-20s %-14s %s\n", "client",
                                    "organization", "connected", "device", "rounds", "data",
                                    "license", "last seen");
  const absl::Time now = absl::Now();
  for (const auto& c : clients.clients()) {
    const absl::Duration ago =
        absl::Trunc(now - absl::FromUnixMillis(c.last_seen_unix_ms()), absl::Seconds(1));
    const std::string seen =
        ago < absl::Seconds(1) ? "just now" : absl::StrCat(absl::FormatDuration(ago), " ago");
    // "-": the client sent no data card (or a card without that field).
    auto or_dash = [](const std::string& v) { return v.empty() ? std::string("-") : v; };
    const bool card = c.has_data_card();
    absl::StrAppend(
        &out, absl::StrFormat("%-24s %-20s %-10s %-8s %-8u %-20s %-14s %s\n", c.name(),
                              or_dash(c.organization()), c.connected() ? "yes" : "no",
                              c.device(), c.rounds_participated(),
                              card ? or_dash(c.data_card().name()) : "-",
                              card ? or_dash(c.data_card().license()) : "-", seen));
  }
  return out;
}

}  // namespace tessera::cli
