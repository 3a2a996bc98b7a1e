// The [differential_privacy] table of a run config, through the public
// ParseRunConfigToml / ValidateRunConfig: every invalid DP config is rejected at
// creation with the field named.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "core/base/testing/status_matchers.h"
#include "core/config/run_config.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;
using Dp = wire::v1::DifferentialPrivacyConfig;

// `dp` holds the [differential_privacy] keys; `selection` and `extra` tables follow.
std::string Config(const std::string& dp, const std::string& selection = "min_clients = 3\n",
                   const std::string& extra = "") {
  return "name = \"dp\"\nrounds = 2\n[model]\narchitecture = \"mlp\"\n[selection]\n" +
         selection + "[differential_privacy]\n" + dp + extra;
}

const char kCentral[] =
    "mode = \"central\"\nnoise_multiplier = 1.1\nclip_norm = 0.5\npopulation = 100\n"
    "expected_clients_per_round = 10\nepsilon = 3\ndelta = 1e-5\ndataset = \"fmnist\"\n";

absl::Status Parse(const std::string& text) { return ParseRunConfigToml(text, "").status(); }

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

TEST(DifferentialPrivacyConfigTest, AbsentTableIsOff) {
  absl::StatusOr<RunConfigFile> f = ParseRunConfigToml(
      "name = \"x\"\nrounds = 1\n[model]\narchitecture = \"mlp\"\n", "");
  ASSERT_THAT(f, IsOk());
  EXPECT_FALSE(f->config.has_differential_privacy());
  EXPECT_EQ(f->config.differential_privacy().mode(), Dp::MODE_UNSPECIFIED);
}

TEST(DifferentialPrivacyConfigTest, CentralParsesWithDefaults) {
  absl::StatusOr<RunConfigFile> f = ParseRunConfigToml(Config(kCentral), "");
  ASSERT_THAT(f, IsOk());
  const Dp& dp = f->config.differential_privacy();
  EXPECT_EQ(dp.mode(), Dp::CENTRAL);
  EXPECT_DOUBLE_EQ(dp.noise_multiplier(), 1.1);
  EXPECT_DOUBLE_EQ(dp.clip_norm(), 0.5);
  EXPECT_EQ(dp.population(), 100u);
  EXPECT_DOUBLE_EQ(dp.expected_clients_per_round(), 10);
  EXPECT_DOUBLE_EQ(dp.epsilon_budget(), 3);
  EXPECT_DOUBLE_EQ(dp.delta(), 1e-5);
  EXPECT_EQ(dp.dataset(), "fmnist");
  EXPECT_FALSE(dp.adaptive_clipping().enabled());
  EXPECT_EQ(dp.modulus_bits(), 0u);
  TESSERA_EXPECT_OK(ValidateRunConfig(f->config));
}

TEST(DifferentialPrivacyConfigTest, ExpectedClientsDefaultToPopulation) {
  absl::StatusOr<RunConfigFile> f = ParseRunConfigToml(
      Config("mode = \"central\"\nnoise_multiplier = 1\nclip_norm = 1\npopulation = 5\n"
             "epsilon = 8\ndelta = 1e-5\ndataset = \"d\"\n"),
      "");
  ASSERT_THAT(f, IsOk());
  EXPECT_DOUBLE_EQ(f->config.differential_privacy().expected_clients_per_round(), 5);
}

TEST(DifferentialPrivacyConfigTest, DistributedNeedsSecureAggregation) {
  const std::string dp = Replace(kCentral, "\"central\"", "\"distributed\"");
  EXPECT_THAT(Parse(Config(dp)), StatusIs(absl::StatusCode::kInvalidArgument,
                                          HasSubstr("differential_privacy.mode")));
  absl::StatusOr<RunConfigFile> f =
      ParseRunConfigToml(Config(dp, "min_clients = 3\n", "[secure_aggregation]\n"), "");
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ(f->config.differential_privacy().mode(), Dp::DISTRIBUTED);
  EXPECT_EQ(f->config.differential_privacy().modulus_bits(), 20u);
}

TEST(DifferentialPrivacyConfigTest, SecureAggregationWeighsEveryUpdateOne) {
  // Under DP every update weighs 1, so the quantizer's range is sized for weight 1 (not for
  // secure aggregation's default max_examples of 1e6, which would waste 20 bits of it).
  absl::StatusOr<RunConfigFile> f = ParseRunConfigToml(
      Config(kCentral, "min_clients = 3\n", "[secure_aggregation]\n"), "");
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ(f->config.secure_aggregation().max_examples(), 1.0);
  EXPECT_THAT(ParseRunConfigToml(Config(kCentral, "min_clients = 3\n",
                                        "[secure_aggregation]\nmax_examples = 1000\n"),
                                 ""),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("secure_aggregation.max_examples")));
  // Without DP the default stays.
  f = ParseRunConfigToml("name = \"dp\"\nrounds = 2\n[model]\narchitecture = \"mlp\"\n"
                         "[selection]\nmin_clients = 3\n[secure_aggregation]\n",
                         "");
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ(f->config.secure_aggregation().max_examples(), 1e6);
}

TEST(DifferentialPrivacyConfigTest, AdaptiveClippingDefaultsAndLimits) {
  // The default sigma_b is expected / 20 = 0.5, enough for z = 0.9 (needs 2 sigma_b > z).
  const std::string central = Replace(kCentral, "1.1", "0.9");
  absl::StatusOr<RunConfigFile> f =
      ParseRunConfigToml(Config(central + "[differential_privacy.adaptive_clipping]\n"), "");
  ASSERT_THAT(f, IsOk());
  const wire::v1::AdaptiveClippingConfig& a =
      f->config.differential_privacy().adaptive_clipping();
  EXPECT_TRUE(a.enabled());
  EXPECT_DOUBLE_EQ(a.target_quantile(), 0.5);
  EXPECT_DOUBLE_EQ(a.learning_rate(), 0.2);
  EXPECT_DOUBLE_EQ(a.clipped_count_stddev(), 10.0 / 20);
  // 2 * 0.5 = 1 < z = 1.1: the update noise would have to be infinite.
  f = ParseRunConfigToml(Config(std::string(kCentral) +
                                    "adaptive_clipping = { clipped_count_stddev = 0.5 }\n"),
                         "");
  EXPECT_THAT(f.status(), StatusIs(absl::StatusCode::kInvalidArgument,
                                   HasSubstr("adaptive_clipping.clipped_count_stddev")));
  f = ParseRunConfigToml(
      Config(std::string(kCentral) +
             "adaptive_clipping = { target_quantile = 1.5, clipped_count_stddev = 1 }\n"),
      "");
  EXPECT_THAT(f.status(), StatusIs(absl::StatusCode::kInvalidArgument,
                                   HasSubstr("adaptive_clipping.target_quantile")));
  // Not with secure aggregation: the coordinator cannot see the bits.
  f = ParseRunConfigToml(Config(std::string(kCentral) +
                                    "adaptive_clipping = { clipped_count_stddev = 1 }\n",
                                "min_clients = 3\n", "[secure_aggregation]\n"),
                         "");
  EXPECT_THAT(f.status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("adaptive_clipping")));
}

struct BadCase {
  std::string name;
  std::string from;  // substring of kCentral to replace
  std::string to;
  std::string field;  // expected in the message
};

class DifferentialPrivacyBadConfigTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(DifferentialPrivacyBadConfigTest, RejectedNamingTheField) {
  const std::string dp = Replace(kCentral, GetParam().from, GetParam().to);
  EXPECT_THAT(Parse(Config(dp)), StatusIs(absl::StatusCode::kInvalidArgument,
                                          HasSubstr(GetParam().field)));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, DifferentialPrivacyBadConfigTest,
    ::testing::Values(
        BadCase{"NegativeNoise", "noise_multiplier = 1.1", "noise_multiplier = -1",
                "differential_privacy.noise_multiplier"},
        BadCase{"ZeroNoise", "noise_multiplier = 1.1", "noise_multiplier = 0",
                "differential_privacy.noise_multiplier"},
        BadCase{"NoClipping", "clip_norm = 0.5\n", "", "differential_privacy.clip_norm"},
        BadCase{"ZeroClip", "clip_norm = 0.5", "clip_norm = 0", "differential_privacy.clip_norm"},
        BadCase{"DeltaTooLarge", "delta = 1e-5", "delta = 0.01", "differential_privacy.delta"},
        BadCase{"DeltaZero", "delta = 1e-5", "delta = 0", "differential_privacy.delta"},
        BadCase{"TooFewClients", "expected_clients_per_round = 10",
                "expected_clients_per_round = 2", "differential_privacy.expected_clients"},
        BadCase{"MoreThanPopulation", "expected_clients_per_round = 10",
                "expected_clients_per_round = 101", "differential_privacy.expected_clients"},
        BadCase{"NoBudget", "epsilon = 3\n", "", "differential_privacy.epsilon"},
        BadCase{"InfiniteBudget", "epsilon = 3", "epsilon = inf",
                "differential_privacy.epsilon"},
        BadCase{"NoDataset", "dataset = \"fmnist\"", "", "differential_privacy.dataset"},
        BadCase{"BadDataset", "dataset = \"fmnist\"", "dataset = \"a/b\"",
                "differential_privacy.dataset"},
        BadCase{"UnknownMode", "mode = \"central\"", "mode = \"local\"",
                "differential_privacy.mode"},
        BadCase{"UnknownKey", "epsilon = 3", "epsilon = 3\nsigma = 2",
                "differential_privacy.sigma"},
        BadCase{"NoPopulation", "population = 100\n", "", "differential_privacy.population"}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return info.param.name; });

TEST(DifferentialPrivacyConfigTest, SelectionMustLetDpSample) {
  EXPECT_THAT(Parse(Config(kCentral, "min_clients = 3\nclients_per_round = 10\n")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("selection.clients_per_round")));
  EXPECT_THAT(Parse(Config(kCentral, "min_clients = 1\n")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("selection.min_clients")));
}

TEST(DifferentialPrivacyConfigTest, ValidateRunConfigChecksProtoToo) {
  absl::StatusOr<RunConfigFile> f = ParseRunConfigToml(Config(kCentral), "");
  ASSERT_THAT(f, IsOk());
  wire::v1::RunConfig c = f->config;
  c.mutable_differential_privacy()->set_noise_multiplier(-0.5);
  EXPECT_THAT(ValidateRunConfig(c), StatusIs(absl::StatusCode::kInvalidArgument,
                                             HasSubstr("noise_multiplier")));
  c = f->config;
  c.mutable_differential_privacy()->set_delta(0.5);
  EXPECT_THAT(ValidateRunConfig(c),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("delta")));
}

const char kRecord[] =
    "mode = \"record\"\nnoise_multiplier = 1.1\nclip_norm = 1.0\nexpected_batch_size = 256\n";

TEST(DifferentialPrivacyConfigTest, RecordModeParsesDpSgdAlone) {
  absl::StatusOr<RunConfigFile> f = ParseRunConfigToml(Config(kRecord), "");
  ASSERT_THAT(f, IsOk());
  const Dp& dp = f->config.differential_privacy();
  EXPECT_EQ(dp.mode(), Dp::MODE_UNSPECIFIED);  // no organization-level mechanism
  EXPECT_TRUE(dp.record().enabled());
  EXPECT_DOUBLE_EQ(dp.record().noise_multiplier(), 1.1);
  EXPECT_DOUBLE_EQ(dp.record().clip_norm(), 1.0);
  EXPECT_DOUBLE_EQ(dp.record().expected_batch_size(), 256);
  EXPECT_EQ(dp.record().max_physical_batch(), 256u);  // the default
  TESSERA_EXPECT_OK(ValidateRunConfig(f->config));
}

TEST(DifferentialPrivacyConfigTest, RecordModeRefusesOrganizationKeysAndBadValues) {
  // The budget is each site's (tessera-client --privacy-budget), not the run's.
  EXPECT_THAT(Parse(Config(std::string(kRecord) + "epsilon = 8\n")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("epsilon")));
  EXPECT_THAT(Parse(Config("mode = \"record\"\nnoise_multiplier = 1.1\nclip_norm = 1.0\n")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected_batch_size")));
  EXPECT_THAT(Parse(Config(Replace(kRecord, "clip_norm = 1.0", "clip_norm = 0"))),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("differential_privacy.clip_norm")));
  EXPECT_THAT(Parse(Config(Replace(kRecord, "noise_multiplier = 1.1", "noise_multiplier = -1"))),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("differential_privacy.noise_multiplier")));
  EXPECT_THAT(
      Parse(Config(Replace(kRecord, "expected_batch_size = 256", "expected_batch_size = 0.5"))),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected_batch_size")));
  EXPECT_THAT(Parse(Config(std::string(kRecord) + "max_physical_batch = 0\n")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_physical_batch")));
  EXPECT_THAT(Parse(Config(Replace(kRecord, "\"record\"", "\"per-record\""))),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"record\", \"central\"")));
  // DP-SGD walks the layers of a built-in architecture; a TorchScript run is refused.
  absl::StatusOr<RunConfigFile> f = ParseRunConfigToml(Config(kRecord), "");
  ASSERT_THAT(f, IsOk());
  wire::v1::RunConfig script = f->config;
  script.mutable_model()->clear_architecture();
  script.mutable_model()->set_torchscript_sha256(std::string(32, 'x'));
  EXPECT_THAT(ValidateRunConfig(script),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("built-in")));
}

TEST(DifferentialPrivacyConfigTest, RecordTableAddsDpSgdToOrganizationLevelDp) {
  absl::StatusOr<RunConfigFile> f = ParseRunConfigToml(
      Config(kCentral, "min_clients = 3\n",
             "[differential_privacy.record]\nnoise_multiplier = 0.8\nclip_norm = 2\n"
             "expected_batch_size = 64\nmax_physical_batch = 32\n"),
      "");
  ASSERT_THAT(f, IsOk());
  const Dp& dp = f->config.differential_privacy();
  EXPECT_EQ(dp.mode(), Dp::CENTRAL);
  EXPECT_DOUBLE_EQ(dp.epsilon_budget(), 3);
  EXPECT_TRUE(dp.record().enabled());
  EXPECT_DOUBLE_EQ(dp.record().noise_multiplier(), 0.8);
  EXPECT_EQ(dp.record().max_physical_batch(), 32u);
  TESSERA_EXPECT_OK(ValidateRunConfig(f->config));
  EXPECT_THAT(Parse(Config(kCentral, "min_clients = 3\n",
                           "[differential_privacy.record]\nnoise_multiplier = 0.8\n"
                           "clip_norm = 2\nexpected_batch_size = 64\nepsilon = 1\n")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("epsilon")));
}

}  // namespace
}  // namespace tessera
