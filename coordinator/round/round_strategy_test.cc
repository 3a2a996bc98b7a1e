// RoundStrategy and UpdateFold alone, at the stations the round loop calls them (dispatch,
// accept update, aggregate). Every expected number is worked out by hand in the comments.
#include "coordinator/round/round_strategy.h"

#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/testing/status_matchers.h"

namespace tessera::coordinator {
namespace {

#define STRATEGY_TEST_CONCAT_(a, b) a##b
#define STRATEGY_TEST_CONCAT(a, b) STRATEGY_TEST_CONCAT_(a, b)
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL(STRATEGY_TEST_CONCAT(status_or_, __LINE__), lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  ASSERT_TRUE(tmp.ok()) << tmp.status();          \
  lhs = *std::move(tmp)

using ::testing::FloatEq;
using ::testing::HasSubstr;
using wire::v1::StrategyConfig;

StrategyConfig Kind(StrategyConfig::Kind kind) {
  StrategyConfig s;
  s.set_kind(kind);
  return s;
}

ArrayRecord One(float v) {
  ArrayRecord r;
  r.tensors.push_back(*Tensor::FromFloats("w", {1}, {v}));
  return r;
}

float Value(const ArrayRecord& r, const std::string& name = "w") {
  for (const Tensor& t : r.tensors) {
    if (t.name() == name) return t.values<float>()[0];
  }
  ADD_FAILURE() << "no tensor " << name;
  return 0;
}

TEST(RoundStrategyTest, FedAvgWeighsByExamples) {
  ASSERT_OK_AND_ASSIGN(RoundStrategy s,
                               RoundStrategy::Create(Kind(StrategyConfig::FEDAVG), One(0), nullptr));
  ASSERT_OK_AND_ASSIGN(UpdateWeight a, s.Weigh(1, {}));
  ASSERT_OK_AND_ASSIGN(UpdateWeight b, s.Weigh(3, {}));
  EXPECT_EQ(a.weight, 1);
  EXPECT_EQ(b.weight, 3);
  ASSERT_OK_AND_ASSIGN(UpdateFold fold, s.NewFold(One(0)));
  TESSERA_ASSERT_OK(fold.Add(One(1), a));
  TESSERA_ASSERT_OK(fold.Add(One(3), b));
  // (1*1 + 3*3) / 4 = 2.5
  ASSERT_OK_AND_ASSIGN(ArrayRecord mean, std::move(fold).Aggregate());
  EXPECT_THAT(Value(mean), FloatEq(2.5f));
}

TEST(RoundStrategyTest, FedNovaNeedsLocalStepsAndNormalizes) {
  ASSERT_OK_AND_ASSIGN(
      RoundStrategy s, RoundStrategy::Create(Kind(StrategyConfig::FEDNOVA), One(0), nullptr));
  EXPECT_THAT(s.Weigh(10, {}), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("local_steps")));
  EXPECT_THAT(s.Weigh(10, {{"local_steps", 0.5}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // Client 1: p = 10, tau = 5, d = 1; client 2: p = 30, tau = 10, d = 4.
  ASSERT_OK_AND_ASSIGN(UpdateWeight a, s.Weigh(10, {{"local_steps", 5}}));
  ASSERT_OK_AND_ASSIGN(UpdateWeight b, s.Weigh(30, {{"local_steps", 10}}));
  EXPECT_EQ(a.weight, 2);  // p / tau
  EXPECT_EQ(b.weight, 3);
  ASSERT_OK_AND_ASSIGN(UpdateFold fold, s.NewFold(One(0)));
  TESSERA_ASSERT_OK(fold.Add(One(1), a));
  TESSERA_ASSERT_OK(fold.Add(One(4), b));
  // Wang et al. 2020: tau_eff * sum_i (p_i / p) d_i / tau_i
  //   = (10*5 + 30*10) / 40 * (10/40 * 1/5 + 30/40 * 4/10) = 8.75 * 0.35 = 3.0625
  ASSERT_OK_AND_ASSIGN(ArrayRecord mean, std::move(fold).Aggregate());
  EXPECT_THAT(Value(mean), FloatEq(3.0625f));
}

TEST(RoundStrategyTest, MedianHoldsEveryUpdateWithinTheLimit) {
  ASSERT_OK_AND_ASSIGN(
      RoundStrategy s, RoundStrategy::Create(Kind(StrategyConfig::MEDIAN), One(0), nullptr));
  EXPECT_TRUE(s.HoldsUpdates());
  TESSERA_EXPECT_OK(s.CheckHeldBytes(3, 100, 300));
  EXPECT_THAT(s.CheckHeldBytes(3, 100, 299),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("would hold 3 updates of 100 bytes (300 bytes)")));
  ASSERT_OK_AND_ASSIGN(UpdateFold fold, s.NewFold(One(0)));
  for (float v : {1.0f, 5.0f, 2.0f}) {
    ASSERT_OK_AND_ASSIGN(UpdateWeight w, s.Weigh(7, {}));
    TESSERA_ASSERT_OK(fold.Add(One(v), w));
  }
  ASSERT_OK_AND_ASSIGN(ArrayRecord median, std::move(fold).Aggregate());
  EXPECT_THAT(Value(median), FloatEq(2.0f));  // the middle of 1, 2, 5
}

TEST(RoundStrategyTest, MeansHoldNothing) {
  ASSERT_OK_AND_ASSIGN(RoundStrategy s,
                               RoundStrategy::Create(Kind(StrategyConfig::FEDAVG), One(0), nullptr));
  EXPECT_FALSE(s.HoldsUpdates());
  TESSERA_EXPECT_OK(s.CheckHeldBytes(1000, 1 << 30, 1));
}

TEST(RoundStrategyTest, DispatchCarriesProximalTermAndScaffold) {
  StrategyConfig prox = Kind(StrategyConfig::FEDPROX);
  prox.set_proximal_mu(0.25);
  ASSERT_OK_AND_ASSIGN(RoundStrategy p, RoundStrategy::Create(prox, One(0), nullptr));
  wire::v1::Task task;
  p.Dispatch(task);
  EXPECT_EQ(task.strategy().proximal_mu(), 0.25);
  EXPECT_FALSE(task.strategy().scaffold());

  ASSERT_OK_AND_ASSIGN(
      RoundStrategy sc, RoundStrategy::Create(Kind(StrategyConfig::SCAFFOLD), One(0), nullptr));
  wire::v1::Task scaffold;
  sc.Dispatch(scaffold);
  EXPECT_TRUE(scaffold.strategy().scaffold());

  wire::v1::Task plain;
  ASSERT_OK_AND_ASSIGN(RoundStrategy avg,
                               RoundStrategy::Create(Kind(StrategyConfig::FEDAVG), One(0), nullptr));
  avg.Dispatch(plain);
  EXPECT_FALSE(plain.has_strategy());
}

TEST(RoundStrategyTest, ScaffoldStepsWeightsAndVariate) {
  StrategyConfig config = Kind(StrategyConfig::SCAFFOLD);
  config.set_server_learning_rate(0.5);
  ArrayRecord initial = One(10);
  TESSERA_ASSERT_OK(RoundStrategy::PrepareInitialModel(config, initial));
  ASSERT_EQ(initial.tensors.size(), 2u);
  EXPECT_EQ(Value(initial, "scaffold.c/w"), 0);
  ASSERT_OK_AND_ASSIGN(RoundStrategy s, RoundStrategy::Create(config, initial, nullptr));
  // SCAFFOLD's mean is uniform: every update weighs 1 whatever its example count.
  ASSERT_OK_AND_ASSIGN(UpdateWeight w, s.Weigh(1000, {}));
  EXPECT_EQ(w.weight, 1);
  ModelSnapshot global;
  global.weights = initial;
  ArrayRecord mean = One(2);
  mean.tensors.push_back(*Tensor::FromFloats("scaffold.c/w", {1}, {4}));
  // x = 10 + 0.5 * 2 = 11; c = 0 + (1 of 4 clients reported) * 4 = 1
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<const ModelSnapshot> next,
                               s.NextModel(mean, global, 1, /*reported=*/1, /*population=*/4));
  EXPECT_EQ(next->round, 1u);
  EXPECT_THAT(Value(next->weights), FloatEq(11));
  EXPECT_THAT(Value(next->weights, "scaffold.c/w"), FloatEq(1));
  // The export leaves the variate out.
  EXPECT_THAT(ModelForExport(next)->weights.tensors, ::testing::SizeIs(1));
}

TEST(RoundStrategyTest, ServerStateRoundTripsThroughTheStoredModel) {
  ModelSnapshot model;
  model.weights = One(3);
  model.server_state = One(7);
  ASSERT_OK_AND_ASSIGN(ArrayRecord stored, StoredModel(model));
  ASSERT_EQ(stored.tensors.size(), 2u);
  EXPECT_EQ(stored.tensors[1].name(), "server_opt.w");
  auto [weights, state] = SplitStoredModel(stored);
  EXPECT_EQ(Value(weights), 3);
  EXPECT_EQ(Value(state), 7);
}

}  // namespace
}  // namespace tessera::coordinator
