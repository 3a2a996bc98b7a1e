// File: export_inputs_fixture.h
// Test helper: the ExportInputs of a small finished run (two organizations, three accepted
// clients and one refused, three committed rounds and one failed attempt, every round
// evaluated), with differential privacy and secure aggregation switched as asked. Digests are
// fixed placeholders; a test that needs real ones overwrites model_sha256, the last round's
// model_sha256 and the weights_file_* fields.
#ifndef TESSERA_CORE_GOVERNANCE_TESTING_EXPORT_INPUTS_FIXTURE_H_
#define TESSERA_CORE_GOVERNANCE_TESTING_EXPORT_INPUTS_FIXTURE_H_

#include <string>

#include "core/governance/export_inputs.h"

namespace tessera::governance {

// 32 raw bytes, all `b`.
inline std::string FakeDigest(char b) { return std::string(32, b); }

inline wire::v1::Participant FixtureParticipant(const std::string& client, const std::string& org,
                                                const std::string& card_name,
                                                const std::string& license) {
  wire::v1::Participant p;
  p.set_client(client);
  p.set_organization(org);
  p.set_client_version("0.1.0+abc1234");
  p.set_first_seen_unix_ms(1700000000000);
  if (!card_name.empty()) {
    p.mutable_data_card()->set_name(card_name);
    p.mutable_data_card()->set_license(license);
    p.mutable_data_card()->set_description("Chest X-rays, 2019-2021");
    p.mutable_data_card()->set_collection("routine care");
    p.mutable_data_report()->set_example_count_bucket(100);
    p.mutable_data_report()->set_examples_rounded(1200);
  }
  return p;
}

inline ExportInputs SampleExportInputs(bool dp, bool secagg) {
  ExportInputs in;
  in.run_id = "run-7f3a";
  wire::v1::RunConfig& c = in.config;
  c.set_name("chest-xray-fl");
  c.set_rounds(3);
  c.mutable_model()->set_architecture("niid_cnn");
  c.mutable_model()->set_initial_weights_source("architecture:niid_cnn seed=1");
  c.mutable_model()->set_seed(1);
  c.mutable_model()->set_source("tessera builtin");
  c.mutable_model()->set_license("Apache-2.0");
  c.mutable_train()->set_local_epochs(2);
  c.mutable_train()->set_batch_size(32);
  c.mutable_train()->set_learning_rate(0.05);
  c.mutable_train()->set_momentum(0.9);
  c.mutable_selection()->set_clients_per_round(3);
  c.mutable_selection()->set_min_clients(2);
  c.mutable_evaluation()->set_every(1);
  c.mutable_strategy()->set_kind(wire::v1::StrategyConfig::FEDAVG);
  if (secagg) {
    wire::v1::SecureAggregationConfig* s = c.mutable_secure_aggregation();
    s->set_enabled(true);
    s->set_dropout_fraction(0.3);
    s->set_corrupt_fraction(0.2);
    s->set_security_bits(40);
    s->set_clip(0.5);
    s->set_value_bits(16);
    s->set_max_examples(10000);
  }
  if (dp) {
    wire::v1::DifferentialPrivacyConfig* d = c.mutable_differential_privacy();
    d->set_mode(secagg ? wire::v1::DifferentialPrivacyConfig::DISTRIBUTED
                       : wire::v1::DifferentialPrivacyConfig::CENTRAL);
    d->set_noise_multiplier(1.1);
    d->set_clip_norm(0.5);
    d->set_expected_clients_per_round(3);
    d->set_population(3);
    d->set_epsilon_budget(8);
    d->set_delta(1e-5);
    d->set_dataset("xray");
  }
  wire::v1::GovernanceConfig* g = c.mutable_governance();
  g->set_model_license("Apache-2.0");
  g->set_description("A CNN that flags pneumonia on chest X-rays.");
  g->set_intended_use("Research on federated medical imaging only.");
  g->set_limitations("Not a medical device.");
  g->add_tags("medical-imaging");

  in.run_created_unix_ms = 1700000000000;
  in.run_state = wire::v1::COMPLETED;
  wire::v1::RunProvenance& p = in.provenance;
  p.set_run_id(in.run_id);
  p.set_created_by("alice");
  p.set_cli_version("0.1.0+abc1234");
  p.set_coordinator_version("0.1.0+abc1234");
  p.add_coordinator_versions("0.1.0+abc1234");
  p.set_initial_model_sha256(FakeDigest('\x10'));
  p.set_created_unix_ms(in.run_created_unix_ms);
  *p.add_participants() = FixtureParticipant("hospital-a-1", "Hospital A", "xray-a", "CC-BY-4.0");
  *p.add_participants() = FixtureParticipant("hospital-a-2", "Hospital A", "xray-a2", "CC-BY-4.0");
  *p.add_participants() = FixtureParticipant("clinic-b-1", "Clinic B", "xray-b", "proprietary");
  wire::v1::Participant refused = FixtureParticipant("mallory", "Clinic B", "", "");
  refused.set_refused("data card license \"WTFPL\" is not allowed");
  *p.add_participants() = refused;

  const char* clients[] = {"hospital-a-1", "hospital-a-2", "clinic-b-1"};
  for (uint32_t round = 1; round <= 3; ++round) {
    if (round == 2) {
      wire::v1::RoundSummary failed;
      failed.set_round(2);
      failed.set_attempt(1);
      failed.set_state(wire::v1::ROUND_FAILED);
      failed.set_failure_reason("1 of 2 required reports before the deadline");
      in.rounds.push_back(failed);
    }
    wire::v1::RoundSummary r;
    r.set_round(round);
    r.set_attempt(round == 2 ? 2 : 1);
    r.set_state(wire::v1::ROUND_COMPLETED);
    r.set_selected(3);
    r.set_reported(round == 3 ? 2 : 3);
    for (int i = 0; i < (round == 3 ? 2 : 3); ++i) r.add_participants(clients[i]);
    r.set_num_examples(3600);
    r.set_train_loss(1.0 / round);
    r.set_evaluated(3);
    r.set_eval_accuracy(0.6 + 0.1 * round);
    r.set_eval_loss(0.9 / round);
    r.set_model_sha256(FakeDigest(static_cast<char>(0x20 + round)));
    if (dp) {
      r.mutable_privacy()->set_mode(secagg ? "distributed" : "central");
      r.mutable_privacy()->set_dataset("xray");
      r.mutable_privacy()->set_epsilon(1.5 * round);
      r.mutable_privacy()->set_delta(1e-5);
      r.mutable_privacy()->set_round_epsilon(1.5);
    }
    if (secagg) {
      r.mutable_secagg()->set_session_id("s" + std::to_string(round));
      r.mutable_secagg()->set_survivors(r.reported());
      r.mutable_secagg()->set_degree_k(2);
      r.mutable_secagg()->set_threshold_t(2);
    }
    in.rounds.push_back(r);
  }
  in.round = 3;
  in.model_sha256 = FakeDigest('\x23');
  in.weights_file_sha256 = FakeDigest('\x33');
  in.weights_file_name = "model.safetensors";
  in.weights_file_bytes = 4096;
  in.num_tensors = 4;
  in.num_parameters = 1000;
  if (dp) {
    wire::v1::PrivacyBudgetStatus budget;
    budget.set_dataset("xray");
    budget.set_epsilon_budget(8);
    budget.set_delta(1e-5);
    budget.set_epsilon_spent(4.5);
    budget.set_rounds_charged(3);
    budget.add_run_ids(in.run_id);
    in.privacy = budget;
  }
  in.coordinator_version = "0.1.0+abc1234";
  in.exported_by = "alice";
  in.exported_unix_ms = 1700000500000;
  in.audit_head_seq = 42;
  in.audit_head_hash = std::string(64, 'a');
  return in;
}

// Record-level DP-SGD on `in`: noise multiplier 1.2, clip 0.8, expected batch 64; every
// participant of a committed round reports epsilon 0.5 * round (delta 1e-05, budget 4, rdp),
// and clinic-b-1, not in round 3, refused it. The failed attempt holds a report too (epsilon
// 99), which no document may take for a guarantee of the model.
inline void AddRecordDp(ExportInputs& in) {
  wire::v1::RecordDpConfig* r = in.config.mutable_differential_privacy()->mutable_record();
  r->set_enabled(true);
  r->set_noise_multiplier(1.2);
  r->set_clip_norm(0.8);
  r->set_expected_batch_size(64);
  r->set_max_physical_batch(32);
  for (wire::v1::RoundSummary& round : in.rounds) {
    auto add = [&](const std::string& client, double epsilon, bool refused) {
      wire::v1::SitePrivacy* p = round.add_site_privacy();
      p->set_client(client);
      p->set_epsilon(epsilon);
      p->set_delta(1e-5);
      p->set_epsilon_budget(4);
      p->set_accountant("rdp");
      p->set_refused(refused);
      if (refused) p->set_reason("epsilon would reach 4.5 of budget 4");
    };
    if (round.state() != wire::v1::ROUND_COMPLETED) {
      add("hospital-a-1", 99, false);
      continue;
    }
    for (const std::string& client : round.participants()) {
      add(client, 0.5 * round.round(), false);
    }
    if (round.round() == 3) add("clinic-b-1", 0, true);
  }
}

}  // namespace tessera::governance

#endif  // TESSERA_CORE_GOVERNANCE_TESTING_EXPORT_INPUTS_FIXTURE_H_
