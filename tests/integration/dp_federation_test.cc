// Differential privacy end to end (docs/privacy.md): a real tessera-coordinator and four
// real tessera-client processes over mTLS on 127.0.0.1, training on a small shard of
// Fashion-MNIST, driven by the operator CLI. The distributed discrete Gaussian goes through
// secure aggregation; the test computes the epsilon of k rounds itself and checks that the
// coordinator stops a run exactly where the dataset's budget ends, and that the budget
// still binds new runs after a coordinator restart.
#include <signal.h>

#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "coordinator/round/privacy_plan.h"
#include "core/config/run_config.h"
#include "core/model/safetensors.h"
#include "privacy/dp/rdp_accountant.h"
#include "tests/integration/process_federation.h"

namespace tessera::testing_support {
namespace {

using ::testing::HasSubstr;


nlohmann::json LastJson(const std::string& out) {
  return nlohmann::json::parse(LastJsonLine(out), nullptr, false);
}

// What a run file sets; the rest is fixed below.
struct DpRun {
  int rounds = 1;
  double noise_multiplier = 1.0;
  double clip_norm = 1.0;
  double epsilon = 1.0;
  std::string dataset;
  int evaluate_every = 0;
  int max_steps = 5;
};

class DpFederationTest : public ProcessFederation {
 protected:
  static constexpr int kClients = 4;

  DpFederationTest() : ProcessFederation("dp", kClients) {}

  // Writes the run file of `r` (distributed DP through secure aggregation, every client
  // sampled each round: q = expected / population = 1) and returns its path.
  std::string WriteRunFile(const DpRun& r) {
    const std::string path = dir_ + "/" + r.dataset + "-" + std::to_string(files_++) + ".toml";
    std::ofstream(path) << "name = \"dp-it\"\nrounds = " << r.rounds << "\nseed = 5\n"
                        << "[model]\narchitecture = \"mlp\"\nseed = 1\n"
                        << "[train]\nlocal_epochs = 1\nbatch_size = 32\n"
                        << "learning_rate = 0.05\nmomentum = 0.9\nmax_steps = " << r.max_steps
                        << "\n[selection]\nmin_clients = " << kClients
                        << "\nwait_for_clients_seconds = 60\n"
                        << "[round]\ndeadline_seconds = 120\nmax_retries = 0\n"
                        << "[evaluation]\nevery = " << r.evaluate_every
                        << "\ndeadline_seconds = 60\n"
                        // 4 clients: against a malicious coordinator t > (3 + C) / 2
                        // leaves no room for dropouts (all 4 must survive for DP anyway).
                        << "[secure_aggregation]\nphase_deadline_seconds = 30\n"
                        << "dropout_fraction = 0\n"
                        << "[differential_privacy]\nmode = \"distributed\"\n"
                        << "noise_multiplier = " << absl::StrFormat("%.17g", r.noise_multiplier)
                        << "\nclip_norm = " << absl::StrFormat("%.17g", r.clip_norm)
                        << "\npopulation = " << kClients
                        << "\nexpected_clients_per_round = " << kClients
                        << "\nepsilon = " << absl::StrFormat("%.17g", r.epsilon)
                        << "\ndelta = 1e-5\ndataset = \"" << r.dataset << "\"\n";
    return path;
  }

  // `tessera run create FILE --start`; returns the exit code, the output in *out.
  int CreateRun(const DpRun& r, std::string* out) {
    return RunOperatorCli(dir_, port_, {"--json", "run", "create", WriteRunFile(r), "--start"},
                          out);
  }

  nlohmann::json Watch(const std::string& run) {
    std::string out;
    EXPECT_EQ(RunOperatorCli(dir_, port_, {"run", "watch", run}, &out), 0)
        << out << coordinator_->Log();
    return Status(run);
  }

  nlohmann::json Status(const std::string& run) {
    std::string out;
    EXPECT_EQ(RunOperatorCli(dir_, port_, {"--json", "run", "status", run}, &out), 0) << out;
    return LastJson(out);
  }

  // The epsilon (at delta 1e-5) after 1..max_rounds rounds of `r`, computed from the
  // mechanism's parameters as the coordinator derives them for the run's model: rho of the
  // distributed discrete Gaussian (Kairouz, Liu, Steinke 2021), RDP composed over rounds.
  std::vector<double> EpsilonAfterRounds(const DpRun& r, int max_rounds) {
    absl::StatusOr<RunConfigFile> file = LoadRunConfigFile(WriteRunFile(r));
    EXPECT_TRUE(file.ok()) << file.status();
    const std::string weights_path = dir_ + "/mlp.safetensors";
    std::string out;
    EXPECT_EQ(RunCommand({BinDir() + "/tessera-model", "init", "--architecture", "mlp",
                          "--seed", "1", "--out", weights_path},
                         &out),
              0)
        << out;
    absl::StatusOr<ArrayRecord> weights = ReadSafetensorsFile(weights_path);
    EXPECT_TRUE(weights.ok()) << weights.status();
    if (!file.ok() || !weights.ok()) return {};
    absl::StatusOr<coordinator::PrivacyPlan> plan =
        coordinator::MakePrivacyPlan(file->config, *weights);
    EXPECT_TRUE(plan.ok()) << plan.status();
    if (!plan.ok() || !plan->ddg.has_value()) return {};
    EXPECT_EQ(plan->sampling_rate, 1.0);
    absl::StatusOr<double> rho = dp::DistributedDiscreteGaussianRho(
        plan->ddg->l2_sensitivity, plan->ddg->sigma2_per_client, kClients,
        plan->ddg->padded_dimension);
    EXPECT_TRUE(rho.ok()) << rho.status();
    const std::vector<double> orders = dp::DefaultOrders();
    absl::StatusOr<std::vector<double>> round_rdp =
        dp::DistributedDiscreteGaussianRdp(1.0, rho.value_or(0), orders);
    EXPECT_TRUE(round_rdp.ok()) << round_rdp.status();
    if (!rho.ok() || !round_rdp.ok()) return {};
    std::vector<double> epsilons;
    for (int k = 1; k <= max_rounds; ++k) {
      std::vector<double> rdp = *round_rdp;
      for (double& v : rdp) v *= k;
      absl::StatusOr<dp::EpsilonResult> e =
          dp::EpsilonFromRdp(orders, rdp, 1e-5, dp::Conversion::kImproved);
      EXPECT_TRUE(e.ok()) << e.status();
      epsilons.push_back(e.ok() ? e->epsilon : 0);
    }
    EXPECT_NEAR(plan->round_epsilon, epsilons[0], 1e-9 * epsilons[0]);
    return epsilons;
  }

  int files_ = 0;
};

// A budget between the epsilon of two and of three rounds: a run of five rounds completes
// two, each one securely aggregated and released, and stops before the third with a message
// naming the budget. The ledger survives a coordinator restart: a new run on the dataset
// cannot pay for a round, and cannot change the dataset's budget either.
TEST_F(DpFederationTest, DistributedDpStopsTheRunExactlyAtTheBudget) {
  DpRun r{.rounds = 5, .noise_multiplier = 1.0, .clip_norm = 1.0, .dataset = "fmnist-hospital"};
  const std::vector<double> eps = EpsilonAfterRounds(r, 3);
  ASSERT_EQ(eps.size(), 3u);
  ASSERT_LT(eps[0], eps[1]);
  ASSERT_LT(eps[1], eps[2]);
  r.epsilon = (eps[1] + eps[2]) / 2;

  StartClients(/*limit=*/1000);
  std::string out;
  ASSERT_EQ(CreateRun(r, &out), 0) << out;
  const nlohmann::json created = LastJson(out);
  const std::string run = created.value("run_id", "");
  ASSERT_FALSE(run.empty()) << out;
  // Before any round: nothing spent, and the next round costs exactly one round's epsilon.
  EXPECT_EQ(created["privacy"]["epsilon_spent"], 0.0) << created.dump(1);
  EXPECT_NEAR(created["privacy"]["next_round_epsilon"].get<double>(), eps[0], 1e-9 * eps[0]);

  const nlohmann::json status = Watch(run);
  ASSERT_EQ(status["state"], "COMPLETED") << status.dump(1);
  EXPECT_THAT(status["message"].get<std::string>(),
              HasSubstr("privacy budget of dataset \"fmnist-hospital\" spent"));
  EXPECT_EQ(status["completed_rounds"], 2) << status.dump(1);
  ASSERT_EQ(status["rounds"].size(), 2u) << status.dump(1);
  double previous = 0;
  for (int i = 0; i < 2; ++i) {
    const nlohmann::json& round = status["rounds"][i];
    EXPECT_EQ(round["state"], "ROUND_COMPLETED") << round.dump(1);
    EXPECT_EQ(round["secagg"]["state"], "Completed") << round.dump(1);
    EXPECT_EQ(round["secagg"]["survivors"], kClients);
    const nlohmann::json& p = round["privacy"];
    EXPECT_EQ(p["mode"], "distributed");
    EXPECT_EQ(p["dataset"], "fmnist-hospital");
    EXPECT_TRUE(p["released"].get<bool>()) << round.dump(1);
    EXPECT_EQ(p["sampling_rate"], 1.0);
    EXPECT_NEAR(p["epsilon"].get<double>(), eps[i], 1e-9 * eps[i]) << round.dump(1);
    EXPECT_GT(p["epsilon"].get<double>(), previous);
    EXPECT_LE(p["epsilon"].get<double>(), r.epsilon);
    previous = p["epsilon"].get<double>();
  }
  const nlohmann::json& budget = status["privacy"];
  EXPECT_EQ(budget["rounds_charged"], 2);
  EXPECT_EQ(budget["epsilon_budget"], r.epsilon);
  EXPECT_LE(budget["epsilon_spent"].get<double>(), r.epsilon);
  EXPECT_NEAR(budget["epsilon_spent"].get<double>(), eps[1], 1e-9 * eps[1]);
  EXPECT_GT(budget["next_round_epsilon"].get<double>(), r.epsilon);
  EXPECT_NEAR(budget["next_round_epsilon"].get<double>(), eps[2], 1e-9 * eps[2]);

  // The ledger is in RocksDB with the rounds: a killed and restarted coordinator keeps it.
  coordinator_->Kill(SIGKILL);
  StartCoordinator();
  const nlohmann::json restored = Status(run);
  EXPECT_EQ(restored["privacy"]["rounds_charged"], 2) << restored.dump(1);
  EXPECT_EQ(restored["privacy"]["epsilon_spent"], budget["epsilon_spent"]);
  EXPECT_NE(CreateRun(r, &out), 0);
  EXPECT_THAT(out, HasSubstr("cannot pay for one round")) << out;
  DpRun larger = r;
  larger.epsilon = 2 * eps[2];
  EXPECT_NE(CreateRun(larger, &out), 0);
  EXPECT_THAT(out, HasSubstr("fixed by its first run")) << out;
  // Another dataset has a budget of its own.
  DpRun other = r;
  other.rounds = 1;
  other.dataset = "fmnist-other";
  EXPECT_EQ(RunOperatorCli(dir_, port_, {"--json", "run", "create", WriteRunFile(other)}, &out),
            0)
      << out;
}

// Little noise and a generous budget: with z = 0.05 and C = 2 the mean update of the four
// clients carries noise of stddev z C / 4 = 0.025 per coordinate, and the securely
// aggregated, noised mean still trains the model well above chance (0.1 on ten classes;
// about 0.74 after three rounds here, against about 0.2 at z = 0.2).
TEST_F(DpFederationTest, LittleNoiseStillTrainsAboveChance) {
  const DpRun r{.rounds = 3,
                .noise_multiplier = 0.05,
                .clip_norm = 2.0,
                .epsilon = 1e9,
                .dataset = "fmnist-accuracy",
                .evaluate_every = 3,
                .max_steps = 30};
  StartClients(/*limit=*/4000);
  std::string out;
  ASSERT_EQ(CreateRun(r, &out), 0) << out;
  const std::string run = LastJson(out).value("run_id", "");
  const nlohmann::json status = Watch(run);
  ASSERT_EQ(status["state"], "COMPLETED") << status.dump(1);
  ASSERT_EQ(status["rounds"].size(), 3u) << status.dump(1);
  const nlohmann::json& last = status["rounds"][2];
  EXPECT_EQ(last["secagg"]["state"], "Completed");
  EXPECT_TRUE(last["privacy"]["released"].get<bool>());
  EXPECT_GT(last["eval_accuracy"].get<double>(), 0.2) << status.dump(1);
}

}  // namespace
}  // namespace tessera::testing_support
