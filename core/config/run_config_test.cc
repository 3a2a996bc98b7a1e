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

TEST(RunConfigTest, RetentionTable) {
  absl::StatusOr<RunConfigFile> none = ParseRunConfigToml(kMinimal, "");
  ASSERT_THAT(none, IsOk());
  EXPECT_EQ(none->config.retention().keep_last(), 0u);  // the coordinator's defaults
  absl::StatusOr<RunConfigFile> f = ParseRunConfigToml(
      std::string(kMinimal) + "[retention]\nkeep_last = 2\nkeep_every = 10\n", "");
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ(f->config.retention().keep_last(), 2u);
  EXPECT_EQ(f->config.retention().keep_every(), 10u);
  for (const auto& [table, field] : std::vector<std::pair<std::string, std::string>>{
           {"keep_every = 3\n", "retention.keep_last: is required"},
           {"keep_last = 0\n", "retention.keep_last"},
           {"keep_last = 1\nkeep_every = -1\n", "retention.keep_every"},
           {"keep_last = 1\nkeep_first = 1\n", "keep_first"}}) {
    EXPECT_THAT(ParseRunConfigToml(std::string(kMinimal) + "[retention]\n" + table, ""),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(field)))
        << table;
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

// ---------------------------------------------------------------------------------------
// Language models ([model.causal_lm], docs/run_config.md "Language models").

constexpr char kSha[] = "00112233445566778899aabbccddeeffFFEEDDCCBBAA99887766554433221100";

constexpr char kCausalLmExample[] = R"(
name = "smollm-alpaca"
rounds = 20

[model]
source = "HuggingFaceTB/SmolLM2-135M"
license = "Apache-2.0"
initial_weights = "adapter_init.safetensors"

[model.causal_lm]
base_sha256 = "00112233445566778899aabbccddeeffFFEEDDCCBBAA99887766554433221100"
gradient_checkpointing = true

[model.causal_lm.lora]
rank = 16
alpha = 32
dropout = 0.05
target_modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
freeze_a = true
init_seed = 5

[model.causal_lm.text]
format = "instruction"
prompt_template = "alpaca"
max_seq_length = 512
packing = false
heldout_fraction = 0.2

[train]
batch_size = 8
learning_rate = 0.0002
weight_decay = 0.01
optimizer = "adamw"
lr_schedule = "cosine"
warmup_steps = 10
adam_beta1 = 0.8
adam_beta2 = 0.95
adam_epsilon = 1e-6
max_grad_norm = 1.0
)";

// A causal-LM config with only the required keys, plus `extra`.
std::string MinimalLm(const std::string& extra) {
  return std::string(R"(
name = "lm"
rounds = 1
[model]
initial_weights = "a.safetensors"
[model.causal_lm]
base_sha256 = ")") +
         kSha + "\"\n" + extra;
}

TEST(RunConfigCausalLmTest, FullExampleParses) {
  absl::StatusOr<RunConfigFile> f = ParseRunConfigToml(kCausalLmExample, "/runs/lm");
  ASSERT_THAT(f, IsOk());
  const wire::v1::RunConfig& c = f->config;
  EXPECT_EQ(c.model().architecture(), "");
  EXPECT_TRUE(c.model().torchscript_sha256().empty());
  EXPECT_EQ(c.model().source(), "HuggingFaceTB/SmolLM2-135M");
  EXPECT_EQ(c.model().license(), "Apache-2.0");
  EXPECT_EQ(f->initial_safetensors_path, "/runs/lm/adapter_init.safetensors");
  EXPECT_EQ(c.model().initial_weights_source(), "safetensors:adapter_init.safetensors");
  ASSERT_TRUE(c.model().has_causal_lm());
  const wire::v1::CausalLmSpec& lm = c.model().causal_lm();
  // 0x00 0x11 ... 0xff, then 0xff 0xee ... 0x00 (upper-case hex accepted).
  std::string sha;
  for (int i = 0; i < 16; ++i) sha.push_back(static_cast<char>(i * 0x11));
  for (int i = 15; i >= 0; --i) sha.push_back(static_cast<char>(i * 0x11));
  EXPECT_EQ(lm.base_sha256(), sha);
  EXPECT_TRUE(lm.gradient_checkpointing());
  EXPECT_EQ(lm.lora().rank(), 16u);
  EXPECT_EQ(lm.lora().alpha(), 32.0);
  EXPECT_EQ(lm.lora().dropout(), 0.05);
  EXPECT_THAT(lm.lora().target_modules(),
              ::testing::ElementsAre("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                     "up_proj", "down_proj"));
  EXPECT_TRUE(lm.lora().freeze_a());
  EXPECT_EQ(lm.lora().init_seed(), 5u);
  EXPECT_EQ(lm.text().format(), "instruction");
  EXPECT_EQ(lm.text().prompt_template(), "alpaca");
  EXPECT_EQ(lm.text().max_seq_length(), 512u);
  EXPECT_FALSE(lm.text().packing());
  EXPECT_EQ(lm.text().heldout_fraction(), 0.2);
  EXPECT_EQ(c.train().optimizer(), "adamw");
  EXPECT_EQ(c.train().lr_schedule(), "cosine");
  EXPECT_EQ(c.train().warmup_steps(), 10u);
  EXPECT_EQ(c.train().adam_beta1(), 0.8);
  EXPECT_EQ(c.train().adam_beta2(), 0.95);
  EXPECT_EQ(c.train().adam_epsilon(), 1e-6);
  EXPECT_EQ(c.train().max_grad_norm(), 1.0);
  EXPECT_EQ(c.train().weight_decay(), 0.01);
  TESSERA_EXPECT_OK(ValidateRunConfig(c));
}

TEST(RunConfigCausalLmTest, DefaultsApply) {
  absl::StatusOr<RunConfigFile> f = ParseRunConfigToml(MinimalLm(""), "");
  ASSERT_THAT(f, IsOk());
  const wire::v1::CausalLmSpec& lm = f->config.model().causal_lm();
  EXPECT_EQ(lm.base_sha256().size(), 32u);
  EXPECT_FALSE(lm.gradient_checkpointing());
  EXPECT_EQ(lm.lora().rank(), 8u);
  EXPECT_EQ(lm.lora().alpha(), 16.0);
  EXPECT_EQ(lm.lora().dropout(), 0.0);
  EXPECT_THAT(lm.lora().target_modules(), ::testing::ElementsAre("q_proj", "v_proj"));
  EXPECT_FALSE(lm.lora().freeze_a());
  EXPECT_EQ(lm.lora().init_seed(), 0u);
  EXPECT_EQ(lm.text().format(), "auto");
  EXPECT_EQ(lm.text().prompt_template(), "alpaca");
  EXPECT_EQ(lm.text().max_seq_length(), 256u);
  EXPECT_TRUE(lm.text().packing());
  EXPECT_EQ(lm.text().heldout_fraction(), 0.1);
  // The optimizer fields' defaults, here and for built-in models.
  for (const std::string& toml : {MinimalLm(""), std::string(kMinimal)}) {
    f = ParseRunConfigToml(toml, "");
    ASSERT_THAT(f, IsOk());
    const wire::v1::TrainConfig& t = f->config.train();
    EXPECT_EQ(t.optimizer(), "sgd");
    EXPECT_EQ(t.lr_schedule(), "constant");
    EXPECT_EQ(t.warmup_steps(), 0u);
    EXPECT_EQ(t.adam_beta1(), 0.9);
    EXPECT_EQ(t.adam_beta2(), 0.999);
    EXPECT_EQ(t.adam_epsilon(), 1e-8);
    EXPECT_EQ(t.max_grad_norm(), 0.0);
  }
  EXPECT_FALSE(f->config.model().has_causal_lm());
}

TEST(RunConfigCausalLmTest, AdamWForABuiltInModel) {
  absl::StatusOr<RunConfigFile> f = ParseRunConfigToml(
      Minimal("[train]\noptimizer = \"adamw\"\nlr_schedule = \"linear\"\nwarmup_steps = 1000000\n"),
      "");
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ(f->config.train().optimizer(), "adamw");
  EXPECT_EQ(f->config.train().lr_schedule(), "linear");
  EXPECT_EQ(f->config.train().warmup_steps(), 1000000u);
}

TEST(RunConfigCausalLmTest, RangeEdgesAreAccepted) {
  for (const char* extra :
       {"[model.causal_lm.lora]\nrank = 1\ndropout = 0\n",
        "[model.causal_lm.lora]\nrank = 1024\ndropout = 0.999\nalpha = 1e-3\n",
        "[model.causal_lm.lora]\ntarget_modules = [\"down_proj\"]\n",
        "[model.causal_lm.text]\nmax_seq_length = 8\nheldout_fraction = 0\n",
        "[model.causal_lm.text]\nmax_seq_length = 32768\nheldout_fraction = 0.5\n",
        "[model.causal_lm.text]\nformat = \"text\"\n",
        "[train]\nadam_beta1 = 0\nadam_beta2 = 0\nmax_grad_norm = 0\n"}) {
    EXPECT_THAT(ParseRunConfigToml(MinimalLm(extra), ""), IsOk()) << extra;
  }
}

TEST(RunConfigCausalLmTest, InvalidValuesNameTheField) {
  const std::string lora = "[model.causal_lm.lora]\n";
  const std::string text = "[model.causal_lm.text]\n";
  const std::vector<BadCase> cases = {
      // Exactly one kind of model; the adapter file is required.
      {MinimalLm("").replace(MinimalLm("").find("[model]\n"), 8,
                             "[model]\narchitecture = \"mlp\"\n"),
       "model: set exactly one of model.architecture, model.torchscript and [model.causal_lm]"},
      {MinimalLm("").replace(MinimalLm("").find("[model]\n"), 8,
                             "[model]\ntorchscript = \"m.pt\"\n"),
       "model: set exactly one of"},
      {"name = \"x\"\nrounds = 1\n[model]\ninitial_weights = \"a.safetensors\"\n",
       "model: set exactly one of model.architecture, model.torchscript and [model.causal_lm]"},
      {"name = \"x\"\nrounds = 1\n[model.causal_lm]\nbase_sha256 = \"" + std::string(kSha) +
           "\"\n",
       "model.initial_weights: is required with [model.causal_lm]"},
      {"name = \"x\"\nrounds = 1\n[model]\ninitial_weights = \"a.safetensors\"\n"
       "[model.causal_lm]\n",
       "model.causal_lm.base_sha256: is required"},
      {"name = \"x\"\nrounds = 1\n[model]\ninitial_weights = \"a.safetensors\"\n"
       "[model.causal_lm]\nbase_sha256 = \"abc\"\n",
       "model.causal_lm.base_sha256: must be 64 hex digits (a SHA-256), got 3 characters"},
      {"name = \"x\"\nrounds = 1\n[model]\ninitial_weights = \"a.safetensors\"\n"
       "[model.causal_lm]\nbase_sha256 = \"" +
           std::string(63, 'a') + "g\"\n",
       "model.causal_lm.base_sha256: must be 64 hex digits"},
      {MinimalLm("colour = 1\n"), "model.causal_lm.colour: unknown key"},
      {MinimalLm(lora + "r = 1\n"), "model.causal_lm.lora.r: unknown key"},
      {MinimalLm(text + "length = 1\n"), "model.causal_lm.text.length: unknown key"},
      {MinimalLm("gradient_checkpointing = 1\n"),
       "model.causal_lm.gradient_checkpointing: expected boolean, got integer"},
      // LoRA.
      {MinimalLm(lora + "rank = 0\n"), "model.causal_lm.lora.rank: must be in [1, 1024], got 0"},
      {MinimalLm(lora + "rank = 1025\n"), "model.causal_lm.lora.rank: must be in [1, 1024]"},
      {MinimalLm(lora + "alpha = 0\n"), "model.causal_lm.lora.alpha: must be finite and > 0"},
      {MinimalLm(lora + "alpha = inf\n"), "model.causal_lm.lora.alpha: must be finite and > 0"},
      {MinimalLm(lora + "alpha = nan\n"), "model.causal_lm.lora.alpha: must be finite and > 0"},
      {MinimalLm(lora + "dropout = 1\n"), "model.causal_lm.lora.dropout: must be in [0, 1), got 1"},
      {MinimalLm(lora + "dropout = -0.1\n"), "model.causal_lm.lora.dropout: must be in [0, 1)"},
      {MinimalLm(lora + "target_modules = []\n"),
       "model.causal_lm.lora.target_modules: must name at least one of q_proj"},
      {MinimalLm(lora + "target_modules = [\"q_proj\", \"lm_head\"]\n"),
       "model.causal_lm.lora.target_modules[1]: must be one of q_proj, k_proj, v_proj, o_proj, "
       "gate_proj, up_proj, down_proj; got \"lm_head\""},
      {MinimalLm(lora + "target_modules = [\"v_proj\", \"q_proj\", \"v_proj\"]\n"),
       "model.causal_lm.lora.target_modules[2]: \"v_proj\" is repeated"},
      {MinimalLm(lora + "target_modules = [\"q_proj\", 1]\n"),
       "model.causal_lm.lora.target_modules[1]: expected string"},
      {MinimalLm(lora + "freeze_a = \"yes\"\n"),
       "model.causal_lm.lora.freeze_a: expected boolean"},
      {MinimalLm(lora + "init_seed = -1\n"), "model.causal_lm.lora.init_seed: must be in"},
      // Text.
      {MinimalLm(text + "format = \"csv\"\n"),
       "model.causal_lm.text.format: must be one of auto, text, instruction; got \"csv\""},
      {MinimalLm(text + "prompt_template = \"vicuna\"\n"),
       "model.causal_lm.text.prompt_template: must be one of alpaca, chat; got \"vicuna\""},
      {MinimalLm(text + "max_seq_length = 7\n"),
       "model.causal_lm.text.max_seq_length: must be in [8, 32768], got 7"},
      {MinimalLm(text + "max_seq_length = 32769\n"),
       "model.causal_lm.text.max_seq_length: must be in [8, 32768]"},
      {MinimalLm(text + "heldout_fraction = 0.51\n"),
       "model.causal_lm.text.heldout_fraction: must be in [0, 0.5], got 0.51"},
      {MinimalLm(text + "heldout_fraction = -0.1\n"),
       "model.causal_lm.text.heldout_fraction: must be in [0, 0.5]"},
      {MinimalLm(text + "packing = 1\n"), "model.causal_lm.text.packing: expected boolean"},
      // Train (for any model).
      {Minimal("[train]\noptimizer = \"adam\"\n"),
       "train.optimizer: must be one of sgd, adamw; got \"adam\""},
      {Minimal("[train]\noptimizer = \"\"\n"), "train.optimizer: must be one of sgd, adamw"},
      {Minimal("[train]\nlr_schedule = \"step\"\n"),
       "train.lr_schedule: must be one of constant, linear, cosine; got \"step\""},
      {Minimal("[train]\nwarmup_steps = 1000001\n"),
       "train.warmup_steps: must be in [0, 1000000], got 1000001"},
      {Minimal("[train]\nwarmup_steps = -1\n"), "train.warmup_steps: must be in [0, 1000000]"},
      {Minimal("[train]\nadam_beta1 = 1\n"), "train.adam_beta1: must be in [0, 1), got 1"},
      {Minimal("[train]\nadam_beta1 = -0.5\n"), "train.adam_beta1: must be in [0, 1)"},
      {Minimal("[train]\nadam_beta2 = 1.5\n"), "train.adam_beta2: must be in [0, 1)"},
      {Minimal("[train]\nadam_beta2 = nan\n"), "train.adam_beta2: must be in [0, 1)"},
      {Minimal("[train]\nadam_epsilon = 0\n"), "train.adam_epsilon: must be finite and > 0"},
      {Minimal("[train]\nadam_epsilon = inf\n"), "train.adam_epsilon: must be finite and > 0"},
      {Minimal("[train]\nmax_grad_norm = -1\n"),
       "train.max_grad_norm: must be finite and >= 0, got -1"},
      {Minimal("[train]\nmax_grad_norm = inf\n"), "train.max_grad_norm: must be finite"},
  };
  for (const BadCase& c : cases) {
    EXPECT_THAT(ParseRunConfigToml(c.toml, ""),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.toml;
  }
}

TEST(RunConfigCausalLmTest, ValidateRunConfigChecksTheProto) {
  absl::StatusOr<RunConfigFile> f = ParseRunConfigToml(kCausalLmExample, "");
  ASSERT_THAT(f, IsOk());
  const wire::v1::RunConfig good = f->config;
  const auto expect_error = [](const wire::v1::RunConfig& c, const std::string& message) {
    EXPECT_THAT(ValidateRunConfig(c),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(message)))
        << message;
  };
  wire::v1::RunConfig c = good;
  c.mutable_model()->set_architecture("mlp");
  expect_error(c, "model: set exactly one of");
  c = good;
  c.mutable_model()->set_torchscript_sha256(std::string(32, 'h'));
  expect_error(c, "model: set exactly one of");
  c = good;
  c.mutable_model()->mutable_causal_lm()->set_base_sha256("short");
  expect_error(c, "model.causal_lm.base_sha256: must be 32 bytes, got 5");
  c = good;
  c.mutable_model()->set_initial_weights_source("");
  expect_error(c, "model.initial_weights: is required with [model.causal_lm]");
  c = good;
  c.mutable_model()->mutable_causal_lm()->mutable_lora()->set_rank(0);
  expect_error(c, "model.causal_lm.lora.rank: must be in [1, 1024], got 0");
  c = good;
  c.mutable_model()->mutable_causal_lm()->mutable_lora()->set_init_seed(~uint64_t{0});
  expect_error(c, "model.causal_lm.lora.init_seed: must be in");
  c = good;
  c.mutable_model()->mutable_causal_lm()->mutable_text()->set_format("");
  expect_error(c, "model.causal_lm.text.format: must be one of");
  c = good;
  c.mutable_train()->set_adam_epsilon(0);  // adamw needs it
  expect_error(c, "train.adam_epsilon: must be finite and > 0, got 0");
  c = good;
  c.mutable_train()->set_lr_schedule("exp");
  expect_error(c, "train.lr_schedule: must be one of");
  // An empty causal_lm message is present: its fields are checked.
  c = good;
  c.mutable_model()->mutable_causal_lm()->Clear();
  expect_error(c, "model.causal_lm.base_sha256: must be 32 bytes, got 0");
}

TEST(RunConfigCausalLmTest, ProtoWithoutTheNewTrainFieldsStillValidates) {
  // A RunConfig written before optimizer/lr_schedule/adam_* existed: empty strings and zeros
  // mean sgd, constant, no clipping.
  absl::StatusOr<RunConfigFile> f = ParseRunConfigToml(kFullExample, "");
  ASSERT_THAT(f, IsOk());
  wire::v1::RunConfig c = f->config;
  wire::v1::TrainConfig& t = *c.mutable_train();
  t.clear_optimizer();
  t.clear_lr_schedule();
  t.clear_adam_beta1();
  t.clear_adam_beta2();
  t.clear_adam_epsilon();
  t.clear_max_grad_norm();
  TESSERA_EXPECT_OK(ValidateRunConfig(c));
  t.set_optimizer("adamw");
  EXPECT_THAT(ValidateRunConfig(c), StatusIs(absl::StatusCode::kInvalidArgument,
                                             HasSubstr("train.adam_epsilon")));
}

}  // namespace
}  // namespace tessera
