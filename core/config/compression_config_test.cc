// The [compression] table of a run config through ParseRunConfigToml / ValidateRunConfig:
// defaults, each method, out-of-range values, central and record-level DP accepted, and the
// combinations compression cannot work with (secure aggregation, distributed DP, robust
// strategies), refused naming the field.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "core/base/testing/status_matchers.h"
#include "core/config/run_config.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;
using Compression = wire::v1::CompressionConfig;

std::string Config(const std::string& compression, const std::string& extra = "") {
  return "name = \"c\"\nrounds = 2\n[model]\narchitecture = \"mlp\"\n[selection]\n"
         "min_clients = 3\n" + extra + "[compression]\n" + compression;
}

const char kCentral[] =
    "mode = \"central\"\nnoise_multiplier = 1.1\nclip_norm = 0.5\npopulation = 100\n"
    "expected_clients_per_round = 10\nepsilon = 3\ndelta = 1e-5\ndataset = \"fmnist\"\n";
const char kDistributed[] =
    "mode = \"distributed\"\nnoise_multiplier = 1.1\nclip_norm = 0.5\npopulation = 100\n"
    "expected_clients_per_round = 10\nepsilon = 3\ndelta = 1e-5\ndataset = \"fmnist\"\n";
const char kRecord[] =
    "mode = \"record\"\nnoise_multiplier = 1.1\nclip_norm = 1.0\nexpected_batch_size = 16\n";

absl::StatusOr<Compression> Parse(const std::string& text) {
  absl::StatusOr<RunConfigFile> f = ParseRunConfigToml(text, "");
  if (!f.ok()) return f.status();
  return f->config.compression();
}

void ExpectRefused(const std::string& text, const std::string& field, const std::string& why) {
  absl::StatusOr<Compression> c = Parse(text);
  ASSERT_FALSE(c.ok()) << text;
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr(field)) << c.status();
  EXPECT_THAT(c.status().message(), HasSubstr(why)) << c.status();
}

TEST(CompressionConfigTest, AbsentOrNoneIsUncompressed) {
  absl::StatusOr<RunConfigFile> f = ParseRunConfigToml(
      "name = \"x\"\nrounds = 1\n[model]\narchitecture = \"mlp\"\n", "");
  ASSERT_THAT(f, IsOk());
  EXPECT_FALSE(f->config.has_compression());
  absl::StatusOr<Compression> none = Parse(Config("method = \"none\"\n"));
  ASSERT_THAT(none, IsOk());
  EXPECT_EQ(none->method(), Compression::NONE);
}

TEST(CompressionConfigTest, MethodsAndDefaults) {
  absl::StatusOr<Compression> int8 = Parse(Config("method = \"int8\"\n"));
  ASSERT_THAT(int8, IsOk());
  EXPECT_EQ(int8->method(), Compression::INT8);
  EXPECT_EQ(int8->block_size(), 4096u);
  EXPECT_DOUBLE_EQ(int8->topk_fraction(), 0.01);
  EXPECT_TRUE(int8->error_feedback());
  absl::StatusOr<Compression> topk = Parse(
      Config("method = \"topk\"\ntopk_fraction = 0.05\nerror_feedback = false\n"));
  ASSERT_THAT(topk, IsOk());
  EXPECT_EQ(topk->method(), Compression::TOPK);
  EXPECT_DOUBLE_EQ(topk->topk_fraction(), 0.05);
  EXPECT_FALSE(topk->error_feedback());
  absl::StatusOr<Compression> per_tensor = Parse(Config("method = \"int8\"\nblock_size = 0\n"));
  ASSERT_THAT(per_tensor, IsOk());
  EXPECT_EQ(per_tensor->block_size(), 0u);
  for (const char* m : {"fp16", "bf16"}) {
    EXPECT_THAT(Parse(Config(std::string("method = \"") + m + "\"\n")), IsOk()) << m;
  }
  // Linear strategies take it (FedAdam aggregates a weighted mean, then steps).
  EXPECT_THAT(Parse(Config("method = \"int8\"\n", "[strategy]\nname = \"fedadam\"\n")), IsOk());
}

TEST(CompressionConfigTest, BadValuesNameTheField) {
  ExpectRefused(Config("method = \"int4\"\n"), "compression.method",
                "must be one of none, fp16, bf16, int8, topk; got \"int4\"");
  ExpectRefused(Config("method = 8\n"), "compression.method", "string");
  ExpectRefused(Config("method = \"int8\"\nblock_size = 15\n"), "compression.block_size",
                "must be in [16, 1048576], got 15");
  ExpectRefused(Config("method = \"int8\"\nblock_size = 1048577\n"), "compression.block_size",
                "got 1048577");
  ExpectRefused(Config("method = \"topk\"\ntopk_fraction = 0.6\n"), "compression.topk_fraction",
                "must be in [1e-06, 0.5], got 0.6");
  ExpectRefused(Config("method = \"topk\"\ntopk_fraction = 0\n"), "compression.topk_fraction",
                "got 0");
  ExpectRefused(Config("method = \"topk\"\nratio = 0.1\n"), "compression.ratio", "unknown");
  ExpectRefused(Config("method = \"fp16\"\nerror_feedback = 1\n"), "compression.error_feedback",
                "bool");
}

TEST(CompressionConfigTest, CentralAndRecordLevelDpTakeEveryMethod) {
  // Central DP clips the decoded update on the coordinator; record-level DP-SGD's update (and
  // so its error-feedback residual) is post-processing of the DP output (docs/compression.md).
  for (const char* method : {"fp16", "bf16", "int8", "topk"}) {
    for (const char* dp : {kCentral, kRecord}) {
      for (const char* feedback : {"true", "false"}) {
        const std::string text =
            Config(std::string("method = \"") + method + "\"\nerror_feedback = " + feedback +
                       "\n",
                   std::string("[differential_privacy]\n") + dp);
        absl::StatusOr<Compression> c = Parse(text);
        ASSERT_THAT(c, IsOk()) << text;
        EXPECT_EQ(c->error_feedback(), std::string(feedback) == "true");
      }
    }
  }
  // Both at once (an organization-level and a record-level guarantee).
  EXPECT_THAT(Parse(Config("method = \"int8\"\n",
                           std::string("[differential_privacy]\n") + kCentral +
                               "[differential_privacy.record]\nnoise_multiplier = 0.8\n"
                               "clip_norm = 1\nexpected_batch_size = 16\n")),
              IsOk());
}

TEST(CompressionConfigTest, RefusedWhereItCannotWork) {
  ExpectRefused(Config("method = \"int8\"\n", "[secure_aggregation]\n"), "compression.method",
                "quantization is the compression there (set secure_aggregation.value_bits)");
  ExpectRefused(Config("method = \"topk\"\n", "[strategy]\nname = \"median\"\n"),
                "compression.method", "\"median\" does not");
  ExpectRefused(Config("method = \"fp16\"\n", "[strategy]\nname = \"trimmed_mean\"\n"),
                "compression.method", "aggregates linearly");
  // Distributed DP goes through secure aggregation: refused, naming the DP mode first.
  ExpectRefused(Config("method = \"int8\"\n", std::string("[secure_aggregation]\n") +
                                                "[differential_privacy]\n" + kDistributed),
                "compression.method", "with differential_privacy.mode = \"distributed\"");
  // Through the proto (CreateRun): a fraction left 0 and an unknown method number.
  absl::StatusOr<RunConfigFile> f = ParseRunConfigToml(Config("method = \"topk\"\n"), "");
  ASSERT_THAT(f, IsOk());
  wire::v1::RunConfig c = f->config;
  c.mutable_compression()->set_topk_fraction(0);
  EXPECT_THAT(ValidateRunConfig(c), StatusIs(absl::StatusCode::kInvalidArgument,
                                             HasSubstr("compression.topk_fraction")));
  c.mutable_compression()->set_method(static_cast<Compression::Method>(9));
  EXPECT_THAT(ValidateRunConfig(c), StatusIs(absl::StatusCode::kInvalidArgument,
                                             HasSubstr("compression.method: unknown method")));
}

}  // namespace
}  // namespace tessera
