// End to end: a real tessera-coordinator and real tessera-client processes over mTLS on
// 127.0.0.1, driven by the real operator CLI. Trains the NIID-Bench CNN on small
// Fashion-MNIST shards.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/model/safetensors.h"
#include "tests/integration/process.h"

namespace tessera::testing_support {
namespace {

constexpr char kFashionMnist[] = "/usr/share/datasets/fashion-mnist";

nlohmann::json JsonFrom(const std::string& out) {
  return nlohmann::json::parse(LastJsonLine(out), nullptr, false);
}

class FederationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(std::string(kFashionMnist) + "/t10k-labels-idx1-ubyte.gz")) {
      GTEST_SKIP() << "dataset-fashion-mnist is not installed";
    }
    dir_ = MakeTempDir("fed");
    ASSERT_TRUE(MakePki(dir_ + "/pki", clients_));
  }
  void TearDown() override {
    client_procs_.clear();
    coordinator_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  void StartCoordinator() {
    coordinator_ = testing_support::StartCoordinator(dir_, &port_);
    ASSERT_NE(coordinator_, nullptr) << ReadFileOrEmpty(dir_ + "/coordinator.log");
  }

  void StartClients(size_t limit) {
    for (size_t i = 0; i < clients_.size(); ++i) {
      const std::string& name = clients_[i];
      client_procs_.push_back(std::make_unique<Process>(
          std::vector<std::string>{
              BinDir() + "/tessera-client", "--coordinator", Address(), "--name", name,
              "--ca", Pki("ca.pem"), "--cert", Pki(name + ".pem"), "--key", Pki(name + ".key"),
              "--device", "cpu", "--threads", "1", "--data", std::string("idx:") + kFashionMnist,
              "--partition", "dirichlet:0.5", "--num-partitions",
              std::to_string(clients_.size()), "--partition-index", std::to_string(i),
              "--limit", std::to_string(limit)},
          dir_ + "/" + name + ".log", std::vector<std::string>{"OPENBLAS_NUM_THREADS=1"}));
    }
  }

  std::string Address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string Pki(const std::string& f) const { return dir_ + "/pki/" + f; }

  // Runs the operator CLI; returns its exit code.
  int Cli(std::vector<std::string> args, std::string* out) {
    return RunOperatorCli(dir_, port_, args, out);
  }

  std::string WriteConfig(int rounds, double lr) {
    const std::string path = dir_ + "/run.toml";
    std::ofstream(path) << "name = \"it-run\"\nrounds = " << rounds << "\nseed = 3\n"
                        << "[model]\narchitecture = \"niid_cnn\"\nseed = 1\n"
                        << "[train]\nlocal_epochs = 1\nbatch_size = 32\nlearning_rate = " << lr
                        << "\nmomentum = 0.9\n"
                        << "[selection]\nclients_per_round = 3\nmin_clients = 3\n"
                        << "wait_for_clients_seconds = 120\n"
                        << "[round]\ndeadline_seconds = 300\nmax_retries = 3\n"
                        << "[evaluation]\nevery = 1\ndeadline_seconds = 120\n";
    return path;
  }

  nlohmann::json Status(const std::string& run) {
    std::string out;
    if (Cli({"--json", "run", "status", run}, &out) != 0) return nlohmann::json();
    return JsonFrom(out);
  }

  std::string dir_;
  int port_ = 0;
  std::vector<std::string> clients_ = {"site-a", "site-b", "site-c"};
  std::unique_ptr<Process> coordinator_;
  std::vector<std::unique_ptr<Process>> client_procs_;
};

TEST_F(FederationTest, ThreeClientsOverMtlsAccuracyRises) {
  StartCoordinator();
  StartClients(/*limit=*/6000);
  std::string out;
  ASSERT_EQ(Cli({"--json", "run", "create", WriteConfig(3, 0.02), "--start"}, &out), 0) << out;
  const std::string run = JsonFrom(out)["run_id"];
  ASSERT_EQ(Cli({"run", "watch", run}, &out), 0) << out << coordinator_->Log();
  EXPECT_THAT(out, ::testing::HasSubstr("COMPLETED"));

  nlohmann::json status = Status(run);
  ASSERT_EQ(status["state"], "COMPLETED") << status.dump(2);
  ASSERT_EQ(status["rounds"].size(), 3u) << status.dump(2);
  std::vector<double> acc;
  for (const auto& r : status["rounds"]) {
    EXPECT_EQ(r["reported"], 3);
    // proto3 JSON writes 64-bit integers as strings.
    EXPECT_GT(std::stoull(r["bytes_down"].get<std::string>()), 0u);
    EXPECT_GT(std::stoull(r["bytes_up"].get<std::string>()), 0u);
    acc.push_back(r["eval_accuracy"]);
  }
  // Random init is ~10%; federated training on 6000 label-skewed examples must learn.
  EXPECT_GT(acc.back(), acc.front()) << status.dump(2);
  EXPECT_GT(acc.back(), 0.55) << status.dump(2);

  ASSERT_EQ(Cli({"clients", "list"}, &out), 0);
  for (const auto& c : clients_) EXPECT_THAT(out, ::testing::HasSubstr(c));

  const std::string model = dir_ + "/model.safetensors";
  ASSERT_EQ(Cli({"model", "export", "--run", run, "--out", model}, &out), 0) << out;
  std::map<std::string, std::string> meta;
  auto weights = ReadSafetensorsFile(model, &meta);
  ASSERT_TRUE(weights.ok()) << weights.status();
  EXPECT_EQ(weights->tensors.size(), 10u);  // 5 layers x (weight, bias)
  EXPECT_EQ(meta["tessera.round"], "3");

  // A bad config is refused by the CLI with the field named, and creates nothing.
  const std::string bad = dir_ + "/bad.toml";
  std::ofstream(bad) << "name = \"bad\"\nrounds = 2\n[model]\narchitecture = \"niid_cnn\"\n"
                     << "[train]\nlearning_rate = -1\n";
  EXPECT_NE(Cli({"run", "create", bad}, &out), 0);
  EXPECT_THAT(out, ::testing::HasSubstr("train.learning_rate"));
  ASSERT_EQ(Cli({"--json", "run", "list"}, &out), 0);
  EXPECT_EQ(JsonFrom(out)["runs"].size(), 1u) << out;

  // Lifecycle through the CLI (docs/operations.md): the exported round is pinned; archive
  // keeps it and the final model and hides the run; delete wants --yes, then says when.
  ASSERT_EQ(Cli({"run", "archive", run}, &out), 0) << out;
  ASSERT_EQ(Cli({"--json", "run", "list"}, &out), 0);
  EXPECT_EQ(JsonFrom(out)["runs"].size(), 0u) << out;
  ASSERT_EQ(Cli({"--json", "run", "list", "--all"}, &out), 0);
  ASSERT_EQ(JsonFrom(out)["runs"].size(), 1u) << out;
  EXPECT_EQ(JsonFrom(out)["runs"][0]["archived"], true) << out;
  EXPECT_EQ(Status(run)["stored_model_rounds"], nlohmann::json::array({3})) << out;
  EXPECT_EQ(Cli({"run", "delete", run}, &out), 2);
  EXPECT_THAT(out, ::testing::HasSubstr("--yes"));
  ASSERT_EQ(Cli({"run", "delete", run, "--yes"}, &out), 0) << out;
  EXPECT_THAT(out, ::testing::HasSubstr("deleted"));
  EXPECT_NE(Cli({"run", "status", run}, &out), 0);
  EXPECT_THAT(out, ::testing::HasSubstr("was deleted"));

  // A client certificate cannot drive the Control API.
  std::vector<std::string> argv = {BinDir() + "/tessera", "--coordinator", Address(), "--ca",
                                   Pki("ca.pem"), "--cert", Pki("site-a.pem"), "--key",
                                   Pki("site-a.key"), "run", "list"};
  EXPECT_NE(RunCommand(argv, &out), 0);
  EXPECT_THAT(out, ::testing::HasSubstr("PERMISSION_DENIED"));
}

TEST_F(FederationTest, CoordinatorKilledMidRoundAndBetweenRoundsResumes) {
  StartCoordinator();
  StartClients(/*limit=*/9000);
  std::string out;
  ASSERT_EQ(Cli({"--json", "run", "create", WriteConfig(4, 0.02), "--start"}, &out), 0) << out;
  const std::string run = JsonFrom(out)["run_id"];

  // Kill -9 while a round (the first or second) is training.
  int completed_at_kill = -1;
  for (int i = 0; i < 600 && completed_at_kill < 0; ++i) {
    nlohmann::json s = Status(run);
    if (s.is_object() && !s["rounds"].empty() && s["completed_rounds"] <= 1 &&
        s["rounds"].back()["state"] == "ROUND_TRAINING") {
      coordinator_->Kill(SIGKILL);
      completed_at_kill = s["completed_rounds"];
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ASSERT_GE(completed_at_kill, 0) << "never saw a round training";
  StartCoordinator();  // same port and state dir; clients reconnect by themselves

  // Kill -9 again right after the next round is committed (between rounds).
  const int committed = completed_at_kill + 1;
  bool killed = false;
  std::string sha;
  for (int i = 0; i < 1200 && !killed; ++i) {
    nlohmann::json s = Status(run);
    if (s.is_object() && s["completed_rounds"] >= committed) {
      coordinator_->Kill(SIGKILL);
      killed = true;
      for (const auto& r : s["rounds"]) {
        if (r["round"] == committed && r["state"] == "ROUND_COMPLETED") sha = r["model_sha256"];
      }
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ASSERT_TRUE(killed) << "round " << committed << " never completed";
  ASSERT_FALSE(sha.empty());
  StartCoordinator();
  ASSERT_EQ(Cli({"run", "watch", run}, &out), 0) << out << coordinator_->Log();

  nlohmann::json status = Status(run);
  ASSERT_EQ(status["state"], "COMPLETED");
  EXPECT_EQ(status["completed_rounds"], 4);
  std::vector<int> completed;
  for (const auto& r : status["rounds"]) {
    if (r["state"] == "ROUND_COMPLETED") completed.push_back(r["round"]);
  }
  EXPECT_THAT(completed, ::testing::ElementsAre(1, 2, 3, 4));
  // The model committed just before the second crash survived it unchanged.
  for (const auto& r : status["rounds"]) {
    if (r["round"] == committed && r["state"] == "ROUND_COMPLETED") {
      EXPECT_EQ(r["model_sha256"], sha);
    }
  }
}

// While a coordinator is down, another socket can hold its port (here a listening one; in CI
// runs an outgoing connection that the kernel gave it as a source port). The restart's bind
// fails ("cannot listen on") until that socket closes 1.5 s later, and StartCoordinator tries
// again instead of giving up: the coordinator comes back on the same port.
TEST_F(FederationTest, RestartWaitsForItsPortToBeFree) {
  StartCoordinator();
  const int port = port_;
  coordinator_->Kill(SIGKILL);
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << errno;
  ASSERT_EQ(listen(fd, 1), 0);
  std::thread release([fd] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    close(fd);
  });
  StartCoordinator();
  release.join();
  EXPECT_EQ(port_, port);
  std::string out;
  EXPECT_EQ(Cli({"--json", "run", "list"}, &out), 0) << out;
}

}  // namespace
}  // namespace tessera::testing_support
