// File: export_verify_test.cc
#include "privacy/provenance/export_verify.h"

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/base/testing/status_matchers.h"
#include "core/crypto/sha256.h"
#include "core/governance/bill_of_materials.h"
#include "core/governance/canonical_json.h"
#include "core/governance/model_card.h"
#include "core/governance/testing/export_inputs_fixture.h"
#include "core/model/safetensors.h"
#include "core/serde/tensor_stream.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "privacy/crypto/pki.h"

namespace tessera::provenance {
namespace {

using nlohmann::json;
using ::testing::AllOf;
using ::testing::HasSubstr;

struct Pki {
  crypto::KeyAndCertificate ca;
  std::string key_pem;
  std::string cert_pem;
};

const Pki& TestPki() {
  static const Pki* pki = [] {
    auto* p = new Pki;
    p->ca = *crypto::CreateCertificateAuthority("Federation", 30);
    p->key_pem = *crypto::GeneratePrivateKey();
    crypto::IssueOptions options;
    options.role = crypto::CertificateRole::kCoordinator;
    options.common_name = "coordinator-1";
    options.subject_alt_names = {"DNS:localhost"};
    p->cert_pem = *crypto::IssueCertificate(p->ca, p->key_pem, options);
    return p;
  }();
  return *pki;
}

// Writes weights for `inputs` (run id and round in the metadata unless overridden), fills in
// the digests, renders the card, builds and signs the bill of materials.
ExportFiles MakeExport(governance::ExportInputs& in, const ProvenanceSigner& signer,
                       std::map<std::string, std::string> metadata = {}) {
  ArrayRecord record;
  record.tensors.push_back(*Tensor::FromFloats("w", {2, 3}, {1, 2, 3, 4, 5, 6}));
  record.tensors.push_back(*Tensor::FromFloats("b", {3}, {0.5f, -0.5f, 0}));
  if (metadata.empty()) {
    metadata = {{"tessera.run_id", in.run_id}, {"tessera.round", std::to_string(in.round)}};
  }
  ExportFiles files;
  files.weights = *SerializeSafetensors(record, metadata);
  in.model_sha256 = DigestArrayRecord(record);
  for (wire::v1::RoundSummary& r : in.rounds) {
    if (r.round() == in.round && r.state() == wire::v1::ROUND_COMPLETED) {
      r.set_model_sha256(in.model_sha256);
    }
  }
  in.weights_file_sha256 = crypto::Sha256Digest(files.weights);
  in.weights_file_bytes = files.weights.size();
  in.num_tensors = 2;
  in.num_parameters = 9;
  files.model_card = governance::RenderModelCard(in, "bom.json");
  absl::StatusOr<std::string> bom = governance::BuildBillOfMaterials(
      in, crypto::HexEncode(crypto::Sha256Digest(files.model_card)));
  EXPECT_THAT(bom, IsOk());
  absl::StatusOr<std::string> signed_bom = SignBillOfMaterials(bom.ok() ? *bom : "{}", signer);
  EXPECT_THAT(signed_bom, IsOk());
  files.bill_of_materials = signed_bom.ok() ? *signed_bom : "";
  return files;
}

const ExportCheck& Check(const ExportVerification& v, absl::string_view name) {
  for (const ExportCheck& c : v.checks) {
    if (c.name == name) return c;
  }
  static const ExportCheck missing{"missing", false, "no such check"};
  ADD_FAILURE() << "no check named " << name;
  return missing;
}

// Every check but `failing` passed.
void ExpectOnlyFailing(const ExportVerification& v, std::vector<std::string> failing) {
  EXPECT_EQ(v.checks.size(), 6u);
  for (const ExportCheck& c : v.checks) {
    const bool should_fail = std::find(failing.begin(), failing.end(), c.name) != failing.end();
    EXPECT_EQ(c.ok, !should_fail) << c.name << ": " << c.detail;
  }
  EXPECT_FALSE(v.ok());
}

class ExportVerifyTest : public ::testing::Test {
 protected:
  ExportVerifyTest()
      : signer_(*ProvenanceSigner::FromPem(TestPki().key_pem, TestPki().cert_pem)),
        inputs_(governance::SampleExportInputs(/*dp=*/true, /*secagg=*/true)),
        files_(MakeExport(inputs_, signer_)) {}

  ExportVerification Verify(const ExportFiles& files) {
    absl::StatusOr<ExportVerification> v = VerifyExport(files, TestPki().ca.certificate_pem);
    EXPECT_THAT(v, IsOk());
    return v.ok() ? *v : ExportVerification{};
  }

  ProvenanceSigner signer_;
  governance::ExportInputs inputs_;
  ExportFiles files_;
};

TEST_F(ExportVerifyTest, RoundTrip) {
  const ExportVerification v = Verify(files_);
  for (const ExportCheck& c : v.checks) EXPECT_TRUE(c.ok) << c.name << ": " << c.detail;
  EXPECT_EQ(v.checks.size(), 6u);
  EXPECT_TRUE(v.ok());
  EXPECT_TRUE(v.signer.certified);
  EXPECT_EQ(v.signer.common_name, "coordinator-1");
  EXPECT_EQ(v.run_id, "run-7f3a");
  EXPECT_EQ(v.round, 3u);
  EXPECT_EQ(v.model_sha256_hex, crypto::HexEncode(inputs_.model_sha256));
  // Pretty-printed for people, with the signature member.
  EXPECT_THAT(files_.bill_of_materials, HasSubstr("\n  \"signature\": {"));
}

TEST_F(ExportVerifyTest, WithoutCaTheCertificateIsUnchecked) {
  absl::StatusOr<ExportVerification> v = VerifyExport(files_, "");
  ASSERT_THAT(v, IsOk());
  EXPECT_TRUE(v->ok());
  EXPECT_FALSE(v->signer.certified);
  EXPECT_THAT(Check(*v, "signature").detail, HasSubstr("no CA given"));
}

TEST_F(ExportVerifyTest, OtherCaFailsTheSignatureOnly) {
  const crypto::KeyAndCertificate other = *crypto::CreateCertificateAuthority("Other", 30);
  absl::StatusOr<ExportVerification> v = VerifyExport(files_, other.certificate_pem);
  ASSERT_THAT(v, IsOk());
  ExpectOnlyFailing(*v, {"signature"});
}

TEST_F(ExportVerifyTest, FlippedWeightsByteNamesExpectedAndFound) {
  ExportFiles tampered = files_;
  tampered.weights.back() ^= 0x01;
  const ExportVerification v = Verify(tampered);
  ExpectOnlyFailing(v, {"weights sha256", "weights tensors"});
  const std::string expected = crypto::HexEncode(inputs_.weights_file_sha256);
  const std::string found = crypto::HexEncode(crypto::Sha256Digest(tampered.weights));
  EXPECT_THAT(Check(v, "weights sha256").detail,
              AllOf(HasSubstr("says " + expected), HasSubstr("has " + found)));
  EXPECT_THAT(Check(v, "weights tensors").detail,
              HasSubstr("says " + crypto::HexEncode(inputs_.model_sha256)));
}

TEST_F(ExportVerifyTest, EditedBomMemberFailsTheSignature) {
  json bom = *governance::ParseJson(files_.bill_of_materials);
  bom["model"]["license"] = "MIT";
  ExportFiles tampered = files_;
  tampered.bill_of_materials = bom.dump(2);
  const ExportVerification v = Verify(tampered);
  ExpectOnlyFailing(v, {"signature"});
  EXPECT_THAT(Check(v, "signature").detail, HasSubstr("does not verify"));
}

TEST_F(ExportVerifyTest, EditedModelCardFails) {
  ExportFiles tampered = files_;
  tampered.model_card += "\nThis model is a medical device.\n";
  const ExportVerification v = Verify(tampered);
  ExpectOnlyFailing(v, {"model card"});
  EXPECT_THAT(Check(v, "model card").detail,
              HasSubstr("has " + crypto::HexEncode(crypto::Sha256Digest(tampered.model_card))));
}

TEST_F(ExportVerifyTest, BrokenRoundChainIsNamed) {
  // A coordinator that signs a bill of materials whose rounds do not lead to the weights.
  governance::ExportInputs in = governance::SampleExportInputs(false, false);
  ExportFiles files = MakeExport(in, signer_);
  json bom = *governance::ParseJson(files.bill_of_materials);
  bom.erase("signature");
  bom["rounds"][2]["model_sha256"] = std::string(64, 'e');
  bom["rounds"].erase(1);
  files.bill_of_materials = *SignBillOfMaterials(*governance::CanonicalJson(bom), signer_);
  const ExportVerification v = Verify(files);
  ExpectOnlyFailing(v, {"round chain"});
  EXPECT_THAT(Check(v, "round chain").detail,
              AllOf(HasSubstr("rounds[1] is round 3, expected round 2"),
                    HasSubstr("round 3's model_sha256 is " + std::string(64, 'e'))));
}

TEST_F(ExportVerifyTest, RoundZeroChainsToTheInitialModel) {
  governance::ExportInputs in = governance::SampleExportInputs(false, false);
  in.round = 0;
  ArrayRecord record;
  record.tensors.push_back(*Tensor::FromFloats("w", {2, 3}, {1, 2, 3, 4, 5, 6}));
  record.tensors.push_back(*Tensor::FromFloats("b", {3}, {0.5f, -0.5f, 0}));
  in.provenance.set_initial_model_sha256(DigestArrayRecord(record));
  const ExportVerification v = Verify(MakeExport(in, signer_));
  EXPECT_TRUE(v.ok()) << Check(v, "round chain").detail;
}

TEST_F(ExportVerifyTest, WrongMetadataIsNamed) {
  governance::ExportInputs in = governance::SampleExportInputs(false, false);
  const ExportFiles files =
      MakeExport(in, signer_, {{"tessera.run_id", "run-other"}, {"format", "pt"}});
  const ExportVerification v = Verify(files);
  ExpectOnlyFailing(v, {"safetensors metadata"});
  EXPECT_THAT(Check(v, "safetensors metadata").detail,
              AllOf(HasSubstr("\"tessera.run_id\" is \"run-other\", the bill of materials says "
                              "\"run-7f3a\""),
                    HasSubstr("no \"tessera.round\" (expected \"3\")")));
}

TEST_F(ExportVerifyTest, InsecureCoordinatorKey) {
  const std::string path = ::testing::TempDir() + "/export_verify_ed25519.pem";
  std::remove(path.c_str());
  absl::StatusOr<ProvenanceSigner> insecure = ProvenanceSigner::LoadOrCreateEd25519(path);
  ASSERT_THAT(insecure, IsOk());
  governance::ExportInputs in = governance::SampleExportInputs(false, false);
  const ExportFiles files = MakeExport(in, *insecure);
  absl::StatusOr<ExportVerification> v = VerifyExport(files, "");
  ASSERT_THAT(v, IsOk());
  EXPECT_TRUE(v->ok());
  EXPECT_THAT(Check(*v, "signature").detail, HasSubstr("nobody vouches for"));
  // A bare key never satisfies a CA.
  ExpectOnlyFailing(Verify(files), {"signature"});
  std::remove(path.c_str());
}

TEST_F(ExportVerifyTest, UnusableBillOfMaterialsIsAnError) {
  ExportFiles files = files_;
  files.bill_of_materials = "not json";
  EXPECT_THAT(VerifyExport(files, ""), StatusIs(absl::StatusCode::kInvalidArgument));
  json bom = *governance::ParseJson(files_.bill_of_materials);
  bom["model"]["weights"].erase("sha256");
  files.bill_of_materials = bom.dump();
  EXPECT_THAT(VerifyExport(files, ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("model.weights.sha256")));
}

TEST(SignBillOfMaterialsTest, RejectsNonObjectsAndSignedDocuments) {
  const ProvenanceSigner signer = *ProvenanceSigner::FromPem(TestPki().key_pem, TestPki().cert_pem);
  EXPECT_THAT(SignBillOfMaterials("[1]", signer), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SignBillOfMaterials(R"({"signature":{}})", signer),
              StatusIs(absl::StatusCode::kInvalidArgument));
  absl::StatusOr<std::string> a = SignBillOfMaterials(R"({"b":1,"a":"x"})", signer);
  ASSERT_THAT(a, IsOk());
  EXPECT_THAT(*a, HasSubstr("\"algorithm\": \"ecdsa-p256-sha256\""));
}

}  // namespace
}  // namespace tessera::provenance
