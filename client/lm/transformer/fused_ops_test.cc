// The fused operators against the plain formulas written out here with LibTorch's generic
// operators in float64 (repeated keys/values, an explicit -inf mask, log(sum(exp)) for the
// cross-entropy, x / (1 + exp(-x)) for silu, autograd for the gradients), with and without
// the thread split of SerialBlasScope.
#include "client/lm/transformer/fused_ops.h"
#include "client/lm/transformer/thread_split.h"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <utility>
#include <thread>
#include <vector>

#include "client/lm/transformer/test_rendezvous.h"

namespace tessera::lm::internal {
namespace {

double MaxAbsDiff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

// softmax(q k^T / sqrt(d) + mask) v with keys and values repeated per query head.
at::Tensor ReferenceAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                              int64_t offset) {
  const int64_t groups = q.size(1) / k.size(1);
  const at::Tensor kr = k.repeat_interleave(groups, 1);
  const at::Tensor vr = v.repeat_interleave(groups, 1);
  at::Tensor scores = at::matmul(q, kr.transpose(2, 3)) / std::sqrt(double(q.size(3)));
  const int64_t seq = q.size(2);
  const int64_t total = k.size(2);
  at::Tensor mask = at::zeros({seq, total}, q.options());
  for (int64_t i = 0; i < seq; ++i) {
    for (int64_t j = offset + i + 1; j < total; ++j) {
      mask[i][j] = -std::numeric_limits<double>::infinity();
    }
  }
  return at::matmul(at::softmax(scores + mask, -1), vr);
}

void CheckAttention(int64_t offset, bool serial_blas) {
  torch::manual_seed(7);
  const int64_t batch = 3, heads = 4, kv_heads = 2, seq = 5, dim = 8;
  const int64_t total = offset + seq;
  const at::Tensor q = torch::randn({batch, heads, seq, dim}, torch::kDouble);
  const at::Tensor k = torch::randn({batch, kv_heads, total, dim}, torch::kDouble);
  const at::Tensor v = torch::randn({batch, kv_heads, total, dim}, torch::kDouble);
  const at::Tensor g = torch::randn({batch, heads, seq, dim}, torch::kDouble);

  std::vector<at::Tensor> ref_in = {q.clone().requires_grad_(true),
                                    k.clone().requires_grad_(true),
                                    v.clone().requires_grad_(true)};
  at::Tensor ref = ReferenceAttention(ref_in[0], ref_in[1], ref_in[2], offset);
  ref.backward(g);

  std::vector<at::Tensor> in = {q.to(at::kFloat).requires_grad_(true),
                                k.to(at::kFloat).requires_grad_(true),
                                v.to(at::kFloat).requires_grad_(true)};
  at::Tensor out;
  if (serial_blas) {
    SerialBlasScope scope;
    out = CausalAttention(in[0], in[1], in[2], offset);
    out.backward(g.to(at::kFloat));
  } else {
    out = CausalAttention(in[0], in[1], in[2], offset);
    out.backward(g.to(at::kFloat));
  }
  EXPECT_LT(MaxAbsDiff(out, ref), 1e-5);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_LT(MaxAbsDiff(in[i].grad(), ref_in[i].grad()), 1e-5) << "input " << i;
  }
}

TEST(FusedOps, AttentionMatchesTheRepeatedKeyValueFormula) { CheckAttention(0, false); }
TEST(FusedOps, AttentionSplitOverThreadsMatches) { CheckAttention(0, true); }
TEST(FusedOps, AttentionWithCachedPositionsMatches) { CheckAttention(3, true); }

TEST(FusedOps, AttentionLeavesOutGradientsNobodyNeeds) {
  const at::Tensor q = torch::randn({1, 2, 4, 4}).requires_grad_(true);
  const at::Tensor k = torch::randn({1, 1, 4, 4});  // a frozen key, as in layer 0's k_proj
  const at::Tensor v = torch::randn({1, 1, 4, 4}).requires_grad_(true);
  CausalAttention(q, k, v, 0).sum().backward();
  EXPECT_TRUE(q.grad().defined());
  EXPECT_FALSE(k.grad().defined());
  EXPECT_TRUE(v.grad().defined());
}

TEST(FusedOps, StackedFrozenLinearIsBitIdenticalToEachModule) {
  torch::manual_seed(3);
  const at::Tensor x = torch::randn({2, 40, 16});
  const at::Tensor w1 = torch::randn({24, 16});
  const at::Tensor w2 = torch::randn({8, 16});
  const at::Tensor stacked = at::cat({w1, w2}, 0);
  const at::Tensor bias = torch::randn({32});
  for (bool serial_blas : {false, true}) {
    std::optional<SerialBlasScope> scope;
    if (serial_blas) scope.emplace();
    const at::Tensor both = FrozenLinear(x, stacked, bias, {24, 8});
    const at::Tensor first = FrozenLinear(x, w1, bias.narrow(0, 0, 24));
    const at::Tensor second = FrozenLinear(x, w2, bias.narrow(0, 24, 8));
    EXPECT_TRUE(at::equal(both, at::cat({first, second}, -1))) << serial_blas;
    // Against the plain formula in float64.
    const at::Tensor ref = at::matmul(x.to(at::kDouble), stacked.to(at::kDouble).t()) +
                           bias.to(at::kDouble);
    EXPECT_LT(MaxAbsDiff(both, ref), 1e-4);
  }
}

TEST(FusedOps, FrozenLinearGradientIsUpstreamTimesWeight) {
  torch::manual_seed(4);
  const at::Tensor x = torch::randn({3, 50, 12}).requires_grad_(true);
  const at::Tensor w = torch::randn({20, 12});
  const at::Tensor g = torch::randn({3, 50, 20});
  SerialBlasScope scope;
  FrozenLinear(x, w, at::Tensor()).backward(g);
  const at::Tensor ref = at::matmul(g.to(at::kDouble), w.to(at::kDouble));
  EXPECT_LT(MaxAbsDiff(x.grad(), ref), 1e-4);
  EXPECT_FALSE(w.grad().defined());
}

TEST(FusedOps, SplitLastDimGradientHasZerosForUnusedPieces) {
  const at::Tensor x = torch::arange(12, torch::kFloat).view({2, 6}).requires_grad_(true);
  const std::vector<at::Tensor> pieces = SplitLastDim(x, {1, 2, 3});
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_TRUE(at::equal(pieces[1], x.detach().narrow(1, 1, 2)));
  (pieces[0] * 2 + 0).sum().add(pieces[2].sum() * 3).backward();  // piece 1 unused
  const at::Tensor expected =
      torch::tensor({2, 0, 0, 3, 3, 3}, torch::kFloat).repeat({2, 1});
  EXPECT_TRUE(at::equal(x.grad(), expected));
}

TEST(FusedOps, RmsNormMatchesTheFormulaAndItsGradient) {
  torch::manual_seed(5);
  const at::Tensor x = torch::randn({2, 7, 24}, torch::kDouble);
  const at::Tensor w = torch::rand({24}, torch::kDouble) + 0.5;
  const at::Tensor g = torch::randn({2, 7, 24}, torch::kDouble);
  const double eps = 1e-5;
  const at::Tensor xr = x.clone().requires_grad_(true);
  const at::Tensor ref = w * (xr * at::rsqrt(xr.pow(2).mean(-1, true) + eps));
  ref.backward(g);
  const at::Tensor xf = x.to(at::kFloat).requires_grad_(true);
  ASSERT_TRUE(CanFuseRmsNorm(xf, w.to(at::kFloat)));
  const at::Tensor out = FusedRmsNorm(xf, w.to(at::kFloat), eps);
  out.backward(g.to(at::kFloat));
  EXPECT_LT(MaxAbsDiff(out, ref), 1e-5);
  EXPECT_LT(MaxAbsDiff(xf.grad(), xr.grad()), 1e-5);
  // A trained weight (full fine-tuning) needs its gradient: not fused.
  EXPECT_FALSE(CanFuseRmsNorm(xf, w.to(at::kFloat).requires_grad_(true)));
}

TEST(FusedOps, RotaryMatchesRotateHalfAndItsGradient) {
  torch::manual_seed(6);
  // [batch, seq, heads, dim] transposed to [batch, heads, seq, dim], as the projections give.
  const at::Tensor x = torch::randn({2, 5, 3, 8}, torch::kDouble).transpose(1, 2);
  const at::Tensor angles = torch::rand({5, 4}, torch::kDouble) * 6;
  const at::Tensor cos = at::cat({angles.cos(), angles.cos()}, -1);
  const at::Tensor sin = at::cat({angles.sin(), angles.sin()}, -1);
  const at::Tensor g = torch::randn({2, 3, 5, 8}, torch::kDouble);
  const at::Tensor xr = x.detach().clone().requires_grad_(true);
  const at::Tensor rotated = at::cat({-xr.narrow(-1, 4, 4), xr.narrow(-1, 0, 4)}, -1);
  const at::Tensor ref = xr * cos + rotated * sin;
  ref.backward(g);
  const at::Tensor xf = x.to(at::kFloat).detach().requires_grad_(true);
  ASSERT_TRUE(CanFuseRotary(xf, cos.to(at::kFloat)));
  const at::Tensor out = FusedRotary(xf, cos.to(at::kFloat), sin.to(at::kFloat));
  out.backward(g.to(at::kFloat));
  EXPECT_TRUE(out.is_contiguous());
  EXPECT_LT(MaxAbsDiff(out, ref), 1e-5);
  EXPECT_LT(MaxAbsDiff(xf.grad(), xr.grad()), 1e-5);
}

// sum_i logsumexp(x_i W^T) - x_i . W_t_i written out in float64: log(sum(exp(.))) of the
// logits (no max subtracted: the test's logits are small), autograd for d/dx.
void CheckLmHeadLoss(int64_t rows, int64_t hidden, int64_t vocab, int64_t chunk_elements,
                     bool serial_blas) {
  torch::manual_seed(8);
  const at::Tensor x = torch::randn({rows, hidden}, torch::kDouble);
  const at::Tensor w = torch::randn({vocab, hidden}, torch::kDouble) * 0.5;
  const at::Tensor targets = torch::randint(vocab, {rows}, torch::kLong);
  const at::Tensor xr = x.clone().requires_grad_(true);
  const at::Tensor logits = at::matmul(xr, w.t());
  const at::Tensor ref = (logits.exp().sum(1).log() -
                          logits.gather(1, targets.unsqueeze(1)).squeeze(1))
                             .sum();
  (ref * 0.5).backward();  // an upstream gradient other than 1
  const int64_t ref_correct = logits.argmax(1).eq(targets).sum().item<int64_t>();

  const at::Tensor xf = x.to(at::kFloat).requires_grad_(true);
  const at::Tensor wf = w.to(at::kFloat);
  ASSERT_TRUE(CanFuseLmHeadLoss(xf, wf));
  std::optional<SerialBlasScope> scope;
  if (serial_blas) scope.emplace();
  int64_t correct = 0;
  const at::Tensor loss = LmHeadCrossEntropy(xf, wf, targets, &correct, chunk_elements);
  (loss * 0.5).backward();
  EXPECT_EQ(loss.scalar_type(), at::kFloat);
  EXPECT_LT(std::abs(loss.item<double>() - ref.item<double>()),
            1e-6 * std::abs(ref.item<double>()));
  EXPECT_EQ(correct, ref_correct);
  EXPECT_LT(MaxAbsDiff(xf.grad(), xr.grad()), 1e-5);
  // Without a gradient for x: the same loss and count, no d/dx computed.
  int64_t correct_again = 0;
  const at::Tensor no_grad = LmHeadCrossEntropy(x.to(at::kFloat), wf, targets, &correct_again,
                                                chunk_elements);
  EXPECT_FALSE(no_grad.requires_grad());
  EXPECT_LT(std::abs(no_grad.item<double>() - ref.item<double>()),
            1e-6 * std::abs(ref.item<double>()));
  EXPECT_EQ(correct_again, ref_correct);
}

TEST(FusedOps, LmHeadLossMatchesTheFormulaInOneChunk) {
  CheckLmHeadLoss(23, 16, 40, kLmHeadChunkElements, false);
}
TEST(FusedOps, LmHeadLossSplitOverThreadsMatches) {
  CheckLmHeadLoss(23, 16, 40, kLmHeadChunkElements, true);
}
TEST(FusedOps, LmHeadLossInChunksOfFiveRowsMatches) {
  CheckLmHeadLoss(41, 16, 300, 300 * 5, true);  // 9 chunks
}
TEST(FusedOps, LmHeadLossWithALargeVocabularyInBlocksOfRowsMatches) {
  CheckLmHeadLoss(41, 8, 70000, kLmHeadChunkElements, true);  // blocks of 3 rows
}

TEST(FusedOps, LmHeadLossIsNotFusedForATrainedHead) {
  const at::Tensor x = torch::randn({4, 8});
  EXPECT_FALSE(CanFuseLmHeadLoss(x, torch::randn({10, 8}).requires_grad_(true)));
  EXPECT_FALSE(CanFuseLmHeadLoss(x, torch::randn({10, 8}, torch::kDouble)));
  EXPECT_FALSE(CanFuseLmHeadLoss(x, torch::randn({10, 7})));
}

TEST(FusedOps, SwiGluMatchesTheFormulaAndItsGradient) {
  torch::manual_seed(9);
  // gate and up as the stacked projection gives them: views of one [rows, 2 * width] tensor.
  const at::Tensor both = torch::randn({2, 9, 2 * 24}, torch::kDouble) * 3;
  const at::Tensor g = torch::randn({2, 9, 24}, torch::kDouble);
  const at::Tensor gate = both.narrow(-1, 0, 24).clone().requires_grad_(true);
  const at::Tensor up = both.narrow(-1, 24, 24).clone().requires_grad_(true);
  const at::Tensor ref = gate / (1 + at::exp(-gate)) * up;
  ref.backward(g);
  const at::Tensor bf = both.to(at::kFloat).requires_grad_(true);
  const at::Tensor gf = bf.narrow(-1, 0, 24);
  const at::Tensor uf = bf.narrow(-1, 24, 24);
  ASSERT_TRUE(CanFuseSwiGlu(gf, uf));
  const at::Tensor out = FusedSwiGlu(gf, uf);
  out.backward(g.to(at::kFloat));
  EXPECT_LT(MaxAbsDiff(out, ref), 1e-5);
  EXPECT_LT(MaxAbsDiff(bf.grad().narrow(-1, 0, 24), gate.grad()), 1e-5);
  EXPECT_LT(MaxAbsDiff(bf.grad().narrow(-1, 24, 24), up.grad()), 1e-5);
  // Only up needs a gradient (a frozen gate): none is made for gate.
  const at::Tensor frozen_gate = gate.detach().to(at::kFloat);
  const at::Tensor up_only = up.detach().to(at::kFloat).requires_grad_(true);
  FusedSwiGlu(frozen_gate, up_only).backward(g.to(at::kFloat));
  EXPECT_LT(MaxAbsDiff(up_only.grad(), up.grad()), 1e-5);
  EXPECT_FALSE(CanFuseSwiGlu(gf, uf.narrow(-1, 0, 12)));
}

// Split by rows over 2 threads (2,000 rows of 40, two parts of 1,000: each part needs 819),
// SwiGLU gives the same bits forward and backward as one thread unsplit: each row goes through
// the same kernels.
TEST(FusedOps, SwiGluSplitOverThreadsIsBitIdentical) {
  if (dlsym(RTLD_DEFAULT, "openblas_get_num_threads") == nullptr) {
    GTEST_SKIP() << "LibTorch does not run on OpenBLAS: nothing is split";
  }
  torch::manual_seed(10);
  const at::Tensor both = torch::randn({4, 500, 2 * 40}) * 3;
  const at::Tensor g = torch::randn({4, 500, 40});
  auto run = [&](bool split) {
    const at::Tensor b = both.clone().requires_grad_(true);
    std::optional<SerialBlasScope> scope;
    if (split) scope.emplace();
    EXPECT_EQ(SplitThreads(), split ? 2 : 0);
    const at::Tensor out = FusedSwiGlu(b.narrow(-1, 0, 40), b.narrow(-1, 40, 40));
    out.backward(g);
    return std::make_pair(out.detach(), b.grad());
  };
  const int before = at::get_num_threads();
  at::set_num_threads(1);
  const auto [out1, grad1] = run(false);
  at::set_num_threads(2);
  const auto [out2, grad2] = run(true);
  at::set_num_threads(before);
  EXPECT_TRUE(at::equal(out1, out2));
  EXPECT_TRUE(at::equal(grad1, grad2));
}

TEST(FusedOps, SerialBlasScopeRestoresOpenBlasThreads) {
  using Get = int (*)();
  using Set = void (*)(int);
  auto* get = reinterpret_cast<Get>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  auto* set = reinterpret_cast<Set>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (get == nullptr || set == nullptr) GTEST_SKIP() << "LibTorch does not run on OpenBLAS";
  set(2);
  {
    SerialBlasScope outer;
    EXPECT_EQ(get(), 1);
    {
      SerialBlasScope inner;
      EXPECT_EQ(get(), 1);
    }
    EXPECT_EQ(get(), 1);  // the outer scope is still alive
  }
  EXPECT_EQ(get(), 2);
}

// Issue 18: the split ran its parts one after another on the calling thread (Tessera is
// built without -fopenmp, so at::parallel_for in its own code is serial), while LibTorch's
// kernels opened OpenMP regions that cost more than they gained: two threads were slower
// than one. Inside a scope at 2 threads the parts run on two threads at once, and LibTorch's
// own kernels (on the caller and the workers) run single-threaded; both are restored after.
TEST(FusedOps, SerialBlasScopeSplitsOverTwoThreadsAtOnce) {
  if (dlsym(RTLD_DEFAULT, "openblas_get_num_threads") == nullptr) {
    GTEST_SKIP() << "LibTorch does not run on OpenBLAS: nothing is split";
  }
  const int before = at::get_num_threads();
  at::set_num_threads(2);
  EXPECT_EQ(SplitThreads(), 0);
  {
    SerialBlasScope scope;
    EXPECT_EQ(SplitThreads(), 2);
    EXPECT_EQ(at::get_num_threads(), 1);
    const at::Tensor x = torch::zeros({64, 4});
    std::atomic<int> started{0};
    std::atomic<int> torch_threads_seen{0};
    bool both = true;
    ParallelRows(64, 16, x, [&](int64_t begin, int64_t end) {
      EXPECT_EQ(end - begin, 32);
      torch_threads_seen.fetch_add(at::get_num_threads());
      if (!ArriveAndWaitForAll(started, 2)) both = false;
    });
    EXPECT_TRUE(both) << "the two parts did not run at the same time";
    EXPECT_EQ(torch_threads_seen.load(), 2);  // 1 on each of the two threads
    {
      SerialBlasScope inner;  // a nested scope changes nothing and restores nothing
      EXPECT_EQ(SplitThreads(), 2);
    }
    EXPECT_EQ(at::get_num_threads(), 1);
  }
  EXPECT_EQ(SplitThreads(), 0);
  EXPECT_EQ(at::get_num_threads(), 2);
  at::set_num_threads(before);
}

}  // namespace
}  // namespace tessera::lm::internal
