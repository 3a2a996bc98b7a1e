// Record-level DP end to end (docs/privacy.md, "Record-level DP-SGD at every site"): a real
// tessera-coordinator and four real tessera-client processes over mTLS on 127.0.0.1, each
// training with DP-SGD on its own shard of Fashion-MNIST under secure aggregation, each with
// its own budget and ledger file, driven by the operator CLI. The expected epsilons are those
// of the RDP accountant (tested against published values in privacy/dp) for the steps the
// test computes itself from the shard size.
#include <signal.h>

#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "privacy/dp/rdp_accountant.h"
#include "tests/integration/process_federation.h"

namespace tessera::testing_support {
namespace {

using ::testing::HasSubstr;

// Each client holds 500 training examples (an IID quarter of the first 2,000); B = 50, so
// q = 0.1 and one local epoch is 10 DP-SGD steps.
constexpr int kClients = 4;
constexpr int kLimit = 2000;
constexpr double kQ = 50.0 / 500;
constexpr int kStepsPerRound = 10;
constexpr double kZ = 1.0;
constexpr double kDelta = 1e-4;  // below 1 / 500

double EpsilonAfterSteps(uint64_t steps) {
  absl::StatusOr<dp::EpsilonResult> e = dp::ComputeEpsilon(
      kQ, kZ, steps, kDelta, dp::DefaultOrders(), dp::Conversion::kImproved);
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? e->epsilon : 0;
}

class RecordDpFederationTest : public ProcessFederation {
 protected:
  RecordDpFederationTest() : ProcessFederation("recdp", kClients) {}

  std::unique_ptr<Process> StartClient(int i, double budget_epsilon) {
    const std::string pki = dir_ + "/pki/";
    return std::make_unique<Process>(
        std::vector<std::string>{
            BinDir() + "/tessera-client", "--coordinator", Address(), "--name", names_[i],
            "--ca", pki + "ca.pem", "--cert", pki + names_[i] + ".pem", "--key",
            pki + names_[i] + ".key", "--device", "cpu", "--threads", "1", "--data",
            std::string("idx:") + kFashionMnist, "--partition", "iid", "--num-partitions",
            std::to_string(kClients), "--partition-index", std::to_string(i), "--limit",
            std::to_string(kLimit), "--privacy-budget",
            absl::StrFormat("epsilon=%.17g,delta=%g", budget_epsilon, kDelta),
            "--privacy-ledger", dir_ + "/ledger-" + names_[i] + ".json"},
        dir_ + "/" + names_[i] + ".log", std::vector<std::string>{"OPENBLAS_NUM_THREADS=1"});
  }

  std::string WriteRunFile(int rounds, int min_clients) {
    const std::string path = dir_ + "/run-" + std::to_string(files_++) + ".toml";
    std::ofstream(path) << "name = \"record-dp-it\"\nrounds = " << rounds << "\nseed = 5\n"
                        << "[model]\narchitecture = \"mlp\"\nseed = 1\n"
                        << "[train]\nlocal_epochs = 1\nbatch_size = 32\n"
                        << "learning_rate = 0.1\nmomentum = 0.9\n"
                        << "[selection]\nclients_per_round = " << kClients
                        << "\nmin_clients = " << min_clients
                        << "\nwait_for_clients_seconds = 60\n"
                        << "[round]\ndeadline_seconds = 120\nmax_retries = 1\n"
                        << "[evaluation]\nevery = 1\ndeadline_seconds = 60\n"
                        // Against a malicious coordinator with no corrupt clients tolerated,
                        // one of the 4 may drop out (or refuse) and the sum still unmasks.
                        << "[secure_aggregation]\nphase_deadline_seconds = 30\n"
                        << "dropout_fraction = 0.25\ncorrupt_fraction = 0\n"
                        << "[differential_privacy]\nmode = \"record\"\n"
                        << "noise_multiplier = " << kZ << "\nclip_norm = 1.0\n"
                        << "expected_batch_size = 50\n";
    return path;
  }

  std::string CreateRun(int rounds, int min_clients) {
    std::string out;
    EXPECT_EQ(RunOperatorCli(dir_, port_,
                             {"--json", "run", "create", WriteRunFile(rounds, min_clients),
                              "--start"},
                             &out),
              0)
        << out;
    return nlohmann::json::parse(LastJsonLine(out), nullptr, false).value("run_id", "");
  }

  nlohmann::json Watch(const std::string& run) {
    std::string out;
    EXPECT_EQ(RunOperatorCli(dir_, port_, {"run", "watch", run}, &out), 0)
        << out << coordinator_->Log();
    EXPECT_EQ(RunOperatorCli(dir_, port_, {"--json", "run", "status", run}, &out), 0) << out;
    return nlohmann::json::parse(LastJsonLine(out), nullptr, false);
  }

  const nlohmann::json* Site(const nlohmann::json& round, const std::string& client) {
    if (!round.contains("site_privacy")) return nullptr;
    for (const nlohmann::json& s : round["site_privacy"]) {
      if (s.value("client", "") == client) return &s;
    }
    return nullptr;
  }

  int files_ = 0;
};

// Three rounds of DP-SGD at every site under secure aggregation: the global model learns
// (well above the 10% of chance), and every round each site reports the epsilon of its own
// ledger: that of the Poisson-subsampled Gaussian with q = 0.1, z = 1 over 10 steps per round.
TEST_F(RecordDpFederationTest, LearnsUnderSecureAggregationAndEachSiteReportsItsEpsilon) {
  for (int i = 0; i < kClients; ++i) clients_.push_back(StartClient(i, 20));
  const std::string run = CreateRun(/*rounds=*/3, /*min_clients=*/kClients);
  ASSERT_FALSE(run.empty());
  const nlohmann::json status = Watch(run);
  ASSERT_EQ(status["state"], "COMPLETED") << status.dump(1);
  ASSERT_EQ(status["rounds"].size(), 3u) << status.dump(1);
  for (int r = 0; r < 3; ++r) {
    const nlohmann::json& round = status["rounds"][r];
    EXPECT_EQ(round["secagg"]["state"], "Completed") << round.dump(1);
    EXPECT_EQ(round["secagg"]["survivors"], kClients);
    const double want = EpsilonAfterSteps(kStepsPerRound * (r + 1));
    for (const std::string& name : names_) {
      const nlohmann::json* s = Site(round, name);
      ASSERT_NE(s, nullptr) << name << " in " << round.dump(1);
      EXPECT_FALSE(s->value("refused", false));
      EXPECT_EQ((*s)["steps"], std::to_string(kStepsPerRound));  // uint64: a JSON string
      EXPECT_NEAR((*s)["sampling_rate"].get<double>(), kQ, 1e-12);
      EXPECT_NEAR((*s)["epsilon"].get<double>(), want, 1e-9 * want) << s->dump();
      EXPECT_EQ((*s)["delta"], kDelta);
      EXPECT_EQ((*s)["epsilon_budget"], 20.0);
    }
  }
  const double accuracy = status["rounds"][2]["eval_accuracy"].get<double>();
  // Learns: three times chance (10 classes). The DP noise is fresh in every run; after 3
  // rounds the accuracy was 0.496 once (clean-clone .ci/run of f776fb4, under ASan), so a
  // bound of 0.5 failed a run that learned.
  EXPECT_GT(accuracy, 0.3) << status.dump(1);
  // Each site's ledger is a file at the site with one entry per task.
  for (const std::string& name : names_) {
    std::ifstream f(dir_ + "/ledger-" + name + ".json");
    const nlohmann::json ledger = nlohmann::json::parse(f, nullptr, false);
    ASSERT_TRUE(ledger.is_object()) << name;
    EXPECT_EQ(ledger["entries"].size(), 3u) << ledger.dump();
  }
}

// A site whose budget pays for one round but not two: it trains in round 1 and refuses round
// 2 (the coordinator is told why, withdraws it from the secure sum at once, and the round
// completes with the other three), and the run marks it as spent. After a client restart, a
// new run selects it again and it refuses again: its ledger is on its own disk. (That a spent
// site is not selected again within a run is tested in run_manager_record_dp_test.cc; with
// three clients left this threat model admits no secure-aggregation threshold.)
TEST_F(RecordDpFederationTest, ASiteWhoseBudgetIsSpentRefusesAndTheRunGoesOn) {
  const double one = EpsilonAfterSteps(kStepsPerRound);
  const double two = EpsilonAfterSteps(2 * kStepsPerRound);
  ASSERT_LT(one, two);
  const double tight = (one + two) / 2;
  for (int i = 0; i < kClients; ++i) clients_.push_back(StartClient(i, i == 3 ? tight : 50));
  const std::string run = CreateRun(/*rounds=*/2, /*min_clients=*/3);
  ASSERT_FALSE(run.empty());
  const nlohmann::json status = Watch(run);
  ASSERT_EQ(status["state"], "COMPLETED") << status.dump(1);
  ASSERT_EQ(status["rounds"].size(), 2u) << status.dump(1);
  const std::string& spent = names_[3];
  const nlohmann::json* first = Site(status["rounds"][0], spent);
  ASSERT_NE(first, nullptr);
  EXPECT_FALSE(first->value("refused", false));
  EXPECT_NEAR((*first)["epsilon"].get<double>(), one, 1e-9 * one);
  const nlohmann::json& second = status["rounds"][1];
  const nlohmann::json* refused = Site(second, spent);
  ASSERT_NE(refused, nullptr) << second.dump(1);
  EXPECT_TRUE(refused->value("refused", false));
  EXPECT_THAT(refused->value("reason", ""), HasSubstr("exhausted"));
  EXPECT_EQ(second["reported"], 3) << second.dump(1);
  EXPECT_EQ(second["secagg"]["state"], "Completed") << second.dump(1);
  for (const auto& p : second["participants"]) EXPECT_NE(p.get<std::string>(), spent);
  EXPECT_THAT(status["budget_exhausted_clients"].dump(), HasSubstr(spent));

  // Restart the spent site; a new run selects it again, and it refuses from its own ledger.
  clients_[3]->Kill(SIGTERM);
  clients_[3] = StartClient(3, tight);
  const std::string again = CreateRun(/*rounds=*/1, /*min_clients=*/3);
  const nlohmann::json next = Watch(again);
  ASSERT_EQ(next["state"], "COMPLETED") << next.dump(1);
  const nlohmann::json* still = Site(next["rounds"][0], spent);
  ASSERT_NE(still, nullptr) << next.dump(1);
  EXPECT_TRUE(still->value("refused", false));
  EXPECT_EQ(next["rounds"][0]["reported"], 3);
}

}  // namespace
}  // namespace tessera::testing_support
