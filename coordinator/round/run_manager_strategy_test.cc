// RunManager with the aggregation strategies of docs/strategies.md, without gRPC. Every
// expected number is worked out by hand from aggregation/server_optimizer.h and robust.h.
#include <cmath>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "coordinator/round/run_manager.h"
#include "coordinator/round/run_manager_test_fixture.h"
#include "core/base/testing/status_matchers.h"
#include "core/serde/tensor_stream.h"

namespace tessera::coordinator {
namespace {

using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::FloatEq;
using ::testing::FloatNear;
using ::testing::HasSubstr;
using wire::v1::StrategyConfig;

class RunManagerStrategyTest : public RunManagerTest {
 public:
  // Weights or an update: float32 "w" of shape {3} and the int64 buffer "steps".
  static ArrayRecord Record(const std::vector<float>& w, int64_t steps = 1) {
    ArrayRecord r = Weights(0, steps);
    r.tensors[0] = *Tensor::FromFloats("w", {3}, w);
    return r;
  }
  static ArrayRecord Uniform(float w, int64_t steps = 1) { return Record({w, w, w}, steps); }
  // A SCAFFOLD update: the weight delta `w` and the control variate delta `c`.
  static ArrayRecord Scaffold(float w, float c) {
    ArrayRecord r = Uniform(w);
    r.tensors.push_back(*Tensor::FromFloats("scaffold.c/w", {3}, {c, c, c}));
    return r;
  }
  static std::vector<float> Floats(const ArrayRecord& r, absl::string_view name) {
    for (const Tensor& t : r.tensors) {
      if (t.name() == name) return {t.values<float>().begin(), t.values<float>().end()};
    }
    ADD_FAILURE() << "no tensor " << name;
    return {};
  }
  static bool HasPrefixed(const ArrayRecord& r, absl::string_view prefix) {
    for (const Tensor& t : r.tensors) {
      if (absl::StartsWith(t.name(), prefix)) return true;
    }
    return false;
  }
  static wire::v1::RunConfig WithStrategy(wire::v1::RunConfig c, StrategyConfig::Kind kind) {
    c.mutable_strategy()->set_kind(kind);
    return c;
  }
  absl::Status Send(const std::string& client, const wire::v1::Task& t, const ArrayRecord& update,
                    uint64_t examples, const std::map<std::string, double>& metrics = {}) {
    auto model = runs_->BeginUpdate(t.task_id(), client);
    if (!model.ok()) return model.status();
    return runs_->SubmitUpdate(t.task_id(), client, examples, metrics, update, 100);
  }
  // The exported "w" of the last completed round.
  std::vector<float> ExportedW(const std::string& run) {
    auto exported = runs_->ExportModel(run, -1);
    EXPECT_THAT(exported, IsOk());
    return exported.ok() ? Floats(exported->model->weights, "w") : std::vector<float>{};
  }
  // A FedNova run of one round that waits for clients "a" and "b", from w = 1.
  std::string StartFedNovaWithTwoClients() {
    Connect("a");
    Connect("b");
    return CreateAndStartRun(WithStrategy(Config(1, 2, 2), StrategyConfig::FEDNOVA),
                             Uniform(1, 0));
  }
  // Waits until `n` tasks are queued over all clients and takes them, by client name.
  std::vector<std::pair<std::string, wire::v1::Task>> AwaitTasks(size_t n) {
    absl::MutexLock l(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      size_t k = 0;
      for (const auto& [name, queue] : tasks_) k += queue.size();
      return k >= n;
    };
    EXPECT_TRUE(mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10)));
    std::vector<std::pair<std::string, wire::v1::Task>> out;
    for (auto& [name, queue] : tasks_) {
      for (const wire::v1::Task& t : queue) out.emplace_back(name, t);
      queue.clear();
    }
    return out;
  }

  // FedAvgM (lr 1, momentum 0.5, as ParseStrategy fills it in) over two rounds whose deltas
  // 1 (1 example) and 4 (3 examples) average to D = 3.25: m1 = D, x1 = 1 + D = 4.25;
  // m2 = 0.5 m1 + D = 4.875, x2 = 9.125. A round 2 that lost m1 would give 7.5.
  void FedAvgMOverTwoRounds(bool restart) {
    Connect("a");
    Connect("b");
    wire::v1::RunConfig config = WithStrategy(Config(2, 2, 2), StrategyConfig::FEDAVGM);
    config.mutable_strategy()->set_server_learning_rate(1);
    config.mutable_strategy()->set_server_momentum(0.5);
    const std::string run = CreateAndStartRun(config, Uniform(1, 0));
    ASSERT_FALSE(run.empty());
    TESSERA_ASSERT_OK(Send("a", NextTask("a"), Uniform(1), 1));
    TESSERA_ASSERT_OK(Send("b", NextTask("b"), Uniform(4), 3));
    wire::v1::Task a2 = NextTask("a");  // round 1 is committed once round 2 is dispatched
    wire::v1::Task b2 = NextTask("b");
    ASSERT_EQ(a2.round(), 2u);
    EXPECT_THAT(ExportedW(run), Each(FloatEq(4.25f)));
    // The momentum is stored with the round's model under "server_opt." names ...
    auto stored = state_->LoadModel(run, 1);
    ASSERT_THAT(stored, IsOk());
    EXPECT_THAT(Floats(*stored, "server_opt.m/w"), Each(FloatEq(3.25f)));
    if (restart) {
      runs_.reset();
      state_.reset();
      Open();
      TESSERA_ASSERT_OK(runs_->Recover());
      a2 = NextTask("a");
      b2 = NextTask("b");
      ASSERT_EQ(a2.round(), 2u);
    }
    // ... but neither served to clients nor exported.
    auto served = runs_->ModelForTask(a2.task_id(), "a");
    ASSERT_THAT(served, IsOk());
    EXPECT_FALSE(HasPrefixed((*served)->weights, "server_opt."));
    EXPECT_EQ((*served)->weights.tensors.size(), 2u);
    EXPECT_EQ(a2.model_sha256(), DigestArrayRecord((*served)->weights));
    TESSERA_ASSERT_OK(Send("a", a2, Uniform(1), 1));
    TESSERA_ASSERT_OK(Send("b", b2, Uniform(4), 3));
    AwaitState(run, wire::v1::COMPLETED);
    auto exported = runs_->ExportModel(run, -1);
    ASSERT_THAT(exported, IsOk());
    EXPECT_THAT(Floats(exported->model->weights, "w"), Each(FloatEq(9.125f)));
    EXPECT_EQ(exported->model->weights.tensors.size(), 2u);
    EXPECT_FALSE(HasPrefixed(exported->model->weights, "server_opt."));
    EXPECT_EQ(exported->model->weights.tensors[1].values<int64_t>()[0], 2);
    EXPECT_EQ(exported->model->digest, DigestArrayRecord(exported->model->weights));
    auto round1 = runs_->ExportModel(run, 1);
    ASSERT_THAT(round1, IsOk());
    EXPECT_FALSE(HasPrefixed(round1->model->weights, "server_opt."));
    EXPECT_THAT(Floats(round1->model->weights, "w"), Each(FloatEq(4.25f)));
  }
};

TEST_F(RunManagerStrategyTest, FedAvgMCarriesMomentumAcrossRounds) {
  FedAvgMOverTwoRounds(/*restart=*/false);
}

TEST_F(RunManagerStrategyTest, FedAvgMMomentumSurvivesARestart) {
  FedAvgMOverTwoRounds(/*restart=*/true);
}

TEST_F(RunManagerStrategyTest, FedAdamStepStartsFromVEqualToTauSquared) {
  Connect("a");
  Connect("b");
  constexpr double kLr = 0.1, kBeta1 = 0.9, kBeta2 = 0.99, kTau = 0.5, kD = 3.25;
  wire::v1::RunConfig config = WithStrategy(Config(1, 2, 2), StrategyConfig::FEDADAM);
  config.mutable_strategy()->set_server_learning_rate(kLr);
  config.mutable_strategy()->set_beta1(kBeta1);
  config.mutable_strategy()->set_beta2(kBeta2);
  config.mutable_strategy()->set_tau(kTau);
  const std::string run = CreateAndStartRun(config, Uniform(1, 0));
  ASSERT_FALSE(run.empty());
  TESSERA_ASSERT_OK(Send("a", NextTask("a"), Uniform(1), 1));
  TESSERA_ASSERT_OK(Send("b", NextTask("b"), Uniform(4), 3));
  AwaitState(run, wire::v1::COMPLETED);
  // m = (1 - b1) D = 0.325; v = b2 tau^2 + (1 - b2) D^2 = 0.353125; x = 1 + lr m / (sqrt v + tau).
  const double m = (1 - kBeta1) * kD;
  const double v = kBeta2 * kTau * kTau + (1 - kBeta2) * kD * kD;
  const double x = 1 + kLr * m / (std::sqrt(v) + kTau);  // 1.0297...
  EXPECT_THAT(ExportedW(run), Each(FloatNear(static_cast<float>(x), 1e-6f)));
  auto stored = state_->LoadModel(run, 1);
  ASSERT_THAT(stored, IsOk());
  EXPECT_THAT(Floats(*stored, "server_opt.m/w"), Each(FloatNear(static_cast<float>(m), 1e-6f)));
  EXPECT_THAT(Floats(*stored, "server_opt.v/w"), Each(FloatNear(static_cast<float>(v), 1e-6f)));
}

TEST_F(RunManagerStrategyTest, ServerOptimizersNeedOnlyTheParametersTheirKindTakes) {
  // As ParseStrategy fills them in: FedAdagrad has no beta2, FedAvgM no beta1/beta2/tau.
  wire::v1::RunConfig config = WithStrategy(Config(1, 1, 1), StrategyConfig::FEDADAGRAD);
  config.mutable_strategy()->set_server_learning_rate(0.1);
  config.mutable_strategy()->set_beta1(0.9);
  config.mutable_strategy()->set_tau(1e-3);
  EXPECT_THAT(runs_->CreateRun(config, Uniform(0, 0), ""), IsOk());
  config = WithStrategy(Config(1, 1, 1), StrategyConfig::FEDAVGM);
  config.mutable_strategy()->set_server_learning_rate(1);
  EXPECT_THAT(runs_->CreateRun(config, Uniform(0, 0), ""), IsOk());
}

TEST_F(RunManagerStrategyTest, MedianIgnoresAnOutlier) {
  for (const char* c : {"a", "b", "c"}) Connect(c);
  const std::string run =
      CreateAndStartRun(WithStrategy(Config(1, 3, 3), StrategyConfig::MEDIAN), Uniform(10, 0));
  ASSERT_FALSE(run.empty());
  TESSERA_ASSERT_OK(Send("a", NextTask("a"), Record({1, 5, -1}), 1));
  TESSERA_ASSERT_OK(Send("b", NextTask("b"), Record({2, 3, -2}), 1000));  // examples don't weigh
  TESSERA_ASSERT_OK(Send("c", NextTask("c"), Record({1e6, -1e6, 1e6}), 1));
  AwaitState(run, wire::v1::COMPLETED);
  EXPECT_THAT(ExportedW(run), ElementsAre(FloatEq(12), FloatEq(13), FloatEq(9)));
}

TEST_F(RunManagerStrategyTest, TrimmedMeanDropsTheExtremes) {
  for (const char* c : {"a", "b", "c", "d"}) Connect(c);
  wire::v1::RunConfig config = WithStrategy(Config(1, 4, 4), StrategyConfig::TRIMMED_MEAN);
  config.mutable_strategy()->set_trim_fraction(0.25);  // 1 of 4 cut at each end
  const std::string run = CreateAndStartRun(config, Uniform(10, 0));
  ASSERT_FALSE(run.empty());
  TESSERA_ASSERT_OK(Send("a", NextTask("a"), Record({1, 5, -1}), 1));
  TESSERA_ASSERT_OK(Send("b", NextTask("b"), Record({2, 3, -2}), 1));
  TESSERA_ASSERT_OK(Send("c", NextTask("c"), Record({4, 4, 0}), 1));
  TESSERA_ASSERT_OK(Send("d", NextTask("d"), Record({1e6, -1e6, 1e6}), 1));
  AwaitState(run, wire::v1::COMPLETED);
  // Per coordinate the mean of the middle two: (2+4)/2, (3+4)/2, (-1+0)/2.
  EXPECT_THAT(ExportedW(run), ElementsAre(FloatEq(13), FloatEq(13.5), FloatEq(9.5)));
}

TEST_F(RunManagerStrategyTest, KrumPicksTheMostCentralUpdate) {
  for (const char* c : {"a", "b", "c", "d", "e"}) Connect(c);
  wire::v1::RunConfig config = WithStrategy(Config(1, 5, 3), StrategyConfig::KRUM);
  config.mutable_strategy()->set_byzantine_clients(1);
  EXPECT_THAT(runs_->CreateRun(config, Uniform(10, 0), ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("min_clients")));
  config.mutable_selection()->set_min_clients(5);  // 2f + 3
  const std::string run = CreateAndStartRun(config, Uniform(10, 0));
  ASSERT_FALSE(run.empty());
  // Scores (sum of squared distances to the n - f - 2 = 2 nearest, per coordinate):
  // 1.0: 0.01 + 0.04; 1.2: 0.01 + 0.04; 0.8: 0.04 + 0.09; 1.1: 0.01 + 0.01 (lowest).
  const std::map<std::string, float> deltas = {
      {"a", 1.0f}, {"b", 1.2f}, {"c", 0.8f}, {"d", 1.1f}, {"e", 1000.0f}};
  for (const auto& [client, delta] : deltas) {
    TESSERA_ASSERT_OK(Send(client, NextTask(client), Uniform(delta), 1));
  }
  AwaitState(run, wire::v1::COMPLETED);
  EXPECT_THAT(ExportedW(run), Each(FloatEq(10.0f + 1.1f)));
}

TEST_F(RunManagerStrategyTest, FedNovaNormalizesByLocalSteps) {
  const std::string run = StartFedNovaWithTwoClients();
  ASSERT_FALSE(run.empty());
  wire::v1::Task ta = NextTask("a");
  wire::v1::Task tb = NextTask("b");
  EXPECT_THAT(Send("a", ta, Uniform(2), 1, {{"train_loss", 1}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("local_steps")));
  EXPECT_THAT(Send("a", ta, Uniform(2), 1, {{"local_steps", 0.5}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("local_steps")));
  TESSERA_ASSERT_OK(Send("a", ta, Uniform(2), 1, {{"local_steps", 1}}));
  TESSERA_ASSERT_OK(Send("b", tb, Uniform(4), 3, {{"local_steps", 4}}));
  AwaitState(run, wire::v1::COMPLETED);
  // p = (1, 3) / 4, tau = (1, 4): tau_eff = 0.25 + 0.75 * 4 = 3.25;
  // sum p_i d_i / tau_i = 0.25 * 2 + 0.75 * 1 = 1.25; the global moves by 4.0625 (FedAvg: 3.5).
  EXPECT_THAT(ExportedW(run), Each(FloatEq(1 + 4.0625f)));
}

// tessera-sim across MPI ranks: b's update arrives inside a partial sum another process
// folded (MergePartialUpdate), then b reports without values (SubmitFoldedUpdate). The round
// must come out as FedNovaNormalizesByLocalSteps's, where both sent their updates: the same
// hand-derived 1 + 4.0625, with FedNova's sums kept for the folded report too.
TEST_F(RunManagerStrategyTest, APartialSumGivesTheRoundOfIndividualUpdates) {
  const std::string run = StartFedNovaWithTwoClients();
  ASSERT_FALSE(run.empty());
  wire::v1::Task ta = NextTask("a");
  wire::v1::Task tb = NextTask("b");
  auto partial = aggregation::WeightedAccumulator::Create(Uniform(0));
  ASSERT_THAT(partial, IsOk());
  TESSERA_ASSERT_OK(partial->Add(Uniform(4), 3.0 / 4));  // FedNova's weight: examples / steps
  // Another layout is refused and leaves the round as it was.
  ArrayRecord wide;
  wide.tensors.push_back(*Tensor::FromFloats("w", {4}, {0, 0, 0, 0}));
  auto mismatched = aggregation::WeightedAccumulator::Create(wide);
  ASSERT_THAT(mismatched, IsOk());
  EXPECT_THAT(runs_->MergePartialUpdate(tb.task_id(), "b", *mismatched),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("merge")));
  EXPECT_THAT(runs_->MergePartialUpdate(tb.task_id(), "a", *partial),
              StatusIs(absl::StatusCode::kPermissionDenied));
  TESSERA_ASSERT_OK(runs_->MergePartialUpdate(tb.task_id(), "b", *partial));
  TESSERA_ASSERT_OK(Send("a", ta, Uniform(2), 1, {{"local_steps", 1}}));
  TESSERA_ASSERT_OK(runs_->SubmitFoldedUpdate(tb.task_id(), "b", 3, {{"local_steps", 4}}, 100));
  // Reported once only (ALREADY_EXISTS, or FAILED_PRECONDITION once the round has closed).
  EXPECT_FALSE(runs_->SubmitFoldedUpdate(tb.task_id(), "b", 3, {{"local_steps", 4}}, 100).ok());
  AwaitState(run, wire::v1::COMPLETED);
  EXPECT_THAT(ExportedW(run), Each(FloatEq(1 + 4.0625f)));
}

TEST_F(RunManagerStrategyTest, ARobustRuleRefusesPartialSums) {
  for (const char* c : {"a", "b", "c"}) Connect(c);
  const std::string run =
      CreateAndStartRun(WithStrategy(Config(1, 3, 3), StrategyConfig::MEDIAN), Uniform(10, 0));
  ASSERT_FALSE(run.empty());
  wire::v1::Task ta = NextTask("a");
  auto partial = aggregation::WeightedAccumulator::Create(Uniform(0));
  ASSERT_THAT(partial, IsOk());
  TESSERA_ASSERT_OK(partial->Add(Uniform(1e6), 1));
  EXPECT_THAT(runs_->MergePartialUpdate(ta.task_id(), "a", *partial),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("needs each update")));
  EXPECT_THAT(runs_->SubmitFoldedUpdate(ta.task_id(), "a", 1, {}, 100),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("needs each update")));
  // Nothing was taken: the round completes with MedianIgnoresAnOutlier's median.
  TESSERA_ASSERT_OK(Send("a", ta, Record({1, 5, -1}), 1));
  TESSERA_ASSERT_OK(Send("b", NextTask("b"), Record({2, 3, -2}), 1000));
  TESSERA_ASSERT_OK(Send("c", NextTask("c"), Record({1e6, -1e6, 1e6}), 1));
  AwaitState(run, wire::v1::COMPLETED);
  EXPECT_THAT(ExportedW(run), ElementsAre(FloatEq(12), FloatEq(13), FloatEq(9)));
}

TEST_F(RunManagerStrategyTest, ScaffoldServesAndUpdatesTheControlVariate) {
  for (const char* c : {"a", "b", "c", "d"}) Connect(c);  // N = 4 connected, |S| = 2
  wire::v1::RunConfig config = WithStrategy(Config(1, 2, 2), StrategyConfig::SCAFFOLD);
  config.mutable_strategy()->set_server_learning_rate(1.5);
  const std::string run = CreateAndStartRun(config, Uniform(1, 0));
  ASSERT_FALSE(run.empty());
  std::vector<std::pair<std::string, wire::v1::Task>> tasks = AwaitTasks(2);
  ASSERT_EQ(tasks.size(), 2u);
  for (const auto& [client, task] : tasks) {
    EXPECT_TRUE(task.strategy().scaffold());
    EXPECT_EQ(task.strategy().proximal_mu(), 0);
    auto served = runs_->ModelForTask(task.task_id(), client);
    ASSERT_THAT(served, IsOk());
    EXPECT_EQ((*served)->weights.tensors.size(), 3u);
    EXPECT_THAT(Floats((*served)->weights, "scaffold.c/w"), Each(FloatEq(0)));
    EXPECT_EQ(task.model_sha256(), DigestArrayRecord((*served)->weights));
  }
  // Uniform means whatever the example counts: dw = (1 + 3) / 2 = 2, dc = (2 + 6) / 2 = 4.
  TESSERA_ASSERT_OK(Send(tasks[0].first, tasks[0].second, Scaffold(1, 2), 1));
  TESSERA_ASSERT_OK(Send(tasks[1].first, tasks[1].second, Scaffold(3, 6), 100));
  AwaitState(run, wire::v1::COMPLETED);
  // x += 1.5 * 2 = 4; c += (2 / 4) * 4 = 2.
  auto stored = state_->LoadModel(run, 1);
  ASSERT_THAT(stored, IsOk());
  EXPECT_THAT(Floats(*stored, "w"), Each(FloatEq(4)));
  EXPECT_THAT(Floats(*stored, "scaffold.c/w"), Each(FloatEq(2)));
  for (int32_t round : {0, -1}) {
    auto exported = runs_->ExportModel(run, round);
    ASSERT_THAT(exported, IsOk());
    EXPECT_FALSE(HasPrefixed(exported->model->weights, "scaffold.c/"));
    EXPECT_EQ(exported->model->weights.tensors.size(), 2u);
    EXPECT_EQ(exported->model->digest, DigestArrayRecord(exported->model->weights));
  }
  EXPECT_THAT(ExportedW(run), Each(FloatEq(4)));
}

TEST_F(RunManagerStrategyTest, FedProxTasksCarryTheProximalTerm) {
  Connect("a");
  wire::v1::RunConfig config = WithStrategy(Config(1, 1, 1), StrategyConfig::FEDPROX);
  config.mutable_strategy()->set_proximal_mu(0.01);
  const std::string run = CreateAndStartRun(config, Uniform(1, 0));
  ASSERT_FALSE(run.empty());
  wire::v1::Task t = NextTask("a");
  EXPECT_DOUBLE_EQ(t.strategy().proximal_mu(), 0.01);
  EXPECT_FALSE(t.strategy().scaffold());
  TESSERA_ASSERT_OK(Send("a", t, Uniform(2), 5));
  AwaitState(run, wire::v1::COMPLETED);
  EXPECT_THAT(ExportedW(run), Each(FloatEq(3)));
}

TEST_F(RunManagerStrategyTest, AbandonedTaskEndsTheRoundBeforeTheDeadline) {
  for (const char* c : {"a", "b", "c"}) Connect(c);
  const absl::Time start = absl::Now();
  const std::string run = CreateAndStartRun(Config(1, 3, 2, /*deadline=*/30), Uniform(0, 0));
  ASSERT_FALSE(run.empty());
  wire::v1::Task ta = NextTask("a");
  wire::v1::Task tb = NextTask("b");
  wire::v1::Task tc = NextTask("c");
  EXPECT_THAT(runs_->AbandonTask(tc.task_id(), "a", "not mine"),
              StatusIs(absl::StatusCode::kPermissionDenied));
  TESSERA_ASSERT_OK(runs_->AbandonTask(tc.task_id(), "c", "out of memory"));
  EXPECT_THAT(runs_->AbandonTask(tc.task_id(), "c", "again"),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(runs_->BeginUpdate(tc.task_id(), "c"), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(runs_->SubmitUpdate(tc.task_id(), "c", 1, {}, Uniform(1), 1),
              StatusIs(absl::StatusCode::kAlreadyExists));
  TESSERA_ASSERT_OK(Send("a", ta, Uniform(1), 1));
  TESSERA_ASSERT_OK(Send("b", tb, Uniform(3), 1));
  wire::v1::RunStatus s = AwaitState(run, wire::v1::COMPLETED);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  ASSERT_EQ(s.rounds_size(), 1);
  EXPECT_EQ(s.rounds(0).selected(), 3u);
  EXPECT_EQ(s.rounds(0).reported(), 2u);
  EXPECT_EQ(s.rounds(0).dropped(), 1u);
  EXPECT_THAT(s.rounds(0).participants(), ElementsAre("a", "b"));
  EXPECT_THAT(ExportedW(run), Each(FloatEq(2)));
}

TEST_F(RunManagerStrategyTest, RobustRuleOverTheMemoryLimitFailsBeforeDispatch) {
  runs_.reset();
  RunManagerOptions options;
  options.max_held_update_bytes = 32;  // an update is 20 bytes; 3 are held
  runs_ = std::make_unique<RunManager>(options, state_.get(), &registry_);
  for (const char* c : {"a", "b", "c"}) Connect(c);
  const std::string run =
      CreateAndStartRun(WithStrategy(Config(1, 3, 3), StrategyConfig::MEDIAN), Uniform(0, 0));
  ASSERT_FALSE(run.empty());
  wire::v1::RunStatus s = AwaitState(run, wire::v1::FAILED);
  ASSERT_EQ(s.rounds_size(), 2);  // the attempt and its retry
  for (const wire::v1::RoundSummary& r : s.rounds()) {
    EXPECT_EQ(r.state(), wire::v1::ROUND_FAILED);
    EXPECT_THAT(r.failure_reason(), HasSubstr("60 bytes"));
    EXPECT_THAT(r.failure_reason(), HasSubstr("select fewer clients"));
  }
  EXPECT_THAT(s.message(), HasSubstr("select fewer clients"));
  absl::MutexLock l(&mu_);
  EXPECT_TRUE(tasks_.empty());  // nothing was dispatched
}

}  // namespace
}  // namespace tessera::coordinator
