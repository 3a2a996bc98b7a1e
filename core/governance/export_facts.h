// File: export_facts.h
// Facts derived from ExportInputs that the bill of materials and the model card both state,
// computed once here so the two documents always agree: which rounds were committed, who
// took part in which, the aggregation rule and its parameters, whether the run used
// differential privacy or secure aggregation.
#ifndef TESSERA_CORE_GOVERNANCE_EXPORT_FACTS_H_
#define TESSERA_CORE_GOVERNANCE_EXPORT_FACTS_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/governance/export_inputs.h"
#include "tessera/wire/v1/control.pb.h"
#include "tessera/wire/v1/governance.pb.h"
#include "tessera/wire/v1/run_config.pb.h"

namespace tessera::governance {

// The committed rounds (ROUND_COMPLETED), by round number (the last attempt wins should a
// round appear twice).
std::vector<const wire::v1::RoundSummary*> CommittedRounds(const ExportInputs& inputs);
// The failed attempts (ROUND_FAILED), in input order.
std::vector<const wire::v1::RoundSummary*> FailedAttempts(const ExportInputs& inputs);
// The committed round with the highest number <= `round` that was evaluated, or nullptr.
const wire::v1::RoundSummary* LastEvaluatedRound(const ExportInputs& inputs);

// Client name -> the committed rounds it took part in, ascending.
std::map<std::string, std::vector<uint32_t>> RoundsByClient(const ExportInputs& inputs);

// The participants sorted by client name.
std::vector<const wire::v1::Participant*> SortedParticipants(const ExportInputs& inputs);

bool UsesDifferentialPrivacy(const wire::v1::RunConfig& config);
bool UsesSecureAggregation(const wire::v1::RunConfig& config);

// Record-level DP-SGD at every site (differential_privacy.record.enabled).
bool UsesRecordDp(const wire::v1::RunConfig& config);

// Record-level DP: what one site last reported about its own records in the committed rounds
// up to the exported round (the latest report that was not a refusal; `refused` when the site
// then refused a later task of the run because its budget was spent).
struct SiteGuarantee {
  std::string client;
  double epsilon = 0;
  double delta = 0;
  double epsilon_budget = 0;
  std::string accountant;
  uint32_t round = 0;  // the round of the report
  bool refused = false;
};
// By client name.
std::vector<SiteGuarantee> SiteGuarantees(const ExportInputs& inputs);

// "central" or "distributed" ("" without differential privacy).
std::string DpModeName(const wire::v1::RunConfig& config);

// The strategy kind with KIND_UNSPECIFIED read as FEDAVG.
wire::v1::StrategyConfig::Kind StrategyKind(const wire::v1::StrategyConfig& s);
// "fedavg", "fedprox", ..., "multi_krum".
std::string StrategyRule(const wire::v1::StrategyConfig& s);
// "FedAvg (McMahan et al. 2017)", ...
std::string StrategyDisplayName(const wire::v1::StrategyConfig& s);
// The parameters the rule uses, by config field name, in field order.
std::vector<std::pair<std::string, double>> StrategyParams(const wire::v1::StrategyConfig& s);

// "created", "running", "completed", "cancelled", "failed", "unspecified".
std::string RunStateName(wire::v1::RunState state);

// Counts in the published documents (docs/data_cards.md "What is published"). Every count of
// examples is published rounded down to a multiple of the run's example bucket
// (governance.example_count_bucket, 100 when unset), the same bucket the clients' data
// reports use, so no published number or sum of numbers gives an exact dataset size.
uint64_t PublishedExampleBucket(const wire::v1::RunConfig& config);
// floor(count / bucket) * bucket.
uint64_t RoundDownToBucket(uint64_t count, uint64_t bucket);

// The unique non-empty data card names of the accepted participants, sorted.
std::vector<std::string> DataCardNames(const ExportInputs& inputs);

}  // namespace tessera::governance

#endif  // TESSERA_CORE_GOVERNANCE_EXPORT_FACTS_H_
