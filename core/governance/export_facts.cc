// File: export_facts.cc
#include "core/governance/export_facts.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"

namespace tessera::governance {

using wire::v1::RoundSummary;
using wire::v1::StrategyConfig;

std::vector<const RoundSummary*> CommittedRounds(const ExportInputs& inputs) {
  std::map<uint32_t, const RoundSummary*> by_round;
  for (const RoundSummary& r : inputs.rounds) {
    if (r.state() == wire::v1::ROUND_COMPLETED) by_round[r.round()] = &r;
  }
  std::vector<const RoundSummary*> out;
  out.reserve(by_round.size());
  for (const auto& [round, summary] : by_round) out.push_back(summary);
  return out;
}

std::vector<const RoundSummary*> FailedAttempts(const ExportInputs& inputs) {
  std::vector<const RoundSummary*> out;
  for (const RoundSummary& r : inputs.rounds) {
    if (r.state() == wire::v1::ROUND_FAILED) out.push_back(&r);
  }
  return out;
}

const RoundSummary* LastEvaluatedRound(const ExportInputs& inputs) {
  const RoundSummary* last = nullptr;
  for (const RoundSummary* r : CommittedRounds(inputs)) {
    if (r->round() <= inputs.round && r->evaluated() > 0) last = r;
  }
  return last;
}

bool UsesRecordDp(const wire::v1::RunConfig& config) {
  return config.differential_privacy().record().enabled();
}

std::vector<SiteGuarantee> SiteGuarantees(const ExportInputs& inputs) {
  std::map<std::string, SiteGuarantee> by_client;
  for (const RoundSummary* r : CommittedRounds(inputs)) {
    if (r->round() > inputs.round) continue;
    for (const wire::v1::SitePrivacy& p : r->site_privacy()) {
      SiteGuarantee& g = by_client[p.client()];
      g.client = p.client();
      if (p.refused()) {
        g.refused = true;
        continue;
      }
      g.epsilon = p.epsilon();
      g.delta = p.delta();
      g.epsilon_budget = p.epsilon_budget();
      g.accountant = p.accountant();
      g.round = r->round();
    }
  }
  std::vector<SiteGuarantee> out;
  for (auto& [client, g] : by_client) out.push_back(std::move(g));
  return out;
}

std::map<std::string, std::vector<uint32_t>> RoundsByClient(const ExportInputs& inputs) {
  std::map<std::string, std::vector<uint32_t>> out;
  for (const RoundSummary* r : CommittedRounds(inputs)) {
    for (const std::string& client : r->participants()) {
      std::vector<uint32_t>& rounds = out[client];
      if (rounds.empty() || rounds.back() != r->round()) rounds.push_back(r->round());
    }
  }
  return out;
}

std::vector<const wire::v1::Participant*> SortedParticipants(const ExportInputs& inputs) {
  std::vector<const wire::v1::Participant*> out;
  for (const wire::v1::Participant& p : inputs.provenance.participants()) out.push_back(&p);
  std::stable_sort(out.begin(), out.end(),
                   [](const auto* a, const auto* b) { return a->client() < b->client(); });
  return out;
}

bool UsesDifferentialPrivacy(const wire::v1::RunConfig& config) {
  return config.differential_privacy().mode() !=
         wire::v1::DifferentialPrivacyConfig::MODE_UNSPECIFIED;
}

bool UsesSecureAggregation(const wire::v1::RunConfig& config) {
  return config.secure_aggregation().enabled();
}

std::string DpModeName(const wire::v1::RunConfig& config) {
  switch (config.differential_privacy().mode()) {
    case wire::v1::DifferentialPrivacyConfig::CENTRAL:
      return "central";
    case wire::v1::DifferentialPrivacyConfig::DISTRIBUTED:
      return "distributed";
    default:
      return "";
  }
}

StrategyConfig::Kind StrategyKind(const StrategyConfig& s) {
  return s.kind() == StrategyConfig::KIND_UNSPECIFIED ? StrategyConfig::FEDAVG : s.kind();
}

std::string StrategyRule(const StrategyConfig& s) {
  return absl::AsciiStrToLower(StrategyConfig::Kind_Name(StrategyKind(s)));
}

std::string StrategyDisplayName(const StrategyConfig& s) {
  switch (StrategyKind(s)) {
    case StrategyConfig::FEDPROX:
      return "FedProx (Li et al. 2020)";
    case StrategyConfig::SCAFFOLD:
      return "SCAFFOLD (Karimireddy et al. 2020)";
    case StrategyConfig::FEDNOVA:
      return "FedNova (Wang et al. 2020)";
    case StrategyConfig::FEDAVGM:
      return "FedAvgM, server momentum (Hsu et al. 2019)";
    case StrategyConfig::FEDADAM:
      return "FedAdam (Reddi et al. 2021)";
    case StrategyConfig::FEDYOGI:
      return "FedYogi (Reddi et al. 2021)";
    case StrategyConfig::FEDADAGRAD:
      return "FedAdagrad (Reddi et al. 2021)";
    case StrategyConfig::MEDIAN:
      return "coordinate-wise median (Yin et al. 2018)";
    case StrategyConfig::TRIMMED_MEAN:
      return "coordinate-wise trimmed mean (Yin et al. 2018)";
    case StrategyConfig::KRUM:
      return "Krum (Blanchard et al. 2017)";
    case StrategyConfig::MULTI_KRUM:
      return "Multi-Krum (Blanchard et al. 2017)";
    default:
      return "FedAvg, example-weighted mean (McMahan et al. 2017)";
  }
}

std::vector<std::pair<std::string, double>> StrategyParams(const StrategyConfig& s) {
  using P = std::vector<std::pair<std::string, double>>;
  switch (StrategyKind(s)) {
    case StrategyConfig::FEDPROX:
      return P{{"proximal_mu", s.proximal_mu()}};
    case StrategyConfig::SCAFFOLD:
      return P{{"server_learning_rate", s.server_learning_rate()}};
    case StrategyConfig::FEDAVGM:
      return P{{"server_learning_rate", s.server_learning_rate()},
               {"server_momentum", s.server_momentum()}};
    case StrategyConfig::FEDADAM:
    case StrategyConfig::FEDYOGI:
      return P{{"server_learning_rate", s.server_learning_rate()},
               {"beta1", s.beta1()},
               {"beta2", s.beta2()},
               {"tau", s.tau()}};
    case StrategyConfig::FEDADAGRAD:
      return P{{"server_learning_rate", s.server_learning_rate()},
               {"beta1", s.beta1()},
               {"tau", s.tau()}};
    case StrategyConfig::TRIMMED_MEAN:
      return P{{"trim_fraction", s.trim_fraction()}};
    case StrategyConfig::KRUM:
      return P{{"byzantine_clients", s.byzantine_clients()}};
    case StrategyConfig::MULTI_KRUM:
      return P{{"byzantine_clients", s.byzantine_clients()}, {"krum_selected", s.krum_selected()}};
    default:
      return {};
  }
}

std::string RunStateName(wire::v1::RunState state) {
  switch (state) {
    case wire::v1::CREATED:
      return "created";
    case wire::v1::RUNNING:
      return "running";
    case wire::v1::COMPLETED:
      return "completed";
    case wire::v1::CANCELLED:
      return "cancelled";
    case wire::v1::FAILED:
      return "failed";
    default:
      return "unspecified";
  }
}

uint64_t PublishedExampleBucket(const wire::v1::RunConfig& config) {
  const uint64_t bucket = config.governance().example_count_bucket();
  return bucket == 0 ? 100 : bucket;
}

uint64_t RoundDownToBucket(uint64_t count, uint64_t bucket) {
  return bucket == 0 ? count : count / bucket * bucket;
}

std::vector<std::string> DataCardNames(const ExportInputs& inputs) {
  std::set<std::string> names;
  for (const wire::v1::Participant& p : inputs.provenance.participants()) {
    if (p.refused().empty() && p.has_data_card() && !p.data_card().name().empty()) {
      names.insert(p.data_card().name());
    }
  }
  return {names.begin(), names.end()};
}

}  // namespace tessera::governance
