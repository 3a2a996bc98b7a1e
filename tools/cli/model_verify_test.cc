// File: model_verify_test.cc
// `tessera model export` writing a signed export folder (WriteExport) and `tessera model
// verify` checking it: intact, then with the weights, the bill of materials or the model card
// tampered with, or a file missing.
#include "tools/cli/model_verify.h"

#include <algorithm>
#include <filesystem>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/base/file.h"
#include "core/base/testing/status_matchers.h"
#include "core/crypto/sha256.h"
#include "core/governance/bill_of_materials.h"
#include "core/governance/model_card.h"
#include "core/governance/testing/export_inputs_fixture.h"
#include "core/model/safetensors.h"
#include "core/model/testing/tensor_builders.h"
#include "core/serde/tensor_stream.h"
#include "privacy/crypto/pki.h"
#include "privacy/crypto/random.h"
#include "privacy/provenance/signer.h"
#include "tools/cli/commands.h"
#include "tools/cli/model_export.h"

namespace tessera::cli {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::Field;
using ::testing::HasSubstr;

namespace fs = std::filesystem;

// The checks that failed, by name.
std::vector<std::string> Failed(const provenance::ExportVerification& v) {
  std::vector<std::string> names;
  for (const auto& c : v.checks) {
    if (!c.ok) names.push_back(c.name);
  }
  return names;
}

// A signer with a "coordinator" certificate of a fresh CA of organization "Acme"; that CA's
// certificate goes to *ca_pem.
absl::StatusOr<provenance::ProvenanceSigner> CoordinatorSigner(std::string* ca_pem) {
  absl::StatusOr<crypto::KeyAndCertificate> ca = crypto::CreateCertificateAuthority("Acme", 30);
  if (!ca.ok()) return ca.status();
  *ca_pem = ca->certificate_pem;
  absl::StatusOr<std::string> key = crypto::GeneratePrivateKey();
  if (!key.ok()) return key.status();
  crypto::IssueOptions o;
  o.role = crypto::CertificateRole::kCoordinator;
  o.common_name = "coordinator";
  o.subject_alt_names = {"DNS:localhost"};
  absl::StatusOr<std::string> cert = crypto::IssueCertificate(*ca, *key, o);
  if (!cert.ok()) return cert.status();
  return provenance::ProvenanceSigner::FromPem(*key, *cert);
}

class ModelVerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<provenance::ProvenanceSigner> signer = CoordinatorSigner(&ca_pem_);
    ASSERT_THAT(signer, IsOk());

    weights_.tensors.push_back(MakeTensor<float>("fc.weight", DType::kFloat32, {2, 2},
                                                 {0.5f, -1.0f, 2.0f, 0.25f}));
    weights_.tensors.push_back(MakeVector<float>("fc.bias", DType::kFloat32, {0.1f, 0.2f}));
    // What the coordinator does (coordinator/round/export_documents.cc): the metadata, the
    // file's digest, the model card, the signed bill of materials.
    governance::ExportInputs in = governance::SampleExportInputs(false, false);
    in.model_sha256 = DigestArrayRecord(weights_);
    for (auto& r : in.rounds) {
      if (r.round() == in.round && r.state() == wire::v1::ROUND_COMPLETED) {
        r.set_model_sha256(in.model_sha256);
      }
    }
    std::map<std::string, std::string> metadata = {
        {"format", "pt"},
        {"tessera.run_id", in.run_id},
        {"tessera.run_name", in.config.name()},
        {"tessera.round", absl::StrCat(in.round)},
        {"tessera.model_sha256", crypto::HexEncode(in.model_sha256)},
        {"tessera.architecture", in.config.model().architecture()}};
    absl::StatusOr<std::string> file = SerializeSafetensors(weights_, metadata);
    ASSERT_THAT(file, IsOk());
    in.weights_file_sha256 = crypto::Sha256Digest(*file);
    in.weights_file_name = "model.safetensors";
    in.weights_file_bytes = file->size();
    in.num_tensors = 2;
    in.num_parameters = 6;
    const std::string card = governance::RenderModelCard(in, kBillOfMaterialsFileName);
    absl::StatusOr<std::string> bom =
        governance::BuildBillOfMaterials(in, crypto::HexEncode(crypto::Sha256Digest(card)));
    ASSERT_THAT(bom, IsOk());
    unsigned_bom_ = *bom;
    absl::StatusOr<std::string> signed_bom = provenance::SignBillOfMaterials(*bom, *signer);
    ASSERT_THAT(signed_bom, IsOk());
    header_.set_run_id(in.run_id);
    header_.set_round(in.round);
    header_.mutable_safetensors_metadata()->insert(metadata.begin(), metadata.end());
    header_.set_model_card(card);
    header_.set_bill_of_materials(*signed_bom);
    run_id_ = in.run_id;
    model_sha256_ = in.model_sha256;

    dir_ = fs::temp_directory_path() / absl::StrCat("tessera-export-", crypto::RandomHexId(6));
    fs::create_directories(dir_);
    weights_path_ = (dir_ / "model.safetensors").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  absl::StatusOr<ExportedFiles> Export(bool force = false) {
    return WriteExport(header_, weights_, weights_path_, {}, force);
  }
  provenance::ExportVerification Verify(const std::string& path) {
    absl::StatusOr<provenance::ExportVerification> v = VerifyExportAt(path, ca_pem_);
    EXPECT_THAT(v, IsOk());
    return v.ok() ? *std::move(v) : provenance::ExportVerification{};
  }
  void Edit(const fs::path& file, const std::string& from, const std::string& to) {
    absl::StatusOr<std::string> text = ReadFileToString(file.string());
    ASSERT_THAT(text, IsOk());
    const std::string edited = absl::StrReplaceAll(*text, {{from, to}});
    ASSERT_NE(edited, *text) << "\"" << from << "\" is not in " << file;
    ASSERT_THAT(WriteFileAtomically(file.string(), edited, 0644, true), IsOk());
  }

  std::string ca_pem_, run_id_, model_sha256_, weights_path_, unsigned_bom_;
  ArrayRecord weights_;
  wire::v1::ExportHeader header_;
  fs::path dir_;
};

TEST_F(ModelVerifyTest, ExportWritesTheThreeFilesAndTheyVerify) {
  absl::StatusOr<ExportedFiles> files = Export();
  ASSERT_THAT(files, IsOk());
  EXPECT_EQ(files->model_card_path, (dir_ / "README.md").string());
  EXPECT_EQ(files->bom_path, (dir_ / "bom.json").string());
  EXPECT_EQ(files->signer, "CN=coordinator O=Acme");
  const provenance::ExportVerification v = Verify(dir_.string());
  EXPECT_TRUE(v.ok()) << ::testing::PrintToString(Failed(v));
  EXPECT_EQ(v.run_id, run_id_);
  EXPECT_EQ(v.round, 3u);
  EXPECT_THAT(v.checks, Contains(Field(&provenance::ExportCheck::name, "signature")));
  // The bom.json path works as well as the folder.
  EXPECT_TRUE(Verify((dir_ / "bom.json").string()).ok());
  EXPECT_THAT(VerificationSummary(v.checks, /*ca_checked=*/true), HasSubstr("verified: all"));
}

TEST_F(ModelVerifyTest, TamperedWeightsFail) {
  ASSERT_THAT(Export(), IsOk());
  absl::StatusOr<std::string> bytes = ReadFileToString(weights_path_);
  ASSERT_THAT(bytes, IsOk());
  std::string tampered = *bytes;
  tampered.back() ^= 0x01;  // the last tensor byte
  ASSERT_THAT(WriteFileAtomically(weights_path_, tampered, 0644, true), IsOk());
  const provenance::ExportVerification v = Verify(dir_.string());
  EXPECT_FALSE(v.ok());
  EXPECT_THAT(Failed(v), Contains("weights sha256"));
  const auto failed = std::find_if(v.checks.begin(), v.checks.end(),
                                   [](const auto& c) { return c.name == "weights sha256"; });
  ASSERT_NE(failed, v.checks.end());
  EXPECT_THAT(CheckLine(*failed), AllOf(HasSubstr("FAIL weights sha256  "),
                                        HasSubstr("the bill of materials says")));
  EXPECT_THAT(VerificationSummary(v.checks, /*ca_checked=*/true),
              HasSubstr("verification FAILED: "));
}

TEST_F(ModelVerifyTest, TamperedBillOfMaterialsFailsTheSignature) {
  ASSERT_THAT(Export(), IsOk());
  Edit(dir_ / "bom.json", "Clinic B", "Clinic C");
  EXPECT_THAT(Failed(Verify(dir_.string())), Contains("signature"));
}

TEST_F(ModelVerifyTest, TamperedModelCardFails) {
  ASSERT_THAT(Export(), IsOk());
  Edit(dir_ / "README.md", "Not a medical device.", "A certified medical device.");
  EXPECT_THAT(Failed(Verify(dir_.string())), Contains("model card"));
}

TEST_F(ModelVerifyTest, SignerOutsideTheFederationFails) {
  ASSERT_THAT(Export(), IsOk());
  absl::StatusOr<crypto::KeyAndCertificate> other =
      crypto::CreateCertificateAuthority("Other", 30);
  ASSERT_THAT(other, IsOk());
  absl::StatusOr<provenance::ExportVerification> v =
      VerifyExportAt(dir_.string(), other->certificate_pem);
  ASSERT_THAT(v, IsOk());
  EXPECT_THAT(Failed(*v), Contains("signature"));
}

TEST_F(ModelVerifyTest, ReSignedBySelfMadeCoordinatorIsUnverifiedWithoutCaAndFailsWithIt) {
  // Anyone can make a CA named like the federation's, a "coordinator" certificate under it,
  // and re-sign the bill of materials.
  std::string rogue_ca;
  absl::StatusOr<provenance::ProvenanceSigner> signer = CoordinatorSigner(&rogue_ca);
  ASSERT_THAT(signer, IsOk());
  absl::StatusOr<std::string> resigned =
      provenance::SignBillOfMaterials(unsigned_bom_, *signer);
  ASSERT_THAT(resigned, IsOk());
  header_.set_bill_of_materials(*resigned);
  ASSERT_THAT(Export(), IsOk());

  ::testing::internal::CaptureStdout();
  EXPECT_EQ(VerifyModel(ConnectionOptions{}, {}, dir_.string(), false), kVerifyUnverified);
  const std::string text = ::testing::internal::GetCapturedStdout();
  EXPECT_THAT(text, HasSubstr("UNVERIFIED: all 6 checks passed, but no --ca was given"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("verified: all")));
  ::testing::internal::CaptureStdout();
  EXPECT_EQ(VerifyModel(ConnectionOptions{}, {.json = true}, dir_.string(), false),
            kVerifyUnverified);
  EXPECT_THAT(::testing::internal::GetCapturedStdout(),
              AllOf(HasSubstr("\"ok\":false"), HasSubstr("\"result\":\"unverified\"")));

  const std::string ca_path = (dir_ / "federation-ca.pem").string();
  ASSERT_THAT(WriteFileAtomically(ca_path, ca_pem_, 0644, true), IsOk());
  ConnectionOptions with_ca;
  with_ca.ca_cert_path = ca_path;
  ::testing::internal::CaptureStdout();
  EXPECT_EQ(VerifyModel(with_ca, {}, dir_.string(), false), kVerifyFailed);
  EXPECT_THAT(::testing::internal::GetCapturedStdout(), HasSubstr("FAIL signature"));
}

TEST_F(ModelVerifyTest, GenuineExportVerifiesOnlyWithTheCa) {
  ASSERT_THAT(Export(), IsOk());
  const std::string ca_path = (dir_ / "federation-ca.pem").string();
  ASSERT_THAT(WriteFileAtomically(ca_path, ca_pem_, 0644, true), IsOk());
  ConnectionOptions with_ca;
  with_ca.ca_cert_path = ca_path;
  ::testing::internal::CaptureStdout();
  EXPECT_EQ(VerifyModel(with_ca, {}, dir_.string(), false), kVerifyPassed);
  EXPECT_THAT(::testing::internal::GetCapturedStdout(), HasSubstr("verified: all 6 checks passed"));
  ::testing::internal::CaptureStdout();
  EXPECT_EQ(VerifyModel(ConnectionOptions{}, {}, dir_.string(), false), kVerifyUnverified);
  ::testing::internal::GetCapturedStdout();
}

TEST_F(ModelVerifyTest, MissingFileIsUnusableAndNamed) {
  ASSERT_THAT(Export(), IsOk());
  fs::remove(dir_ / "model.safetensors");
  EXPECT_THAT(VerifyExportAt(dir_.string(), ca_pem_),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("model.safetensors")));
  EXPECT_THAT(VerifyExportAt((dir_ / "nothing").string(), ca_pem_),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no such export folder")));
  fs::remove(dir_ / "bom.json");
  EXPECT_THAT(VerifyExportAt(dir_.string(), ca_pem_),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("bom.json")));
}

TEST_F(ModelVerifyTest, ExportRefusesAForeignReadmeUnlessForced) {
  ASSERT_THAT(WriteFileAtomically((dir_ / "README.md").string(), "# my project\n", 0644, false),
              IsOk());
  EXPECT_THAT(Export(), StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("--force")));
  EXPECT_FALSE(fs::exists(weights_path_));  // refused before anything was written
  ASSERT_THAT(Export(/*force=*/true), IsOk());
  // Its own model card is replaced without --force.
  EXPECT_THAT(Export(), IsOk());
  EXPECT_TRUE(Verify(dir_.string()).ok());
}

TEST_F(ModelVerifyTest, ExportRefusesWeightsTheBillOfMaterialsDoesNotName) {
  (*header_.mutable_safetensors_metadata())["tessera.round"] = "2";
  EXPECT_THAT(Export(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("nothing written")));
  EXPECT_FALSE(fs::exists(weights_path_));
  EXPECT_FALSE(fs::exists(dir_ / "bom.json"));
}

TEST_F(ModelVerifyTest, OlderCoordinatorGetsTheFallbackMetadataAndNoDocuments) {
  wire::v1::ExportHeader old;
  old.set_run_id(run_id_);
  absl::StatusOr<ExportedFiles> files =
      WriteExport(old, weights_, weights_path_, {{"tessera.run_id", run_id_}}, false);
  ASSERT_THAT(files, IsOk());
  EXPECT_TRUE(files->bom_path.empty());
  EXPECT_FALSE(fs::exists(dir_ / "README.md"));
  std::map<std::string, std::string> metadata;
  ASSERT_THAT(ReadSafetensorsFile(weights_path_, &metadata), IsOk());
  EXPECT_EQ(metadata["tessera.run_id"], run_id_);
}

TEST_F(ModelVerifyTest, CoordinatorCheckComparesTheRoundDigest) {
  ASSERT_THAT(Export(), IsOk());
  const provenance::ExportVerification v = Verify(dir_.string());
  wire::v1::RunStatus status;
  status.set_run_id(run_id_);
  wire::v1::RoundSummary* r = status.add_rounds();
  r->set_round(3);
  r->set_state(wire::v1::ROUND_COMPLETED);
  r->set_model_sha256(model_sha256_);
  EXPECT_TRUE(CoordinatorCheck(v, status).ok) << CoordinatorCheck(v, status).detail;
  r->set_model_sha256(std::string(32, '\x01'));
  EXPECT_THAT(CoordinatorCheck(v, status),
              AllOf(Field(&provenance::ExportCheck::ok, false),
                    Field(&provenance::ExportCheck::detail, HasSubstr("0101"))));
  status.clear_rounds();
  EXPECT_THAT(CoordinatorCheck(v, status).detail, HasSubstr("no completed round 3"));
}

TEST(JsonStringMemberTest, FollowsDottedPaths) {
  EXPECT_THAT(JsonStringMember(R"({"a":{"b":{"c":"x"}}})", "a.b.c"), IsOkAndHolds("x"));
  EXPECT_THAT(JsonStringMember(R"({"a":{"b":1}})", "a.b"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a string")));
  EXPECT_THAT(JsonStringMember(R"({"a":{}})", "a.b.c"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no member a.b.c")));
  EXPECT_THAT(JsonStringMember("{", "a"), StatusIs(absl::StatusCode::kInvalidArgument));
}

// The preprocessing `tessera model export` prints; the numbers are hand-stated (the published
// Fashion-MNIST training-set pixel mean and std, Xiao et al. 2017's label names).
TEST(PreprocessingTextTest, StatesShapeFormulaAndLabels) {
  wire::v1::ModelSpec builtin;
  builtin.set_architecture("mcmahan_cnn");
  const std::string text = PreprocessingText(builtin);
  EXPECT_THAT(text, HasSubstr("input float32 [batch, 1, 28, 28]"));
  EXPECT_THAT(text, HasSubstr("(x / 255 - 0.2860) / 0.3530"));
  EXPECT_THAT(text, HasSubstr("0 T-shirt/top, 1 Trouser"));
  EXPECT_THAT(text, HasSubstr("9 Ankle boot"));
  wire::v1::ModelSpec lm;
  lm.mutable_causal_lm()->mutable_lora()->set_rank(4);
  EXPECT_EQ(PreprocessingText(lm), "");
}

// `--torchscript` on a run without a TorchScript program is refused naming the flag and the
// run's model (it used to write nothing and exit 0); a TorchScript run, or no flag, passes.
TEST(CheckTorchScriptRequestedTest, RefusesRunsWhoseModelIsNotTorchScript) {
  wire::v1::ExportHeader header;
  header.set_run_id("run-7");
  header.mutable_config()->mutable_model()->set_architecture("mlp");
  EXPECT_THAT(CheckTorchScriptRequested(header, ""), IsOk());
  EXPECT_THAT(CheckTorchScriptRequested(header, "/tmp/x.pt"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("--torchscript /tmp/x.pt"), HasSubstr("run-7"),
                             HasSubstr("built-in architecture \"mlp\""),
                             HasSubstr("nothing written"))));
  header.mutable_config()->mutable_model()->clear_architecture();
  header.mutable_config()->mutable_model()->mutable_causal_lm()->mutable_lora()->set_rank(4);
  EXPECT_THAT(CheckTorchScriptRequested(header, "x.pt"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("LoRA adapter")));
  header.mutable_config()->mutable_model()->clear_causal_lm();
  header.mutable_config()->mutable_model()->set_torchscript_sha256(std::string(32, '\x02'));
  header.set_artifact_bytes(1234);
  EXPECT_THAT(CheckTorchScriptRequested(header, "x.pt"), IsOk());
}

}  // namespace
}  // namespace tessera::cli
