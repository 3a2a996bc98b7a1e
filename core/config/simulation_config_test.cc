// The [simulation] table: defaults, overrides and every bad value named by its field.
#include "core/config/simulation_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "core/base/testing/status_matchers.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;

TEST(SimConfigTest, DefaultsWithoutTable) {
  absl::StatusOr<SimulationConfig> c = ParseSimulationConfig("name = \"x\"\n", "");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->clients, 100u);
  EXPECT_EQ(c->partition, "iid");
  EXPECT_EQ(c->dataset, "idx:/usr/share/datasets/fashion-mnist");
  EXPECT_DOUBLE_EQ(c->availability, 1.0);
}

TEST(SimConfigTest, ParsesEveryKey) {
  absl::StatusOr<SimulationConfig> c = ParseSimulationConfig(
      "[simulation]\ndataset = \"idx:data\"\npartition = \"label_quantity:2\"\nclients = 1000\n"
      "threads = 2\ndevice = \"auto\"\nlimit = 500\ntest_every = 5\navailability = 0.5\n"
      "availability_trace = \"trace.csv\"\ndropout = 0.1\nspeed_sigma = 0.5\n"
      "examples_per_second = 200\nbandwidth_mbps = 10\noutput = \"out\"\n"
      "transport = \"grpc\"\n",
      "/cfg");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->dataset, "idx:/cfg/data");
  EXPECT_EQ(c->partition, "label_quantity:2");
  EXPECT_EQ(c->clients, 1000u);
  EXPECT_EQ(c->threads, 2u);
  EXPECT_EQ(c->limit, 500u);
  EXPECT_EQ(c->test_every, 5u);
  EXPECT_EQ(c->availability_trace, "/cfg/trace.csv");
  EXPECT_DOUBLE_EQ(c->dropout, 0.1);
  EXPECT_DOUBLE_EQ(c->speed_sigma, 0.5);
  EXPECT_DOUBLE_EQ(c->examples_per_second, 200);
  EXPECT_DOUBLE_EQ(c->bandwidth_mbps, 10);
  EXPECT_EQ(c->output, "out");
  EXPECT_EQ(c->transport, "grpc");
}

TEST(SimConfigTest, LanguageModelKeysResolveAgainstTheConfigsDirectory) {
  absl::StatusOr<SimulationConfig> c = ParseSimulationConfig(
      "[simulation]\ndataset = \"jsonl:text/corpus.jsonl\"\nbase_checkpoint = \"base\"\n", "/cfg");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->dataset, "jsonl:/cfg/text/corpus.jsonl");
  EXPECT_EQ(c->base_checkpoint, "/cfg/base");
  absl::StatusOr<SimulationConfig> d = ParseSimulationConfig("[simulation]\n", "/cfg");
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->base_checkpoint, "");
}

TEST(SimConfigTest, BadValuesNameTheField) {
  const struct {
    const char* text;
    const char* field;
  } cases[] = {
      {"clients = 0", "simulation.clients: must be in [1, 100000]"},
      {"clients = 100001", "simulation.clients"},
      {"clients = \"ten\"", "simulation.clients: must be an integer"},
      {"availability = 0", "simulation.availability: must be > 0"},
      {"availability = 1.5", "simulation.availability"},
      {"dropout = -0.1", "simulation.dropout"},
      {"bandwidth_mbps = 0", "simulation.bandwidth_mbps"},
      {"dataset = \"/data\"",
       "simulation.dataset: must be \"idx:DIR\", \"csv:FILE\" or \"jsonl:FILE\""},
      {"dataset = \"jsonl:\"", "simulation.dataset: must be"},
      {"base_checkpoint = \"\"", "simulation.base_checkpoint: is empty"},
      {"base_checkpoint = 1", "simulation.base_checkpoint: must be a string"},
      {"clinets = 10", "simulation.clinets: unknown key"},
      {"output = \"\"", "simulation.output: is empty"},
      {"transport = \"http\"", "simulation.transport: must be \"in_process\" or \"grpc\""},
  };
  for (const auto& c : cases) {
    absl::StatusOr<SimulationConfig> got =
        ParseSimulationConfig(absl::StrCat("[simulation]\n", c.text, "\n"), "");
    ASSERT_FALSE(got.ok()) << c.text;
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(got.status().message(), HasSubstr(c.field)) << got.status();
  }
}

}  // namespace
}  // namespace tessera
