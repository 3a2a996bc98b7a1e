// The [governance] table and [model] source / license of a run config through
// ParseRunConfigToml / ValidateRunConfig: defaults, every key, refusals naming the field,
// and model.license against governance.allowed_base_model_licenses.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "core/base/testing/status_matchers.h"
#include "core/config/run_config.h"

namespace tessera {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string Config(const std::string& governance, const std::string& model = "") {
  return absl::StrCat("name = \"g\"\nrounds = 1\n[model]\narchitecture = \"mlp\"\n", model,
                      governance.empty() ? "" : "[governance]\n", governance);
}

void ExpectRefused(const std::string& text, const std::string& prefix, const std::string& why) {
  absl::StatusOr<RunConfigFile> f = ParseRunConfigToml(text, "");
  ASSERT_FALSE(f.ok()) << text;
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(f.status().message()), StartsWith(prefix));
  EXPECT_THAT(std::string(f.status().message()), HasSubstr(why));
}

TEST(GovernanceConfigTest, AbsentTableGivesDefaults) {
  absl::StatusOr<RunConfigFile> f = ParseRunConfigToml(Config(""), "");
  ASSERT_THAT(f, IsOk());
  const wire::v1::GovernanceConfig& g = f->config.governance();
  EXPECT_EQ(g.example_count_bucket(), 100u);
  EXPECT_FALSE(g.class_histogram());
  EXPECT_EQ(g.model_license(), "");
  EXPECT_TRUE(g.allowed_data_licenses().empty());
  EXPECT_TRUE(g.tags().empty());
  EXPECT_EQ(f->config.model().source(), "");
  EXPECT_EQ(f->config.model().license(), "");
}

TEST(GovernanceConfigTest, EveryKey) {
  absl::StatusOr<RunConfigFile> f = ParseRunConfigToml(
      Config(R"(model_license = "CC-BY-4.0"
allowed_data_licenses = ["CC-BY-4.0", "LicenseRef-hospital-internal"]
allowed_base_model_licenses = ["MIT", "Apache-2.0"]
example_count_bucket = 50
class_histogram = true
description = "Pneumonia classifier"
intended_use = "research"
limitations = """
Adults only.
Frontal views only."""
tags = ["radiology", "x-ray"]
)",
             "source = \"https://example.org/base\"\nlicense = \"Apache-2.0\"\n"),
      "");
  ASSERT_THAT(f, IsOk());
  const wire::v1::GovernanceConfig& g = f->config.governance();
  EXPECT_EQ(g.model_license(), "CC-BY-4.0");
  EXPECT_THAT(g.allowed_data_licenses(),
              ElementsAre("CC-BY-4.0", "LicenseRef-hospital-internal"));
  EXPECT_THAT(g.allowed_base_model_licenses(), ElementsAre("MIT", "Apache-2.0"));
  EXPECT_EQ(g.example_count_bucket(), 50u);
  EXPECT_TRUE(g.class_histogram());
  EXPECT_EQ(g.description(), "Pneumonia classifier");
  EXPECT_EQ(g.intended_use(), "research");
  EXPECT_EQ(g.limitations(), "Adults only.\nFrontal views only.");
  EXPECT_THAT(g.tags(), ElementsAre("radiology", "x-ray"));
  EXPECT_EQ(f->config.model().source(), "https://example.org/base");
  EXPECT_EQ(f->config.model().license(), "Apache-2.0");
  EXPECT_THAT(ValidateRunConfig(f->config), IsOk());
}

TEST(GovernanceConfigTest, Refusals) {
  ExpectRefused(Config("owner = \"x\"\n"), "governance.owner: ", "unknown key");
  ExpectRefused(Config("model_license = \"CC BY\"\n"), "governance.model_license: ",
                "is not an SPDX license identifier");
  ExpectRefused(Config("model_license = \"\"\n"), "governance.model_license: ",
                "is not an SPDX license identifier");
  ExpectRefused(Config("allowed_data_licenses = \"MIT\"\n"),
                "governance.allowed_data_licenses: ", "expected array of strings, got string");
  ExpectRefused(Config("allowed_data_licenses = [\"MIT\", 3]\n"),
                "governance.allowed_data_licenses[1]: ", "expected string, got integer");
  ExpectRefused(Config("allowed_data_licenses = [\"MIT\", \"not one\"]\n"),
                "governance.allowed_data_licenses[1]: ", "is not an SPDX license identifier");
  ExpectRefused(Config("example_count_bucket = 0\n"), "governance.example_count_bucket: ",
                "must be in [1, 1000000000], got 0");
  ExpectRefused(Config("example_count_bucket = 1000000001\n"),
                "governance.example_count_bucket: ", "must be in [1, 1000000000]");
  ExpectRefused(Config("class_histogram = 1\n"), "governance.class_histogram: ",
                "expected boolean, got integer");
  ExpectRefused(Config(absl::StrCat("description = \"", std::string(4097, 'd'), "\"\n")),
                "governance.description: ", "at most 4096 bytes");
  ExpectRefused(Config("limitations = \"a\\u0007\"\n"), "governance.limitations: ",
                "control character U+0007");
  std::string many = "tags = [";
  for (int i = 0; i < 33; ++i) absl::StrAppend(&many, i == 0 ? "" : ", ", "\"t", i, "\"");
  ExpectRefused(Config(many + "]\n"), "governance.tags: ", "at most 32 tags, got 33");
  ExpectRefused(Config("tags = [\"a\", \"\"]\n"), "governance.tags[1]: ", "is empty");
  ExpectRefused(Config(absl::StrCat("tags = [\"", std::string(65, 't'), "\"]\n")),
                "governance.tags[0]: ", "at most 64 characters");
  ExpectRefused(Config("", "license = \"CC BY\"\n"), "model.license: ",
                "is not an SPDX license identifier");
  ExpectRefused(Config("", "source = 3\n"), "model.source: ", "expected string");
  ExpectRefused(Config("", "source = \"\"\n"), "model.source: ", "is empty");
}

TEST(GovernanceConfigTest, BaseModelLicenseMustBeAllowed) {
  ExpectRefused(Config("allowed_base_model_licenses = [\"MIT\", \"Apache-2.0\"]\n",
                       "license = \"GPL-3.0-only\"\n"),
                "model.license: ",
                "\"GPL-3.0-only\" is not in governance.allowed_base_model_licenses [MIT, "
                "Apache-2.0]");
  ExpectRefused(Config("allowed_base_model_licenses = [\"MIT\"]\n"), "model.license: ",
                "\"\" is not in governance.allowed_base_model_licenses [MIT]");
  // SPDX identifiers match case-insensitively.
  EXPECT_THAT(ParseRunConfigToml(Config("allowed_base_model_licenses = [\"MIT\"]\n",
                                        "license = \"mit\"\n"),
                                 ""),
              IsOk());
}

TEST(GovernanceConfigTest, ValidationAcceptsBucketZeroAsDefault) {
  absl::StatusOr<RunConfigFile> f = ParseRunConfigToml(Config(""), "");
  ASSERT_THAT(f, IsOk());
  wire::v1::RunConfig c = f->config;
  c.clear_governance();  // as a config built in code: bucket 0 means 100
  EXPECT_THAT(ValidateRunConfig(c), IsOk());
  c.mutable_governance()->set_example_count_bucket(2000000000);
  EXPECT_THAT(ValidateRunConfig(c),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("governance.example_count_bucket: must be in [1, 1000000000]")));
  c.mutable_governance()->set_example_count_bucket(10);
  c.mutable_governance()->add_allowed_data_licenses("no spaces allowed");
  EXPECT_THAT(ValidateRunConfig(c),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("governance.allowed_data_licenses[0]: ")));
  c.mutable_governance()->clear_allowed_data_licenses();
  c.mutable_model()->set_source("line\x1b");
  EXPECT_THAT(ValidateRunConfig(c),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("model.source: ")));
}

}  // namespace
}  // namespace tessera
