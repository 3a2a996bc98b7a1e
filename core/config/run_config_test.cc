#include "core/config/run_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/base/testing/status_matchers.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;

constexpr char kFullExample[] = R"(
name = "fmnist-demo"
rounds = 5
seed = 7

[model]
architecture = "niid_cnn"
seed = 3

[train]
local_epochs = 2
batch_size = 64
learning_rate = 0.05
momentum = 0.9
weight_decay = 0.0001
max_steps = 100

[selection]
clients_per_round = 3
min_clients = 2
wait_for_clients_seconds = 30

[round]
deadline_seconds = 600
max_retries = 1

[evaluation]
every = 2
deadline_seconds = 90.5
)";

constexpr char kMinimal[] = R"(
name = "m"
rounds = 1
[model]
architecture = "mlp"
)";

TEST(RunConfigTest, FullExampleParses) {
  absl::StatusOr<RunConfigFile> f =
      ParseRunConfigToml(kFullExample, "/etc/tessera");
  ASSERT_THAT(f, IsOk());
  const wire::v1::RunConfig& c = f->config;
  EXPECT_EQ(c.name(), "fmnist-demo");
  EXPECT_EQ(c.rounds(), 5u);
  EXPECT_EQ(c.seed(), 7u);
  EXPECT_EQ(c.model().architecture(), "niid_cnn");
  EXPECT_EQ(c.model().seed(), 3);
  EXPECT_EQ(c.model().initial_weights_source(), "architecture:niid_cnn seed=3");
  EXPECT_TRUE(c.model().torchscript_sha256().empty());
  EXPECT_EQ(c.train().local_epochs(), 2u);
  EXPECT_EQ(c.train().batch_size(), 64u);
  EXPECT_DOUBLE_EQ(c.train().learning_rate(), 0.05);
  EXPECT_DOUBLE_EQ(c.train().momentum(), 0.9);
  EXPECT_DOUBLE_EQ(c.train().weight_decay(), 0.0001);
  EXPECT_EQ(c.train().max_steps(), 100u);
  EXPECT_EQ(c.selection().clients_per_round(), 3u);
  EXPECT_EQ(c.selection().fraction(), 0.0);
  EXPECT_EQ(c.selection().min_clients(), 2u);
  EXPECT_DOUBLE_EQ(c.selection().wait_for_clients_seconds(), 30);
  EXPECT_DOUBLE_EQ(c.round().deadline_seconds(), 600);
  EXPECT_EQ(c.round().max_retries(), 1u);
  EXPECT_EQ(c.evaluation().every(), 2u);
  EXPECT_DOUBLE_EQ(c.evaluation().deadline_seconds(), 90.5);
  EXPECT_TRUE(f->initial_safetensors_path.empty());
  EXPECT_TRUE(f->torchscript_path.empty());
  TESSERA_EXPECT_OK(ValidateRunConfig(c));
}

TEST(RunConfigTest, DefaultsApply) {
  absl::StatusOr<RunConfigFile> f = ParseRunConfigToml(kMinimal, "");
  ASSERT_THAT(f, IsOk());
  const wire::v1::RunConfig& c = f->config;
  EXPECT_EQ(c.seed(), 0u);
  EXPECT_EQ(c.model().seed(), 1);
  EXPECT_EQ(c.model().initial_weights_source(), "architecture:mlp seed=1");
  EXPECT_EQ(c.train().local_epochs(), 1u);
  EXPECT_EQ(c.train().batch_size(), 32u);
  EXPECT_DOUBLE_EQ(c.train().learning_rate(), 0.01);
  EXPECT_EQ(c.train().momentum(), 0.0);
  EXPECT_EQ(c.train().weight_decay(), 0.0);
  EXPECT_EQ(c.train().max_steps(), 0u);
  EXPECT_EQ(c.selection().clients_per_round(), 0u);
  EXPECT_EQ(c.selection().fraction(), 1.0);
  EXPECT_EQ(c.selection().min_clients(), 1u);
  EXPECT_EQ(c.selection().wait_for_clients_seconds(), 60.0);
  EXPECT_EQ(c.round().deadline_seconds(), 300.0);
  EXPECT_EQ(c.round().max_retries(), 3u);
  EXPECT_EQ(c.evaluation().every(), 1u);
  EXPECT_EQ(c.evaluation().deadline_seconds(), 120.0);
  // More in secure_aggregation_config_test.cc.
  EXPECT_FALSE(c.secure_aggregation().enabled());
}

TEST(RunConfigTest, FractionAndIntegerForFloat) {
  absl::StatusOr<RunConfigFile> f = ParseRunConfigToml(
      std::string(kMinimal) +
          "[selection]\nfraction = 0.5\n[round]\ndeadline_seconds = 10\n",
      "");
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ(f->config.selection().fraction(), 0.5);
  EXPECT_EQ(f->config.round().deadline_seconds(), 10.0);
}

TEST(RunConfigTest, TorchScriptAndInitialWeightsResolveAgainstBaseDir) {
  absl::StatusOr<RunConfigFile> f = ParseRunConfigToml(R"(
name = "ts"
rounds = 2
[model]
torchscript = "models/net.pt"
initial_weights = "/abs/w.safetensors"
)",
                                                       "/runs/demo");
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ(f->torchscript_path, "/runs/demo/models/net.pt");
  EXPECT_EQ(f->initial_safetensors_path, "/abs/w.safetensors");
  EXPECT_EQ(f->config.model().architecture(), "");
  EXPECT_EQ(f->config.model().initial_weights_source(),
            "safetensors:/abs/w.safetensors");
  // The coordinator-side check needs the hash the CLI fills in.
  EXPECT_THAT(ValidateRunConfig(f->config),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("model")));
  wire::v1::RunConfig hashed = f->config;
  hashed.mutable_model()->set_torchscript_sha256(std::string(32, 'x'));
  TESSERA_EXPECT_OK(ValidateRunConfig(hashed));

  f = ParseRunConfigToml(
      "name = \"ts\"\nrounds = 2\n[model]\ntorchscript = \"net.pt\"\n", "");
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ(f->torchscript_path, "net.pt");
  EXPECT_EQ(f->config.model().initial_weights_source(), "torchscript:net.pt");
}

TEST(RunConfigTest, ArchitectureWithInitialWeights) {
  absl::StatusOr<RunConfigFile> f = ParseRunConfigToml(
      std::string(kMinimal) + "initial_weights = \"../w.safetensors\"\n",
      "/a/b");
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ(f->initial_safetensors_path, "/a/w.safetensors");
  EXPECT_EQ(f->config.model().architecture(), "mlp");
  EXPECT_EQ(f->config.model().initial_weights_source(),
            "safetensors:../w.safetensors");
}

struct BadCase {
  std::string toml;
  std::string message;  // expected substring, always containing the field path
};

// kMinimal plus `extra`: keys land in its [model] table unless `extra` opens a
// table.
std::string Minimal(const std::string& extra) {
  return std::string(kMinimal) + extra;
}

TEST(RunConfigTest, InvalidValuesNameTheField) {
  const std::vector<BadCase> cases = {
      {"rounds = 1\n[model]\narchitecture = \"mlp\"\n", "name: is required"},
      {"name = \"x\"\n[model]\narchitecture = \"mlp\"\n",
       "rounds: is required"},
      {"name = \"x\"\nrounds = 1\n", "model: is required"},
      {"name = \"\"\nrounds = 1\n[model]\narchitecture = \"mlp\"\n",
       "name: must be 1-128"},
      {"name = \"a b\"\nrounds = 1\n[model]\narchitecture = \"mlp\"\n",
       "name: must be"},
      {"name = \"" + std::string(129, 'a') +
           "\"\nrounds = 1\n[model]\narchitecture = \"mlp\"\n",
       "name: must be"},
      {"name = \"x\"\nrounds = 0\n[model]\narchitecture = \"mlp\"\n",
       "rounds: must be in [1, 100000], got 0"},
      {"name = \"x\"\nrounds = 100001\n[model]\narchitecture = \"mlp\"\n",
       "rounds: must be"},
      {"name = \"x\"\nrounds = 1\nseed = -1\n[model]\narchitecture = \"mlp\"\n",
       "seed: must be"},
      {"name = \"x\"\nrounds = 1\n[model]\narchitecture = \"resnet\"\n",
       "model.architecture: must be one of niid_cnn, mcmahan_cnn, mlp"},
      {"name = \"x\"\nrounds = 1\n[model]\n", "model: set exactly one of"},
      {Minimal("torchscript = \"m.pt\"\n"), "model: set exactly one of"},
      {"name = \"x\"\nrounds = 1\n[model]\ntorchscript = \"\"\n",
       "model.torchscript: is empty"},
      {Minimal("initial_weights = \"\"\n"), "model.initial_weights: is empty"},
      {Minimal("seed = -3\n"), "model.seed: must be"},
      {Minimal("[train]\nlearning_rate = -1\n"),
       "train.learning_rate: must be > 0 and <= 10, got -1"},
      {Minimal("[train]\nlearning_rate = 0\n"),
       "train.learning_rate: must be > 0"},
      {Minimal("[train]\nlearning_rate = 11\n"),
       "train.learning_rate: must be > 0"},
      {Minimal("[train]\nlearning_rate = nan\n"),
       "train.learning_rate: must be > 0"},
      {Minimal("[train]\nmomentum = 1.0\n"),
       "train.momentum: must be in [0, 1), got 1"},
      {Minimal("[train]\nmomentum = -0.1\n"),
       "train.momentum: must be in [0, 1)"},
      {Minimal("[train]\nweight_decay = -1e-3\n"),
       "train.weight_decay: must be finite and >= 0"},
      {Minimal("[train]\nweight_decay = inf\n"),
       "train.weight_decay: must be finite"},
      {Minimal("[train]\nlocal_epochs = 0\n"),
       "train.local_epochs: must be in [1, 1000], got 0"},
      {Minimal("[train]\nlocal_epochs = 1001\n"),
       "train.local_epochs: must be in [1, 1000]"},
      {Minimal("[train]\nbatch_size = 65537\n"),
       "train.batch_size: must be in [1, 65536]"},
      {Minimal("[train]\nmax_steps = -1\n"),
       "train.max_steps: must be in [0, 4294967295]"},
      {Minimal("[train]\nmax_steps = 4294967296\n"),
       "train.max_steps: must be in"},
      {Minimal("[selection]\nclients_per_round = 3\nfraction = 0.5\n"),
       "selection: set only one of"},
      {Minimal("[selection]\nfraction = 0\n"),
       "selection.fraction: must be > 0 and <= 1"},
      {Minimal("[selection]\nfraction = 1.5\n"),
       "selection.fraction: must be > 0 and <= 1"},
      {Minimal("[selection]\nclients_per_round = -1\n"),
       "selection.clients_per_round: must be"},
      {Minimal("[selection]\nmin_clients = 0\n"),
       "selection.min_clients: must be in [1,"},
      {Minimal("[selection]\nclients_per_round = 2\nmin_clients = 3\n"),
       "selection.min_clients: must be <= selection.clients_per_round (2), got "
       "3"},
      {Minimal("[selection]\nwait_for_clients_seconds = 0\n"),
       "selection.wait_for_clients_seconds: must be finite and > 0"},
      {Minimal("[round]\ndeadline_seconds = 0\n"),
       "round.deadline_seconds: must be > 0"},
      {Minimal("[round]\ndeadline_seconds = 86401\n"),
       "round.deadline_seconds: must be > 0 and <= 86400, got 86401"},
      {Minimal("[round]\nmax_retries = -1\n"),
       "round.max_retries: must be in [0, 100]"},
      {Minimal("[evaluation]\nevery = -1\n"),
       "evaluation.every: must be in [0, 100000]"},
      {Minimal("[evaluation]\ndeadline_seconds = -5\n"),
       "evaluation.deadline_seconds: must be > 0"},
  };
  for (const BadCase& c : cases) {
    EXPECT_THAT(
        ParseRunConfigToml(c.toml, ""),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.toml;
  }
}

TEST(RunConfigTest, UnknownKeysAndTablesNameTheKey) {
  const std::vector<BadCase> cases = {
      {Minimal("colour = \"red\"\n"), "model.colour: unknown key"},
      {"nme = \"x\"\n" + Minimal(""), "nme: unknown key"},
      {Minimal("layers = 3\n"), "model.layers: unknown key"},
      {Minimal("[train]\nlearning_rte = 0.1\n"),
       "train.learning_rte: unknown key"},
      {Minimal("[selection]\nfraction_ = 0.1\n"),
       "selection.fraction_: unknown key"},
      {Minimal("[round]\ndeadline = 1\n"), "round.deadline: unknown key"},
      {Minimal("[evaluation]\nevry = 1\n"), "evaluation.evry: unknown key"},
      {Minimal("[optimizer]\nname = \"sgd\"\n"), "optimizer: unknown table"},
      {Minimal("[train.extra]\nx = 1\n"), "train.extra: unknown table"},
      {Minimal("[secure_aggregation]\nk = 5\n"),
       "secure_aggregation.k: unknown key"},
  };
  for (const BadCase& c : cases) {
    EXPECT_THAT(
        ParseRunConfigToml(c.toml, ""),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.toml;
  }
}

TEST(RunConfigTest, WrongTypesNameFieldAndExpectedType) {
  const std::vector<BadCase> cases = {
      {"name = 3\nrounds = 1\n[model]\narchitecture = \"mlp\"\n",
       "name: expected string, got integer"},
      {"name = \"x\"\nrounds = \"5\"\n[model]\narchitecture = \"mlp\"\n",
       "rounds: expected integer, got string"},
      {"name = \"x\"\nrounds = 5.0\n[model]\narchitecture = \"mlp\"\n",
       "rounds: expected integer, got float"},
      {"name = \"x\"\nrounds = 1\nmodel = \"mlp\"\n",
       "model: expected table, got string"},
      {Minimal("[train]\nlearning_rate = \"fast\"\n"),
       "train.learning_rate: expected number, got string"},
      {Minimal("[train]\nbatch_size = 32.0\n"),
       "train.batch_size: expected integer, got float"},
      {Minimal("[train]\nmomentum = true\n"),
       "train.momentum: expected number, got boolean"},
      {Minimal("[[selection]]\nfraction = 1.0\n"),
       "selection: expected table, got array"},
      {Minimal("[evaluation]\nevery = [1]\n"),
       "evaluation.every: expected integer, got array"},
      {"name = \"x\"\nrounds = 1\n[model]\narchitecture = 1979-05-27\n",
       "model.architecture: expected string, got date"},
  };
  for (const BadCase& c : cases) {
    EXPECT_THAT(
        ParseRunConfigToml(c.toml, ""),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.toml;
  }
}

TEST(RunConfigTest, SyntaxErrorReportsLine) {
  EXPECT_THAT(
      ParseRunConfigToml(
          "name = \"x\"\nrounds = 1\n[model\narchitecture = \"mlp\"\n", ""),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 3")));
  EXPECT_THAT(
      ParseRunConfigToml("name = \"x\"\nname = \"y\"\n", ""),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 2")));
}

TEST(RunConfigTest, ValidateRunConfigChecksAProtoDirectly) {
  absl::StatusOr<RunConfigFile> f = ParseRunConfigToml(kFullExample, "");
  ASSERT_THAT(f, IsOk());
  wire::v1::RunConfig c = f->config;
  c.mutable_train()->set_learning_rate(-1);
  EXPECT_THAT(ValidateRunConfig(c),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("train.learning_rate: must be > 0")));
  EXPECT_THAT(ValidateRunConfig(wire::v1::RunConfig()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("name")));
  c = f->config;
  c.mutable_model()->set_torchscript_sha256(std::string(32, 'h'));
  EXPECT_THAT(ValidateRunConfig(c),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("model: set exactly one")));
  c.mutable_model()->clear_architecture();
  c.mutable_model()->set_torchscript_sha256("short");
  EXPECT_THAT(ValidateRunConfig(c),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("model.torchscript_sha256")));
  c = f->config;
  c.mutable_selection()->set_fraction(0.5);  // clients_per_round is 3
  EXPECT_THAT(ValidateRunConfig(c), StatusIs(absl::StatusCode::kInvalidArgument,
                                             HasSubstr("selection")));
  c = f->config;
  c.set_seed(~uint64_t{0});
  EXPECT_THAT(ValidateRunConfig(c),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("seed")));
}

TEST(RunConfigTest, LoadRunConfigFileResolvesAgainstItsDirectory) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      ("run_config_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "run.toml").string();
  std::ofstream(path) << kMinimal << "initial_weights = \"w.safetensors\"\n";
  absl::StatusOr<RunConfigFile> f = LoadRunConfigFile(path);
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ(f->initial_safetensors_path, (dir / "w.safetensors").string());

  std::ofstream(path) << kMinimal << "[train]\nlearning_rate = -1\n";
  EXPECT_THAT(LoadRunConfigFile(path),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(path + ": train.learning_rate: must be > 0")));
  EXPECT_THAT(LoadRunConfigFile((dir / "missing.toml").string()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing.toml")));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tessera
