// Test fixture for RunManager without gRPC: clients are registry entries whose task streams
// land in a queue the test answers (test_clients.h). Shared by the run_manager_*_test.cc files.
#ifndef TESSERA_COORDINATOR_ROUND_RUN_MANAGER_TEST_FIXTURE_H_
#define TESSERA_COORDINATOR_ROUND_RUN_MANAGER_TEST_FIXTURE_H_

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "coordinator/round/run_manager.h"
#include "coordinator/round/test_clients.h"
#include "core/base/testing/status_matchers.h"
#include "privacy/crypto/random.h"

namespace tessera::coordinator {

class RunManagerTest : public ::testing::Test {
 public:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("rm-test-" + crypto::RandomHexId(6));
    Open();
  }
  void TearDown() override {
    runs_.reset();
    state_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    auto state = CoordinatorState::Open(dir_.string());
    ASSERT_THAT(state, IsOk());
    state_ = std::move(*state);
    runs_ = std::make_unique<RunManager>(options_, state_.get(), &registry_);
  }
  // A coordinator stop (no more tasks queued) and a new RunManager on the same state,
  // before Recover.
  void Reopen() {
    runs_.reset();
    state_.reset();
    {
      absl::MutexLock l(&mu_);
      tasks_.clear();
    }
    Open();
  }
  // A coordinator restart on the same state.
  void Restart() {
    Reopen();
    TESSERA_ASSERT_OK(runs_->Recover());
  }
  // Connects a client whose tasks are queued for the test to answer.
  void Connect(const std::string& name) {
    auto session = registry_.Register(name, "cpu", "test");
    ASSERT_THAT(session, IsOk());
    AttachToQueue(registry_, *session, name, &mu_, &tasks_);
  }
  // Waits for the next task of `name`.
  wire::v1::Task NextTask(const std::string& name) {
    absl::MutexLock l(&mu_);
    auto has = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !tasks_[name].empty(); };
    EXPECT_TRUE(mu_.AwaitWithTimeout(absl::Condition(&has), absl::Seconds(10)));
    if (tasks_[name].empty()) return {};
    wire::v1::Task t = tasks_[name].front();
    tasks_[name].erase(tasks_[name].begin());
    return t;
  }
  static ArrayRecord Weights(float value, int64_t steps = 0) {
    ArrayRecord r;
    r.tensors.push_back(*Tensor::FromFloats("w", {3}, {value, value, value}));
    r.tensors.push_back(*Tensor::Create("steps", DType::kInt64, {},
                                        std::string(reinterpret_cast<char*>(&steps), 8)));
    return r;
  }
  static wire::v1::RunConfig Config(uint32_t rounds, uint32_t per_round, uint32_t min_clients,
                                    double deadline = 10, uint32_t eval_every = 0) {
    wire::v1::RunConfig c;
    c.set_name("test-run");
    c.set_rounds(rounds);
    c.mutable_model()->set_architecture("mlp");
    c.mutable_train()->set_local_epochs(1);
    c.mutable_train()->set_batch_size(8);
    c.mutable_train()->set_learning_rate(0.1);
    c.mutable_selection()->set_clients_per_round(per_round);
    c.mutable_selection()->set_min_clients(min_clients);
    c.mutable_selection()->set_wait_for_clients_seconds(5);
    c.mutable_round()->set_deadline_seconds(deadline);
    c.mutable_round()->set_max_retries(1);
    c.mutable_evaluation()->set_every(eval_every);
    c.mutable_evaluation()->set_deadline_seconds(5);
    return c;
  }
  // Creates and starts a run; its id, or "" (with a test failure) if either fails.
  std::string CreateAndStartRun(const wire::v1::RunConfig& config, ArrayRecord initial) {
    absl::StatusOr<wire::v1::RunStatus> run = runs_->CreateRun(config, std::move(initial), "");
    EXPECT_THAT(run, IsOk());
    if (!run.ok()) return "";
    EXPECT_THAT(runs_->StartRun(run->run_id()), IsOk());
    return run->run_id();
  }
  wire::v1::RunStatus AwaitState(const std::string& run, wire::v1::RunState state) {
    wire::v1::RunStatus s;
    for (int i = 0; i < 500; ++i) {
      s = *runs_->GetRunStatus(run);
      if (s.state() == state) break;
      absl::SleepFor(absl::Milliseconds(20));
    }
    EXPECT_EQ(s.state(), state) << s.DebugString();
    return s;
  }
  absl::Status Answer(const std::string& client, const wire::v1::Task& t, float delta,
                      uint64_t n) {
    auto model = runs_->BeginUpdate(t.task_id(), client);
    if (!model.ok()) return model.status();
    return runs_->SubmitUpdate(t.task_id(), client, n, {{"train_loss", 1.0}}, Weights(delta, 1),
                               100);
  }

  std::filesystem::path dir_;
  RunManagerOptions options_;  // what Open() gives the RunManager
  ClientRegistry registry_{ClientRegistry::Options{}};
  std::unique_ptr<CoordinatorState> state_;
  std::unique_ptr<RunManager> runs_;
  absl::Mutex mu_;
  TaskQueues tasks_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_ROUND_RUN_MANAGER_TEST_FIXTURE_H_
