// LocalModel::Train with record-level DP-SGD: the noise's standard deviation, Poisson
// sampling, the clip's bound on the update, physical micro-batches, the strategy terms, and
// that it still learns. Reference values are properties of the normal and binomial
// distributions, derived by hand in each test.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "client/training/local_model.h"
#include "client/training/testing/synthetic_images.h"
#include "client/training/testing/tiny_torchscript.h"
#include "core/base/testing/status_matchers.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;

const std::string kSeed(32, '\x5a');

std::vector<double> Flatten(const ArrayRecord& r) {
  std::vector<double> out;
  for (const Tensor& t : r.tensors) {
    absl::Span<const float> v = t.values<float>();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

// w_after - w_before over every parameter.
std::vector<double> Change(LocalModel& m, const Dataset& data, const TrainOptions& options) {
  absl::StatusOr<ArrayRecord> before = m.GetWeights();
  EXPECT_TRUE(before.ok());
  absl::StatusOr<TrainResult> r = m.Train(data, options);
  EXPECT_TRUE(r.ok()) << r.status();
  absl::StatusOr<ArrayRecord> after = m.GetWeights();
  EXPECT_TRUE(after.ok());
  std::vector<double> a = Flatten(*before), b = Flatten(*after);
  for (size_t i = 0; i < a.size(); ++i) b[i] -= a[i];
  return b;
}

TrainOptions OneStep(double noise_multiplier, double clip, double batch) {
  TrainOptions o;
  o.epochs = 1;
  o.max_steps = 1;
  o.momentum = 0;
  o.learning_rate = batch;  // the step is then -(clipped sum + noise)
  o.dp_sgd = DpSgdOptions{};
  o.dp_sgd->noise_multiplier = noise_multiplier;
  o.dp_sgd->clip_norm = clip;
  o.dp_sgd->expected_batch_size = batch;
  o.dp_sgd->random_seed = kSeed;
  return o;
}

// With z C = 10^4 the clipped sum (norm <= 40 C) is negligible: each coordinate of the step
// is N(0, (z C)^2). For N = 199,210 coordinates the sample stddev has a relative standard
// error 1/sqrt(2N) = 0.16% and the fraction within one stddev is 0.6827 (erf(1/sqrt 2)) with
// standard error sqrt(0.6827 * 0.3173 / N) = 0.10%.
TEST(DpSgdTest, NoiseHasTheStatedStandardDeviation) {
  auto m = LocalModel::CreateBuiltin("mlp", 1);
  TESSERA_ASSERT_OK(m);
  const double sigma = 1e4;
  std::vector<double> step = Change(**m, SeparableImages(4, 1), OneStep(1e4, 1.0, 4));
  ASSERT_EQ(step.size(), 199210u);
  double sum = 0, sq = 0;
  size_t within = 0;
  for (double v : step) {
    sum += v;
    sq += v * v;
    within += std::abs(v) < sigma;
  }
  const double n = static_cast<double>(step.size());
  EXPECT_LT(std::abs(sum / n), 5 * sigma / std::sqrt(n));
  EXPECT_NEAR(std::sqrt(sq / n) / sigma, 1.0, 0.01);
  EXPECT_NEAR(within / n, 0.6827, 0.005);
}

// q = 20 / 200: a step's sample size is Binomial(200, 0.1), mean 20, variance 18. Over 500
// steps the sample mean has standard error sqrt(18 / 500) = 0.19 and the sample variance
// about 18 sqrt(2 / 499) = 1.14; a fixed-size batch would have variance 0.
TEST(DpSgdTest, SamplingIsPoisson) {
  auto m = LocalModel::CreateBuiltin("mlp", 1);
  TESSERA_ASSERT_OK(m);
  TrainOptions o = OneStep(1.0, 1.0, 20);
  o.max_steps = 0;
  o.epochs = 50;  // 50 * floor(200 / 20) = 500 steps
  o.learning_rate = 0;
  std::vector<double> sizes;
  o.dp_sgd->on_sample = [&](uint64_t s) { sizes.push_back(static_cast<double>(s)); };
  absl::StatusOr<TrainResult> r = (*m)->Train(SeparableImages(20, 1), o);
  TESSERA_ASSERT_OK(r);
  EXPECT_EQ(r->steps, 500u);
  EXPECT_DOUBLE_EQ(r->sampling_rate, 0.1);
  ASSERT_EQ(sizes.size(), 500u);
  double sum = 0, total = 0;
  for (double s : sizes) sum += s;
  const double mean = sum / 500;
  for (double s : sizes) total += (s - mean) * (s - mean);
  const double variance = total / 499;
  EXPECT_NEAR(mean, 20.0, 5 * 0.19);
  EXPECT_NEAR(variance, 18.0, 5 * 1.14);
  EXPECT_EQ(r->examples_processed, static_cast<uint64_t>(sum));
}

// Every example's contribution is clipped to C, so one step of rate B moves the weights by
// at most (sampled examples) * C in L2 norm; with a small clip all of them are clipped.
TEST(DpSgdTest, ClippingBoundsTheStep) {
  auto m = LocalModel::CreateBuiltin("niid_cnn", 2);
  TESSERA_ASSERT_OK(m);
  const Dataset data = SeparableImages(3, 4);  // 30 examples
  uint64_t sampled = 0;
  TrainOptions o = OneStep(1e-9, 0.01, 30);  // q = 1: every example, every step
  o.dp_sgd->on_sample = [&](uint64_t s) { sampled = s; };
  std::vector<double> step = Change(**m, data, o);
  double sq = 0;
  for (double v : step) sq += v * v;
  EXPECT_EQ(sampled, 30u);
  EXPECT_LE(std::sqrt(sq), 30 * 0.01 * (1 + 1e-5));
  EXPECT_GT(std::sqrt(sq), 0.01);
}

TEST(DpSgdTest, PhysicalBatchesDoNotChangeTheStep) {
  const Dataset data = SeparableImages(6, 5);
  std::vector<double> whole, chunked;
  for (uint32_t physical : {256u, 7u}) {
    auto m = LocalModel::CreateBuiltin("niid_cnn", 3);
    TESSERA_ASSERT_OK(m);
    TrainOptions o = OneStep(0.5, 1.0, 30);
    o.max_steps = 3;
    o.dp_sgd->max_physical_batch = physical;
    (physical == 256 ? whole : chunked) = Change(**m, data, o);
  }
  ASSERT_EQ(whole.size(), chunked.size());
  for (size_t i = 0; i < whole.size(); ++i) ASSERT_NEAR(whole[i], chunked[i], 1e-4) << i;
}

TEST(DpSgdTest, StrategyTermsApply) {
  const Dataset data = SeparableImages(2, 6);
  auto m = LocalModel::CreateBuiltin("mlp", 3);
  TESSERA_ASSERT_OK(m);
  TrainOptions o = OneStep(1.0, 1.0, 10);
  o.learning_rate = 0.1;
  o.max_steps = 2;
  const std::vector<double> plain = Change(**m, data, o);
  // A SCAFFOLD correction of zeros changes nothing; FedProx's term changes the second step.
  absl::StatusOr<ArrayRecord> w = (*m)->GetWeights();
  TESSERA_ASSERT_OK(w);
  ArrayRecord zeros;
  for (const Tensor& t : w->tensors) {
    absl::StatusOr<Tensor> z = Tensor::Zeros(t.name(), t.dtype(), t.shape());
    TESSERA_ASSERT_OK(z);
    zeros.tensors.push_back(*std::move(z));
  }
  for (int variant = 0; variant < 2; ++variant) {
    auto fresh = LocalModel::CreateBuiltin("mlp", 3);
    TESSERA_ASSERT_OK(fresh);
    TrainOptions v = o;
    if (variant == 0) v.scaffold_correction = &zeros;
    if (variant == 1) v.proximal_mu = 100;
    const std::vector<double> changed = Change(**fresh, data, v);
    double diff = 0;
    for (size_t i = 0; i < plain.size(); ++i) {
      diff = std::max(diff, std::abs(plain[i] - changed[i]));
    }
    if (variant == 0) {
      EXPECT_EQ(diff, 0.0);
    } else {
      EXPECT_GT(diff, 1e-6);
    }
  }
}

// 500 training examples, B = 50 (q = 0.1), z = 0.7, 100 steps: the private model still
// separates the classes (chance is 0.1).
TEST(DpSgdTest, LearnsSeparableData) {
  auto m = LocalModel::CreateBuiltin("niid_cnn", 3);
  TESSERA_ASSERT_OK(m);
  TrainOptions o;
  o.epochs = 10;
  o.learning_rate = 0.05;
  o.momentum = 0.9;
  o.dp_sgd = DpSgdOptions{};
  o.dp_sgd->noise_multiplier = 0.7;
  o.dp_sgd->clip_norm = 1.0;
  o.dp_sgd->expected_batch_size = 50;
  o.dp_sgd->random_seed = kSeed;  // reproducible: this test must not be flaky
  absl::StatusOr<TrainResult> r = (*m)->Train(SeparableImages(50, 1), o);
  TESSERA_ASSERT_OK(r);
  EXPECT_EQ(r->steps, 100u);
  absl::StatusOr<EvalResult> after = (*m)->Evaluate(SeparableImages(10, 2));
  TESSERA_ASSERT_OK(after);
  EXPECT_GT(after->accuracy, 0.8) << after->accuracy;
}

TEST(DpSgdTest, RejectsBadOptionsAndModels) {
  auto m = LocalModel::CreateBuiltin("mlp", 3);
  TESSERA_ASSERT_OK(m);
  const Dataset data = SeparableImages(2, 1);
  TrainOptions o = OneStep(1.0, 1.0, 10);
  o.dp_sgd->noise_multiplier = 0;
  EXPECT_THAT((*m)->Train(data, o).status().message(), HasSubstr("noise_multiplier"));
  o = OneStep(1.0, 1.0, 21);
  EXPECT_THAT((*m)->Train(data, o).status().message(), HasSubstr("exceeds the dataset's 20"));
  o = OneStep(1.0, 1.0, 0.5);
  EXPECT_THAT((*m)->Train(data, o).status().message(), HasSubstr(">= 1"));
  o = OneStep(1.0, 1.0, 10);
  o.dp_sgd->max_physical_batch = 0;
  EXPECT_THAT((*m)->Train(data, o).status().message(), HasSubstr("max_physical_batch"));

  const std::string path = ::testing::TempDir() + "/dp_tiny.pt";
  TESSERA_ASSERT_OK(WriteTinyTorchScript(path));
  auto script = LocalModel::LoadTorchScriptFile(path);
  TESSERA_ASSERT_OK(script);
  o = OneStep(1.0, 1.0, 3);
  absl::Status s = (*script)->Train(TinyTabularDataset(), o).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("TorchScript"));
}

// With q = 1/10 of 10 examples, about a third of the steps sample nobody: such a step is
// noise alone, and training goes on.
TEST(DpSgdTest, EmptySamplesAreNoiseOnlySteps) {
  auto m = LocalModel::CreateBuiltin("mlp", 1);
  TESSERA_ASSERT_OK(m);
  TrainOptions o = OneStep(1.0, 1.0, 1);
  o.max_steps = 0;
  o.epochs = 3;  // 3 * floor(10 / 1) = 30 steps
  o.learning_rate = 0.01;
  uint64_t empty = 0;
  o.dp_sgd->on_sample = [&](uint64_t s) { empty += s == 0; };
  absl::StatusOr<TrainResult> r = (*m)->Train(SeparableImages(1, 3), o);
  TESSERA_ASSERT_OK(r);
  EXPECT_EQ(r->steps, 30u);
  EXPECT_GT(empty, 0u);  // P(no empty step in 30) = (1 - 0.9^10)^30 < 1e-5
  absl::StatusOr<ArrayRecord> w = (*m)->GetWeights();
  TESSERA_ASSERT_OK(w);
  for (const Tensor& t : w->tensors) TESSERA_EXPECT_OK(CheckFinite(t));
}

TEST(DpSgdTest, StepsFollowTheSamplingRate) {
  EXPECT_EQ(DpSgdSteps(12000, 1, 256, 0), 46u);   // floor(12000 / 256)
  EXPECT_EQ(DpSgdSteps(12000, 3, 256, 100), 100u);
  EXPECT_EQ(DpSgdSteps(100, 2, 100, 0), 2u);
  EXPECT_EQ(DpSgdSteps(50, 1, 80, 0), 1u);        // never 0 steps
  // A batch below 1 (refused by Train) never gives more than n steps per epoch.
  EXPECT_EQ(DpSgdSteps(50, 2, 1e-300, 0), 100u);
  EXPECT_EQ(DpSgdSteps(50, 1, std::nan(""), 0), 50u);
}

}  // namespace
}  // namespace tessera
