// CausalLm::Train with record-level DP-SGD (LmTrainOptions::dp_sgd) on the tiny Llama of
// client/lm/testing/hf_reference.py. The references are independent of the code under test:
// gradients are central finite differences of the test's own loss (the mean of each
// example's token-mean cross-entropy, written here over Logits); the noise and sampling
// bounds are properties of the normal and binomial distributions, derived in each test.
//
// One AdamW step with learning_rate = adam_epsilon = E >> |g| moves each coordinate by
// -E g / (|g| + E) = -g (1 - O(|g| / E)) (the bias corrections cancel at step 1), so a
// one-step change of the adapters reads back the gradient the optimizer was given.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "client/lm/transformer/causal_lm.h"
#include "client/lm/testing/hf_reference_fixture.h"
#include "client/lm/transformer/lm_dp_sgd.h"
#include "core/base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::lm {
namespace {

using ::testing::HasSubstr;

const std::string kSeed(32, '\x5a');

class LmDpSgd : public testing::HfReferenceFixture {
 protected:
  static std::string Path() { return HfReferenceFixture::Path("llama"); }
  static std::vector<std::vector<int32_t>> InputIds() {
    return HfReferenceFixture::InputIds("llama");
  }

  // The llama checkpoint with LoRA on `targets` and every adapter value drawn from
  // N(0, 0.1^2) (so that A and B both have non-zero gradients).
  static std::unique_ptr<CausalLm> Model(uint32_t rank, std::vector<std::string> targets,
                                         bool checkpointing = false) {
    LoraConfig lora;
    lora.rank = rank;
    lora.alpha = 2.0 * rank;
    lora.target_modules = std::move(targets);
    LoadOptions load;
    load.gradient_checkpointing = checkpointing;
    absl::StatusOr<std::unique_ptr<CausalLm>> lm = CausalLm::Load(Path(), lora, load);
    EXPECT_TRUE(lm.ok()) << lm.status();
    if (!lm.ok()) return nullptr;
    absl::StatusOr<ArrayRecord> adapter = (*lm)->GetAdapter();
    EXPECT_TRUE(adapter.ok());
    std::mt19937 gen(7);
    std::normal_distribution<float> normal(0.0f, 0.1f);
    for (Tensor& t : adapter->tensors) {
      for (float& v : t.mutable_values<float>()) v = normal(gen);
    }
    EXPECT_TRUE((*lm)->SetAdapter(*adapter).ok());
    return *std::move(lm);
  }

  // Two examples of different lengths and target counts (5 and 2 targets), so the mean of
  // per-example token means differs from the token mean of the pair.
  static std::vector<TokenizedExample> TwoExamples() {
    const std::vector<std::vector<int32_t>> ids = InputIds();
    TokenizedExample a{ids[0], ids[0]};
    a.labels[3] = kIgnoreLabel;
    std::vector<int32_t> shorter(ids[1].begin(), ids[1].begin() + 3);
    TokenizedExample b{shorter, shorter};
    return {a, b};
  }
};

std::vector<double> Flatten(const ArrayRecord& r) {
  std::vector<double> out;
  for (const Tensor& t : r.tensors) {
    absl::Span<const float> v = t.values<float>();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

std::vector<double> Adapter(CausalLm& lm) {
  absl::StatusOr<ArrayRecord> r = lm.GetAdapter(/*trainable_only=*/true);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? Flatten(*r) : std::vector<double>{};
}

// Sets trainable adapter coordinate `index` to `value`.
void SetCoordinate(CausalLm& lm, size_t index, float value) {
  absl::StatusOr<ArrayRecord> r = lm.GetAdapter(/*trainable_only=*/true);
  ASSERT_TRUE(r.ok());
  for (Tensor& t : r->tensors) {
    absl::Span<float> v = t.mutable_values<float>();
    if (index < v.size()) {
      v[index] = value;
      break;
    }
    index -= v.size();
  }
  TESSERA_ASSERT_OK(lm.SetAdapter(*r));
}

// The test's own statistics of one example over Logits' float32 values, in double: the mean
// over targets labels[t + 1] != kIgnoreLabel of -log softmax(logits[t])[labels[t + 1]], how
// many targets are the first arg-max of their row, and how many targets there are.
struct ExampleStats {
  double loss = 0;
  int hits = 0;
  int count = 0;
};

ExampleStats Stats(CausalLm& lm, const TokenizedExample& x) {
  absl::StatusOr<std::vector<float>> logits = lm.Logits({x.input_ids});
  EXPECT_TRUE(logits.ok()) << logits.status();
  const size_t vocab = logits->size() / x.input_ids.size();
  ExampleStats s;
  double sum = 0;
  for (size_t t = 0; t + 1 < x.input_ids.size(); ++t) {
    const int32_t target = x.labels[t + 1];
    if (target == kIgnoreLabel) continue;
    const float* row = logits->data() + t * vocab;
    size_t best = 0;
    for (size_t v = 1; v < vocab; ++v) best = row[v] > row[best] ? v : best;
    const double top = row[best];
    double z = 0;
    for (size_t v = 0; v < vocab; ++v) z += std::exp(double(row[v]) - top);
    sum += top + std::log(z) - double(row[target]);
    s.hits += best == static_cast<size_t>(target) ? 1 : 0;
    ++s.count;
  }
  s.loss = s.count > 0 ? sum / s.count : 0;
  return s;
}

double ExampleLoss(CausalLm& lm, const TokenizedExample& x) { return Stats(lm, x).loss; }

// One step, q = 1 (expected_batch_size = n), read back through AdamW with lr = eps = E.
LmTrainOptions ReadBackStep(double noise_multiplier, double clip, double batch, double e) {
  LmTrainOptions o;
  o.steps = 1;
  o.learning_rate = e;
  o.adam_epsilon = e;
  o.dp_sgd = DpSgdOptions{};
  o.dp_sgd->noise_multiplier = noise_multiplier;
  o.dp_sgd->clip_norm = clip;
  o.dp_sgd->expected_batch_size = batch;
  o.dp_sgd->random_seed = kSeed;
  return o;
}

// -(change of the trainable adapters) over one Train call: the gradient AdamW was given.
std::vector<double> StepGradient(CausalLm& lm, const std::vector<TokenizedExample>& data,
                                 const LmTrainOptions& o, LmTrainResult* result = nullptr) {
  const std::vector<double> before = Adapter(lm);
  absl::StatusOr<LmTrainResult> r = lm.Train(data, o);
  EXPECT_TRUE(r.ok()) << r.status();
  if (r.ok() && result != nullptr) *result = *r;
  std::vector<double> g = Adapter(lm);
  for (size_t i = 0; i < g.size(); ++i) g[i] = before[i] - g[i];
  return g;
}

double Norm(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

TEST_F(LmDpSgd, TheStepIsTheMeanOfPerExampleGradientsOfTokenMeanLosses) {
  std::unique_ptr<CausalLm> lm = Model(4, {"q_proj", "v_proj", "down_proj"});
  ASSERT_NE(lm, nullptr);
  const std::vector<TokenizedExample> data = TwoExamples();
  const std::vector<double> theta = Adapter(*lm);
  // Reference: central differences of (L_a + L_b) / 2 at theta, on the 24 coordinates
  // spread over every tensor, with h = 1e-2 (the loss is ~4 with float32 logits, so the
  // rounding error is ~1e-6 / h = 1e-4; the truncation error h^2 f''' / 6 is of that order;
  // 9e-6 was seen).
  std::vector<size_t> coords;
  for (size_t k = 0; k < 24; ++k) coords.push_back(k * theta.size() / 24 + k);
  const double h = 1e-2;
  std::vector<double> reference;
  for (size_t c : coords) {
    double f[2];
    for (int s = 0; s < 2; ++s) {
      SetCoordinate(*lm, c, static_cast<float>(theta[c] + (s == 0 ? h : -h)));
      f[s] = (ExampleLoss(*lm, data[0]) + ExampleLoss(*lm, data[1])) / 2;
    }
    SetCoordinate(*lm, c, static_cast<float>(theta[c]));
    reference.push_back((f[0] - f[1]) / (2 * h));
  }
  // DP-SGD with q = 1, no clipping (C = 1e4) and noise z C = 1e-8.
  LmTrainResult r;
  const std::vector<double> g = StepGradient(*lm, data, ReadBackStep(1e-12, 1e4, 2, 1e6), &r);
  EXPECT_EQ(r.steps, 1u);
  EXPECT_EQ(r.sampled_examples, 2u);
  EXPECT_EQ(r.clipped_examples, 0u);
  EXPECT_EQ(r.target_tokens, 7u);
  EXPECT_DOUBLE_EQ(r.sampling_rate, 1.0);
  double worst = 0, scale = 0;
  for (size_t k = 0; k < coords.size(); ++k) {
    worst = std::max(worst, std::abs(g[coords[k]] - reference[k]));
    scale = std::max(scale, std::abs(reference[k]));
  }
  EXPECT_GT(scale, 1e-2);
  EXPECT_LT(worst, 2e-4) << "largest reference component " << scale;
  // And it is not the token mean of the pair (what plain training would use): that
  // differs by more than the tolerance somewhere.
  std::vector<double> token_mean;
  for (size_t c : coords) {
    double f[2];
    for (int s = 0; s < 2; ++s) {
      SetCoordinate(*lm, c, static_cast<float>(theta[c] + (s == 0 ? h : -h)));
      f[s] = (5 * ExampleLoss(*lm, data[0]) + 2 * ExampleLoss(*lm, data[1])) / 7;
    }
    SetCoordinate(*lm, c, static_cast<float>(theta[c]));
    token_mean.push_back((f[0] - f[1]) / (2 * h));
  }
  double apart = 0;
  for (size_t k = 0; k < coords.size(); ++k) {
    apart = std::max(apart, std::abs(token_mean[k] - reference[k]));
  }
  EXPECT_GT(apart, 1e-2);
}

// C below every example's gradient norm: each example's contribution is its gradient over
// all trainable tensors together scaled to norm C (C / (||g|| + 1e-6) exactly), so a
// one-example step has norm C / B and the direction of the unclipped gradient, and a
// two-example step is the mean of the two clipped ones.
TEST_F(LmDpSgd, EachExampleIsClippedJointlyToClipNorm) {
  const std::vector<TokenizedExample> data = TwoExamples();
  const double clip = 1e-2;
  std::vector<std::vector<double>> unclipped, clipped;
  for (size_t e = 0; e < 2; ++e) {
    std::unique_ptr<CausalLm> lm = Model(4, {"q_proj", "v_proj", "down_proj"});
    ASSERT_NE(lm, nullptr);
    unclipped.push_back(StepGradient(*lm, {data[e]}, ReadBackStep(1e-12, 1e4, 1, 1e6)));
    lm = Model(4, {"q_proj", "v_proj", "down_proj"});
    LmTrainResult r;
    clipped.push_back(StepGradient(*lm, {data[e]}, ReadBackStep(1e-10, clip, 1, 1e6), &r));
    EXPECT_EQ(r.clipped_examples, 1u);
    const double full = Norm(unclipped[e]);
    ASSERT_GT(full, 10 * clip);
    EXPECT_NEAR(Norm(clipped[e]) / clip, 1.0, 1e-3);
    double dot = 0;
    for (size_t i = 0; i < unclipped[e].size(); ++i) dot += unclipped[e][i] * clipped[e][i];
    EXPECT_NEAR(dot / (full * Norm(clipped[e])), 1.0, 1e-4);
  }
  std::unique_ptr<CausalLm> lm = Model(4, {"q_proj", "v_proj", "down_proj"});
  LmTrainResult r;
  const std::vector<double> both = StepGradient(*lm, data, ReadBackStep(1e-10, clip, 2, 1e6), &r);
  EXPECT_EQ(r.clipped_examples, 2u);
  double worst = 0;
  for (size_t i = 0; i < both.size(); ++i) {
    worst = std::max(worst, std::abs(both[i] - (clipped[0][i] + clipped[1][i]) / 2));
  }
  EXPECT_LT(worst, 1e-6);
}

// The clip itself on hand-made gradients: ||(3, 4), (12)|| = 13 over both tensors.
TEST(LmDpSgdStep, ClipsTheJointNormAndSkipsUndefinedTensors) {
  std::vector<at::Tensor> params = {torch::zeros({2}), torch::zeros({1}), torch::zeros({3})};
  DpSgdOptions dp;
  dp.noise_multiplier = 1;
  dp.clip_norm = 1;
  dp.expected_batch_size = 1;
  dp.random_seed = kSeed;
  absl::StatusOr<internal::DpSgdStep> step = internal::DpSgdStep::Create(dp, 1, params);
  TESSERA_ASSERT_OK(step);
  step->Sample();
  const double norm =
      step->AddClipped({torch::tensor({3.0f, 4.0f}), torch::tensor({12.0f}), at::Tensor()});
  EXPECT_DOUBLE_EQ(norm, 13.0);
  const double f = 1.0 / (13.0 + 1e-6);
  EXPECT_NEAR(step->sums()[0][0].item<double>(), 3 * f, 1e-7);
  EXPECT_NEAR(step->sums()[0][1].item<double>(), 4 * f, 1e-7);
  EXPECT_NEAR(step->sums()[1][0].item<double>(), 12 * f, 1e-7);
  EXPECT_EQ(step->sums()[2].abs().sum().item<double>(), 0.0);
  // Below the clip: added unchanged.
  EXPECT_NEAR(step->AddClipped({torch::tensor({0.3f, 0.4f}), at::Tensor(), at::Tensor()}), 0.5,
              1e-7);
  EXPECT_NEAR(step->sums()[0][0].item<double>(), 3 * f + 0.3, 1e-7);
}

// With z C = 10^4 and B = 2 the clipped sum (norm <= 2 C) is negligible: every coordinate
// of the step is N(0, (z C / B)^2), sigma = 5000. Over N >= 29,000 coordinates the sample
// stddev has relative standard error 1 / sqrt(2N) < 0.42% and the fraction within one sigma
// is 0.6827 (erf(1 / sqrt 2)) with standard error sqrt(0.6827 * 0.3173 / N) < 0.28%; the
// bounds are 5 standard errors.
TEST_F(LmDpSgd, NoiseHasStandardDeviationZTimesCOverB) {
  std::unique_ptr<CausalLm> lm = Model(
      32, {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"});
  ASSERT_NE(lm, nullptr);
  const double sigma = 1e4 * 1.0 / 2;
  const std::vector<double> step =
      StepGradient(*lm, TwoExamples(), ReadBackStep(1e4, 1.0, 2, 1e9));
  const double n = static_cast<double>(step.size());
  ASSERT_GT(n, 29000);
  double sum = 0, sq = 0, within = 0;
  for (double v : step) {
    sum += v;
    sq += v * v;
    within += std::abs(v) < sigma;
  }
  EXPECT_LT(std::abs(sum / n), 5 * sigma / std::sqrt(n));
  EXPECT_NEAR(std::sqrt(sq / n) / sigma, 1.0, 5 / std::sqrt(2 * n));
  EXPECT_NEAR(within / n, 0.6827, 5 * std::sqrt(0.6827 * 0.3173 / n));
}

// q = 2 / 20: a step's sample size is Binomial(20, 0.1): mean 2, variance 1.8, fourth
// central moment nq(1-q)(1 + 3(n-2)q(1-q)) = 10.548. Over 400 steps the sample mean has
// standard error sqrt(1.8 / 400) = 0.067 and the sample variance
// sqrt((10.548 - 1.8^2 * 17/19) / 400) = 0.135; a fixed-size batch would have variance 0.
TEST_F(LmDpSgd, SamplingIsPoissonWithRateBOverN) {
  std::unique_ptr<CausalLm> lm = Model(2, {"q_proj"});
  ASSERT_NE(lm, nullptr);
  std::vector<TokenizedExample> data;
  for (int i = 0; i < 10; ++i) {
    for (const TokenizedExample& x : TwoExamples()) data.push_back(x);
  }
  LmTrainOptions o = ReadBackStep(1.0, 1.0, 2, 1e-6);
  o.adam_epsilon = 1e-8;
  o.steps = 400;
  std::vector<double> sizes;
  o.dp_sgd->on_sample = [&](uint64_t s) { sizes.push_back(static_cast<double>(s)); };
  absl::StatusOr<LmTrainResult> r = lm->Train(data, o);
  TESSERA_ASSERT_OK(r);
  EXPECT_EQ(r->steps, 400u);
  EXPECT_DOUBLE_EQ(r->sampling_rate, 0.1);
  ASSERT_EQ(sizes.size(), 400u);
  double sum = 0, total = 0;
  for (double s : sizes) sum += s;
  const double mean = sum / 400;
  for (double s : sizes) total += (s - mean) * (s - mean);
  EXPECT_NEAR(mean, 2.0, 5 * 0.067);
  EXPECT_NEAR(total / 399, 1.8, 5 * 0.135);
  EXPECT_EQ(r->sampled_examples, static_cast<uint64_t>(sum));
}

TEST_F(LmDpSgd, SeededRunsRepeatAndCheckpointingGivesTheSameStep) {
  const std::vector<TokenizedExample> data = TwoExamples();
  LmTrainOptions o = ReadBackStep(0.5, 1.0, 1, 1e-2);
  o.adam_epsilon = 1e-8;
  o.steps = 3;
  std::vector<std::vector<double>> runs;
  for (bool checkpointing : {false, false, true}) {
    std::unique_ptr<CausalLm> lm = Model(4, {"q_proj", "v_proj"}, checkpointing);
    ASSERT_NE(lm, nullptr);
    TESSERA_ASSERT_OK(lm->Train(data, o));
    runs.push_back(Adapter(*lm));
  }
  EXPECT_EQ(runs[0], runs[1]);
  for (size_t i = 0; i < runs[0].size(); ++i) ASSERT_NEAR(runs[0][i], runs[2][i], 1e-5) << i;
  // Without a seed the noise is fresh.
  o.dp_sgd->random_seed.clear();
  std::unique_ptr<CausalLm> lm = Model(4, {"q_proj", "v_proj"});
  TESSERA_ASSERT_OK(lm->Train(data, o));
  EXPECT_NE(Adapter(*lm), runs[0]);
}

TEST_F(LmDpSgd, EvaluateIsTheTokenMeanCrossEntropyAndArgMaxOfLogits) {
  // Evaluate's loss (the vocabulary-chunked cross-entropy, fused_ops.h) against the test's
  // own loss over Logits, token-weighted over the two examples; its accuracy against the
  // arg-max of Logits. Batched (the shorter example padded) and one example at a time.
  std::unique_ptr<CausalLm> lm = Model(4, {"q_proj", "v_proj"});
  ASSERT_NE(lm, nullptr);
  const std::vector<TokenizedExample> data = TwoExamples();
  double loss = 0;
  int hits = 0;
  int count = 0;
  for (const TokenizedExample& x : data) {
    const ExampleStats s = Stats(*lm, x);
    loss += s.loss * s.count;
    hits += s.hits;
    count += s.count;
  }
  ASSERT_EQ(count, 7);
  for (uint32_t batch : {1u, 2u}) {
    absl::StatusOr<LmEvalResult> r = lm->Evaluate(data, batch);
    TESSERA_ASSERT_OK(r);
    EXPECT_EQ(r->target_tokens, 7u);
    EXPECT_NEAR(r->loss, loss / count, 1e-5 * loss / count) << batch;
    EXPECT_DOUBLE_EQ(r->accuracy, static_cast<double>(hits) / count) << batch;
  }
}

TEST_F(LmDpSgd, LearnsWithModestNoise) {
  std::unique_ptr<CausalLm> lm = Model(8, {"q_proj", "v_proj", "up_proj", "down_proj"});
  ASSERT_NE(lm, nullptr);
  std::vector<TokenizedExample> data;
  for (int i = 0; i < 8; ++i) {
    for (const TokenizedExample& x : TwoExamples()) data.push_back(x);
  }
  absl::StatusOr<LmEvalResult> before = lm->Evaluate(data);
  ASSERT_TRUE(before.ok());
  LmTrainOptions o = ReadBackStep(0.3, 1.0, 8, 1e-2);
  o.adam_epsilon = 1e-8;
  o.steps = 40;
  absl::StatusOr<LmTrainResult> r = lm->Train(data, o);
  TESSERA_ASSERT_OK(r);
  absl::StatusOr<LmEvalResult> after = lm->Evaluate(data);
  ASSERT_TRUE(after.ok());
  EXPECT_LT(after->loss, before->loss - 0.1) << before->loss << " -> " << after->loss;
}

TEST_F(LmDpSgd, MaxGradNormClipsTheNoisedGradient) {
  // Post-processing: with max_grad_norm the noised mean gradient (here ~N(0, 5000^2) per
  // coordinate) is scaled to that norm before AdamW; read back it has norm max_grad_norm.
  std::unique_ptr<CausalLm> lm = Model(4, {"q_proj"});
  ASSERT_NE(lm, nullptr);
  LmTrainOptions o = ReadBackStep(1e4, 1.0, 2, 1e6);
  o.max_grad_norm = 0.5;
  const std::vector<double> g = StepGradient(*lm, TwoExamples(), o);
  EXPECT_NEAR(Norm(g), 0.5, 1e-3);
}

TEST_F(LmDpSgd, BadOptionsAreRefused) {
  std::unique_ptr<CausalLm> lm = Model(2, {"q_proj"});
  ASSERT_NE(lm, nullptr);
  const std::vector<TokenizedExample> data = TwoExamples();
  struct Case {
    double z, c, b;
    uint32_t physical;
    std::string seed, message;
  };
  const Case cases[] = {
      {0, 1, 1, 8, kSeed, "noise_multiplier"},       {1, -1, 1, 8, kSeed, "clip_norm"},
      {1, INFINITY, 1, 8, kSeed, "clip_norm"},       {NAN, 1, 1, 8, kSeed, "noise_multiplier"},
      {1, 1, 0.5, 8, kSeed, "expected_batch_size"},  {1, 1, 3, 8, kSeed, "expected_batch_size"},
      {1, 1, 1, 0, kSeed, "max_physical_batch"},     {1, 1, 1, 8, "short", "32"},
  };
  const std::vector<double> before = Adapter(*lm);
  for (const Case& c : cases) {
    LmTrainOptions o = ReadBackStep(c.z, c.c, c.b, 1e-3);
    o.dp_sgd->max_physical_batch = c.physical;
    o.dp_sgd->random_seed = c.seed;
    absl::StatusOr<LmTrainResult> r = lm->Train(data, o);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.message));
  }
  EXPECT_EQ(Adapter(*lm), before);
}

// Informative: examples per second with and without DP-SGD (printed, not checked).
TEST_F(LmDpSgd, Throughput) {
  std::vector<TokenizedExample> data;
  for (int i = 0; i < 32; ++i) {
    for (const TokenizedExample& x : TwoExamples()) data.push_back(x);
  }
  for (bool dp : {false, true}) {
    std::unique_ptr<CausalLm> lm = Model(8, {"q_proj", "k_proj", "v_proj", "o_proj"});
    ASSERT_NE(lm, nullptr);
    LmTrainOptions o = ReadBackStep(1.0, 1.0, 16, 1e-3);
    o.adam_epsilon = 1e-8;
    o.batch_size = 16;
    o.steps = 20;
    if (!dp) o.dp_sgd.reset();
    absl::StatusOr<LmTrainResult> r = lm->Train(data, o);
    TESSERA_ASSERT_OK(r);
    const double examples = dp ? static_cast<double>(r->sampled_examples) : 16.0 * 20;
    std::printf("%s: %.0f examples/s (%.3f s)\n", dp ? "DP-SGD" : "plain", examples / r->seconds,
                r->seconds);
  }
}

}  // namespace
}  // namespace tessera::lm
