// File: bill_of_materials.cc
// The members of the bill of materials are documented in docs/governance_formats.md; keep
// the two in step.
#include "core/governance/bill_of_materials.h"

#include <google/protobuf/util/json_util.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "core/governance/canonical_json.h"
#include "core/governance/export_facts.h"

namespace tessera::governance {
namespace {

using nlohmann::json;
using wire::v1::Participant;
using wire::v1::RoundSummary;
using wire::v1::RunConfig;

// Lowercase hex of raw digest bytes; null when there are none.
json HexOrNull(const std::string& bytes) {
  if (bytes.empty()) return nullptr;
  return absl::BytesToHexString(bytes);
}

json StringOrNull(const std::string& s) {
  if (s.empty()) return nullptr;
  return s;
}

// JSON has no NaN or infinity.
json Number(double v) {
  if (!std::isfinite(v)) return nullptr;
  return v;
}

absl::StatusOr<json> ConfigJson(const RunConfig& config) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string text;
  const auto status = google::protobuf::util::MessageToJsonString(config, &text, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("run config cannot be written as JSON: ", status.ToString()));
  }
  return ParseJson(text);
}

json AggregationJson(const wire::v1::StrategyConfig& s) {
  json params = json::object();
  for (const auto& [name, value] : StrategyParams(s)) params[name] = Number(value);
  return {{"rule", StrategyRule(s)}, {"params", params}};
}

json SecureAggregationJson(const RunConfig& config) {
  if (!UsesSecureAggregation(config)) return nullptr;
  const wire::v1::SecureAggregationConfig& s = config.secure_aggregation();
  return {{"protocol", "secagg (Bell et al. 2020)"},
          {"dropout_fraction", Number(s.dropout_fraction())},
          {"corrupt_fraction", Number(s.corrupt_fraction())},
          {"security_bits", s.security_bits()},
          {"clip", Number(s.clip())},
          {"value_bits", s.value_bits()},
          {"max_examples", Number(s.max_examples())}};
}

json DifferentialPrivacyJson(const ExportInputs& in) {
  if (!UsesDifferentialPrivacy(in.config)) return nullptr;
  const wire::v1::DifferentialPrivacyConfig& dp = in.config.differential_privacy();
  json adaptive = nullptr;
  if (dp.adaptive_clipping().enabled()) {
    const wire::v1::AdaptiveClippingConfig& a = dp.adaptive_clipping();
    adaptive = {{"target_quantile", Number(a.target_quantile())},
                {"learning_rate", Number(a.learning_rate())},
                {"clipped_count_stddev", Number(a.clipped_count_stddev())}};
  }
  json at_round = nullptr;
  for (const RoundSummary* r : CommittedRounds(in)) {
    if (r->round() == in.round && r->has_privacy()) at_round = Number(r->privacy().epsilon());
  }
  json out = {{"mode", DpModeName(in.config)},
              {"unit", "client"},
              {"noise_multiplier", Number(dp.noise_multiplier())},
              {"clip_norm", Number(dp.clip_norm())},
              {"adaptive_clipping", adaptive},
              {"expected_clients_per_round", Number(dp.expected_clients_per_round())},
              {"population", dp.population()},
              {"delta", Number(dp.delta())},
              {"epsilon_budget", Number(dp.epsilon_budget())},
              {"dataset", dp.dataset()},
              {"modulus_bits", dp.modulus_bits()},
              {"epsilon_at_exported_round", at_round},
              {"epsilon_spent", nullptr},
              {"rounds_charged", nullptr},
              {"ledger_run_ids", json::array()}};
  if (in.privacy.has_value()) {
    out["epsilon_spent"] = Number(in.privacy->epsilon_spent());
    out["rounds_charged"] = in.privacy->rounds_charged();
    for (const std::string& id : in.privacy->run_ids()) out["ledger_run_ids"].push_back(id);
  }
  return out;
}

json RecordDpJson(const ExportInputs& in) {
  if (!UsesRecordDp(in.config)) return nullptr;
  const wire::v1::RecordDpConfig& r = in.config.differential_privacy().record();
  json sites = json::array();
  for (const SiteGuarantee& g : SiteGuarantees(in)) {
    const bool reported = !g.accountant.empty();
    sites.push_back({{"client", g.client},
                     {"epsilon", reported ? json(Number(g.epsilon)) : json(nullptr)},
                     {"delta", reported ? json(Number(g.delta)) : json(nullptr)},
                     {"epsilon_budget", reported ? json(Number(g.epsilon_budget)) : json(nullptr)},
                     {"accountant", g.accountant},
                     {"round", g.round},
                     {"refused", g.refused}});
  }
  return {{"unit", "record"},
          {"noise_multiplier", Number(r.noise_multiplier())},
          {"clip_norm", Number(r.clip_norm())},
          {"expected_batch_size", Number(r.expected_batch_size())},
          {"max_physical_batch", r.max_physical_batch()},
          {"sites", std::move(sites)}};
}

json RoundJson(const RoundSummary& r, uint64_t bucket) {
  const bool evaluated = r.evaluated() > 0;
  json secagg = nullptr;
  if (r.has_secagg()) {
    secagg = {{"session_id", r.secagg().session_id()},
              {"degree_k", r.secagg().degree_k()},
              {"threshold_t", r.secagg().threshold_t()},
              {"survivors", r.secagg().survivors()},
              {"modulus_bits", r.secagg().modulus_bits()},
              {"sum_sha256", HexOrNull(r.secagg().sum_sha256())}};
  }
  json privacy = nullptr;
  if (r.has_privacy()) {
    const wire::v1::PrivacyRoundStatus& p = r.privacy();
    privacy = {{"mode", p.mode()},
               {"dataset", p.dataset()},
               {"noise_multiplier", Number(p.noise_multiplier())},
               {"clip_norm", Number(p.clip_norm())},
               {"sampling_rate", Number(p.sampling_rate())},
               {"round_epsilon", Number(p.round_epsilon())},
               {"epsilon", Number(p.epsilon())},
               {"delta", Number(p.delta())}};
  }
  json participants = json::array();
  for (const std::string& c : r.participants()) participants.push_back(c);
  return {{"round", r.round()},
          {"attempt", r.attempt()},
          {"started_unix_ms", r.started_unix_ms()},
          {"selected", r.selected()},
          {"reported", r.reported()},
          {"dropped", r.dropped()},
          {"participants", participants},
          {"examples_rounded", RoundDownToBucket(r.num_examples(), bucket)},
          {"train_loss", Number(r.train_loss())},
          {"evaluated", r.evaluated()},
          {"eval_accuracy", evaluated ? Number(r.eval_accuracy()) : json(nullptr)},
          {"eval_loss", evaluated ? Number(r.eval_loss()) : json(nullptr)},
          {"model_sha256", absl::BytesToHexString(r.model_sha256())},
          {"secure_aggregation", secagg},
          {"differential_privacy", privacy}};
}

json DataCardJson(const Participant& p) {
  if (!p.has_data_card()) return nullptr;
  const wire::v1::DataCard& c = p.data_card();
  return {{"name", c.name()},
          {"description", c.description()},
          {"license", c.license()},
          {"collection", c.collection()},
          {"labeling", c.labeling()},
          {"intended_use", c.intended_use()},
          {"restrictions", c.restrictions()},
          {"contact", c.contact()},
          {"allow_class_histogram", c.allow_class_histogram()}};
}

json DataReportJson(const Participant& p) {
  if (!p.has_data_report()) return nullptr;
  const wire::v1::DataReport& r = p.data_report();
  // Each class rounded down like the count: exact classes would sum to the exact count.
  json histogram = json::array();
  for (uint64_t n : r.class_histogram()) {
    histogram.push_back(RoundDownToBucket(n, r.example_count_bucket()));
  }
  return {{"example_count_bucket", r.example_count_bucket()},
          {"examples_rounded", r.examples_rounded()},
          {"class_histogram", histogram},
          {"histogram_withheld", r.histogram_withheld()}};
}

json ParticipantsJson(const ExportInputs& in) {
  const std::map<std::string, std::vector<uint32_t>> rounds = RoundsByClient(in);
  json out = json::array();
  for (const Participant* p : SortedParticipants(in)) {
    json in_rounds = json::array();
    if (auto it = rounds.find(p->client()); it != rounds.end()) {
      for (uint32_t r : it->second) in_rounds.push_back(r);
    }
    out.push_back({{"client", p->client()},
                   {"organization", p->organization()},
                   {"client_version", p->client_version()},
                   {"first_seen_unix_ms", p->first_seen_unix_ms()},
                   {"accepted", p->refused().empty()},
                   {"refused", StringOrNull(p->refused())},
                   {"rounds", in_rounds},
                   {"data_card", DataCardJson(*p)},
                   {"data_report", DataReportJson(*p)}});
  }
  return out;
}

json SoftwareJson(const ExportInputs& in) {
  const auto entry = [](const std::string& name, const std::string& version,
                        const std::string& role) {
    return json{{"name", name}, {"version", version}, {"role", role}};
  };
  json out = json::array();
  out.push_back(entry("tessera-cli", in.provenance.cli_version(), "created the run"));
  out.push_back(
      entry("tessera-coordinator", in.provenance.coordinator_version(), "created the run"));
  for (const std::string& v : in.provenance.coordinator_versions()) {
    out.push_back(entry("tessera-coordinator", v, "drove rounds"));
  }
  out.push_back(entry("tessera-coordinator", in.coordinator_version, "exported the model"));
  for (const Participant* p : SortedParticipants(in)) {
    if (!p->refused().empty()) continue;
    out.push_back(entry("tessera-client", p->client_version(), "client:" + p->client()));
  }
  return out;
}

// Every component with its license; and the Model Openness Framework's view of them.
void AddComponents(const ExportInputs& in, absl::string_view model_card_sha256_hex, json* bom) {
  const std::string& model_license = in.config.governance().model_license();
  const wire::v1::ModelSpec& spec = in.config.model();
  const bool torchscript = spec.architecture().empty() && !spec.has_causal_lm();
  const json tessera_license = std::string(kTesseraLicense);
  // A built-in architecture is Tessera's code; a TorchScript program comes with the base
  // model and its license.
  const json architecture_license = torchscript ? StringOrNull(spec.license()) : tessera_license;
  json components = json::array();
  components.push_back({{"type", "model_architecture"},
                        {"name", spec.has_causal_lm() ? "causal_lm+lora"
                                 : torchscript        ? "torchscript"
                                                      : spec.architecture()},
                        {"sha256", HexOrNull(in.artifact_sha256.empty() ? spec.torchscript_sha256()
                                                                        : in.artifact_sha256)},
                        {"license", architecture_license}});
  components.push_back({{"type", "model_parameters"},
                        {"name", in.weights_file_name},
                        {"sha256", absl::BytesToHexString(in.weights_file_sha256)},
                        {"license", StringOrNull(model_license)}});
  components.push_back({{"type", "model_card"},
                        {"name", in.model_card_file_name},
                        {"sha256", std::string(model_card_sha256_hex)},
                        {"license", StringOrNull(model_license)}});
  // A language model's base is its checkpoint (identified by the SHA-256 of its files); the
  // run's initial weights are then only the initial adapter.
  components.push_back({{"type", "base_model"},
                        {"name", spec.source()},
                        {"sha256", HexOrNull(spec.has_causal_lm()
                                                 ? spec.causal_lm().base_sha256()
                                                 : spec.initial_weights_file_sha256())},
                        {"license", StringOrNull(spec.license())}});
  components.push_back({{"type", "run_config"},
                        {"name", in.config.name()},
                        {"sha256", nullptr},
                        {"license", StringOrNull(model_license)}});
  std::set<std::string> data_licenses;
  bool any_data_card = false;
  for (const Participant* p : SortedParticipants(in)) {
    if (!p->refused().empty() || !p->has_data_card()) continue;
    any_data_card = true;
    data_licenses.insert(p->data_card().license());
    components.push_back({{"type", "data_card"},
                          {"name", p->data_card().name()},
                          {"client", p->client()},
                          {"sha256", nullptr},
                          {"license", StringOrNull(p->data_card().license())}});
  }
  for (const char* type : {"training_code", "evaluation_code"}) {
    components.push_back({{"type", type},
                          {"name", "tessera"},
                          {"version", in.coordinator_version},
                          {"sha256", nullptr},
                          {"license", tessera_license}});
  }
  const bool evaluated = LastEvaluatedRound(in) != nullptr;
  if (evaluated) {
    components.push_back({{"type", "evaluation_results"},
                          {"name", "rounds[].eval_accuracy, rounds[].eval_loss"},
                          {"sha256", nullptr},
                          {"license", StringOrNull(model_license)}});
  }
  (*bom)["components"] = components;

  const auto mof = [](bool present, json license) {
    json licenses = json::array();
    if (present && license.is_string()) licenses.push_back(license);
    if (present && license.is_array()) licenses = license;
    return json{{"present", present}, {"licenses", licenses}};
  };
  json data_card_licenses = json::array();
  for (const std::string& l : data_licenses) data_card_licenses.push_back(l);
  (*bom)["model_openness_framework"] = {
      {"model_architecture", mof(true, architecture_license)},
      {"model_parameters", mof(true, StringOrNull(model_license))},
      {"model_card", mof(true, StringOrNull(model_license))},
      {"data_card", mof(any_data_card, data_card_licenses)},
      {"training_code", mof(true, tessera_license)},
      {"evaluation_code", mof(true, tessera_license)},
      {"evaluation_results", mof(evaluated, StringOrNull(model_license))},
      // Federated learning: the training data never left the participants.
      {"datasets",
       {{"present", false},
        {"licenses", json::array()},
        {"note",
         "federated: the training data stayed with the participants; "
         "only their data cards are included"}}}};
}

}  // namespace

absl::StatusOr<std::string> BuildBillOfMaterials(const ExportInputs& in,
                                                 absl::string_view model_card_sha256_hex) {
  TESSERA_ASSIGN_OR_RETURN(json config, ConfigJson(in.config));
  const wire::v1::ModelSpec& spec = in.config.model();
  const std::string& model_license = in.config.governance().model_license();
  json bom = {{"bom_format", "tessera-aibom"}, {"spec_version", 1}};
  bom["run"] = {{"id", in.run_id},
                {"name", in.config.name()},
                {"state", RunStateName(in.run_state)},
                {"created_unix_ms", in.run_created_unix_ms},
                {"created_by", in.provenance.created_by()},
                {"config", config}};
  bom["model"] = {
      {"round", in.round},
      {"license", StringOrNull(model_license)},
      {"architecture", StringOrNull(spec.has_causal_lm() ? std::string("causal_lm+lora")
                                                         : spec.architecture())},
      {"torchscript_sha256",
       HexOrNull(in.artifact_sha256.empty() ? spec.torchscript_sha256() : in.artifact_sha256)},
      {"weights",
       {{"file", in.weights_file_name},
        {"format", "safetensors"},
        {"sha256", absl::BytesToHexString(in.weights_file_sha256)},
        {"tensor_digest", absl::BytesToHexString(in.model_sha256)},
        {"bytes", in.weights_file_bytes},
        {"tensors", in.num_tensors},
        {"parameters", in.num_parameters}}}};
  bom["model_card"] = {{"file", in.model_card_file_name},
                       {"sha256", std::string(model_card_sha256_hex)}};
  bom["base_model"] = {
      {"source", spec.source()},
      {"license", StringOrNull(spec.license())},
      {"initial_weights_source", spec.initial_weights_source()},
      {"seed", spec.seed()},
      {"initial_weights_file_sha256",
       HexOrNull(spec.initial_weights_file_sha256().empty() ? in.provenance.initial_file_sha256()
                                                            : spec.initial_weights_file_sha256())},
      {"initial_tensor_digest", HexOrNull(in.provenance.initial_model_sha256())},
      {"torchscript_sha256",
       HexOrNull(in.provenance.torchscript_sha256().empty() ? spec.torchscript_sha256()
                                                            : in.provenance.torchscript_sha256())}};
  if (spec.has_causal_lm()) {
    // The base checkpoint stays with the partners: the BOM names it by the SHA-256 of its
    // files (tessera-model lm-hash), and the exported weights are a LoRA adapter.
    const wire::v1::LoraSpec& lora = spec.causal_lm().lora();
    bom["base_model"]["checkpoint_sha256"] = absl::BytesToHexString(spec.causal_lm().base_sha256());
    bom["model"]["adapter"] = {
        {"type", "lora"},
        {"rank", lora.rank()},
        {"alpha", lora.alpha()},
        {"dropout", lora.dropout()},
        {"target_modules", std::vector<std::string>(lora.target_modules().begin(),
                                                    lora.target_modules().end())},
        {"freeze_a", lora.freeze_a()},
        {"init_seed", lora.init_seed()}};
  }
  json rounds = json::array();
  const uint64_t bucket = PublishedExampleBucket(in.config);
  for (const RoundSummary* r : CommittedRounds(in)) rounds.push_back(RoundJson(*r, bucket));
  bom["rounds"] = rounds;
  json failed = json::array();
  for (const RoundSummary* r : FailedAttempts(in)) {
    failed.push_back({{"round", r->round()},
                      {"attempt", r->attempt()},
                      {"failure_reason", r->failure_reason()},
                      {"privacy_charged", r->has_privacy() && r->privacy().released()}});
  }
  bom["failed_attempts"] = failed;
  const wire::v1::TrainConfig& t = in.config.train();
  const wire::v1::SelectionConfig& sel = in.config.selection();
  bom["training"] = {{"rounds_configured", in.config.rounds()},
                     {"rounds_committed", rounds.size()},
                     {"aggregation", AggregationJson(in.config.strategy())},
                     {"local_training",
                      {{"local_epochs", t.local_epochs()},
                       {"batch_size", t.batch_size()},
                       {"learning_rate", Number(t.learning_rate())},
                       {"momentum", Number(t.momentum())},
                       {"weight_decay", Number(t.weight_decay())},
                       {"max_steps", t.max_steps()}}},
                     {"selection",
                      {{"clients_per_round", sel.clients_per_round()},
                       {"fraction", Number(sel.fraction())},
                       {"min_clients", sel.min_clients()}}},
                     {"evaluation_every", in.config.evaluation().every()},
                     {"secure_aggregation", SecureAggregationJson(in.config)},
                     {"differential_privacy", DifferentialPrivacyJson(in)},
                     {"record_dp", RecordDpJson(in)}};
  bom["participants"] = ParticipantsJson(in);
  bom["software"] = SoftwareJson(in);
  AddComponents(in, model_card_sha256_hex, &bom);
  bom["audit"] = {{"head_seq", in.audit_head_seq}, {"head_hash", in.audit_head_hash}};
  bom["exported"] = {{"by", in.exported_by},
                     {"unix_ms", in.exported_unix_ms},
                     {"coordinator_version", in.coordinator_version}};
  return CanonicalJson(bom);
}

}  // namespace tessera::governance
