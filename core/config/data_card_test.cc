// Data cards (docs/data_cards.md) in TOML and YAML: the same card from either format, every
// refusal naming its field, and the file extension choosing the format.
#include "core/config/data_card.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "core/base/file.h"
#include "core/base/testing/status_matchers.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kToml[] = R"(name = "st-mary-chest-xray"
description = """
Frontal chest X-rays of adults,
2019-2023."""
license = "LicenseRef-st-mary-research"
collection = "PACS export"
labeling = "two radiologists"
intended_use = "pneumonia triage research"
restrictions = "no re-identification"
contact = "data-office@st-mary.example"
allow_class_histogram = true
)";

constexpr char kYaml[] = R"(name: st-mary-chest-xray
description: |-
  Frontal chest X-rays of adults,
  2019-2023.
license: LicenseRef-st-mary-research
collection: PACS export
labeling: two radiologists
intended_use: pneumonia triage research
restrictions: no re-identification
contact: "data-office@st-mary.example"
allow_class_histogram: true
)";

// A valid TOML card without `key`, plus `extra` lines.
std::string TomlWithout(absl::string_view key, absl::string_view extra = "") {
  std::string out;
  for (absl::string_view line : {"name = \"n\"", "description = \"d\"", "license = \"MIT\"",
                                 "contact = \"c@example.org\""}) {
    if (!absl::StartsWith(line, absl::StrCat(key, " "))) absl::StrAppend(&out, line, "\n");
  }
  return absl::StrCat(out, extra);
}

void ExpectRefused(absl::string_view text, DataCardFormat format, absl::string_view prefix,
                   absl::string_view why) {
  absl::StatusOr<wire::v1::DataCard> card = ParseDataCard(text, format);
  ASSERT_FALSE(card.ok()) << text;
  EXPECT_EQ(card.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(card.status().message()), StartsWith(std::string(prefix)));
  EXPECT_THAT(std::string(card.status().message()), HasSubstr(std::string(why)));
}

std::string TempDir() {
  std::string tmpl = ::testing::TempDir() + "/data_card_test.XXXXXX";
  EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
  return tmpl;
}

TEST(DataCardTest, TomlAndYamlGiveTheSameCard) {
  absl::StatusOr<wire::v1::DataCard> toml = ParseDataCard(kToml, DataCardFormat::kToml);
  ASSERT_THAT(toml, IsOk());
  EXPECT_EQ(toml->name(), "st-mary-chest-xray");
  EXPECT_EQ(toml->description(), "Frontal chest X-rays of adults,\n2019-2023.");
  EXPECT_EQ(toml->license(), "LicenseRef-st-mary-research");
  EXPECT_EQ(toml->collection(), "PACS export");
  EXPECT_EQ(toml->labeling(), "two radiologists");
  EXPECT_EQ(toml->intended_use(), "pneumonia triage research");
  EXPECT_EQ(toml->restrictions(), "no re-identification");
  EXPECT_EQ(toml->contact(), "data-office@st-mary.example");
  EXPECT_TRUE(toml->allow_class_histogram());

  absl::StatusOr<wire::v1::DataCard> yaml = ParseDataCard(kYaml, DataCardFormat::kYaml);
  ASSERT_THAT(yaml, IsOk());
  EXPECT_EQ(yaml->SerializeAsString(), toml->SerializeAsString());
}

TEST(DataCardTest, OptionalFieldsDefaultToEmptyAndNoHistogram) {
  absl::StatusOr<wire::v1::DataCard> card = ParseDataCard(TomlWithout(""), DataCardFormat::kToml);
  ASSERT_THAT(card, IsOk());
  EXPECT_FALSE(card->allow_class_histogram());
  EXPECT_EQ(card->collection(), "");
  for (absl::string_view id : {"CC-BY-4.0", "MIT", "proprietary", "GPL-2.0+", "0BSD"}) {
    wire::v1::DataCard c = *card;
    c.set_license(std::string(id));
    EXPECT_THAT(ValidateDataCard(c), IsOk()) << id;
  }
}

TEST(DataCardTest, EachRequiredFieldMissing) {
  for (absl::string_view key : {"name", "description", "license", "contact"}) {
    ExpectRefused(TomlWithout(key), DataCardFormat::kToml, absl::StrCat(key, ": "),
                  "missing (required)");
    ExpectRefused(TomlWithout(key, absl::StrCat(key, " = \"\"\n")), DataCardFormat::kToml,
                  absl::StrCat(key, ": "), "missing (required)");
  }
  ExpectRefused("", DataCardFormat::kYaml, "name: ", "missing (required)");
  ExpectRefused("name: n\ndescription: d\nlicense: MIT\n", DataCardFormat::kYaml,
                "contact: ", "missing (required)");
}

TEST(DataCardTest, BadLicense) {
  absl::StatusOr<wire::v1::DataCard> card =
      ParseDataCard(TomlWithout("license", "license = \"CC BY\"\n"), DataCardFormat::kToml);
  ASSERT_FALSE(card.ok());
  EXPECT_EQ(card.status().message(),
            "license: \"CC BY\" is not an SPDX license identifier (letters, digits, '.', '+', "
            "'-')");
  ExpectRefused(TomlWithout("license", "license = \"-MIT\"\n"), DataCardFormat::kToml,
                "license: ", "is not an SPDX license identifier");
  ExpectRefused(TomlWithout("license", absl::StrCat("license = \"", std::string(65, 'a'), "\"\n")),
                DataCardFormat::kToml, "license: ", "at most 64 characters");
}

TEST(DataCardTest, PrivacyBudgetIsCheckedWhenSet) {
  absl::StatusOr<wire::v1::DataCard> card = ParseDataCard(
      TomlWithout("", "privacy_budget = \"epsilon=8,delta=1e-5\"\n"), DataCardFormat::kToml);
  ASSERT_THAT(card, IsOk());
  EXPECT_EQ(card->privacy_budget(), "epsilon=8,delta=1e-5");
  ExpectRefused(TomlWithout("", "privacy_budget = \"epsilon=8\"\n"), DataCardFormat::kToml,
                "privacy_budget: ", "delta: missing");
  ExpectRefused("name: n\ndescription: d\nlicense: MIT\ncontact: c\nprivacy_budget: "
                "epsilon=-1,delta=1e-5\n",
                DataCardFormat::kYaml, "privacy_budget: ", "epsilon: must be");
}

TEST(DataCardTest, WrongTypes) {
  ExpectRefused(TomlWithout("", "allow_class_histogram = \"yes\"\n"), DataCardFormat::kToml,
                "allow_class_histogram: ", "must be a boolean");
  ExpectRefused(TomlWithout("name", "name = 3\n"), DataCardFormat::kToml, "name: ",
                "must be a string, got integer");
  ExpectRefused(TomlWithout("", "[restrictions]\nx = 1\n"), DataCardFormat::kToml,
                "restrictions: ", "must be a string, got table");
  const std::string yaml = "name: n\ndescription: d\nlicense: MIT\ncontact: c\n";
  ExpectRefused(yaml + "allow_class_histogram: yes\n", DataCardFormat::kYaml,
                "allow_class_histogram: ", "must be a boolean");
  ExpectRefused(yaml + "allow_class_histogram: \"true\"\n", DataCardFormat::kYaml,
                "allow_class_histogram: ", "must be a boolean");
  ExpectRefused(yaml + "labeling: 2023\n", DataCardFormat::kYaml, "labeling: ",
                "must be a string, got integer");
  ExpectRefused(yaml + "labeling: [a, b]\n", DataCardFormat::kYaml, "labeling: ",
                "must be a string, got sequence");
  ExpectRefused(yaml + "labeling:\n", DataCardFormat::kYaml, "labeling: ",
                "must be a string, got null");
  ExpectRefused("- a\n- b\n", DataCardFormat::kYaml, "a data card must be a mapping", "");
  // Quoted, a number is a string.
  EXPECT_THAT(ParseDataCard(yaml + "labeling: \"2023\"\nallow_class_histogram: False\n",
                            DataCardFormat::kYaml),
              IsOk());
}

TEST(DataCardTest, UnknownAndRepeatedKeys) {
  ExpectRefused(TomlWithout("", "licence = \"MIT\"\n"), DataCardFormat::kToml, "licence: ",
                "unknown key");
  ExpectRefused(TomlWithout("", "owner.name = \"x\"\n"), DataCardFormat::kToml, "owner: ",
                "unknown key");
  ExpectRefused("name: n\ndescription: d\nlicense: MIT\ncontact: c\nsize: 10\n",
                DataCardFormat::kYaml, "size: ", "unknown key");
  ExpectRefused("name: n\ndescription: d\nlicense: MIT\ncontact: c\nname: m\n",
                DataCardFormat::kYaml, "name: ", "is set twice");
}

TEST(DataCardTest, TooLong) {
  ExpectRefused(TomlWithout("name", absl::StrCat("name = \"", std::string(129, 'x'), "\"\n")),
                DataCardFormat::kToml, "name: ", "at most 128 characters, got 129");
  // 128 characters of two bytes each are fine.
  std::string umlauts;
  for (int i = 0; i < 128; ++i) umlauts += "\xc3\xbc";
  EXPECT_THAT(ParseDataCard(TomlWithout("name", absl::StrCat("name = \"", umlauts, "\"\n")),
                            DataCardFormat::kToml),
              IsOk());
  ExpectRefused(
      TomlWithout("description", absl::StrCat("description = \"", std::string(4097, 'x'),
                                              "\"\n")),
      DataCardFormat::kToml, "description: ", "at most 4096 bytes, got 4097");
}

TEST(DataCardTest, ControlCharactersAndUtf8) {
  ExpectRefused(TomlWithout("contact", "contact = \"a\\u001b[31mb\"\n"), DataCardFormat::kToml,
                "contact: ", "control character U+001B at byte 1");
  ExpectRefused(TomlWithout("name", "name = \"a\\tb\"\n"), DataCardFormat::kToml, "name: ",
                "control character U+0009");
  EXPECT_THAT(ParseDataCard(TomlWithout("", "restrictions = \"a\\tb\\nc\"\n"),
                            DataCardFormat::kToml),
              IsOk());
  wire::v1::DataCard card = *ParseDataCard(TomlWithout(""), DataCardFormat::kToml);
  card.set_labeling("bad \xff byte");
  EXPECT_THAT(ValidateDataCard(card),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("labeling: is not valid UTF-8")));
  card.set_labeling("C1 \xc2\x85 next line");
  EXPECT_THAT(ValidateDataCard(card),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("U+0085")));
  card.set_labeling("overlong \xc0\xaf");
  EXPECT_THAT(ValidateDataCard(card), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(DataCardTest, SyntaxErrorsKeepLineAndColumn) {
  ExpectRefused("name = \"n\"\nlicense = \n", DataCardFormat::kToml, "line 2, column", "");
  ExpectRefused("name: n\nlicense: [MIT\n", DataCardFormat::kYaml, "line ", "column");
}

TEST(DataCardTest, FileExtensionChoosesTheFormat) {
  const std::string dir = TempDir();
  const std::string yaml = absl::StrCat(dir, "/card.yaml");
  const std::string yml = absl::StrCat(dir, "/card.YML");
  const std::string toml = absl::StrCat(dir, "/card.toml");
  const std::string txt = absl::StrCat(dir, "/card.txt");
  ASSERT_THAT(WriteFileAtomically(yaml, kYaml, 0644, true), IsOk());
  ASSERT_THAT(WriteFileAtomically(yml, kYaml, 0644, true), IsOk());
  ASSERT_THAT(WriteFileAtomically(toml, kToml, 0644, true), IsOk());
  ASSERT_THAT(WriteFileAtomically(txt, kToml, 0644, true), IsOk());
  EXPECT_THAT(LoadDataCardFile(yaml), IsOk());
  EXPECT_THAT(LoadDataCardFile(yml), IsOk());
  EXPECT_THAT(LoadDataCardFile(toml), IsOk());
  EXPECT_THAT(LoadDataCardFile(txt),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith(txt + ": ")));
  // TOML text under a YAML name fails, and the error names the file.
  const std::string wrong = absl::StrCat(dir, "/wrong.yml");
  ASSERT_THAT(WriteFileAtomically(wrong, kToml, 0644, true), IsOk());
  EXPECT_THAT(LoadDataCardFile(wrong),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith(wrong + ": ")));
  EXPECT_FALSE(LoadDataCardFile(absl::StrCat(dir, "/missing.toml")).ok());
}

TEST(DataCardTest, LicenseAllowedIgnoresCase) {
  google::protobuf::RepeatedPtrField<std::string> allowed;
  EXPECT_TRUE(LicenseAllowed("anything", allowed));
  allowed.Add("MIT");
  allowed.Add("CC-BY-4.0");
  EXPECT_TRUE(LicenseAllowed("mit", allowed));
  EXPECT_TRUE(LicenseAllowed("CC-BY-4.0", allowed));
  EXPECT_FALSE(LicenseAllowed("CC-BY-NC-4.0", allowed));
  EXPECT_FALSE(LicenseAllowed("", allowed));
}

}  // namespace
}  // namespace tessera
