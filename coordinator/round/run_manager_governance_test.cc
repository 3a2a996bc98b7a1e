// RunManager's governance side (docs/governance.md): license rules at selection, data
// reports, the audit log of a run, and the documents of an export.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "coordinator/round/run_manager_test_fixture.h"
#include "core/model/safetensors.h"
#include "privacy/provenance/audit_chain.h"
#include "privacy/provenance/export_verify.h"

namespace tessera::coordinator {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

class GovernanceTest : public RunManagerTest {
 protected:
  // Registers `name` of `org` with a data card under `license` ("" = no card) and connects.
  void Join(const std::string& name, const std::string& org, const std::string& license,
            bool histogram = false) {
    JoinWithDataCard(registry_, name, org, license, histogram, &mu_, &tasks_);
  }
  static wire::v1::RunConfig Governed(bool histogram) {
    wire::v1::RunConfig c = Config(/*rounds=*/1, /*per_round=*/0, /*min_clients=*/1);
    c.mutable_selection()->set_fraction(1.0);
    c.mutable_governance()->add_allowed_data_licenses("MIT");
    c.mutable_governance()->set_example_count_bucket(50);
    c.mutable_governance()->set_class_histogram(histogram);
    return c;
  }
  static wire::v1::DataReport Report(uint64_t bucket, uint64_t rounded) {
    wire::v1::DataReport r;
    r.set_example_count_bucket(bucket);
    r.set_examples_rounded(rounded);
    return r;
  }
};

TEST_F(GovernanceTest, DisallowedLicenseAndMissingCardAreRefusedWithTheReason) {
  Join("alpha", "Org A", "MIT");
  Join("beta", "Org B", "");
  Join("gamma", "Org C", "proprietary");
  auto created = runs_->CreateRun(Governed(false), Weights(0), "", {"op", "0.1.0+cli"});
  ASSERT_THAT(created, IsOk());
  const std::string run = created->run_id();
  ASSERT_THAT(runs_->StartRun(run, Actor{"op", ""}), IsOk());

  const wire::v1::Task train = NextTask("alpha");
  ASSERT_EQ(train.type(), wire::v1::TRAIN);
  ASSERT_TRUE(train.has_data_report());
  EXPECT_EQ(train.data_report().example_count_bucket(), 50u);
  EXPECT_FALSE(train.data_report().class_histogram());
  const wire::v1::Task refused_b = NextTask("beta");
  EXPECT_EQ(refused_b.type(), wire::v1::REFUSED);
  EXPECT_THAT(refused_b.refusal(), HasSubstr("no data card"));
  const wire::v1::Task refused_c = NextTask("gamma");
  EXPECT_EQ(refused_c.type(), wire::v1::REFUSED);
  EXPECT_EQ(refused_c.refusal(),
            "data card license \"proprietary\" is not in governance.allowed_data_licenses [MIT]");

  ASSERT_THAT(runs_->SubmitDataReport(train.task_id(), "alpha", Report(50, 150)), IsOk());
  ASSERT_THAT(Answer("alpha", train, 0.5f, 170), IsOk());
  const wire::v1::RunStatus status = AwaitState(run, wire::v1::COMPLETED);
  EXPECT_THAT(status.rounds(0).participants(), ::testing::ElementsAre("alpha"));
  EXPECT_THAT(status.refused_clients(),
              UnorderedElementsAre(HasSubstr("beta: no data card"),
                                   HasSubstr("gamma: data card license \"proprietary\"")));

  auto provenance = state_->GetProvenance(run);
  ASSERT_THAT(provenance, IsOk());
  ASSERT_TRUE(provenance->has_value());
  EXPECT_EQ((*provenance)->created_by(), "op");
  EXPECT_EQ((*provenance)->cli_version(), "0.1.0+cli");
  bool saw_alpha = false;
  for (const auto& p : (*provenance)->participants()) {
    if (p.client() != "alpha") continue;
    saw_alpha = true;
    EXPECT_EQ(p.organization(), "Org A");
    EXPECT_EQ(p.data_card().license(), "MIT");
    EXPECT_EQ(p.data_report().examples_rounded(), 150u);
  }
  EXPECT_TRUE(saw_alpha);

  auto log = state_->ListAudit();
  ASSERT_THAT(log, IsOk());
  std::vector<std::string> actions;
  for (const auto& e : *log) actions.push_back(e.action());
  EXPECT_THAT(actions, ::testing::ElementsAre("run.created", "run.started", "client.refused",
                                              "client.refused", "round.committed",
                                              "run.completed"));
  EXPECT_EQ((*log)[0].actor(), "operator:op");
  EXPECT_TRUE(provenance::VerifyAuditChain(*log, nullptr, "").ok());
}

TEST_F(GovernanceTest, RefusedClientGetsNoEvaluationTaskAndIsNotCounted) {
  Join("alpha", "Org A", "MIT");
  Join("gamma", "Org C", "proprietary");
  wire::v1::RunConfig config = Governed(false);
  config.mutable_evaluation()->set_every(1);
  auto created = runs_->CreateRun(config, Weights(0), "");
  ASSERT_THAT(created, IsOk());
  ASSERT_THAT(runs_->StartRun(created->run_id()), IsOk());

  EXPECT_EQ(NextTask("gamma").type(), wire::v1::REFUSED);
  const wire::v1::Task train = NextTask("alpha");
  ASSERT_EQ(train.type(), wire::v1::TRAIN);
  ASSERT_THAT(runs_->SubmitDataReport(train.task_id(), "alpha", Report(50, 100)), IsOk());
  ASSERT_THAT(Answer("alpha", train, 0.5f, 100), IsOk());
  const wire::v1::Task eval = NextTask("alpha");
  ASSERT_EQ(eval.type(), wire::v1::EVALUATE);
  ASSERT_THAT(runs_->SubmitEvaluation(eval.task_id(), "alpha", 40, 0.5, 0.75), IsOk());
  const wire::v1::RunStatus status = AwaitState(created->run_id(), wire::v1::COMPLETED);

  // Only the one accepted client evaluated; the refused one got its notice and nothing else.
  EXPECT_EQ(status.rounds(0).evaluated(), 1u);
  EXPECT_DOUBLE_EQ(status.rounds(0).eval_accuracy(), 0.75);
  absl::MutexLock l(&mu_);
  EXPECT_TRUE(tasks_["gamma"].empty()) << tasks_["gamma"].front().DebugString();
}

TEST_F(GovernanceTest, DataReportsOnlyAsAsked) {
  Join("alpha", "Org A", "MIT", /*histogram=*/false);
  Join("delta", "Org D", "MIT", /*histogram=*/true);
  auto created = runs_->CreateRun(Governed(true), Weights(0), "");
  ASSERT_THAT(created, IsOk());
  ASSERT_THAT(runs_->StartRun(created->run_id()), IsOk());
  const wire::v1::Task a = NextTask("alpha");
  const wire::v1::Task d = NextTask("delta");
  ASSERT_TRUE(a.data_report().class_histogram());
  EXPECT_THAT(runs_->SubmitDataReport(a.task_id(), "alpha", Report(10, 150)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("must be 50")));
  EXPECT_THAT(runs_->SubmitDataReport(a.task_id(), "alpha", Report(50, 149)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a multiple")));
  wire::v1::DataReport with_histogram = Report(50, 100);
  with_histogram.add_class_histogram(60);
  with_histogram.add_class_histogram(40);
  EXPECT_THAT(runs_->SubmitDataReport(a.task_id(), "alpha", with_histogram),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not allow")));
  EXPECT_THAT(runs_->SubmitDataReport(d.task_id(), "alpha", with_histogram),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(runs_->SubmitDataReport(d.task_id(), "delta", with_histogram), IsOk());
  ASSERT_THAT(runs_->CancelRun(created->run_id()), IsOk());
  // Kept (and so published) rounded down to the bucket of 50 like the count: 60 -> 50,
  // 40 -> 0; exact classes would sum to delta's exact example count.
  auto provenance = state_->GetProvenance(created->run_id());
  ASSERT_THAT(provenance, IsOk());
  ASSERT_TRUE(provenance->has_value());
  bool saw_delta = false;
  for (const auto& p : (*provenance)->participants()) {
    if (p.client() != "delta") continue;
    saw_delta = true;
    EXPECT_THAT(p.data_report().class_histogram(), ::testing::ElementsAre(50, 0));
    EXPECT_EQ(p.data_report().examples_rounded(), 100u);
  }
  EXPECT_TRUE(saw_delta);
}

TEST_F(GovernanceTest, ExportDocumentsAreSignedAndVerify) {
  RunManagerOptions options;
  options.coordinator_version = "0.1.0+test";
  auto signer = provenance::ProvenanceSigner::LoadOrCreateEd25519(dir_.string() + "/sign.key");
  ASSERT_THAT(signer, IsOk());
  options.signer = std::make_shared<provenance::ProvenanceSigner>(*signer);
  runs_ = std::make_unique<RunManager>(options, state_.get(), &registry_);
  Join("alpha", "Org A", "MIT");
  auto created = runs_->CreateRun(Governed(false), Weights(0), "", Actor{"op", ""});
  ASSERT_THAT(created, IsOk());
  ASSERT_THAT(runs_->StartRun(created->run_id()), IsOk());
  const wire::v1::Task t = NextTask("alpha");
  ASSERT_THAT(Answer("alpha", t, 0.25f, 100), IsOk());
  AwaitState(created->run_id(), wire::v1::COMPLETED);

  auto exported = runs_->ExportModel(created->run_id(), -1);
  ASSERT_THAT(exported, IsOk());
  EXPECT_THAT(runs_->DocumentExport(created->run_id(), *exported, "../x", Actor{"op", ""}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("plain file name")));
  auto docs = runs_->DocumentExport(created->run_id(), *exported, "m.safetensors", Actor{"op", ""});
  ASSERT_THAT(docs, IsOk());
  auto weights = SerializeSafetensors(exported->model->weights, docs->safetensors_metadata);
  ASSERT_THAT(weights, IsOk());
  auto verified = provenance::VerifyExport({docs->bill_of_materials, *weights, docs->model_card},
                                           "");
  ASSERT_THAT(verified, IsOk());
  for (const auto& c : verified->checks) EXPECT_TRUE(c.ok) << c.name << ": " << c.detail;
  EXPECT_EQ(verified->round, 1u);
  EXPECT_THAT(docs->model_card, HasSubstr("Org A"));
  auto log = state_->ListAudit();
  ASSERT_THAT(log, IsOk());
  EXPECT_EQ(log->back().action(), "model.exported");
  EXPECT_EQ(log->back().details().at("weights_file"), "m.safetensors");

  auto audit = runs_->ExportAudit();
  ASSERT_THAT(audit, IsOk());
  EXPECT_TRUE(provenance::VerifyAuditChain(audit->entries, &audit->head, "").ok());
  EXPECT_THAT(runs_->RecordOperatorEvent(Actor{"op", ""}, "run.created", {}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(runs_->RecordOperatorEvent(Actor{"op", ""}, "certificate.revoked", {{"serial", "ab"}}),
              IsOk());
}

}  // namespace
}  // namespace tessera::coordinator
