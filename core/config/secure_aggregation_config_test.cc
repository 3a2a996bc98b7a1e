// The [secure_aggregation] table of a run config, through the public
// ParseRunConfigToml / ValidateRunConfig (run_config_test.cc covers the rest).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/base/testing/status_matchers.h"
#include "core/config/run_config.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;

// A config secure aggregation accepts (min_clients >= 2); `extra` is appended
// after [selection], so it must open its own table.
std::string Config(const std::string& extra) {
  return R"(
name = "sa"
rounds = 1
[model]
architecture = "mlp"
[selection]
min_clients = 2
)" + extra;
}

TEST(SecureAggregationConfigTest, AbsentTableIsOffAndZero) {
  absl::StatusOr<RunConfigFile> f = ParseRunConfigToml(Config(""), "");
  ASSERT_THAT(f, IsOk());
  EXPECT_FALSE(f->config.has_secure_aggregation());
  const wire::v1::SecureAggregationConfig& s = f->config.secure_aggregation();
  EXPECT_FALSE(s.enabled());
  EXPECT_EQ(s.dropout_fraction(), 0.0);
  EXPECT_EQ(s.corrupt_fraction(), 0.0);
  EXPECT_EQ(s.security_bits(), 0u);
  EXPECT_EQ(s.clip(), 0.0);
  EXPECT_EQ(s.value_bits(), 0u);
  EXPECT_EQ(s.max_examples(), 0.0);
  EXPECT_EQ(s.phase_deadline_seconds(), 0.0);
}

TEST(SecureAggregationConfigTest, PresentTableTurnsItOnWithDefaults) {
  absl::StatusOr<RunConfigFile> f =
      ParseRunConfigToml(Config("[secure_aggregation]\n"), "");
  ASSERT_THAT(f, IsOk());
  const wire::v1::SecureAggregationConfig& s = f->config.secure_aggregation();
  EXPECT_TRUE(s.enabled());
  EXPECT_DOUBLE_EQ(s.dropout_fraction(), 0.1);
  EXPECT_DOUBLE_EQ(s.corrupt_fraction(), 0.1);
  EXPECT_EQ(s.security_bits(), 40u);
  EXPECT_DOUBLE_EQ(s.clip(), 1.0);
  // "auto" for n = min_clients = 2 (selection.fraction) and max_examples 10^6:
  // 2^(v-1) - 1 >= 2^19 * 1024 / sqrt(2) = 379,625,062.5 first holds at v - 1 = 29
  // (2^29 - 1 = 536,870,911; 2^28 - 1 = 268,435,455 is short).
  EXPECT_EQ(s.value_bits(), 30u);
  EXPECT_DOUBLE_EQ(s.max_examples(), 1e6);
  EXPECT_DOUBLE_EQ(s.phase_deadline_seconds(), 60);
  TESSERA_EXPECT_OK(ValidateRunConfig(f->config));

  f = ParseRunConfigToml(Config("[secure_aggregation]\nenabled = true\n"), "");
  ASSERT_THAT(f, IsOk());
  EXPECT_TRUE(f->config.secure_aggregation().enabled());
}

// value_bits = "auto" (docs/secagg.md, "Bit width"): the smallest v with
// 2^(v-1) - 1 >= 2^19 * min(max_examples, 1024) / sqrt(n) and
// n * max_examples < 2^(v + ceil(log2 n)); 32 under central or distributed DP. Each expected
// width is derived by hand in its comment.
TEST(SecureAggregationConfigTest, AutoValueBitsIsTheSmallestWidthWithinTheStatedBound) {
  auto bits = [](const std::string& selection, const std::string& extra) -> int64_t {
    absl::StatusOr<RunConfigFile> f = ParseRunConfigToml(
        "name = \"sa\"\nrounds = 1\n[model]\narchitecture = \"mlp\"\n[selection]\n" + selection +
            "[secure_aggregation]\n" + extra,
        "");
    EXPECT_THAT(f, IsOk()) << selection << extra;
    return f.ok() ? f->config.secure_aggregation().value_bits() : -1;
  };
  const std::string ten = "clients_per_round = 10\nmin_clients = 2\n";
  // n = 10, max_examples 10^6: 2^29 / sqrt(10) = 169,773,254.6; 2^27 - 1 = 134,217,727 is
  // short, 2^28 - 1 = 268,435,455 holds: v = 29 (b = 29 + 4 + 1 = 34). Weights: 10^7 < 2^33.
  EXPECT_EQ(bits(ten, ""), 29);
  EXPECT_EQ(bits(ten, "value_bits = \"auto\"\n"), 29);
  // An explicit width is kept.
  EXPECT_EQ(bits(ten, "value_bits = 32\n"), 32);
  // n = 1000: 2^29 / sqrt(1000) = 16,977,325.7; 2^24 - 1 = 16,777,215 is short,
  // 2^25 - 1 holds: v = 26.
  EXPECT_EQ(bits("clients_per_round = 1000\nmin_clients = 2\n", ""), 26);
  // max_examples 100 < 1024 (the bound then holds for every client, each weighing >= 1):
  // 2^19 * 100 / sqrt(10) = 16,579,419.9; 2^23 - 1 = 8,388,607 is short, 2^24 - 1 =
  // 16,777,215 holds: v = 25.
  EXPECT_EQ(bits(ten, "max_examples = 100\n"), 25);
  // max_examples 2^40: precision needs 29, but the weights need 10 * 2^40 = 2^43.32 <
  // 2^(v + 4): v = 40 (b = 45).
  EXPECT_EQ(bits(ten, "max_examples = 1099511627776\n"), 40);
  // Record-level DP: every update weighs 1 (max_examples 1): 2^19 / sqrt(10) = 165,794.2;
  // 2^17 - 1 = 131,071 is short, 2^18 - 1 = 262,143 holds: v = 19.
  EXPECT_EQ(bits(ten, "[differential_privacy]\nmode = \"record\"\nnoise_multiplier = 1.1\n"
                      "clip_norm = 1.0\nexpected_batch_size = 16\n"),
            19);
  // Central DP keeps 32: the rounding lengthens an update by up to sqrt(d) / scale, which
  // the noise covers (docs/privacy.md), and d is not in the config.
  EXPECT_EQ(bits("min_clients = 2\n",
                 "[differential_privacy]\nmode = \"central\"\nnoise_multiplier = 1.1\n"
                 "clip_norm = 0.5\npopulation = 100\nexpected_clients_per_round = 10\n"
                 "epsilon = 3\ndelta = 1e-5\ndataset = \"fmnist\"\n"),
            32);
  for (const char* bad : {"value_bits = \"fast\"\n", "value_bits = 2.5\n"}) {
    absl::StatusOr<RunConfigFile> f =
        ParseRunConfigToml(Config(std::string("[secure_aggregation]\n") + bad), "");
    EXPECT_THAT(f, StatusIs(absl::StatusCode::kInvalidArgument,
                            HasSubstr("secure_aggregation.value_bits: must be an integer in "
                                      "[2, 48] or \"auto\"")))
        << bad;
  }
}

TEST(SecureAggregationConfigTest, EveryKeySet) {
  absl::StatusOr<RunConfigFile> f = ParseRunConfigToml(Config(R"(
[secure_aggregation]
dropout_fraction = 0.3
corrupt_fraction = 0
security_bits = 80
clip = 0.25
value_bits = 20
max_examples = 600
phase_deadline_seconds = 15.5
)"),
                                                       "");
  ASSERT_THAT(f, IsOk());
  const wire::v1::SecureAggregationConfig& s = f->config.secure_aggregation();
  EXPECT_TRUE(s.enabled());
  EXPECT_DOUBLE_EQ(s.dropout_fraction(), 0.3);
  EXPECT_EQ(s.corrupt_fraction(), 0.0);
  EXPECT_EQ(s.security_bits(), 80u);
  EXPECT_DOUBLE_EQ(s.clip(), 0.25);
  EXPECT_EQ(s.value_bits(), 20u);
  EXPECT_DOUBLE_EQ(s.max_examples(), 600);
  EXPECT_DOUBLE_EQ(s.phase_deadline_seconds(), 15.5);
}

TEST(SecureAggregationConfigTest, InlineTable) {
  absl::StatusOr<RunConfigFile> f = ParseRunConfigToml(R"(
name = "sa"
rounds = 1
secure_aggregation = { clip = 0.5, value_bits = 24 }
[model]
architecture = "mlp"
[selection]
clients_per_round = 10
min_clients = 8
)",
                                                       "");
  ASSERT_THAT(f, IsOk());
  const wire::v1::SecureAggregationConfig& s = f->config.secure_aggregation();
  EXPECT_TRUE(s.enabled());
  EXPECT_DOUBLE_EQ(s.clip(), 0.5);
  EXPECT_EQ(s.value_bits(), 24u);
  EXPECT_EQ(s.security_bits(), 40u);

  f = ParseRunConfigToml(
      "name = \"sa\"\nrounds = 1\nsecure_aggregation = {}\n"
      "[model]\narchitecture = \"mlp\"\n[selection]\nmin_clients = 2\n",
      "");
  ASSERT_THAT(f, IsOk());
  EXPECT_TRUE(f->config.secure_aggregation().enabled());
  EXPECT_THAT(
      ParseRunConfigToml("name = \"sa\"\nrounds = 1\n"
                         "secure_aggregation = { enabled = true, k = 4 }\n"
                         "[model]\narchitecture = \"mlp\"\n",
                         ""),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("secure_aggregation.k: unknown key")));
}

TEST(SecureAggregationConfigTest, EnabledFalseIsOffAndIgnoresValues) {
  // min_clients 1 and an out-of-range clip are fine while it is off.
  absl::StatusOr<RunConfigFile> f = ParseRunConfigToml(R"(
name = "sa"
rounds = 1
[model]
architecture = "mlp"
[secure_aggregation]
enabled = false
clip = -5
security_bits = 1000
)",
                                                       "");
  ASSERT_THAT(f, IsOk());
  EXPECT_FALSE(f->config.has_secure_aggregation());
  EXPECT_FALSE(f->config.secure_aggregation().enabled());
  EXPECT_EQ(f->config.secure_aggregation().clip(), 0.0);

  wire::v1::RunConfig c = f->config;
  c.mutable_secure_aggregation()->set_clip(-5);
  c.mutable_secure_aggregation()->set_value_bits(99);
  TESSERA_EXPECT_OK(ValidateRunConfig(c));
}

struct BadCase {
  std::string toml;
  std::string message;  // expected substring, always containing the field path
};

TEST(SecureAggregationConfigTest, BadValuesNameTheField) {
  auto sa = [](const std::string& keys) {
    return Config("[secure_aggregation]\n" + keys);
  };
  const std::vector<BadCase> cases = {
      {sa("dropout_fraction = -0.1\n"),
       "secure_aggregation.dropout_fraction: must be finite and in [0, 1), "
       "got -0.1"},
      {sa("dropout_fraction = 1\n"), "secure_aggregation.dropout_fraction:"},
      {sa("dropout_fraction = nan\n"), "secure_aggregation.dropout_fraction:"},
      {sa("corrupt_fraction = 1.0\n"),
       "secure_aggregation.corrupt_fraction: must be finite and in [0, 1)"},
      {sa("corrupt_fraction = inf\n"), "secure_aggregation.corrupt_fraction:"},
      {sa("dropout_fraction = 0.6\ncorrupt_fraction = 0.4\n"),
       "secure_aggregation.corrupt_fraction: "
       "corrupt_fraction + 2 * dropout_fraction must be < 1"},
      // Fine for an honest-but-curious coordinator, not against a malicious one.
      {sa("dropout_fraction = 0.45\ncorrupt_fraction = 0.1\n"),
       "secure_aggregation.corrupt_fraction: corrupt_fraction + 2 * dropout_fraction"},
      // 10 clients of up to 12000 examples: 120000 >= 2^(8 + 4) = 4096, the weight sum of
      // b = 8 + 4 + 1 = 13 bits would wrap.
      {"name = \"sa\"\nrounds = 1\n[model]\narchitecture = \"mlp\"\n"
       "[selection]\nclients_per_round = 10\nmin_clients = 2\n"
       "[secure_aggregation]\nvalue_bits = 8\nmax_examples = 12000\n",
       "secure_aggregation.max_examples: max_examples * selection.clients_per_round = "
       "120000 does not fit below 2^12"},
      {sa("security_bits = 0\n"),
       "secure_aggregation.security_bits: must be in [1, 128], got 0"},
      {sa("security_bits = 129\n"), "secure_aggregation.security_bits:"},
      {sa("security_bits = -40\n"),
       "secure_aggregation.security_bits: must be in [1, 128], got -40"},
      {sa("security_bits = 4294967337\n"),
       "secure_aggregation.security_bits: must be in [1, 128]"},
      {sa("clip = 0\n"),
       "secure_aggregation.clip: must be finite and in (0, 1e6], got 0"},
      {sa("clip = -1\n"), "secure_aggregation.clip:"},
      {sa("clip = 1e7\n"), "secure_aggregation.clip:"},
      {sa("clip = inf\n"), "secure_aggregation.clip:"},
      {sa("clip = nan\n"), "secure_aggregation.clip:"},
      {sa("value_bits = 1\n"),
       "secure_aggregation.value_bits: must be in [2, 48], got 1"},
      {sa("value_bits = 49\n"), "secure_aggregation.value_bits:"},
      {sa("max_examples = 0.5\n"),
       "secure_aggregation.max_examples: must be finite and in [1, 2^40]"},
      {sa("max_examples = 1099511627777\n"),
       "secure_aggregation.max_examples:"},
      {sa("max_examples = inf\n"), "secure_aggregation.max_examples:"},
      {sa("phase_deadline_seconds = 0\n"),
       "secure_aggregation.phase_deadline_seconds: must be > 0 and <= 86400"},
      {sa("phase_deadline_seconds = 86401\n"),
       "secure_aggregation.phase_deadline_seconds:"},
      {sa("phase_deadline_seconds = nan\n"),
       "secure_aggregation.phase_deadline_seconds:"},
      // min_clients defaults to 1.
      {"name = \"sa\"\nrounds = 1\n[model]\narchitecture = \"mlp\"\n"
       "[secure_aggregation]\n",
       "selection.min_clients: must be >= 2 with secure_aggregation (a sum of "
       "one update is that update), got 1"},
      // 48 + ceil(log2 10000) + 1 = 63 modulus bits.
      {"name = \"sa\"\nrounds = 1\n[model]\narchitecture = \"mlp\"\n"
       "[selection]\nclients_per_round = 10000\nmin_clients = 2\n"
       "[secure_aggregation]\nvalue_bits = 48\n",
       "secure_aggregation.value_bits: value_bits + "
       "ceil(log2(selection.clients_per_round)) + 1 must be <= 62"},
  };
  for (const BadCase& c : cases) {
    EXPECT_THAT(
        ParseRunConfigToml(c.toml, ""),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.toml;
  }
  // The largest modulus that fits: 48 + ceil(log2 8192) + 1 = 62.
  TESSERA_EXPECT_OK(
      ParseRunConfigToml("name = \"sa\"\nrounds = 1\n[model]\narchitecture = "
                         "\"mlp\"\n[selection]\nclients_per_round = 8192\n"
                         "min_clients = 2\n[secure_aggregation]\nvalue_bits = "
                         "48\n",
                         "")
          .status());
}

TEST(SecureAggregationConfigTest, UnknownKeysAndWrongTypesNameTheField) {
  const std::vector<BadCase> cases = {
      {Config("[secure_aggregation]\nk = 8\n"),
       "secure_aggregation.k: unknown key"},
      {Config("[secure_aggregation]\nthreshold_t = 4\n"),
       "secure_aggregation.threshold_t: unknown key"},
      {Config("[secure_aggregation]\nenabled = false\nclipp = 1\n"),
       "secure_aggregation.clipp: unknown key"},
      {Config("[secure_aggregation.extra]\nx = 1\n"),
       "secure_aggregation.extra: unknown table"},
      {Config("[secure_aggregation]\nenabled = \"yes\"\n"),
       "secure_aggregation.enabled: expected boolean, got string"},
      {Config("[secure_aggregation]\nsecurity_bits = 40.0\n"),
       "secure_aggregation.security_bits: expected integer, got float"},
      {Config("[secure_aggregation]\nclip = \"1\"\n"),
       "secure_aggregation.clip: expected number, got string"},
      {"name = \"sa\"\nrounds = 1\nsecure_aggregation = true\n"
       "[model]\narchitecture = \"mlp\"\n",
       "secure_aggregation: expected table, got boolean"},
  };
  for (const BadCase& c : cases) {
    EXPECT_THAT(
        ParseRunConfigToml(c.toml, ""),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.toml;
  }
}

TEST(SecureAggregationConfigTest, ValidateRunConfigChecksTheProto) {
  absl::StatusOr<RunConfigFile> f =
      ParseRunConfigToml(Config("[secure_aggregation]\n"), "");
  ASSERT_THAT(f, IsOk());
  wire::v1::RunConfig c = f->config;
  c.mutable_secure_aggregation()->set_phase_deadline_seconds(-1);
  EXPECT_THAT(ValidateRunConfig(c),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("secure_aggregation.phase_deadline_seconds")));
  c = f->config;
  c.mutable_selection()->set_min_clients(1);
  EXPECT_THAT(ValidateRunConfig(c),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("selection.min_clients: must be >= 2")));
  // Enabled with every field left 0: the first bad field is security_bits
  // (0 is a valid fraction).
  c = f->config;
  c.clear_secure_aggregation();
  c.mutable_secure_aggregation()->set_enabled(true);
  EXPECT_THAT(ValidateRunConfig(c),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("secure_aggregation.security_bits")));
}

}  // namespace
}  // namespace tessera
