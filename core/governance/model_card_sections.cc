// File: model_card_sections.cc
#include "core/governance/model_card_sections.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/config/run_config.h"
#include "core/governance/export_facts.h"
#include "core/governance/markup.h"

namespace tessera::governance::card_internal {
namespace {

using wire::v1::Participant;
using wire::v1::RoundSummary;

std::string N(double v) { return FormatNumber(v); }
// Metrics in tables: 6 significant digits are plenty to read.
std::string Metric(double v) {
  double rounded = v;
  if (!absl::SimpleAtod(absl::StrFormat("%.6g", v), &rounded)) rounded = v;
  return FormatNumber(rounded);
}

std::string AggregationLine(const wire::v1::StrategyConfig& s) {
  std::string out = absl::StrCat("- **Aggregation:** ", StrategyDisplayName(s));
  std::vector<std::string> params;
  for (const auto& [name, value] : StrategyParams(s)) {
    params.push_back(absl::StrCat(MarkdownInline(name), " = ", N(value)));
  }
  if (!params.empty()) absl::StrAppend(&out, "; ", absl::StrJoin(params, ", "));
  return out + "\n";
}

std::string SecureAggregationLine(const wire::v1::RunConfig& c) {
  if (!UsesSecureAggregation(c)) {
    return "- **Secure aggregation:** not used; the coordinator saw each client's update\n";
  }
  const wire::v1::SecureAggregationConfig& s = c.secure_aggregation();
  return absl::StrCat(
      "- **Secure aggregation:** clients masked their updates (Bell et al. 2020), so the "
      "coordinator learned only each round's sum; tolerates a dropout fraction of ",
      N(s.dropout_fraction()), " and a colluding fraction of ", N(s.corrupt_fraction()),
      " of the selected clients; ", s.security_bits(),
      "-bit statistical security; values "
      "clipped to [-",
      N(s.clip()), ", ", N(s.clip()), "] and quantized to ", s.value_bits(), " bits\n");
}

// The run's update compression and, over the committed rounds, the bytes its uploads carried
// against the same updates in float32 (each decoded update has the model's layout, so
// uploads x tensor_bytes; both counts are of the accepted updates only).
std::string CompressionLine(const ExportInputs& in,
                            const std::vector<const RoundSummary*>& committed) {
  const std::string summary = CompressionSummary(in.config.compression());
  if (summary.empty()) return "- **Update compression:** none; clients uploaded float32\n";
  std::string out = absl::StrCat("- **Update compression:** ", MarkdownInline(summary));
  uint64_t uploads = 0;
  uint64_t sent = 0;
  for (const RoundSummary* r : committed) {
    uploads += static_cast<uint64_t>(r->participants_size());
    sent += r->bytes_up();
  }
  const uint64_t plain = uploads * in.tensor_bytes;
  if (uploads > 0 && sent > 0 && plain > 0) {
    absl::StrAppend(&out, ". The committed rounds' ", uploads, " upload",
                    uploads == 1 ? "" : "s", " carried ", sent, " bytes against ", plain,
                    " uncompressed: ", absl::StrFormat("%.2f", static_cast<double>(plain) / sent),
                    "x fewer, ", plain > sent ? plain - sent : 0, " bytes saved");
  }
  return out + "\n";
}

// Example totals rounded down to a multiple of `bucket` (PublishedExampleBucket).
std::string RoundsTable(const std::vector<const RoundSummary*>& rounds, uint64_t bucket) {
  std::string out = absl::StrCat(
      "| Round | Attempt | Clients | Examples (rounded down to a multiple of ", bucket,
      ") | Train loss | Model SHA-256 |\n"
      "|---|---|---|---|---|---|\n");
  for (const RoundSummary* r : rounds) {
    // Under DP the coordinator holds no example count or loss (docs/privacy.md).
    const bool dp = r->has_privacy();
    absl::StrAppend(&out, "| ", r->round(), " | ", r->attempt(), " | ", r->participants_size(),
                    " | ", dp ? "-" : absl::StrCat(RoundDownToBucket(r->num_examples(), bucket)),
                    " | ",
                    dp ? "-" : Metric(r->train_loss()), " | ",
                    absl::BytesToHexString(r->model_sha256()), " |\n");
  }
  return out;
}

}  // namespace

std::string TrainingProcedureSection(const ExportInputs& in) {
  const wire::v1::RunConfig& c = in.config;
  const std::vector<const RoundSummary*> committed = CommittedRounds(in);
  const size_t failed = FailedAttempts(in).size();
  std::string out = "## Training procedure\n\n";
  absl::StrAppend(&out, "- **Rounds:** ", committed.size(), " committed of ", c.rounds(),
                  " configured; ", failed, " failed attempt", failed == 1 ? "" : "s", " retried\n");
  absl::StrAppend(&out, AggregationLine(c.strategy()));
  const wire::v1::TrainConfig& t = c.train();
  absl::StrAppend(&out, "- **Local training:** ", t.local_epochs(), " epoch",
                  t.local_epochs() == 1 ? "" : "s", " per round, batch size ", t.batch_size(),
                  ", SGD learning rate ", N(t.learning_rate()), ", momentum ", N(t.momentum()),
                  ", weight decay ", N(t.weight_decay()));
  if (t.max_steps() > 0) absl::StrAppend(&out, ", at most ", t.max_steps(), " steps");
  absl::StrAppend(&out, "\n");
  const wire::v1::SelectionConfig& s = c.selection();
  absl::StrAppend(&out, "- **Client selection:** ",
                  s.clients_per_round() > 0
                      ? absl::StrCat(s.clients_per_round(), " clients per round")
                      : absl::StrCat("a fraction ", N(s.fraction()), " of the connected clients"),
                  "; a round needs at least ", s.min_clients(), " reports\n");
  absl::StrAppend(&out, SecureAggregationLine(c));
  absl::StrAppend(&out, CompressionLine(in, committed));
  absl::StrAppend(
      &out, "- **Differential privacy:** ",
      UsesDifferentialPrivacy(c) ? DpModeName(c) + " (see Privacy guarantees)" : "not used", "\n");
  absl::StrAppend(
      &out, "- **Evaluation:** ",
      c.evaluation().every() > 0
          ? absl::StrCat(c.evaluation().every() == 1
                             ? std::string("after every round")
                             : absl::StrCat("every ", c.evaluation().every(), " rounds"),
                         " on the clients' local evaluation data")
          : "none configured",
      "\n\n");
  if (!committed.empty()) {
    absl::StrAppend(&out, RoundsTable(committed, PublishedExampleBucket(c)), "\n");
  }
  return out;
}

std::string ParticipantsSection(const ExportInputs& in) {
  const std::map<std::string, std::vector<uint32_t>> rounds = RoundsByClient(in);
  std::map<std::string, std::vector<const Participant*>> by_org;
  std::vector<const Participant*> refused;
  for (const Participant* p : SortedParticipants(in)) {
    (p->refused().empty() ? by_org[p->organization()] : refused).push_back(p);
  }
  size_t accepted = 0;
  for (const auto& [org, clients] : by_org) accepted += clients.size();
  std::string out = "## Federated participants\n\n";
  absl::StrAppend(&out, accepted, " client", accepted == 1 ? "" : "s", " from ", by_org.size(),
                  " organization", by_org.size() == 1 ? "" : "s",
                  " took part. Their data never left them: the coordinator knows only the "
                  "data cards they sent and the counts they reported.\n\n");
  const size_t total_rounds = CommittedRounds(in).size();
  for (const auto& [org, clients] : by_org) {
    absl::StrAppend(&out, "### ",
                    org.empty() ? "No organization (insecure federation, no certificates)"
                                : absl::StrCat("Organization: ", MarkdownInline(org)),
                    "\n\n");
    absl::StrAppend(&out,
                    "| Client | Client version | Data card | Data license | "
                    "Examples (rounded) | Rounds |\n|---|---|---|---|---|---|\n");
    for (const Participant* p : clients) {
      std::string card = "none sent";
      std::string license = "";
      if (p->has_data_card()) {
        card = MarkdownInline(p->data_card().name());
        license = MarkdownInline(p->data_card().license());
      }
      std::string examples = "not reported";
      if (p->has_data_report()) {
        examples = absl::StrCat(p->data_report().examples_rounded(), " (multiple of ",
                                p->data_report().example_count_bucket(), ")");
      }
      auto it = rounds.find(p->client());
      const std::vector<uint32_t> in_rounds =
          it == rounds.end() ? std::vector<uint32_t>{} : it->second;
      absl::StrAppend(&out, "| ", MarkdownInline(p->client()), " | ",
                      MarkdownInline(p->client_version()), " | ", card, " | ", license, " | ",
                      examples, " | ", in_rounds.size(), " of ", total_rounds,
                      in_rounds.empty() ? "" : ": " + absl::StrJoin(in_rounds, ", "), " |\n");
    }
    absl::StrAppend(&out, "\n");
  }
  if (!refused.empty()) {
    absl::StrAppend(&out, "Clients the run refused (they contributed nothing):\n\n");
    for (const Participant* p : refused) {
      absl::StrAppend(&out, "- ", MarkdownInline(p->client()), ": ", MarkdownInline(p->refused()),
                      "\n");
    }
    absl::StrAppend(&out, "\n");
  }
  return out;
}

std::string PrivacySection(const ExportInputs& in) {
  const wire::v1::RunConfig& c = in.config;
  std::string out = "## Privacy guarantees\n\n";
  if (UsesDifferentialPrivacy(c)) {
    const wire::v1::DifferentialPrivacyConfig& dp = c.differential_privacy();
    double epsilon = -1;
    for (const RoundSummary* r : CommittedRounds(in)) {
      if (r->round() <= in.round && r->has_privacy()) epsilon = r->privacy().epsilon();
    }
    absl::StrAppend(
        &out, "**Client-level (epsilon, delta)-differential privacy: epsilon = ",
        epsilon >= 0 ? N(epsilon) : "0 (no round charged yet)", ", delta = ", N(dp.delta()),
        ".** The distribution of this model changes by at most that much if any one client's "
        "entire data is added or removed.\n\n");
    absl::StrAppend(
        &out, "- **Mode:** ", DpModeName(c),
        dp.mode() == wire::v1::DifferentialPrivacyConfig::CENTRAL
            ? ": the coordinator clipped each update and added Gaussian noise to the sum; "
              "the guarantee assumes the coordinator is honest\n"
            : ": the clients added discrete Gaussian noise shares under secure aggregation; "
              "the coordinator never saw a sum without noise\n");
    absl::StrAppend(&out, "- **Noise multiplier:** ", N(dp.noise_multiplier()), "; **clip norm:** ",
                    N(dp.clip_norm()),
                    dp.adaptive_clipping().enabled()
                        ? absl::StrCat(" (initial; adaptive clipping to the ",
                                       N(dp.adaptive_clipping().target_quantile()),
                                       " quantile of update norms)")
                        : "",
                    "\n");
    absl::StrAppend(&out, "- **Sampling:** Poisson, ", N(dp.expected_clients_per_round()),
                    " expected clients per round out of a population of ", dp.population(), "\n");
    absl::StrAppend(&out, "- **Budget:** dataset ", MarkdownInline(dp.dataset()),
                    ", epsilon budget ", N(dp.epsilon_budget()), " at delta ", N(dp.delta()));
    if (in.privacy.has_value()) {
      absl::StrAppend(
          &out, "; epsilon spent on the dataset when exported: ", N(in.privacy->epsilon_spent()),
          " over ", in.privacy->rounds_charged(), " rounds of ", in.privacy->run_ids_size(), " run",
          in.privacy->run_ids_size() == 1 ? "" : "s");
    }
    absl::StrAppend(&out,
                    "\n- **Accounting:** Renyi DP of the sampled Gaussian mechanism "
                    "(Mironov et al. 2019), composed over every round charged to the "
                    "dataset\n\n");
  } else if (!UsesRecordDp(c)) {
    absl::StrAppend(&out,
                    "**No differential privacy.** The weights carry no formal guarantee about "
                    "any client's data: a model can memorize training examples, and "
                    "membership inference may be possible.\n\n");
  }
  if (UsesRecordDp(c)) {
    const wire::v1::RecordDpConfig& r = c.differential_privacy().record();
    absl::StrAppend(
        &out, "**Record-level DP-SGD at every site.** Each site trained with per-example "
        "clipping and Gaussian noise (Abadi et al. 2016) and accounted for its own records "
        "against its own budget: the distribution of each site's updates changes by at most "
        "its epsilon if any one of its records is added or removed.\n\n");
    absl::StrAppend(&out, "- **Noise multiplier:** ", N(r.noise_multiplier()),
                    "; **clip norm (per example):** ", N(r.clip_norm()),
                    "; **expected batch size:** ", N(r.expected_batch_size()),
                    " (Poisson sampling of each site's examples)\n");
    const std::vector<SiteGuarantee> sites = SiteGuarantees(in);
    if (sites.empty()) {
      absl::StrAppend(&out, "- **Per-site guarantees:** no site reported before the exported "
                            "round\n");
    }
    for (const SiteGuarantee& g : sites) {
      if (g.accountant.empty()) {
        absl::StrAppend(&out, "- **Site ", MarkdownInline(g.client), ":** refused every task "
                              "(its budget could not pay for one)\n");
        continue;
      }
      absl::StrAppend(&out, "- **Site ", MarkdownInline(g.client), ":** epsilon = ",
                      N(g.epsilon), " at delta = ", N(g.delta), " (budget ",
                      N(g.epsilon_budget), ", ", MarkdownInline(g.accountant),
                      " accountant, reported in round ", g.round, ")",
                      g.refused ? "; then refused further tasks: its budget was spent" : "",
                      "\n");
    }
    absl::StrAppend(&out, "\n");
  }
  if (UsesSecureAggregation(c)) {
    absl::StrAppend(&out,
                    "**Secure aggregation.** The coordinator learned only the sum of each "
                    "round's updates, never one client's update. It protects the updates, not "
                    "what the final model reveals about the data.\n\n");
  } else {
    absl::StrAppend(&out,
                    "**No secure aggregation.** The coordinator saw every client's individual "
                    "update.\n\n");
  }
  return out;
}

std::string EvaluationSection(const ExportInputs& in) {
  std::string out = "## Evaluation results\n\n";
  std::vector<const RoundSummary*> evaluated;
  for (const RoundSummary* r : CommittedRounds(in)) {
    if (r->evaluated() > 0) evaluated.push_back(r);
  }
  if (evaluated.empty()) {
    return out +
           "The model was not evaluated: no committed round ran a federated "
           "evaluation.\n\n";
  }
  absl::StrAppend(&out,
                  "Federated evaluation: the clients evaluated the global model on their "
                  "local evaluation data and reported example-weighted metrics.\n\n"
                  "| Round | Accuracy | Loss | Clients evaluated |\n|---|---|---|---|\n");
  for (const RoundSummary* r : evaluated) {
    absl::StrAppend(&out, "| ", r->round(), r->round() == in.round ? " (exported)" : "", " | ",
                    Metric(r->eval_accuracy()), " | ", Metric(r->eval_loss()), " | ",
                    r->evaluated(), " |\n");
  }
  return out + "\n";
}

std::string LimitationsSection(const ExportInputs& in) {
  std::string out = "## Limitations\n\n";
  const std::string text = MarkdownBlock(in.config.governance().limitations());
  if (!text.empty()) absl::StrAppend(&out, text, "\n\n");
  absl::StrAppend(
      &out,
      "- The coordinator never saw the training data. What is said about it here comes from "
      "the data cards the participants wrote, which nobody checked against the data.\n"
      "- Federated data is usually not identically distributed across clients; the model may "
      "do worse on populations the participating organizations do not represent.\n"
      "- Evaluation results are means over the clients that evaluated, on their own data; "
      "they are not a held-out benchmark.\n");
  if (!UsesDifferentialPrivacy(in.config)) {
    absl::StrAppend(&out,
                    "- Without differential privacy the model may reveal details of "
                    "individual training examples.\n");
  } else {
    absl::StrAppend(&out,
                    "- The privacy guarantee covers the federated training only, not the "
                    "base model's own training data; the noise costs accuracy.\n");
  }
  const std::vector<const RoundSummary*> committed = CommittedRounds(in);
  if (!committed.empty() && in.round < committed.back()->round()) {
    absl::StrAppend(&out, "- This is round ", in.round, "; the run committed ",
                    committed.back()->round(), " rounds.\n");
  }
  if (in.run_state != wire::v1::COMPLETED) {
    absl::StrAppend(&out, "- The run had not completed when the model was exported (state: ",
                    RunStateName(in.run_state), ").\n");
  }
  return out + "\n";
}

}  // namespace tessera::governance::card_internal
