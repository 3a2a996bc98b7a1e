// Per-example gradients against the independent reference: a loop of batch-size-1 forward
// and backward passes through ordinary autograd (each example's own loss, its own .grad).
#include "client/training/per_example_grads.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "client/training/builtin_models.h"
#include "core/base/testing/status_matchers.h"

namespace tessera::training_internal {
namespace {

namespace nn = torch::nn;
using ::testing::HasSubstr;

// Each example's gradient of its own cross-entropy loss, by one backward pass per example.
std::vector<std::vector<at::Tensor>> LoopGradients(nn::Sequential& net, const at::Tensor& x,
                                                   const at::Tensor& y) {
  std::vector<at::Tensor> params;
  for (const at::Tensor& p : net->parameters()) {
    if (p.requires_grad()) params.push_back(p);
  }
  std::vector<std::vector<at::Tensor>> out;
  for (int64_t b = 0; b < x.size(0); ++b) {
    for (at::Tensor& p : params) p.mutable_grad() = at::Tensor();
    at::Tensor logits = net->forward(x.narrow(0, b, 1));
    torch::nn::functional::cross_entropy(logits, y.narrow(0, b, 1)).backward();
    std::vector<at::Tensor> grads;
    for (const at::Tensor& p : params) {
      grads.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
    }
    out.push_back(grads);
  }
  return out;
}

void ExpectMatchesLoop(nn::Sequential net, const at::Tensor& x, const at::Tensor& y) {
  absl::StatusOr<PerExampleNet> pe = PerExampleNet::Create(net.ptr());
  TESSERA_ASSERT_OK(pe);
  const std::vector<at::Tensor> fast = pe->PerExampleGradients(x, y);
  const auto slow = LoopGradients(net, x, y);
  ASSERT_EQ(fast.size(), slow[0].size());
  for (size_t p = 0; p < fast.size(); ++p) {
    ASSERT_EQ(fast[p].size(0), x.size(0));
    for (int64_t b = 0; b < x.size(0); ++b) {
      const at::Tensor diff = (fast[p][b] - slow[b][p]).abs().max();
      EXPECT_LT(diff.item<double>(), 1e-5) << "parameter " << p << " example " << b;
    }
  }
}

at::Tensor Labels(int64_t batch, int64_t classes) {
  return torch::randint(classes, {batch}, torch::kLong);
}

TEST(PerExampleGradsTest, LinearMatchesBatchOfOneLoop) {
  torch::manual_seed(1);
  nn::Sequential net(nn::Linear(7, 5), nn::ReLU(), nn::Linear(5, 3));
  ExpectMatchesLoop(net, torch::randn({6, 7}), Labels(6, 3));
}

TEST(PerExampleGradsTest, Conv2dMatchesBatchOfOneLoop) {
  torch::manual_seed(2);
  nn::Sequential net(nn::Conv2d(nn::Conv2dOptions(2, 4, 3).padding(1).stride(2)), nn::ReLU(),
                     nn::Conv2d(nn::Conv2dOptions(4, 3, {2, 3}).dilation(2).bias(false)),
                     nn::MaxPool2d(nn::MaxPool2dOptions(2)), nn::Flatten(), nn::Linear(3, 4));
  ExpectMatchesLoop(net, torch::randn({5, 2, 9, 14}), Labels(5, 4));
}

TEST(PerExampleGradsTest, BuiltinCnnsMatchBatchOfOneLoop) {
  for (const char* arch : {"niid_cnn", "mcmahan_cnn", "mlp", "dp_cnn"}) {
    SCOPED_TRACE(arch);
    torch::manual_seed(3);
    absl::StatusOr<std::shared_ptr<nn::SequentialImpl>> net = MakeBuiltinNet(arch);
    TESSERA_ASSERT_OK(net);
    ExpectMatchesLoop(nn::Sequential(*net), torch::randn({3, 1, 28, 28}), Labels(3, 10));
  }
}

TEST(PerExampleGradsTest, EmbeddingAndSequenceLinearMatchBatchOfOneLoop) {
  torch::manual_seed(4);
  // Tokens [B, 5] -> [B, 5, 6] -> [B, 5, 4] -> [B, 20] -> [B, 3]; token 0 is padding, and
  // token 2 repeats inside one example (its rows add up).
  nn::Sequential net(nn::Embedding(nn::EmbeddingOptions(9, 6).padding_idx(0)),
                     nn::Linear(6, 4), nn::Flatten(), nn::Linear(20, 3));
  const at::Tensor tokens = torch::tensor({0, 2, 2, 5, 8, 1, 0, 0, 3, 2, 7, 7, 7, 7, 4},
                                          torch::kLong)
                                .reshape({3, 5});
  ExpectMatchesLoop(net, tokens, Labels(3, 3));
}

TEST(PerExampleGradsTest, LayerNormMatchesBatchOfOneLoop) {
  torch::manual_seed(5);
  nn::Sequential net(nn::Linear(6, 8), nn::LayerNorm(nn::LayerNormOptions({8})), nn::ReLU(),
                     nn::Linear(8, 3));
  ExpectMatchesLoop(net, torch::randn({4, 6}), Labels(4, 3));
  // Over the last two dims of a sequence.
  nn::Sequential seq(nn::Embedding(7, 4), nn::LayerNorm(nn::LayerNormOptions({3, 4})),
                     nn::Flatten(), nn::Linear(12, 2));
  ExpectMatchesLoop(seq, torch::randint(7, {4, 3}, torch::kLong), Labels(4, 2));
}

TEST(PerExampleGradsTest, GroupNormMatchesBatchOfOneLoop) {
  torch::manual_seed(6);
  nn::Sequential net(nn::Conv2d(nn::Conv2dOptions(1, 4, 3)), nn::GroupNorm(2, 4), nn::ReLU(),
                     nn::Flatten(), nn::Linear(4 * 4 * 4, 3));
  ExpectMatchesLoop(net, torch::randn({4, 1, 6, 6}), Labels(4, 3));
}

TEST(PerExampleGradsTest, FrozenParametersAreLeftOut) {
  torch::manual_seed(7);
  nn::Sequential net(nn::Linear(4, 4), nn::ReLU(), nn::Linear(4, 2));
  net[0]->as<nn::Linear>()->weight.set_requires_grad(false);
  absl::StatusOr<PerExampleNet> pe = PerExampleNet::Create(net.ptr());
  TESSERA_ASSERT_OK(pe);
  EXPECT_EQ(pe->parameters().size(), 3u);  // 0.bias, 2.weight, 2.bias
  ExpectMatchesLoop(net, torch::randn({3, 4}), Labels(3, 2));
}

TEST(PerExampleGradsTest, RefusesBatchNormAndUnknownLayersByName) {
  nn::Sequential bn;
  bn->push_back("conv1", nn::Conv2d(nn::Conv2dOptions(1, 2, 3)));
  bn->push_back("bn1", nn::BatchNorm2d(2));
  absl::Status s = PerExampleNet::Create(bn.ptr()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("\"bn1\""));
  EXPECT_THAT(s.message(), HasSubstr("GroupNorm"));

  nn::Sequential gru;
  gru->push_back("rnn", nn::GRU(nn::GRUOptions(3, 3)));
  s = PerExampleNet::Create(gru.ptr()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("\"rnn\""));
  EXPECT_THAT(s.message(), HasSubstr("no per-example gradient rule"));

  nn::Sequential renorm(nn::Embedding(nn::EmbeddingOptions(5, 2).max_norm(1.0)));
  EXPECT_THAT(PerExampleNet::Create(renorm.ptr()).status().message(), HasSubstr("max_norm"));

  nn::Sequential grouped(nn::Conv2d(nn::Conv2dOptions(2, 2, 3).groups(2)));
  EXPECT_THAT(PerExampleNet::Create(grouped.ptr()).status().message(), HasSubstr("groups=2"));
}

// The clipped sum is sum_b min(1, C / (||g_b|| + 1e-6)) g_b of the loop's gradients, and an
// example with a huge gradient moves it by at most C.
TEST(PerExampleGradsTest, ClippedSumBoundsEachExample) {
  torch::manual_seed(8);
  absl::StatusOr<std::shared_ptr<nn::SequentialImpl>> made = MakeBuiltinNet("niid_cnn");
  TESSERA_ASSERT_OK(made);
  nn::Sequential net(*made);
  at::Tensor x = torch::randn({6, 1, 28, 28});
  x[2].mul_(1e4);  // an outlier whose gradient is far above the clip
  const at::Tensor y = Labels(6, 10);
  const double clip = 0.1;
  absl::StatusOr<PerExampleNet> pe = PerExampleNet::Create(net.ptr());
  TESSERA_ASSERT_OK(pe);
  std::vector<at::Tensor> sums;
  for (const at::Tensor& p : pe->parameters()) sums.push_back(torch::zeros_like(p));
  ClippedBatch batch = pe->AccumulateClipped(x, y, clip, sums);

  const auto slow = LoopGradients(net, x, y);
  std::vector<at::Tensor> expect;
  std::vector<at::Tensor> without_outlier;
  for (const at::Tensor& p : pe->parameters()) {
    expect.push_back(torch::zeros_like(p));
    without_outlier.push_back(torch::zeros_like(p));
  }
  for (int64_t b = 0; b < 6; ++b) {
    double sq = 0;
    for (const at::Tensor& g : slow[b]) sq += g.pow(2).sum().item<double>();
    const double norm = std::sqrt(sq);
    EXPECT_NEAR(batch.norms[b].item<double>(), norm, 1e-4 * std::max(1.0, norm));
    const double f = std::min(1.0, clip / (norm + 1e-6));
    for (size_t p = 0; p < slow[b].size(); ++p) {
      expect[p] += slow[b][p] * f;
      if (b != 2) without_outlier[p] += slow[b][p] * f;
    }
  }
  EXPECT_GT(batch.norms[2].item<double>(), 100 * clip);
  double moved_sq = 0;
  for (size_t p = 0; p < sums.size(); ++p) {
    EXPECT_LT((sums[p] - expect[p]).abs().max().item<double>(), 1e-5) << "parameter " << p;
    moved_sq += (sums[p] - without_outlier[p]).pow(2).sum().item<double>();
  }
  EXPECT_LE(std::sqrt(moved_sq), clip * (1 + 1e-5));
  EXPECT_GT(std::sqrt(moved_sq), clip * 0.99);
}

}  // namespace
}  // namespace tessera::training_internal
