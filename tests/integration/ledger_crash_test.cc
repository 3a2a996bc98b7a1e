// Privacy ledger crash points (docs/privacy.md, "What is charged when"): a real
// tessera-coordinator and three real tessera-client processes run central DP with every
// round evaluated on every client. The coordinator is started with the testing-only
// --fault-crash-at and dies by SIGKILL in round 2 after the new model went out in
// evaluation tasks and before the round's commit: at once, while the run is cancelled, or
// while the coordinator shuts down. After a restart the ledger (read through the control
// API) must hold exactly one charge per released model, recounted independently from the
// evaluations a client logged, and the epsilon of that many rounds, computed in the test
// from the Gaussian's closed-form RDP.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <regex>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "coordinator/round/gaussian_epsilon_for_tests.h"
#include "tests/integration/process_federation.h"

namespace tessera::testing_support {
namespace {

constexpr int kClients = 3;
constexpr double kZ = 2.0;
constexpr double kDelta = 1e-5;

double Epsilon(int k) { return coordinator::GaussianEpsilonForTests(k, kZ, kDelta); }

class LedgerCrashTest : public ProcessFederation {
 protected:
  LedgerCrashTest() : ProcessFederation("ledger", kClients) {}

  // Replaces the coordinator by one with --fault-crash-at=`fault` on the same state.
  void StartFaultyCoordinator(const std::string& fault) {
    coordinator_.reset();
    std::filesystem::remove(dir_ + "/port");
    const std::string pki = dir_ + "/pki/";
    coordinator_ = std::make_unique<Process>(
        std::vector<std::string>{BinDir() + "/tessera-coordinator", "--listen", Address(),
                                 "--port-file", dir_ + "/port", "--state-dir", dir_ + "/state",
                                 "--ca", pki + "ca.pem", "--cert", pki + "coordinator.pem",
                                 "--key", pki + "coordinator.key", "--fault-crash-at", fault},
        dir_ + "/coordinator-faulty.log");
    ASSERT_EQ(WaitForPort(dir_ + "/port", 30), port_) << coordinator_->Log();
  }

  int Cli(const std::vector<std::string>& args, std::string* out) {
    return RunOperatorCli(dir_, port_, args, out);
  }

  // Central DP, three rounds, every client sampled (q = 1) and evaluating every round.
  std::string CreateRun() {
    const std::string path = dir_ + "/run.toml";
    std::ofstream(path) << "name = \"ledger-crash\"\nrounds = 3\nseed = 5\n"
                        << "[model]\narchitecture = \"mlp\"\nseed = 1\n"
                        << "[train]\nlocal_epochs = 1\nbatch_size = 32\n"
                        << "learning_rate = 0.05\nmax_steps = 2\n"
                        << "[selection]\nfraction = 1.0\nmin_clients = " << kClients
                        << "\nwait_for_clients_seconds = 60\n"
                        << "[round]\ndeadline_seconds = 60\nmax_retries = 0\n"
                        << "[evaluation]\nevery = 1\ndeadline_seconds = 60\n"
                        << "[differential_privacy]\nmode = \"central\"\nnoise_multiplier = " << kZ
                        << "\nclip_norm = 1.0\npopulation = " << kClients
                        << "\nexpected_clients_per_round = " << kClients
                        << "\nepsilon = 100\ndelta = " << kDelta
                        << "\ndataset = \"clinic-notes\"\n";
    std::string out;
    EXPECT_EQ(Cli({"--json", "run", "create", path, "--start"}, &out), 0) << out;
    return nlohmann::json::parse(LastJsonLine(out), nullptr, false).value("run_id", "");
  }

  nlohmann::json Status(const std::string& run) {
    std::string out;
    EXPECT_EQ(Cli({"--json", "run", "status", run}, &out), 0) << out;
    return nlohmann::json::parse(LastJsonLine(out), nullptr, false);
  }

  // Released models that left the coordinator, recounted outside it: the evaluations of
  // round `round` (0: any) that client i logged.
  int Evaluations(int i, int round = 0) {
    const std::string log = ReadFileOrEmpty(dir_ + "/" + names_[i] + ".log");
    const std::regex line(round == 0 ? std::string("round [0-9]+ evaluation: accuracy")
                                     : "round " + std::to_string(round) +
                                           " evaluation: accuracy");
    return static_cast<int>(std::distance(
        std::sregex_iterator(log.begin(), log.end(), line), std::sregex_iterator()));
  }

  // Waits until every client evaluated round `round` once.
  bool AwaitEvaluations(int round) {
    for (int t = 0; t < 1200; ++t) {
      bool all = true;
      for (int i = 0; i < kClients; ++i) all = all && Evaluations(i, round) >= 1;
      if (all) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  // Waits for the coordinator to die of its own SIGKILL (the fault point).
  void ExpectKilledAtFaultPoint() {
    int status = 0;
    for (int t = 0; t < 1200 && coordinator_->running(); ++t) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_FALSE(coordinator_->running()) << coordinator_->Log();
    status = coordinator_->Kill(SIGKILL);  // reaps it
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
    EXPECT_THAT(coordinator_->Log(), ::testing::HasSubstr("--fault-crash-at"));
  }

  // The ledger after the restart against the independent recount of `released` models.
  void ExpectLedgerCovers(const nlohmann::json& status, int released) {
    const nlohmann::json& p = status["privacy"];
    EXPECT_EQ(p["rounds_charged"].get<int>(), released) << status.dump(1);
    EXPECT_NEAR(p["epsilon_spent"].get<double>(), Epsilon(released), 1e-9) << status.dump(1);
  }

  // The restarted coordinator finishes the run: round 2 again (a new release) and round 3.
  void FinishAfterRestart(const std::string& run) {
    StartCoordinator();
    std::string out;
    ASSERT_EQ(Cli({"run", "watch", run}, &out), 0) << out << coordinator_->Log();
    const nlohmann::json s = Status(run);
    ASSERT_EQ(s["state"], "COMPLETED") << s.dump(1);
    EXPECT_EQ(s["completed_rounds"], 3);
    // Every released model left the coordinator in an evaluation task: r1, r2 (crashed),
    // r2 again, r3.
    const int released = Evaluations(0);
    EXPECT_EQ(released, 4) << ReadFileOrEmpty(dir_ + "/" + names_[0] + ".log");
    EXPECT_EQ(Evaluations(0, 2), 2);
    ExpectLedgerCovers(s, released);
    const nlohmann::json& rounds = s["rounds"];
    ASSERT_EQ(rounds.size(), 4u) << s.dump(1);
    EXPECT_EQ(rounds[1]["round"], 2);
    EXPECT_EQ(rounds[1]["state"], "ROUND_FAILED");
    EXPECT_TRUE(rounds[1]["privacy"]["released"].get<bool>());
    EXPECT_EQ(rounds[2]["round"], 2);
    EXPECT_EQ(rounds[2]["attempt"], 2);
    EXPECT_EQ(rounds[2]["state"], "ROUND_COMPLETED");
  }
};

// kill -9 between the evaluation tasks of round 2 (the model has been evaluated by every
// client) and its commit.
TEST_F(LedgerCrashTest, KilledBetweenEvaluationDispatchAndCommit) {
  StartClients(/*limit=*/300);
  StartFaultyCoordinator("before-commit:2");
  const std::string run = CreateRun();
  ASSERT_FALSE(run.empty());
  ExpectKilledAtFaultPoint();
  EXPECT_EQ(Evaluations(0, 2), 1);
  FinishAfterRestart(run);
}

// kill -9 while the operator cancels the run during round 2's evaluation.
TEST_F(LedgerCrashTest, KilledDuringCancel) {
  StartClients(/*limit=*/300);
  StartFaultyCoordinator("cancel:2");
  const std::string run = CreateRun();
  ASSERT_FALSE(run.empty());
  ASSERT_TRUE(AwaitEvaluations(2)) << coordinator_->Log();
  std::string out;
  Cli({"run", "cancel", run}, &out);  // the coordinator may die before it answers
  ExpectKilledAtFaultPoint();
  StartCoordinator();
  const nlohmann::json s = Status(run);
  EXPECT_EQ(s["state"], "CANCELLED") << s.dump(1);
  EXPECT_EQ(s["completed_rounds"], 1);
  const int released = Evaluations(0);
  EXPECT_EQ(released, 2);  // rounds 1 and 2
  ExpectLedgerCovers(s, released);
}

// kill -9 while the coordinator shuts down (SIGTERM) during round 2's evaluation.
TEST_F(LedgerCrashTest, KilledDuringShutdown) {
  StartClients(/*limit=*/300);
  StartFaultyCoordinator("shutdown:2");
  const std::string run = CreateRun();
  ASSERT_FALSE(run.empty());
  ASSERT_TRUE(AwaitEvaluations(2)) << coordinator_->Log();
  ::kill(coordinator_->pid(), SIGTERM);
  ExpectKilledAtFaultPoint();
  FinishAfterRestart(run);
}

}  // namespace
}  // namespace tessera::testing_support
