#include "client/runtime/task_executor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/base/testing/status_matchers.h"
#include "core/serde/tensor_stream.h"

namespace tessera {
namespace {

TaskExecutorOptions CpuOptions() {
  TaskExecutorOptions o;
  o.device = "cpu";
  o.name = "client-0";
  return o;
}

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::FloatNear;
using ::testing::HasSubstr;
using ::testing::Pointwise;
using ::testing::SizeIs;

Tensor F32(const std::string& name, std::vector<float> values) {
  // value() throws (failing the test) on a malformed tensor.
  return Tensor::FromFloats(name, {static_cast<int64_t>(values.size())}, values).value();
}

std::string Variate(const std::string& name) { return kScaffoldVariatePrefix + name; }

std::vector<std::string> Names(const ArrayRecord& r) {
  std::vector<std::string> names;
  for (const Tensor& t : r.tensors) names.push_back(t.name());
  return names;
}

MATCHER_P(FloatsNear, expected, "") {
  return ::testing::ExplainMatchResult(Pointwise(FloatNear(1e-5f), expected),
                                       arg.template values<float>(), result_listener);
}

// A tiny SCAFFOLD model: trainable "w" (2 values) and "b", a float buffer "n", and the
// server variate c in an order other than the parameters'.
ArrayRecord ScaffoldGlobal() {
  return ArrayRecord{{F32("w", {1.0f, 2.0f}), F32("b", {0.5f}), F32("n", {7.0f}),
                      F32(Variate("b"), {0.3f}), F32(Variate("w"), {0.1f, -0.2f}),
                      F32(Variate("n"), {0.0f})}};
}
const std::vector<std::string> kTrainable = {"w", "b"};

TEST(ScaffoldSplitTest, SeparatesTheModelAndComputesTheCorrection) {
  ClientState state;
  state.scaffold_variate.tensors.push_back(F32("w", {0.05f, 0.1f}));  // no "b": c_i = 0
  absl::StatusOr<std::pair<ArrayRecord, ArrayRecord>> split =
      ScaffoldSplit(ScaffoldGlobal(), kTrainable, state);
  TESSERA_ASSERT_OK(split);
  EXPECT_THAT(Names(split->first), ElementsAre("w", "b", "n"));
  EXPECT_THAT(split->first.tensors[0], FloatsNear(std::vector<float>{1.0f, 2.0f}));
  // c - c_i per trainable parameter, in the trainable list's order.
  EXPECT_THAT(Names(split->second), ElementsAre("w", "b"));
  EXPECT_THAT(split->second.tensors[0], FloatsNear(std::vector<float>{0.05f, -0.3f}));
  EXPECT_THAT(split->second.tensors[1], FloatsNear(std::vector<float>{0.3f}));
}

TEST(ScaffoldSplitTest, RefusesAMissingOrMismatchedVariate) {
  ArrayRecord global = ScaffoldGlobal();
  global.tensors.erase(global.tensors.begin() + 4);  // scaffold.c/w
  EXPECT_THAT(ScaffoldSplit(global, kTrainable, ClientState{}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"w\"")));
  ClientState state;
  state.scaffold_variate.tensors.push_back(F32("w", {0.05f, 0.1f, 0.0f}));
  EXPECT_THAT(ScaffoldSplit(ScaffoldGlobal(), kTrainable, state),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ScaffoldUpdateTest, OptionTwoByHand) {
  ClientState state;
  state.scaffold_variate.tensors.push_back(F32("w", {0.05f, 0.1f}));
  // y after K = 4 steps of lr = 0.05 (K lr = 0.2); the buffer "n" moved too.
  const ArrayRecord trained{{F32("w", {0.8f, 2.4f}), F32("b", {0.4f}), F32("n", {7.5f})}};
  absl::StatusOr<ArrayRecord> update =
      ScaffoldUpdate(ScaffoldGlobal(), trained, kTrainable, 4, 0.05, state);
  TESSERA_ASSERT_OK(update);
  // y - x, then c_i+ - c_i in the global's variate order.
  ASSERT_THAT(Names(*update), ElementsAre("w", "b", "n", Variate("b"), Variate("w"),
                                          Variate("n")));
  EXPECT_THAT(update->tensors[0], FloatsNear(std::vector<float>{-0.2f, 0.4f}));
  EXPECT_THAT(update->tensors[1], FloatsNear(std::vector<float>{-0.1f}));
  EXPECT_THAT(update->tensors[2], FloatsNear(std::vector<float>{0.5f}));
  // b: c_i+ = 0 - 0.3 + 0.1 / 0.2 = 0.2.
  EXPECT_THAT(update->tensors[3], FloatsNear(std::vector<float>{0.2f}));
  // w: c_i+ = (0.05, 0.1) - (0.1, -0.2) + (0.2, -0.4) / 0.2 = (0.95, -1.7).
  EXPECT_THAT(update->tensors[4], FloatsNear(std::vector<float>{0.9f, -1.8f}));
  EXPECT_THAT(update->tensors[5], FloatsNear(std::vector<float>{0.0f}));  // not trainable
  ASSERT_THAT(Names(state.scaffold_variate), ElementsAre("b", "w"));
  EXPECT_THAT(state.scaffold_variate.tensors[0], FloatsNear(std::vector<float>{0.2f}));
  EXPECT_THAT(state.scaffold_variate.tensors[1], FloatsNear(std::vector<float>{0.95f, -1.7f}));
}

TEST(ScaffoldUpdateTest, RefusesNoStepsAndAVariateWithoutItsParameter) {
  const ArrayRecord trained{{F32("w", {0.8f, 2.4f}), F32("b", {0.4f}), F32("n", {7.0f})}};
  ClientState state;
  EXPECT_THAT(ScaffoldUpdate(ScaffoldGlobal(), trained, kTrainable, 0, 0.05, state),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ArrayRecord global = ScaffoldGlobal();
  global.tensors.push_back(F32(Variate("z"), {1.0f}));
  EXPECT_THAT(ScaffoldUpdate(global, trained, {"w", "b", "z"}, 4, 0.05, state),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("scaffold.c/z")));
}

// Serves one global model and records what the client sends.
class FakeFleet : public FleetTransport {
 public:
  explicit FakeFleet(ArrayRecord global) : global_(std::move(global)) {}

  absl::StatusOr<ArrayRecord> FetchModel(const wire::v1::Task&) override { return global_; }
  absl::StatusOr<std::string> FetchArtifact(const wire::v1::Task&) override {
    return absl::UnimplementedError("built-in models only");
  }
  absl::Status PushUpdate(const wire::v1::Task&, uint64_t num_examples,
                          const std::map<std::string, double>& metrics,
                          const ArrayRecord& update) override {
    ++updates;
    weight = num_examples;
    this->metrics = metrics;
    this->update = update;
    return absl::OkStatus();
  }
  absl::Status PushEvaluation(const wire::v1::Task&, const EvalResult& eval) override {
    ++evaluations;
    this->eval = eval;
    return absl::OkStatus();
  }
  SecAggTransport SecAgg(const wire::v1::Task&) override {
    return [](const secagg::v1::ClientToServer&,
              double) -> absl::StatusOr<secagg::v1::ServerToClient> {
      return absl::UnimplementedError("no secure aggregation here");
    };
  }
  absl::Status ReportData(const wire::v1::Task&, const wire::v1::DataReport&) override {
    return absl::UnimplementedError("no data reports here");
  }
  absl::Status ReportSitePrivacy(const wire::v1::Task&,
                                 const wire::v1::SitePrivacyReport& report) override {
    site_privacy.push_back(report);
    return absl::OkStatus();
  }

  int updates = 0;
  int evaluations = 0;
  uint64_t weight = 0;
  std::map<std::string, double> metrics;
  ArrayRecord update;
  EvalResult eval;
  std::vector<wire::v1::SitePrivacyReport> site_privacy;

 private:
  const ArrayRecord global_;
};

// 784-float examples of 10 classes (labels i % 10).
Dataset Synthetic(size_t n, uint64_t seed) {
  Dataset d;
  d.example_shape = {1, 28, 28};
  d.num_classes = 10;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (size_t i = 0; i < n; ++i) {
    d.labels.push_back(static_cast<int64_t>(i % 10));
    for (int j = 0; j < 784; ++j) d.features.push_back(normal(rng));
  }
  return d;
}

double Norm(const ArrayRecord& r) {
  double sum = 0;
  for (const Tensor& t : r.tensors) {
    if (t.dtype() != DType::kFloat32) continue;
    for (float v : t.values<float>()) sum += static_cast<double>(v) * v;
  }
  return std::sqrt(sum);
}

class TaskExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<LocalModel>> model =
        LocalModel::CreateBuiltin("mlp", 1, "cpu");
    TESSERA_ASSERT_OK(model);
    absl::StatusOr<ArrayRecord> weights = (*model)->GetWeights();
    TESSERA_ASSERT_OK(weights);
    weights_ = *std::move(weights);
    trainable_ = (*model)->TrainableParameterNames();
  }

  static wire::v1::Task TrainTask() {
    wire::v1::Task task;
    task.set_task_id("t1");
    task.set_type(wire::v1::TRAIN);
    task.set_seed(5);
    task.mutable_model()->set_architecture("mlp");
    task.mutable_model()->set_seed(1);
    task.mutable_train()->set_local_epochs(1);
    task.mutable_train()->set_batch_size(8);
    task.mutable_train()->set_learning_rate(0.1);
    return task;
  }

  // Runs `task` on a fresh executor (or `executor`) against `fleet`.
  absl::StatusOr<TaskReport> Run(const wire::v1::Task& task, FakeFleet& fleet,
                                 ClientState& state, TaskExecutor* executor = nullptr) {
    TaskExecutor fresh(CpuOptions());
    return (executor != nullptr ? *executor : fresh)
        .Run(task, train_, test_, state, SecAggParticipantOptions{}, fleet);
  }

  ArrayRecord weights_;
  std::vector<std::string> trainable_;
  const Dataset train_ = Synthetic(40, 1);  // 5 steps of 8
  const Dataset test_ = Synthetic(20, 2);
};

TEST_F(TaskExecutorTest, TrainPushesADeltaWeightedByExamples) {
  FakeFleet fleet(weights_);
  ClientState state;
  absl::StatusOr<TaskReport> report = Run(TrainTask(), fleet, state);
  TESSERA_ASSERT_OK(report);
  EXPECT_EQ(report->type, wire::v1::TRAIN);
  EXPECT_EQ(report->train.steps, 5u);
  EXPECT_EQ(report->secagg_survivors, 0u);
  ASSERT_EQ(fleet.updates, 1);
  EXPECT_EQ(fleet.evaluations, 0);
  TESSERA_EXPECT_OK(CheckSameLayout(weights_, fleet.update));
  EXPECT_GT(Norm(fleet.update), 0);
  EXPECT_EQ(fleet.weight, train_.size());
  EXPECT_EQ(report->train.num_examples, train_.size());
  ASSERT_TRUE(fleet.metrics.count("train_loss"));
  EXPECT_DOUBLE_EQ(fleet.metrics["train_loss"], report->train.train_loss);
  ASSERT_TRUE(fleet.metrics.count("local_steps"));
  EXPECT_EQ(fleet.metrics["local_steps"], static_cast<double>(report->train.steps));
  EXPECT_FALSE(fleet.metrics.count("dp_unclipped"));
  EXPECT_THAT(state.scaffold_variate.tensors, SizeIs(0));
}

// Record-level DP: the task is charged to the site's ledger and reported before training,
// trains with DP-SGD (5 steps of expected batch 8 from 40 examples), and sends weight 1 with no
// loss or timing; only the step count (already in the privacy report) goes with it.
TEST_F(TaskExecutorTest, RecordDpChargesTheSiteAndSendsNoTrainingMetrics) {
  FakeFleet fleet(weights_);
  ClientState state;
  absl::StatusOr<SiteLedger> ledger = SiteLedger::Open("", "synthetic", {50, 1e-3}, 40);
  TESSERA_ASSERT_OK(ledger);
  state.ledger = std::make_shared<SiteLedger>(*std::move(ledger));
  wire::v1::Task task = TrainTask();
  wire::v1::RecordDpConfig& r = *task.mutable_dp()->mutable_record();
  r.set_enabled(true);
  r.set_noise_multiplier(1.0);
  r.set_clip_norm(1.0);
  r.set_expected_batch_size(8);
  r.set_max_physical_batch(16);
  absl::StatusOr<TaskReport> report = Run(task, fleet, state);
  TESSERA_ASSERT_OK(report);
  EXPECT_EQ(report->train.steps, 5u);
  EXPECT_DOUBLE_EQ(report->train.sampling_rate, 0.2);
  ASSERT_EQ(fleet.site_privacy.size(), 1u);
  EXPECT_FALSE(fleet.site_privacy[0].refused());
  EXPECT_EQ(fleet.site_privacy[0].steps(), 5u);
  EXPECT_EQ(state.ledger->entries().size(), 1u);
  ASSERT_EQ(fleet.updates, 1);
  EXPECT_EQ(fleet.weight, 1u);
  EXPECT_FALSE(fleet.metrics.count("train_loss"));
  EXPECT_FALSE(fleet.metrics.count("train_seconds"));
  EXPECT_EQ(fleet.metrics["local_steps"], 5.0);
  // With organization-level DP as well, not even the step count.
  FakeFleet both(weights_);
  task.mutable_dp()->set_mode(wire::v1::DifferentialPrivacyConfig::CENTRAL);
  task.mutable_dp()->set_clip_norm(1.0);
  task.set_task_id("t2");
  TESSERA_ASSERT_OK(Run(task, both, state).status());
  EXPECT_FALSE(both.metrics.count("local_steps"));
  EXPECT_EQ(state.ledger->entries().size(), 2u);
}

TEST_F(TaskExecutorTest, ProximalTermShrinksTheUpdate) {
  FakeFleet plain(weights_), again(weights_), prox(weights_);
  ClientState state;
  TESSERA_ASSERT_OK(Run(TrainTask(), plain, state));
  // Same seed, same batches: training is reproducible, so the norms are comparable.
  TESSERA_ASSERT_OK(Run(TrainTask(), again, state));
  for (size_t i = 0; i < plain.update.tensors.size(); ++i) {
    EXPECT_EQ(plain.update.tensors[i].data(), again.update.tensors[i].data());
  }
  wire::v1::Task task = TrainTask();
  task.mutable_strategy()->set_proximal_mu(2.0);
  TESSERA_ASSERT_OK(Run(task, prox, state));
  TESSERA_EXPECT_OK(CheckSameLayout(weights_, prox.update));
  EXPECT_GT(Norm(prox.update), 0);
  EXPECT_LT(Norm(prox.update), Norm(plain.update));
  EXPECT_EQ(prox.metrics["local_steps"], plain.metrics["local_steps"]);
}

TEST_F(TaskExecutorTest, ScaffoldSendsTheVariateChangeAndKeepsTheVariate) {
  ArrayRecord global = weights_;
  for (const std::string& name : trainable_) {
    const Tensor* p = weights_.Find(name);
    ASSERT_NE(p, nullptr);
    global.tensors.push_back(Tensor::Zeros(Variate(name), p->dtype(), p->shape()).value());
  }
  FakeFleet fleet(global);
  wire::v1::Task task = TrainTask();
  task.mutable_strategy()->set_scaffold(true);
  ClientState state;
  TaskExecutor executor(CpuOptions());
  absl::StatusOr<TaskReport> first = Run(task, fleet, state, &executor);
  TESSERA_ASSERT_OK(first);
  EXPECT_EQ(fleet.weight, 1u);  // SCAFFOLD's uniform mean
  EXPECT_EQ(fleet.metrics["local_steps"], 5.0);
  EXPECT_THAT(Names(fleet.update), ElementsAreArray(Names(global)));
  ArrayRecord model_part;
  model_part.tensors.assign(fleet.update.tensors.begin(),
                            fleet.update.tensors.begin() + weights_.tensors.size());
  TESSERA_EXPECT_OK(CheckSameLayout(weights_, model_part));
  // c = 0 and c_i = 0 before: the variate change is the new c_i.
  ASSERT_EQ(Names(state.scaffold_variate), trainable_);
  const ArrayRecord c1 = state.scaffold_variate;
  for (const Tensor& ci : c1.tensors) {
    const Tensor* sent = fleet.update.Find(Variate(ci.name()));
    ASSERT_NE(sent, nullptr);
    EXPECT_THAT(*sent, FloatsNear(ci.values<float>()));
  }
  EXPECT_GT(Norm(c1), 0);

  // The second task starts from c_1: its gradients are corrected by c - c_1 = -c_1, so it
  // trains otherwise than the first (same global, same batches), and it sends c_2 - c_1.
  const ArrayRecord first_update = fleet.update;
  TESSERA_ASSERT_OK(Run(task, fleet, state, &executor));
  EXPECT_NE(fleet.update.tensors[0].data(), first_update.tensors[0].data());
  ASSERT_EQ(Names(state.scaffold_variate), trainable_);
  for (size_t i = 0; i < trainable_.size(); ++i) {
    const Tensor& c2 = state.scaffold_variate.tensors[i];
    const Tensor* sent = fleet.update.Find(Variate(c2.name()));
    ASSERT_NE(sent, nullptr);
    std::vector<float> change;
    for (size_t j = 0; j < c2.values<float>().size(); ++j) {
      change.push_back(c2.values<float>()[j] - c1.tensors[i].values<float>()[j]);
    }
    EXPECT_THAT(*sent, FloatsNear(change));
  }
}

TEST_F(TaskExecutorTest, ScaffoldRefusesAModelWithoutItsVariate) {
  FakeFleet fleet(weights_);
  wire::v1::Task task = TrainTask();
  task.mutable_strategy()->set_scaffold(true);
  ClientState state;
  EXPECT_THAT(Run(task, fleet, state), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(fleet.updates, 0);
}

TEST_F(TaskExecutorTest, EvaluatePushesAnEvaluation) {
  FakeFleet fleet(weights_);
  wire::v1::Task task = TrainTask();
  task.set_type(wire::v1::EVALUATE);
  ClientState state;
  absl::StatusOr<TaskReport> report = Run(task, fleet, state);
  TESSERA_ASSERT_OK(report);
  EXPECT_EQ(report->type, wire::v1::EVALUATE);
  EXPECT_EQ(fleet.updates, 0);
  ASSERT_EQ(fleet.evaluations, 1);
  EXPECT_EQ(fleet.eval.num_examples, test_.size());
  EXPECT_GE(fleet.eval.accuracy, 0.0);
  EXPECT_LE(fleet.eval.accuracy, 1.0);
  EXPECT_GT(fleet.eval.loss, 0.0);
  EXPECT_EQ(report->eval.loss, fleet.eval.loss);
}

TEST_F(TaskExecutorTest, CentralDpClipsTheUpdate) {
  FakeFleet fleet(weights_);
  wire::v1::Task task = TrainTask();
  task.mutable_dp()->set_mode(wire::v1::DifferentialPrivacyConfig::CENTRAL);
  task.mutable_dp()->set_clip_norm(0.01);
  ClientState state;
  TESSERA_ASSERT_OK(Run(task, fleet, state));
  ASSERT_EQ(fleet.updates, 1);
  TESSERA_EXPECT_OK(CheckSameLayout(weights_, fleet.update));
  EXPECT_LE(Norm(fleet.update), 0.01 * (1 + 1e-5));
  EXPECT_GT(Norm(fleet.update), 0.009);  // clipped, not zeroed
  ASSERT_TRUE(fleet.metrics.count("dp_unclipped"));
  EXPECT_EQ(fleet.metrics["dp_unclipped"], 0);  // a real step is far longer than 0.01
  EXPECT_FALSE(fleet.metrics.count("train_loss"));  // not released under DP
  // No exact example or step count (or training time, which tracks them) leaves the client.
  EXPECT_EQ(fleet.weight, 1u);
  EXPECT_FALSE(fleet.metrics.count("local_steps"));
  EXPECT_FALSE(fleet.metrics.count("train_seconds"));
  EXPECT_EQ(fleet.metrics.size(), 1u);  // dp_unclipped only
}

// CompressUpdate: the task's int8 encoding replaces the float32 tensor by its payload (one
// scale for the 8 values of a 16-value block, then 8 codes: 12 bytes), the integer tensor
// travels as it is, the residual kept in ClientState is what the encoding lost, and a task of
// another run starts from a zero residual. Secure aggregation tasks are left alone.
TEST(CompressUpdateTest, EncodesAsTheTaskSaysAndKeepsTheResidualPerRun) {
  wire::v1::Task task;
  task.set_run_id("run-1");
  task.mutable_compression()->set_method(wire::v1::CompressionConfig::INT8);
  task.mutable_compression()->set_block_size(16);
  task.mutable_compression()->set_error_feedback(true);
  const std::vector<float> w = {0.3f, -1.27f, 0.011f, 0.5f, -0.2f, 0.05f, 1.0f, -0.9f};
  auto prepared = [&] {
    PreparedUpdate p;
    p.update.tensors.push_back(*Tensor::FromFloats("w", {8}, w));
    p.update.tensors.push_back(*Tensor::Zeros("steps", DType::kInt64, {1}));
    return p;
  };
  ClientState state;
  PreparedUpdate p = prepared();
  ASSERT_THAT(CompressUpdate(task, 42, state, p), IsOk());
  ASSERT_EQ(p.update.tensors.size(), 2u);
  EXPECT_EQ(p.update.tensors[0].DebugString(), "w uint8[12]");
  EXPECT_EQ(p.update.tensors[1].DebugString(), "steps int64[1]");
  // Decode by hand: scale (max |w| / 127 = 0.01) times each int8 code.
  float scale;
  std::memcpy(&scale, p.update.tensors[0].data().data(), 4);
  EXPECT_FLOAT_EQ(scale, 1.27f / 127.0f);
  const ArrayRecord& r = state.compression_feedback.residual();
  ASSERT_EQ(r.tensors.size(), 2u);
  for (int i = 0; i < 8; ++i) {
    const float decoded =
        static_cast<float>(static_cast<int8_t>(p.update.tensors[0].data()[4 + i])) * scale;
    EXPECT_NEAR(r.tensors[0].values<float>()[i], w[i] - decoded, 1e-6) << i;
    EXPECT_LT(std::fabs(w[i] - decoded), scale * 1.0001f) << i;
  }
  // Another run: its first update is encoded without the old residual.
  task.set_run_id("run-2");
  PreparedUpdate fresh = prepared();
  ASSERT_THAT(CompressUpdate(task, 42, state, fresh), IsOk());
  PreparedUpdate again = prepared();
  ClientState clean;
  ASSERT_THAT(CompressUpdate(task, 42, clean, again), IsOk());
  EXPECT_EQ(fresh.update.tensors[0].data(), again.update.tensors[0].data());
  // Secure aggregation: untouched.
  task.mutable_secagg()->set_value_bits(16);
  PreparedUpdate secagg = prepared();
  ASSERT_THAT(CompressUpdate(task, 42, state, secagg), IsOk());
  EXPECT_EQ(secagg.update.tensors[0].DebugString(), "w float32[8]");
}

}  // namespace
}  // namespace tessera
