// File: model_card_test.cc
#include "core/governance/model_card.h"

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_split.h"
#include "core/governance/markup.h"
#include "core/governance/testing/export_inputs_fixture.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::governance {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The YAML between the opening "---" line and the first "---" line after it, as a front
// matter parser (Hugging Face's, Jekyll's) finds it.
std::string FrontMatterOf(const std::string& card) {
  EXPECT_EQ(card.substr(0, 4), "---\n");
  const size_t end = card.find("\n---\n", 3);
  EXPECT_NE(end, std::string::npos);
  return card.substr(4, end - 3);
}

YAML::Node ParseFrontMatter(const std::string& card) {
  try {
    return YAML::Load(FrontMatterOf(card));
  } catch (const YAML::Exception& e) {
    ADD_FAILURE() << "front matter is not YAML: " << e.what() << "\n" << FrontMatterOf(card);
    return YAML::Node();
  }
}

std::vector<std::string> Strings(const YAML::Node& list) {
  std::vector<std::string> out;
  for (const YAML::Node& n : list) out.push_back(n.as<std::string>());
  return out;
}

TEST(ModelCardTest, FrontMatterIsHuggingFaceYaml) {
  const std::string card = RenderModelCard(SampleExportInputs(true, true), "bom.json");
  const YAML::Node fm = ParseFrontMatter(card);
  ASSERT_TRUE(fm.IsMap());
  EXPECT_EQ(fm["license"].as<std::string>(), "apache-2.0");
  EXPECT_EQ(fm["library_name"].as<std::string>(), "tessera");
  EXPECT_THAT(Strings(fm["tags"]),
              ::testing::ElementsAre("federated-learning", "tessera", "differential-privacy",
                                     "secure-aggregation", "medical-imaging"));
  EXPECT_THAT(Strings(fm["datasets"]), ::testing::ElementsAre("xray-a", "xray-a2", "xray-b"));
  EXPECT_THAT(Strings(fm["metrics"]), ::testing::ElementsAre("accuracy", "loss"));
  const YAML::Node result = fm["model-index"][0]["results"][0];
  EXPECT_EQ(fm["model-index"][0]["name"].as<std::string>(), "chest-xray-fl");
  EXPECT_EQ(result["metrics"][0]["type"].as<std::string>(), "accuracy");
  EXPECT_DOUBLE_EQ(result["metrics"][0]["value"].as<double>(), 0.6 + 0.1 * 3);
  EXPECT_DOUBLE_EQ(result["metrics"][1]["value"].as<double>(), 0.3);
  EXPECT_TRUE(result["dataset"]["name"].IsScalar());
}

TEST(ModelCardTest, NoDpNoSecAggTagsAndUnspecifiedLicense) {
  ExportInputs in = SampleExportInputs(false, false);
  in.config.mutable_governance()->clear_model_license();
  for (wire::v1::RoundSummary& r : in.rounds) r.set_evaluated(0);
  const std::string card = RenderModelCard(in, "bom.json");
  const YAML::Node fm = ParseFrontMatter(card);
  EXPECT_EQ(fm["license"].as<std::string>(), "other");
  EXPECT_EQ(fm["license_name"].as<std::string>(), "unspecified");
  EXPECT_THAT(Strings(fm["tags"]),
              ::testing::ElementsAre("federated-learning", "tessera", "medical-imaging"));
  EXPECT_FALSE(fm["metrics"]);
  EXPECT_FALSE(fm["model-index"]);
  EXPECT_THAT(card, HasSubstr("**No differential privacy.**"));
  EXPECT_THAT(card, HasSubstr("**No secure aggregation.**"));
  EXPECT_THAT(card, HasSubstr("The model was not evaluated"));
}

TEST(ModelCardTest, SectionsInOrder) {
  const std::string card = RenderModelCard(SampleExportInputs(true, false), "bom.json");
  size_t at = 0;
  for (const char* heading :
       {"\n# chest-xray-fl\n", "\n## Preprocessing\n", "\n## Intended use\n",
        "\n## Training procedure\n", "\n## Federated participants\n",
        "\n## Privacy guarantees\n", "\n## Evaluation results\n", "\n## Limitations\n",
        "\n## Provenance\n"}) {
    const size_t found = card.find(heading, at);
    EXPECT_NE(found, std::string::npos) << heading;
    if (found != std::string::npos) at = found;
  }
  EXPECT_THAT(card, HasSubstr("A CNN that flags pneumonia"));
  EXPECT_THAT(card, HasSubstr("Research on federated medical imaging only."));
  EXPECT_THAT(card, HasSubstr("Not a medical device."));
  EXPECT_THAT(card, HasSubstr("FedAvg"));
  EXPECT_THAT(card, HasSubstr("1 failed attempt retried"));
}

TEST(ModelCardTest, RoundTableRoundsExampleTotalsDownToTheBucket) {
  ExportInputs in = SampleExportInputs(false, false);
  in.config.mutable_governance()->set_example_count_bucket(1000);
  for (auto& r : in.rounds) r.set_num_examples(3657);
  const std::string card = RenderModelCard(in, "bom.json");
  EXPECT_THAT(card, HasSubstr("| Examples (rounded down to a multiple of 1000) |"));
  EXPECT_THAT(card, HasSubstr("| 1 | 1 | 3 | 3000 | "));  // floor(3657 / 1000) * 1000
  EXPECT_THAT(card, Not(HasSubstr("3657")));
}

TEST(ModelCardTest, TrainingProcedureStatesTheCompressionAndTheBytesItSaved) {
  ExportInputs in = SampleExportInputs(false, false);
  EXPECT_THAT(RenderModelCard(in, "bom.json"),
              HasSubstr("- **Update compression:** none; clients uploaded float32\n"));
  // int8 with one scale per 256 values: 1 + 4/256 = 1.015625 bytes per float32 value,
  // 4 / 1.015625 = 3.938x. The fixture commits rounds 1, 2 (second attempt) and 3 with 3, 3
  // and 2 participants: 8 uploads. A 1,000-value float32 model is 4,000 bytes; each int8
  // upload of it 1,000 codes + 4 scales of 4 bytes = 1,016 bytes. So 8 x 1,016 = 8,128 sent
  // against 8 x 4,000 = 32,000: 32,000 / 8,128 = 3.937x, 23,872 bytes saved.
  in.config.mutable_compression()->set_method(wire::v1::CompressionConfig::INT8);
  in.config.mutable_compression()->set_block_size(256);
  in.config.mutable_compression()->set_error_feedback(true);
  in.tensor_bytes = 4000;
  for (wire::v1::RoundSummary& r : in.rounds) r.set_bytes_up(r.participants_size() * 1016);
  EXPECT_THAT(RenderModelCard(in, "bom.json"),
              HasSubstr("- **Update compression:** int8 (stochastic rounding, one float32 scale "
                        "per 256 values): 1.016 bytes per float32 value, 3.94x fewer than "
                        "float32; error feedback on. The committed rounds' 8 uploads carried "
                        "8128 bytes against 32000 uncompressed: 3.94x fewer, 23872 bytes "
                        "saved\n"));
  // Top-k of 10% without error feedback: 8 x 0.1 = 0.8 bytes per value, 4 / 0.8 = 5x.
  in.config.mutable_compression()->set_method(wire::v1::CompressionConfig::TOPK);
  in.config.mutable_compression()->set_topk_fraction(0.1);
  in.config.mutable_compression()->set_error_feedback(false);
  EXPECT_THAT(RenderModelCard(in, "bom.json"),
              HasSubstr("top-k (the 10% largest magnitudes of each tensor, as indices and "
                        "values): 0.8 bytes per float32 value, 5x fewer than float32; error "
                        "feedback off."));
}

TEST(ModelCardTest, DpRoundsListNoExampleCountsOrLoss) {
  // Under DP the round table shows "-" where a run without DP lists example totals and loss
  // (the fixture's rounds carry 3600 examples either way).
  const std::string dp = RenderModelCard(SampleExportInputs(true, false), "bom.json");
  EXPECT_THAT(dp, Not(HasSubstr("| 3600 |")));
  EXPECT_THAT(dp, HasSubstr("| 1 | 1 | 3 | - | - | "));
  const std::string plain = RenderModelCard(SampleExportInputs(false, false), "bom.json");
  EXPECT_THAT(plain, HasSubstr("| 1 | 1 | 3 | 3600 | "));
}

TEST(ModelCardTest, ParticipantsByOrganization) {
  const std::string card = RenderModelCard(SampleExportInputs(false, true), "bom.json");
  const size_t clinic = card.find("### Organization: Clinic B");
  const size_t hospital = card.find("### Organization: Hospital A");
  ASSERT_NE(clinic, std::string::npos);
  ASSERT_NE(hospital, std::string::npos);
  EXPECT_LT(clinic, hospital);
  EXPECT_THAT(card.substr(clinic, hospital - clinic), HasSubstr("| clinic-b-1 |"));
  EXPECT_THAT(card.substr(hospital), HasSubstr("| hospital-a-2 |"));
  EXPECT_THAT(card, HasSubstr("| 3 of 3: 1, 2, 3 |"));
  EXPECT_THAT(card, HasSubstr("3 clients from 2 organizations"));
  EXPECT_THAT(card, HasSubstr("- mallory: data card license \"WTFPL\" is not allowed"));
  EXPECT_THAT(card, HasSubstr("**Secure aggregation.**"));
}

TEST(ModelCardTest, PrivacyGuaranteesWithDp) {
  const std::string card = RenderModelCard(SampleExportInputs(true, false), "bom.json");
  EXPECT_THAT(card, HasSubstr("epsilon = 4.5, delta = 1.0e-05"));
  EXPECT_THAT(card, HasSubstr("- **Mode:** central"));
  EXPECT_THAT(card, HasSubstr("- **Noise multiplier:** 1.1; **clip norm:** 0.5"));
  EXPECT_THAT(card, HasSubstr("dataset xray, epsilon budget 8"));
  EXPECT_THAT(card, Not(HasSubstr("No differential privacy")));
}

TEST(ModelCardTest, RecordLevelDpListsEachSitesGuarantee) {
  EXPECT_THAT(RenderModelCard(SampleExportInputs(false, false), "bom.json"),
              Not(HasSubstr("Record-level")));
  ExportInputs in = SampleExportInputs(false, false);
  AddRecordDp(in);
  const std::string card = RenderModelCard(in, "bom.json");
  EXPECT_THAT(card, HasSubstr("**Record-level DP-SGD at every site.**"));
  EXPECT_THAT(card, HasSubstr("- **Noise multiplier:** 1.2; **clip norm (per example):** 0.8; "
                              "**expected batch size:** 64"));
  EXPECT_THAT(card, HasSubstr("- **Site hospital-a-1:** epsilon = 1.5 at delta = 1.0e-05 "
                              "(budget 4, rdp accountant, reported in round 3)\n"));
  EXPECT_THAT(card, HasSubstr("- **Site clinic-b-1:** epsilon = 1 at delta = 1.0e-05 (budget 4, "
                              "rdp accountant, reported in round 2); then refused further "
                              "tasks: its budget was spent\n"));
  EXPECT_THAT(card, Not(HasSubstr("epsilon = 99")));  // the failed attempt's report
  // Record-level DP alone is not "no differential privacy".
  EXPECT_THAT(card, Not(HasSubstr("No differential privacy")));
}

TEST(ModelCardTest, EvaluationAndProvenance) {
  const std::string card = RenderModelCard(SampleExportInputs(false, false), "bom.json");
  EXPECT_THAT(card, HasSubstr("| 3 (exported) | 0.9 | 0.3 | 3 |"));
  EXPECT_THAT(card, HasSubstr("tessera model verify <dir>"));
  EXPECT_THAT(card, HasSubstr("- **Bill of materials:** bom.json"));
  EXPECT_THAT(card, HasSubstr(absl::BytesToHexString(FakeDigest('#'))));
  EXPECT_THAT(card, HasSubstr(absl::BytesToHexString(FakeDigest('3'))));
}

// The card states the normalization the clients' IDX reader applies. The reference is the
// published Fashion-MNIST training-set pixel statistics, hand-stated here (mean 0.2860, std
// 0.3530 of the pixels scaled to [0, 1]; client/data/idx_reader_test.cc recomputes them from
// the dataset's IDX files), not the constants the card is rendered from.
TEST(ModelCardTest, PreprocessingStatesTheInputAndTheClientsNormalization) {
  const std::string card = RenderModelCard(SampleExportInputs(false, false), "bom.json");
  EXPECT_THAT(card, HasSubstr("(x / 255 - 0.2860) / 0.3530"));
  EXPECT_THAT(card, HasSubstr("float32 tensor of shape [batch, 1, 28, 28]"));
  EXPECT_THAT(card, HasSubstr("channels first, one grayscale channel"));
  EXPECT_THAT(card, HasSubstr("returns 10 logits"));
  EXPECT_THAT(card, HasSubstr("CSV data (`--data csv:FILE`) is used as given"));
  // Xiao et al. 2017, Table 1.
  EXPECT_THAT(card, HasSubstr("0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, "
                              "5 Sandal, 6 Shirt, 7 Sneaker, 8 Bag, 9 Ankle boot."));

  ExportInputs ts = SampleExportInputs(false, false);
  ts.config.mutable_model()->clear_architecture();
  ts.config.mutable_model()->set_torchscript_sha256(FakeDigest('t'));
  const std::string ts_card = RenderModelCard(ts, "bom.json");
  EXPECT_THAT(ts_card, HasSubstr("The TorchScript program defines the input shape"));
  EXPECT_THAT(ts_card, HasSubstr("(x / 255 - 0.2860) / 0.3530"));

  ExportInputs lm = SampleExportInputs(false, false);
  lm.config.mutable_model()->clear_architecture();
  lm.config.mutable_model()->mutable_causal_lm()->mutable_lora()->set_rank(8);
  EXPECT_THAT(RenderModelCard(lm, "bom.json"), Not(HasSubstr("## Preprocessing")));
}

// Counts the '|' not escaped by a backslash.
int Pipes(absl::string_view line) {
  int n = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '|' && (i == 0 || line[i - 1] != '\\')) ++n;
  }
  return n;
}

TEST(ModelCardTest, HostileStringsStayInside) {
  const std::string evil = "x\"\n---\nlicense: mit\n| a | b |\\ \x01 \xe2\x80\xa8 \xff end";
  ExportInputs in = SampleExportInputs(true, true);
  in.config.set_name(evil);
  in.config.mutable_governance()->add_tags(evil);
  in.config.mutable_governance()->set_model_license("MIT\"\nfoo: bar");
  in.config.mutable_governance()->set_description("---\nlicense: mit\n---\n");
  wire::v1::Participant* p = in.provenance.mutable_participants(0);
  p->set_organization(evil);
  p->mutable_data_card()->set_name(evil);
  p->mutable_data_card()->set_license("a|b\n---");
  p->set_client("cli|ent\n# heading");
  const std::string card = RenderModelCard(in, "bom.json");
  const YAML::Node fm = ParseFrontMatter(card);
  ASSERT_TRUE(fm.IsMap());
  EXPECT_EQ(fm["license"].as<std::string>(), "other");
  EXPECT_EQ(fm["license_name"].as<std::string>(), "MIT\"\nfoo: bar");
  EXPECT_FALSE(fm["foo"]);
  // Round-trips exactly, the invalid byte as U+FFFD.
  const std::string expected =
      "x\"\n---\nlicense: mit\n| a | b |\\ \x01 \xe2\x80\xa8 \xef\xbf\xbd end";
  EXPECT_EQ(fm["tags"][5].as<std::string>(), expected);
  EXPECT_EQ(fm["model-index"][0]["name"].as<std::string>(), expected);
  EXPECT_THAT(Strings(fm["datasets"]), ::testing::Contains(expected));
  // The front matter is the only "---" block, and the body starts with the heading.
  const size_t body = card.find("\n---\n", 3) + 5;
  EXPECT_EQ(card.substr(body, 3), "\n# ");
  // No table row gains a column and no input starts a line of its own.
  bool in_participants = false;
  for (absl::string_view line : absl::StrSplit(card.substr(body), '\n')) {
    if (line == "## Federated participants") in_participants = true;
    if (line == "## Privacy guarantees") in_participants = false;
    if (in_participants && !line.empty() && line[0] == '|') {
      EXPECT_EQ(Pipes(line), 7) << line;
    }
    EXPECT_NE(line, "---");
    EXPECT_NE(line, "# heading");
  }
  EXPECT_THAT(card, HasSubstr("### Organization: x\" --- license: mit \\| a \\| b \\|\\\\"));
}

TEST(MarkupTest, YamlQuoteAndMarkdown) {
  EXPECT_EQ(YamlQuote("a\"b\\c\nd\x7f"), "\"a\\\"b\\\\c\\u000Ad\\u007F\"");
  EXPECT_EQ(YamlQuote("\xef\xbb\xbf"), "\"\\uFEFF\"");
  EXPECT_EQ(MarkdownInline("a|b*c_d\ne"), "a\\|b\\*c\\_d e");
  EXPECT_EQ(MarkdownBlock("\n\n  line 1\r\nline 2\x01\n\n"), "  line 1\nline 2");
  EXPECT_EQ(MarkdownBlock("a\n---\nb: c\n--- \n----"), "a\n- - -\nb: c\n- - -\n----");
  EXPECT_EQ(FormatNumber(0.1), "0.1");
  EXPECT_EQ(FormatNumber(1e-5), "1.0e-05");
  EXPECT_EQ(FormatNumber(3), "3");
}

}  // namespace
}  // namespace tessera::governance
