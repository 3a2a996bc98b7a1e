// The transformer against an independent reference: client/lm/testing/hf_reference.py
// writes tiny random checkpoints of each supported model_type in Hugging Face's layout with
// a plain PyTorch forward pass that follows transformers' modeling code, and its logits;
// Tessera's forward pass must match them to 1e-4. Then LoRA's algebra: B = 0 is the base
// model exactly, only adapters change in training, and FFA-LoRA's averaging is exact.
#include "client/lm/transformer/causal_lm.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "client/lm/checkpoint/hf_checkpoint.h"
#include "client/lm/checkpoint/peft_adapter.h"
#include "client/lm/testing/hf_reference_fixture.h"
#include "client/training/device.h"
#include "core/base/testing/status_matchers.h"
#include "core/model/safetensors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::lm {
namespace {

using ::testing::HasSubstr;

class ReferenceCheckpoints : public testing::HfReferenceFixture {
 protected:
  static std::vector<float> ReferenceLogits(const std::string& variant,
                                            const std::string& file) {
    absl::StatusOr<ArrayRecord> r = ReadSafetensorsFile(Path(variant) + "/" + file);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return {};
    const Tensor* t = r->Find("logits");
    EXPECT_NE(t, nullptr);
    if (t == nullptr) return {};
    auto v = t->values<float>();
    return std::vector<float>(v.begin(), v.end());
  }

  static void ExpectClose(const std::vector<float>& got, const std::vector<float>& want,
                          double tol) {
    ASSERT_EQ(got.size(), want.size());
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      worst = std::max(worst, std::fabs(double(got[i]) - double(want[i])));
    }
    EXPECT_LE(worst, tol);
  }

};

TEST_F(ReferenceCheckpoints, LogitsMatchTheReferenceForEveryModelType) {
  for (const std::string variant :
       {"llama", "llama_bias_tied", "mistral", "qwen2", "llama_bf16", "llama_sharded"}) {
    SCOPED_TRACE(variant);
    absl::StatusOr<std::unique_ptr<CausalLm>> lm = CausalLm::Load(Path(variant), std::nullopt);
    ASSERT_TRUE(lm.ok()) << lm.status();
    absl::StatusOr<std::vector<float>> logits = (*lm)->Logits(InputIds(variant));
    ASSERT_TRUE(logits.ok()) << logits.status();
    ExpectClose(*logits, ReferenceLogits(variant, "reference_logits.safetensors"), 1e-4);
  }
}

TEST_F(ReferenceCheckpoints, PeftAdapterLogitsMatchTheReference) {
  LoraConfig lora;
  lora.rank = 4;
  lora.alpha = 8;
  lora.target_modules = {"q_proj", "v_proj", "gate_proj"};
  absl::StatusOr<HfCheckpoint> ckpt = ReadHfCheckpoint(Path("llama_lora"));
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  absl::StatusOr<PeftAdapter> adapter =
      ReadPeftAdapter(Path("llama_lora") + "/adapter", ckpt->config);
  ASSERT_TRUE(adapter.ok()) << adapter.status();
  EXPECT_EQ(adapter->lora.rank, 4u);
  absl::StatusOr<std::unique_ptr<CausalLm>> lm = CausalLm::FromCheckpoint(*ckpt, adapter->lora);
  ASSERT_TRUE(lm.ok()) << lm.status();
  TESSERA_ASSERT_OK((*lm)->SetAdapter(adapter->adapter));
  absl::StatusOr<std::vector<float>> logits = (*lm)->Logits(InputIds("llama_lora"));
  ASSERT_TRUE(logits.ok()) << logits.status();
  ExpectClose(*logits, ReferenceLogits("llama_lora", "reference_logits_lora.safetensors"),
              1e-4);

  // Merging (W + alpha/r B A) gives the same function as the adapted model.
  absl::StatusOr<ArrayRecord> merged = (*lm)->MergedWeights();
  ASSERT_TRUE(merged.ok()) << merged.status();
  HfCheckpoint merged_ckpt{ckpt->dir, ckpt->config, *merged};
  absl::StatusOr<std::unique_ptr<CausalLm>> plain =
      CausalLm::FromCheckpoint(merged_ckpt, std::nullopt);
  ASSERT_TRUE(plain.ok()) << plain.status();
  absl::StatusOr<std::vector<float>> merged_logits = (*plain)->Logits(InputIds("llama_lora"));
  ASSERT_TRUE(merged_logits.ok());
  ExpectClose(*merged_logits,
              ReferenceLogits("llama_lora", "reference_logits_lora.safetensors"), 1e-4);
}

TEST_F(ReferenceCheckpoints, LoraWithZeroBIsExactlyTheBaseModel) {
  LoraConfig lora;
  lora.rank = 8;
  lora.target_modules = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                         "down_proj"};
  absl::StatusOr<std::unique_ptr<CausalLm>> base = CausalLm::Load(Path("qwen2"), std::nullopt);
  absl::StatusOr<std::unique_ptr<CausalLm>> adapted = CausalLm::Load(Path("qwen2"), lora);
  ASSERT_TRUE(base.ok() && adapted.ok());
  absl::StatusOr<std::vector<float>> a = (*base)->Logits(InputIds("qwen2"));
  absl::StatusOr<std::vector<float>> b = (*adapted)->Logits(InputIds("qwen2"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);  // bit-identical: the adapter adds exact zeros
}

std::vector<TokenizedExample> Examples(const std::vector<std::vector<int32_t>>& rows) {
  std::vector<TokenizedExample> out;
  for (const auto& r : rows) out.push_back({r, r});
  return out;
}

TEST_F(ReferenceCheckpoints, TrainingChangesOnlyTheAdapters) {
  LoraConfig lora;
  lora.rank = 4;
  lora.target_modules = {"q_proj", "v_proj"};
  absl::StatusOr<std::unique_ptr<CausalLm>> lm = CausalLm::Load(Path("llama"), lora);
  ASSERT_TRUE(lm.ok()) << lm.status();
  const std::vector<std::vector<int32_t>> ids = InputIds("llama");
  absl::StatusOr<std::vector<float>> before = (*lm)->Logits(ids);
  absl::StatusOr<ArrayRecord> initial = (*lm)->GetAdapter();
  ASSERT_TRUE(before.ok() && initial.ok());
  LmTrainOptions options;
  options.steps = 5;
  options.batch_size = 2;
  options.learning_rate = 1e-2;
  absl::StatusOr<LmTrainResult> r = (*lm)->Train(Examples(ids), options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->steps, 5u);
  absl::StatusOr<ArrayRecord> trained = (*lm)->GetAdapter();
  ASSERT_TRUE(trained.ok());
  for (size_t i = 0; i < trained->tensors.size(); ++i) {
    EXPECT_NE(trained->tensors[i].data(), initial->tensors[i].data())
        << trained->tensors[i].name() << " did not change";
  }
  // Restoring the initial adapters restores the initial function: the base did not move.
  TESSERA_ASSERT_OK((*lm)->SetAdapter(*initial));
  absl::StatusOr<std::vector<float>> after = (*lm)->Logits(ids);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*before, *after);
  // And the loss on what it trained on fell.
  EXPECT_GT((*lm)->num_trainable_parameters(), 0);
}

TEST_F(ReferenceCheckpoints, TrainingLowersTheLossAndEvaluateIsTokenMean) {
  LoraConfig lora;
  lora.rank = 8;
  lora.alpha = 16;
  absl::StatusOr<std::unique_ptr<CausalLm>> lm = CausalLm::Load(Path("mistral"), lora);
  ASSERT_TRUE(lm.ok()) << lm.status();
  const std::vector<TokenizedExample> data = Examples(InputIds("mistral"));
  absl::StatusOr<LmEvalResult> before = (*lm)->Evaluate(data);
  ASSERT_TRUE(before.ok());
  EXPECT_NEAR(before->perplexity, std::exp(before->loss), 1e-9);
  LmTrainOptions options;
  options.steps = 30;
  options.batch_size = 2;
  options.learning_rate = 1e-2;
  options.lr_schedule = "cosine";
  options.warmup_steps = 3;
  ASSERT_TRUE((*lm)->Train(data, options).ok());
  absl::StatusOr<LmEvalResult> after = (*lm)->Evaluate(data);
  ASSERT_TRUE(after.ok());
  EXPECT_LT(after->loss, before->loss - 0.1);
}

TEST_F(ReferenceCheckpoints, FfaLoraAveragingIsExactAndPlainLoraIsNot) {
  // With A frozen and shared, B -> B A is linear, so the mean of the clients' adapters is
  // the mean of their weight updates: merged(mean B) == mean(merged(B_i)). With A trained
  // too, mean(B) mean(A) != mean(B A) in general.
  for (bool freeze_a : {true, false}) {
    SCOPED_TRACE(freeze_a ? "FFA-LoRA" : "LoRA");
    LoraConfig lora;
    lora.rank = 4;
    lora.freeze_a = freeze_a;
    lora.init_seed = 7;
    absl::StatusOr<HfCheckpoint> ckpt = ReadHfCheckpoint(Path("llama"));
    ASSERT_TRUE(ckpt.ok());
    const std::vector<std::vector<int32_t>> ids = InputIds("llama");
    std::vector<ArrayRecord> adapters, merged;
    for (int client = 0; client < 2; ++client) {
      absl::StatusOr<std::unique_ptr<CausalLm>> lm = CausalLm::FromCheckpoint(*ckpt, lora);
      ASSERT_TRUE(lm.ok());
      LmTrainOptions options;
      options.steps = 3;
      options.batch_size = 1;
      options.learning_rate = 5e-2;
      options.seed = static_cast<uint64_t>(client);
      ASSERT_TRUE((*lm)->Train(Examples({ids[static_cast<size_t>(client)]}), options).ok());
      adapters.push_back(*(*lm)->GetAdapter());
      merged.push_back(*(*lm)->MergedWeights());
    }
    ArrayRecord mean = adapters[0];
    for (size_t t = 0; t < mean.tensors.size(); ++t) {
      auto out = mean.tensors[t].mutable_values<float>();
      auto other = adapters[1].tensors[t].values<float>();
      for (size_t i = 0; i < out.size(); ++i) out[i] = 0.5f * (out[i] + other[i]);
    }
    absl::StatusOr<std::unique_ptr<CausalLm>> global = CausalLm::FromCheckpoint(*ckpt, lora);
    ASSERT_TRUE(global.ok());
    TESSERA_ASSERT_OK((*global)->SetAdapter(mean));
    absl::StatusOr<ArrayRecord> global_merged = (*global)->MergedWeights();
    ASSERT_TRUE(global_merged.ok());
    double worst = 0;
    for (size_t t = 0; t < global_merged->tensors.size(); ++t) {
      auto g = global_merged->tensors[t].values<float>();
      auto m0 = merged[0].tensors[t].values<float>();
      auto m1 = merged[1].tensors[t].values<float>();
      for (size_t i = 0; i < g.size(); ++i) {
        worst = std::max(worst, std::fabs(double(g[i]) - 0.5 * (double(m0[i]) + m1[i])));
      }
    }
    if (freeze_a) {
      EXPECT_LT(worst, 1e-6);
    } else {
      EXPECT_GT(worst, 1e-5);
    }
  }
}

TEST_F(ReferenceCheckpoints, SharedBaseModelsHaveTheirOwnAdapters) {
  LoraConfig lora;
  absl::StatusOr<std::unique_ptr<CausalLm>> a = CausalLm::Load(Path("llama"), lora);
  ASSERT_TRUE(a.ok());
  absl::StatusOr<std::unique_ptr<CausalLm>> b = (*a)->ShareBase();
  ASSERT_TRUE(b.ok()) << b.status();
  const std::vector<std::vector<int32_t>> ids = InputIds("llama");
  LmTrainOptions options;
  options.steps = 2;
  options.batch_size = 2;
  ASSERT_TRUE((*b)->Train(Examples(ids), options).ok());
  absl::StatusOr<ArrayRecord> ad_a = (*a)->GetAdapter();
  absl::StatusOr<ArrayRecord> ad_b = (*b)->GetAdapter();
  ASSERT_TRUE(ad_a.ok() && ad_b.ok());
  EXPECT_NE(ad_a->tensors.back().data(), ad_b->tensors.back().data());
  // a's B is still zero: a is still the base model.
  for (float v : ad_a->tensors.back().values<float>()) EXPECT_EQ(v, 0.0f);
}

TEST_F(ReferenceCheckpoints, GreedyGenerationWithTheCacheEqualsRecomputation) {
  absl::StatusOr<std::unique_ptr<CausalLm>> lm = CausalLm::Load(Path("qwen2"), std::nullopt);
  ASSERT_TRUE(lm.ok());
  std::vector<int32_t> prompt = InputIds("qwen2")[0];
  GenerateOptions options;
  options.max_new_tokens = 6;
  options.stop_ids = {-1};
  absl::StatusOr<std::vector<int32_t>> out = (*lm)->Generate(prompt, options);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), 6u);
  // Without a cache: the arg-max of the last position's logits, one token at a time.
  std::vector<int32_t> seq = prompt;
  const int64_t vocab = (*lm)->config().vocab_size;
  for (int32_t expected : *out) {
    absl::StatusOr<std::vector<float>> logits = (*lm)->Logits({seq});
    ASSERT_TRUE(logits.ok());
    const float* last = logits->data() + (seq.size() - 1) * static_cast<size_t>(vocab);
    const int32_t best = static_cast<int32_t>(std::max_element(last, last + vocab) - last);
    EXPECT_EQ(best, expected);
    seq.push_back(best);
  }
  // Nucleus sampling with top_p -> 0 keeps only the most likely token: greedy again.
  options.temperature = 1.0;
  options.top_p = 1e-6;
  absl::StatusOr<std::vector<int32_t>> nucleus = (*lm)->Generate(prompt, options);
  ASSERT_TRUE(nucleus.ok());
  EXPECT_EQ(*nucleus, *out);
}

TEST_F(ReferenceCheckpoints, GradientCheckpointingGivesTheSameTraining) {
  LoraConfig lora;
  lora.dropout = 0.1;
  std::vector<ArrayRecord> results;
  for (bool checkpointing : {false, true}) {
    LoadOptions load;
    load.gradient_checkpointing = checkpointing;
    absl::StatusOr<std::unique_ptr<CausalLm>> lm = CausalLm::Load(Path("llama"), lora, load);
    ASSERT_TRUE(lm.ok());
    LmTrainOptions options;
    options.steps = 3;
    options.batch_size = 2;
    options.seed = 5;
    ASSERT_TRUE((*lm)->Train(Examples(InputIds("llama")), options).ok());
    results.push_back(*(*lm)->GetAdapter());
  }
  for (size_t t = 0; t < results[0].tensors.size(); ++t) {
    auto a = results[0].tensors[t].values<float>();
    auto b = results[1].tensors[t].values<float>();
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-6);
  }
}

// At 2 threads Train splits its products, attention, SwiGLU and loss over the split pool
// (thread_split.h); at 1 thread nothing is split. 8 sequences of 200 tokens make every kind of
// split happen at 2 threads (1,600 rows: the products by rows, SwiGLU in 2 parts of at least
// 682 rows of 48, attention by key/value head). Each split part computes its rows with the
// same kernels as the whole, so the trained adapters and the loss are the same.
TEST_F(ReferenceCheckpoints, TrainingOnTwoThreadsGivesWhatOneThreadGives) {
  if (dlsym(RTLD_DEFAULT, "openblas_get_num_threads") == nullptr) {
    GTEST_SKIP() << "LibTorch does not run on OpenBLAS: nothing is split";
  }
  std::vector<std::vector<int32_t>> rows(8, std::vector<int32_t>(200));
  uint32_t x = 12345;
  for (auto& row : rows) {
    for (int32_t& id : row) {
      x = x * 1664525u + 1013904223u;
      id = static_cast<int32_t>((x >> 8) % 61);  // hf_reference.py's VOCAB
    }
  }
  const int before = TorchThreads();
  std::vector<ArrayRecord> adapters;
  std::vector<double> losses;
  for (int threads : {1, 2}) {
    ASSERT_TRUE(SetTorchThreads(threads).ok());
    absl::StatusOr<std::unique_ptr<CausalLm>> lm = CausalLm::Load(Path("llama"), LoraConfig{});
    ASSERT_TRUE(lm.ok()) << lm.status();
    LmTrainOptions options;
    options.steps = 3;
    options.batch_size = 8;
    options.seed = 7;
    absl::StatusOr<LmTrainResult> r = (*lm)->Train(Examples(rows), options);
    ASSERT_TRUE(r.ok()) << r.status();
    losses.push_back(r->train_loss);
    adapters.push_back(*(*lm)->GetAdapter());
  }
  ASSERT_TRUE(SetTorchThreads(before).ok());
  EXPECT_EQ(losses[0], losses[1]);
  ASSERT_EQ(adapters[0].tensors.size(), adapters[1].tensors.size());
  for (size_t t = 0; t < adapters[0].tensors.size(); ++t) {
    EXPECT_EQ(adapters[0].tensors[t].values<float>(), adapters[1].tensors[t].values<float>())
        << adapters[0].tensors[t].name();
  }
}

TEST_F(ReferenceCheckpoints, BadInputIsRefusedByName) {
  absl::StatusOr<std::unique_ptr<CausalLm>> lm = CausalLm::Load(Path("llama"), LoraConfig{});
  ASSERT_TRUE(lm.ok());
  EXPECT_THAT((*lm)->Logits({{1, 2}, {3}}), StatusIs(absl::StatusCode::kInvalidArgument,
                                                     HasSubstr("sequence 1 has 1 tokens")));
  EXPECT_THAT((*lm)->Logits({{1, 100000}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("outside the vocabulary")));
  ArrayRecord adapter = *(*lm)->GetAdapter();
  adapter.tensors.pop_back();
  EXPECT_THAT((*lm)->SetAdapter(adapter),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is missing")));
  LmTrainOptions options;
  options.lr_schedule = "exponential";
  EXPECT_THAT((*lm)->Train(Examples({{1, 2, 3}}), options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("lr_schedule")));
  EXPECT_THAT(CausalLm::Load(Path("llama"), LoraConfig{}, {.device = "tpu"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ScheduledLearningRate, FollowsTransformersSchedules) {
  // Hand-derived: warm-up 10 of 110 steps, base 1.
  EXPECT_DOUBLE_EQ(*ScheduledLearningRate("cosine", 1, 5, 10, 110), 0.5);
  EXPECT_DOUBLE_EQ(*ScheduledLearningRate("cosine", 1, 10, 10, 110), 1.0);
  EXPECT_NEAR(*ScheduledLearningRate("cosine", 1, 60, 10, 110), 0.5, 1e-12);
  EXPECT_NEAR(*ScheduledLearningRate("cosine", 1, 110, 10, 110), 0.0, 1e-12);
  EXPECT_DOUBLE_EQ(*ScheduledLearningRate("linear", 2, 35, 10, 110), 1.5);
  EXPECT_DOUBLE_EQ(*ScheduledLearningRate("constant", 3, 1000, 0, 10), 3);
}

}  // namespace
}  // namespace tessera::lm
