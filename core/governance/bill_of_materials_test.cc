// File: bill_of_materials_test.cc
#include "core/governance/bill_of_materials.h"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "core/base/testing/status_matchers.h"
#include "core/governance/canonical_json.h"
#include "core/governance/testing/export_inputs_fixture.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::governance {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kCardSha[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

json Bom(const ExportInputs& in) {
  absl::StatusOr<std::string> text = BuildBillOfMaterials(in, kCardSha);
  EXPECT_THAT(text, IsOk());
  absl::StatusOr<json> parsed = ParseJson(text.ok() ? *text : "{}");
  EXPECT_THAT(parsed, IsOk());
  return parsed.ok() ? *parsed : json::object();
}

TEST(BillOfMaterialsTest, IsCanonicalAndDeterministic) {
  const ExportInputs in = SampleExportInputs(/*dp=*/true, /*secagg=*/true);
  absl::StatusOr<std::string> a = BuildBillOfMaterials(in, kCardSha);
  absl::StatusOr<std::string> b = BuildBillOfMaterials(SampleExportInputs(true, true), kCardSha);
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_EQ(*a, *b);
  absl::StatusOr<json> parsed = ParseJson(*a);
  ASSERT_THAT(parsed, IsOk());
  EXPECT_THAT(CanonicalJson(*parsed), IsOkAndHolds(*a));
  EXPECT_FALSE(parsed->contains("signature"));
}

TEST(BillOfMaterialsTest, NamesTheRunModelAndBaseModel) {
  const json bom = Bom(SampleExportInputs(false, false));
  EXPECT_EQ(bom["bom_format"], "tessera-aibom");
  EXPECT_EQ(bom["spec_version"], 1);
  EXPECT_EQ(bom["run"]["id"], "run-7f3a");
  EXPECT_EQ(bom["run"]["state"], "completed");
  EXPECT_EQ(bom["run"]["created_by"], "alice");
  // The whole config, every field present, with proto field names.
  EXPECT_EQ(bom["run"]["config"]["name"], "chest-xray-fl");
  EXPECT_EQ(bom["run"]["config"]["train"]["weight_decay"], 0);
  EXPECT_EQ(bom["run"]["config"]["governance"]["model_license"], "Apache-2.0");
  EXPECT_EQ(bom["model"]["round"], 3);
  EXPECT_EQ(bom["model"]["license"], "Apache-2.0");
  EXPECT_EQ(bom["model"]["architecture"], "niid_cnn");
  EXPECT_EQ(bom["model"]["weights"]["tensor_digest"], absl::BytesToHexString(FakeDigest('#')));
  EXPECT_EQ(bom["model"]["weights"]["sha256"], std::string(64, '3'));
  EXPECT_EQ(bom["model"]["weights"]["parameters"], 1000);
  EXPECT_EQ(bom["model_card"]["sha256"], kCardSha);
  EXPECT_EQ(bom["model_card"]["file"], "README.md");
  EXPECT_EQ(bom["base_model"]["source"], "tessera builtin");
  EXPECT_EQ(bom["base_model"]["license"], "Apache-2.0");
  EXPECT_EQ(bom["base_model"]["initial_tensor_digest"], absl::BytesToHexString(FakeDigest('\x10')));
  EXPECT_TRUE(bom["base_model"]["initial_weights_file_sha256"].is_null());
  EXPECT_EQ(bom["audit"]["head_seq"], 42);
  EXPECT_EQ(bom["exported"]["by"], "alice");
}

TEST(BillOfMaterialsTest, ListsCommittedRoundsAndFailedAttempts) {
  const json bom = Bom(SampleExportInputs(false, true));
  ASSERT_EQ(bom["rounds"].size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(bom["rounds"][i]["round"], i + 1);
    EXPECT_EQ(bom["rounds"][i]["model_sha256"],
              absl::BytesToHexString(FakeDigest(static_cast<char>(0x21 + i))));
    EXPECT_TRUE(bom["rounds"][i]["differential_privacy"].is_null());
    EXPECT_EQ(bom["rounds"][i]["secure_aggregation"]["degree_k"], 2);
  }
  EXPECT_EQ(bom["rounds"][1]["attempt"], 2);
  EXPECT_EQ(bom["rounds"][2]["participants"], json({"hospital-a-1", "hospital-a-2"}));
  EXPECT_DOUBLE_EQ(bom["rounds"][2]["eval_accuracy"].get<double>(), 0.9);
  ASSERT_EQ(bom["failed_attempts"].size(), 1u);
  EXPECT_EQ(bom["failed_attempts"][0]["round"], 2);
  EXPECT_THAT(bom["failed_attempts"][0]["failure_reason"].get<std::string>(),
              HasSubstr("deadline"));
}

TEST(BillOfMaterialsTest, TrainingWithAndWithoutPrivacy) {
  const json off = Bom(SampleExportInputs(false, false));
  EXPECT_EQ(off["training"]["aggregation"]["rule"], "fedavg");
  EXPECT_TRUE(off["training"]["differential_privacy"].is_null());
  EXPECT_TRUE(off["training"]["secure_aggregation"].is_null());

  const json on = Bom(SampleExportInputs(true, true));
  const json& dp = on["training"]["differential_privacy"];
  EXPECT_EQ(dp["mode"], "distributed");
  EXPECT_EQ(dp["dataset"], "xray");
  EXPECT_DOUBLE_EQ(dp["epsilon_spent"].get<double>(), 4.5);
  EXPECT_DOUBLE_EQ(dp["epsilon_at_exported_round"].get<double>(), 4.5);
  EXPECT_DOUBLE_EQ(dp["delta"].get<double>(), 1e-5);
  EXPECT_EQ(dp["ledger_run_ids"], json({"run-7f3a"}));
  EXPECT_EQ(on["training"]["secure_aggregation"]["security_bits"], 40);
  EXPECT_DOUBLE_EQ(on["rounds"][2]["differential_privacy"]["epsilon"].get<double>(), 4.5);
}

TEST(BillOfMaterialsTest, RecordLevelDpAndEachSitesGuarantee) {
  EXPECT_TRUE(Bom(SampleExportInputs(false, false))["training"]["record_dp"].is_null());
  ExportInputs in = SampleExportInputs(false, false);
  AddRecordDp(in);
  const json bom = Bom(in);
  const json& r = bom["training"]["record_dp"];
  EXPECT_EQ(r["unit"], "record");
  EXPECT_DOUBLE_EQ(r["noise_multiplier"].get<double>(), 1.2);
  EXPECT_DOUBLE_EQ(r["clip_norm"].get<double>(), 0.8);
  EXPECT_DOUBLE_EQ(r["expected_batch_size"].get<double>(), 64);
  EXPECT_EQ(r["max_physical_batch"], 32);
  ASSERT_EQ(r["sites"].size(), 3u);  // by client name
  const json& clinic = r["sites"][0];
  EXPECT_EQ(clinic["client"], "clinic-b-1");
  EXPECT_DOUBLE_EQ(clinic["epsilon"].get<double>(), 1.0);
  EXPECT_EQ(clinic["round"], 2);
  EXPECT_EQ(clinic["refused"], true);
  const json& a1 = r["sites"][1];
  EXPECT_EQ(a1["client"], "hospital-a-1");
  EXPECT_DOUBLE_EQ(a1["epsilon"].get<double>(), 1.5);  // not the failed attempt's 99
  EXPECT_DOUBLE_EQ(a1["delta"].get<double>(), 1e-5);
  EXPECT_DOUBLE_EQ(a1["epsilon_budget"].get<double>(), 4);
  EXPECT_EQ(a1["accountant"], "rdp");
  EXPECT_EQ(a1["round"], 3);
  EXPECT_EQ(a1["refused"], false);
  // Exporting round 1: only what the sites had reported by then.
  in.round = 1;
  EXPECT_DOUBLE_EQ(Bom(in)["training"]["record_dp"]["sites"][1]["epsilon"].get<double>(), 0.5);
  EXPECT_EQ(Bom(in)["training"]["record_dp"]["sites"][0]["refused"], false);
}

TEST(BillOfMaterialsTest, CountsArePublishedRoundedDownToTheBucket) {
  ExportInputs in = SampleExportInputs(false, false);
  in.config.mutable_governance()->set_example_count_bucket(1000);
  for (auto& r : in.rounds) r.set_num_examples(3657);
  // An exact histogram stored by an older coordinator: 1234 + 2423 = 3657 examples.
  for (auto& p : *in.provenance.mutable_participants()) {
    if (!p.has_data_report()) continue;
    p.mutable_data_report()->add_class_histogram(1234);
    p.mutable_data_report()->add_class_histogram(2423);
  }
  const json bom = Bom(in);
  for (const json& r : bom["rounds"]) {
    EXPECT_EQ(r["examples_rounded"], 3000) << r.dump();
    EXPECT_FALSE(r.contains("num_examples")) << r.dump();
  }
  // The reports' bucket is 100 (the fixture's): 1234 -> 1200, 2423 -> 2400.
  EXPECT_EQ(bom["participants"][0]["data_report"]["class_histogram"], json({1200, 2400}));
  EXPECT_THAT(bom.dump(), Not(HasSubstr("3657")));
}

TEST(BillOfMaterialsTest, ParticipantsWithDataCardsAndRounds) {
  const json bom = Bom(SampleExportInputs(false, false));
  const json& ps = bom["participants"];
  ASSERT_EQ(ps.size(), 4u);
  // Sorted by client name.
  EXPECT_EQ(ps[0]["client"], "clinic-b-1");
  EXPECT_EQ(ps[0]["organization"], "Clinic B");
  EXPECT_EQ(ps[0]["rounds"], json({1, 2}));
  EXPECT_EQ(ps[0]["data_card"]["license"], "proprietary");
  EXPECT_EQ(ps[0]["data_report"]["examples_rounded"], 1200);
  EXPECT_EQ(ps[1]["client"], "hospital-a-1");
  EXPECT_EQ(ps[1]["rounds"], json({1, 2, 3}));
  EXPECT_EQ(ps[3]["client"], "mallory");
  EXPECT_EQ(ps[3]["accepted"], false);
  EXPECT_THAT(ps[3]["refused"].get<std::string>(), HasSubstr("WTFPL"));
  EXPECT_TRUE(ps[3]["data_card"].is_null());
  EXPECT_TRUE(ps[1]["refused"].is_null());
  // Software: cli, coordinator (created, drove, exported), one per accepted client.
  int clients = 0;
  for (const json& s : bom["software"]) clients += s["name"] == "tessera-client";
  EXPECT_EQ(clients, 3);
}

TEST(BillOfMaterialsTest, ComponentsAndModelOpennessFramework) {
  const json bom = Bom(SampleExportInputs(false, false));
  std::vector<std::string> types;
  for (const json& c : bom["components"]) types.push_back(c["type"]);
  EXPECT_THAT(types, ElementsAre("model_architecture", "model_parameters", "model_card",
                                 "base_model", "run_config", "data_card", "data_card", "data_card",
                                 "training_code", "evaluation_code", "evaluation_results"));
  EXPECT_EQ(bom["components"][2]["sha256"], kCardSha);
  EXPECT_EQ(bom["components"][8]["license"], std::string(kTesseraLicense));
  const json& mof = bom["model_openness_framework"];
  EXPECT_EQ(mof["model_parameters"]["present"], true);
  EXPECT_EQ(mof["model_parameters"]["licenses"], json({"Apache-2.0"}));
  EXPECT_EQ(mof["data_card"]["licenses"], json({"CC-BY-4.0", "proprietary"}));
  EXPECT_EQ(mof["evaluation_results"]["present"], true);
  EXPECT_EQ(mof["training_code"]["licenses"], json({"Apache-2.0"}));
  // The federated training data is never part of the release.
  EXPECT_EQ(mof["datasets"]["present"], false);
}

TEST(BillOfMaterialsTest, NotEvaluatedMeansNoEvaluationResults) {
  ExportInputs in = SampleExportInputs(false, false);
  for (wire::v1::RoundSummary& r : in.rounds) r.set_evaluated(0);
  const json bom = Bom(in);
  EXPECT_EQ(bom["model_openness_framework"]["evaluation_results"]["present"], false);
  EXPECT_TRUE(bom["rounds"][0]["eval_accuracy"].is_null());
}

TEST(BillOfMaterialsTest, RejectsInvalidUtf8) {
  ExportInputs in = SampleExportInputs(false, false);
  in.provenance.mutable_participants(0)->set_organization("bad \xff byte");
  EXPECT_THAT(BuildBillOfMaterials(in, kCardSha), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace tessera::governance
