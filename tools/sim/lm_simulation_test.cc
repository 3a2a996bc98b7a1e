// Language-model runs in the simulator: six virtual clients fine-tune LoRA adapters of one
// tiny Llama checkpoint (built here: a byte-level BPE tokenizer and random weights) on their
// shares of one JSONL file. The held-out loss falls over the rounds, the base is hashed and
// loaded once for all clients (LmBaseCache), and a checkpoint whose hash is not the run's
// base_sha256 is refused by name.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "client/lm/checkpoint/hf_checkpoint.h"
#include "client/lm/tokenizer/bpe_trainer.h"
#include "client/lm/tokenizer/tokenizer.h"
#include "client/lm/transformer/causal_lm.h"
#include "client/runtime/lm_workload.h"
#include "core/base/file.h"
#include "core/base/testing/status_matchers.h"
#include "core/model/safetensors.h"
#include "privacy/crypto/random.h"
#include "tools/sim/simulation.h"

namespace tessera::sim {
namespace {

using ::testing::HasSubstr;

constexpr int kRecords = 144;

// Short, repetitive sentences: a pattern LoRA on a random base learns within a few rounds.
std::vector<std::string> Corpus() {
  const char* subjects[] = {"the cat", "a dog", "my bird", "the fox"};
  const char* verbs[] = {"sees", "likes", "chases"};
  const char* objects[] = {"the red ball", "a green hat", "the old tree"};
  std::vector<std::string> texts;
  for (int i = 0; i < kRecords; ++i) {
    texts.push_back(absl::StrCat(subjects[i % 4], " ", verbs[(i / 4) % 3], " ",
                                 objects[(i / 12) % 3], "."));
  }
  return texts;
}

class LmSimulationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::filesystem::path(std::filesystem::temp_directory_path() /
                                     ("sim-lm-test-" + crypto::RandomHexId(6)));
    std::filesystem::create_directories(*dir_ / "base");
    const std::string base = (*dir_ / "base").string();
    const std::vector<std::string> texts = Corpus();
    {
      std::ofstream out(*dir_ / "corpus.jsonl");
      for (const std::string& t : texts) out << "{\"text\": \"" << t << "\"}\n";
    }
    // The base: tokenizer, config and random weights, as tessera-model pretrain writes them.
    const lm::ByteLevelBpeTrainOptions bpe;
    absl::StatusOr<std::string> json = lm::TrainByteLevelBpeTokenizerJson(texts, 300, bpe);
    ASSERT_THAT(json, IsOk());
    ASSERT_THAT(WriteFileAtomically(base + "/tokenizer.json", *json, 0644, true), IsOk());
    ASSERT_THAT(WriteFileAtomically(base + "/tokenizer_config.json",
                                    lm::ByteLevelBpeTokenizerConfigJson(bpe), 0644, true),
                IsOk());
    absl::StatusOr<std::unique_ptr<lm::Tokenizer>> tokenizer = lm::LoadTokenizer(base);
    ASSERT_THAT(tokenizer, IsOk());
    lm::CausalLmConfig config;
    config.model_type = "llama";
    config.vocab_size = (*tokenizer)->vocab_size();
    config.hidden_size = 32;
    config.intermediate_size = 64;
    config.num_hidden_layers = 2;
    config.num_attention_heads = 4;
    config.num_key_value_heads = 2;
    config.head_dim = 8;
    config.max_position_embeddings = 64;
    config.rms_norm_eps = 1e-5;
    config.rope_theta = 10000;
    config.tie_word_embeddings = true;
    config.torch_dtype = "float32";
    config.bos_token_id = *(*tokenizer)->bos_id();
    config.eos_token_ids = {*(*tokenizer)->eos_id()};
    std::mt19937_64 rng(11);
    std::normal_distribution<float> normal(0.0f, 0.02f);
    ArrayRecord weights;
    for (const lm::ExpectedTensor& e : lm::ExpectedTensors(config)) {
      absl::StatusOr<Tensor> t = Tensor::Zeros(e.name, DType::kFloat32, e.shape);
      ASSERT_THAT(t, IsOk());
      // Embeddings (tied to the head) large enough that adapters can move the logits far.
      const bool norm = e.name.find("norm") != std::string::npos;
      const float scale = e.name.find("embed") != std::string::npos ? 15.0f : 1.0f;
      for (float& v : t->mutable_values<float>()) v = norm ? 1.0f : scale * normal(rng);
      weights.tensors.push_back(*std::move(t));
    }
    ASSERT_THAT(lm::WriteHfCheckpoint(base, config, weights), IsOk());
    absl::StatusOr<std::string> sha = lm::CheckpointSha256(base);
    ASSERT_THAT(sha, IsOk());
    sha256_ = new std::string(*sha);
    // The initial adapter (what tessera-model lora-init writes).
    lm::LoraConfig lora;
    lora.rank = 4;
    lora.alpha = 8;
    lora.target_modules = {"q_proj", "k_proj", "v_proj", "o_proj",
                           "gate_proj", "up_proj", "down_proj"};
    absl::StatusOr<std::unique_ptr<lm::CausalLm>> model = lm::CausalLm::Load(base, lora);
    ASSERT_THAT(model, IsOk());
    absl::StatusOr<ArrayRecord> adapter = (*model)->GetAdapter(/*trainable_only=*/true);
    ASSERT_THAT(adapter, IsOk());
    ASSERT_THAT(WriteSafetensorsFile((*dir_ / "adapter.safetensors").string(), *adapter),
                IsOk());
  }
  static void TearDownTestSuite() {
    // TESSERA_SIM_LM_TEST_KEEP=1 keeps the checkpoint and corpus (to run tessera-sim on).
    if (std::getenv("TESSERA_SIM_LM_TEST_KEEP") == nullptr) std::filesystem::remove_all(*dir_);
    delete dir_;
    delete sha256_;
  }

  // A language-model run config in the test directory; `simulation` replaces the default
  // [simulation] keys after dataset.
  std::string WriteConfig(const std::string& name, const std::string& sha256,
                          const std::string& simulation = "base_checkpoint = \"base\"\n"
                                                          "clients = 6\nthreads = 2\n") {
    const std::string path = (*dir_ / (name + ".toml")).string();
    std::ofstream(path)
        << "name = \"lm-sim\"\nrounds = 4\nseed = 3\n"
        << "[model]\ninitial_weights = \"adapter.safetensors\"\n"
        << "[model.causal_lm]\nbase_sha256 = \"" << sha256 << "\"\n"
        << "[model.causal_lm.lora]\nrank = 4\nalpha = 8\n"
        << "target_modules = [\"q_proj\", \"k_proj\", \"v_proj\", \"o_proj\", \"gate_proj\", "
           "\"up_proj\", \"down_proj\"]\n"
        << "[model.causal_lm.text]\nformat = \"text\"\nmax_seq_length = 32\npacking = true\n"
        << "heldout_fraction = 0.2\n"
        << "[train]\nbatch_size = 4\nlearning_rate = 0.03\noptimizer = \"adamw\"\n"
        << "local_epochs = 3\n"
        << "[selection]\nclients_per_round = 6\nmin_clients = 2\n"
        << "[round]\ndeadline_seconds = 600\n"
        << "[simulation]\ndataset = \"jsonl:corpus.jsonl\"\n" << simulation;
    return path;
  }
  absl::StatusOr<SimulationResult> Run(const std::string& config, const std::string& out) {
    SimulationOptions o;
    o.config_path = config;
    o.output = (*dir_ / out).string();
    o.plot = false;
    return RunSimulation(o);
  }

  static std::filesystem::path* dir_;
  static std::string* sha256_;
};

std::filesystem::path* LmSimulationTest::dir_ = nullptr;
std::string* LmSimulationTest::sha256_ = nullptr;

TEST_F(LmSimulationTest, VirtualClientsShareOneBaseAndTheHeldOutLossFalls) {
  const LmBaseCache::Stats before = LmBaseCache::Global().stats();
  absl::StatusOr<SimulationResult> r = Run(WriteConfig("lm", *sha256_), "lm");
  ASSERT_THAT(r, IsOk());
  const LmBaseCache::Stats after = LmBaseCache::Global().stats();
  ASSERT_EQ(r->rows.size(), 4u);
  for (const RoundRow& row : r->rows) {
    EXPECT_EQ(row.selected, 6u);
    EXPECT_EQ(row.completed, 6u);
    EXPECT_GT(row.bytes_up, 0u);
    EXPECT_TRUE(std::isfinite(row.train_loss));
    EXPECT_TRUE(std::isfinite(row.test_loss));
  }
  // Falling, to well below the uniform guess over ~300 tokens (5.7 nats): 4.9 to 2.3 here.
  EXPECT_LT(r->rows[3].test_loss, r->rows[0].test_loss - 1);
  EXPECT_LT(r->rows[3].test_loss, 0.6 * std::log(300.0));
  // 24 trained tasks, one load of the base and of the tokenizer: every client's workload
  // shares the base the simulator pinned, with its own adapters.
  EXPECT_EQ(after.model_loads - before.model_loads, 1u);
  EXPECT_EQ(after.tokenizer_loads - before.tokenizer_loads, 1u);
  EXPECT_LE(after.hashes - before.hashes, 1u);
  EXPECT_GE(after.model_hits - before.model_hits, 24u);
  // A seed reproduces the run bit for bit, as for the other models.
  absl::StatusOr<SimulationResult> again = Run(WriteConfig("lm", *sha256_), "again");
  ASSERT_THAT(again, IsOk());
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(again->rows[i].train_loss, r->rows[i].train_loss) << i;
    EXPECT_EQ(again->rows[i].test_loss, r->rows[i].test_loss) << i;
  }
  // Each client's share of the file, as a real client's --data jsonl:FILE.
  for (int i = 0; i < 6; ++i) {
    EXPECT_TRUE(std::filesystem::exists(
        *dir_ / "lm" / "text" / absl::StrFormat("client-%05d.jsonl", i)));
  }
}

// Record-level DP-SGD on the adapters: every virtual client charges its own in-memory ledger
// for its training sequences and trains; without a budget every client refuses.
TEST_F(LmSimulationTest, RecordLevelDpChargesEachVirtualClientsOwnBudget) {
  const std::string dp =
      "[differential_privacy]\nmode = \"record\"\nnoise_multiplier = 0.8\nclip_norm = 1\n"
      "expected_batch_size = 2\n";
  const std::string with_budget =
      WriteConfig("lm_dp", *sha256_,
                  "base_checkpoint = \"base\"\nclients = 6\nthreads = 2\n"
                  "privacy_budget = \"epsilon=50,delta=1e-3\"\n");
  std::ofstream(with_budget, std::ios::app) << dp;
  absl::StatusOr<SimulationResult> r = Run(with_budget, "lm_dp");
  ASSERT_THAT(r, IsOk());
  ASSERT_EQ(r->rows.size(), 4u);
  for (const RoundRow& row : r->rows) {
    EXPECT_EQ(row.completed, row.selected);
    EXPECT_GT(row.steps, 0u);
    EXPECT_TRUE(std::isfinite(row.test_loss));
  }
  const std::string without = WriteConfig("lm_dp_none", *sha256_);
  std::ofstream(without, std::ios::app) << dp;
  absl::StatusOr<SimulationResult> refused = Run(without, "lm_dp_none");
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()), ::testing::HasSubstr("refused"));
}

TEST_F(LmSimulationTest, RefusesACheckpointThatIsNotTheRunsBase) {
  const std::string wrong(64, 'a');
  absl::StatusOr<SimulationResult> r = Run(WriteConfig("wrong", wrong), "wrong");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("simulation.base_checkpoint: "));
  EXPECT_THAT(r.status().message(), HasSubstr("has sha256 " + *sha256_));
  EXPECT_THAT(r.status().message(), HasSubstr("model.causal_lm.base_sha256 is " + wrong));
}

TEST_F(LmSimulationTest, ConfigErrorsNameTheSimulationKey) {
  const struct {
    const char* simulation;
    const char* error;
  } cases[] = {
      {"clients = 6\n", "simulation.base_checkpoint: is required"},
      {"base_checkpoint = \"base\"\nclients = 200\n",
       "simulation.clients: 200 virtual clients need at least as many records"},
      {"base_checkpoint = \"base\"\nclients = 6\npartition = \"dirichlet:0.5\"\n",
       "simulation.partition: text records have no labels"},
  };
  for (const auto& c : cases) {
    absl::StatusOr<SimulationResult> r = Run(WriteConfig("bad", *sha256_, c.simulation), "bad");
    ASSERT_FALSE(r.ok()) << c.simulation;
    EXPECT_THAT(r.status().message(), HasSubstr(c.error)) << r.status();
  }
  // The text dataset needs a language model.
  const std::string mlp = (*dir_ / "mlp.toml").string();
  std::ofstream(mlp) << "name = \"x\"\nrounds = 1\n[model]\narchitecture = \"mlp\"\n"
                     << "[simulation]\ndataset = \"jsonl:corpus.jsonl\"\nclients = 2\n";
  absl::StatusOr<SimulationResult> r = Run(mlp, "mlp");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("simulation.dataset: \"jsonl:FILE\" is text"));
}

}  // namespace
}  // namespace tessera::sim
