// Governance end to end (docs/governance.md): a real tessera-coordinator over mTLS and real
// tessera-client processes of three organizations with data cards, one of them under a
// license the run does not allow. Checks the refusal, the data reports, the exported model
// card (its front matter parsed as YAML), the signed bill of materials, `tessera model
// verify` and `tessera audit verify`, and that tampering with the weights, the bill of
// materials or the audit log is detected.
#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "tests/integration/process.h"

namespace tessera::testing_support {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kFashionMnist[] = "/usr/share/datasets/fashion-mnist";

struct Site {
  std::string name;
  std::string organization;
  std::string card;  // file name under dir/cards
};

const Site kSites[] = {{"site-a", "Alpha Health", "site-a.toml"},
                       {"site-b", "Alpha Health", "site-b.yaml"},
                       {"site-c", "Beta Labs", "site-c.toml"},
                       {"site-d", "Gamma Research", "site-d.toml"}};

std::string Card(const std::string& name, const std::string& license, bool histogram) {
  return "name = \"" + name + " images\"\ndescription = \"Fashion-MNIST shard\"\nlicense = \"" +
         license + "\"\ncontact = \"steward@example.org\"\nallow_class_histogram = " +
         (histogram ? "true" : "false") + "\n";
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

class GovernanceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(std::string(kFashionMnist) + "/t10k-labels-idx1-ubyte.gz")) {
      GTEST_SKIP() << "dataset-fashion-mnist is not installed";
    }
    dir_ = MakeTempDir("governance");
    std::vector<std::string> identities;
    for (const Site& s : kSites) identities.push_back(s.name + "=" + s.organization);
    ASSERT_TRUE(MakePki(dir_ + "/pki", identities));
    std::filesystem::create_directories(dir_ + "/cards");
    WriteFile(dir_ + "/cards/site-a.toml", Card("site-a", "MIT", true));
    WriteFile(dir_ + "/cards/site-b.yaml",
              "name: site-b images\ndescription: Fashion-MNIST shard\nlicense: CC-BY-4.0\n"
              "contact: steward@example.org\n");
    WriteFile(dir_ + "/cards/site-c.toml", Card("site-c", "MIT", false));
    WriteFile(dir_ + "/cards/site-d.toml", Card("site-d", "proprietary", true));
    coordinator_ = StartCoordinator(dir_, &port_);
    ASSERT_NE(coordinator_, nullptr) << ReadFileOrEmpty(dir_ + "/coordinator.log");
  }
  void TearDown() override {
    clients_.clear();
    coordinator_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  std::vector<std::string> ClientArgs(const Site& s, int index, const std::string& card) {
    const std::string pki = dir_ + "/pki/";
    return {BinDir() + "/tessera-client", "--coordinator", "127.0.0.1:" + std::to_string(port_),
            "--name", s.name, "--ca", pki + "ca.pem", "--cert", pki + s.name + ".pem", "--key",
            pki + s.name + ".key", "--device", "cpu", "--threads", "1", "--data",
            std::string("idx:") + kFashionMnist, "--partition", "iid", "--num-partitions", "4",
            "--partition-index", std::to_string(index), "--limit", "2000", "--data-card", card};
  }

  int Cli(const std::vector<std::string>& args, std::string* out) {
    return RunOperatorCli(dir_, port_, args, out);
  }

  std::string dir_;
  int port_ = 0;
  std::unique_ptr<Process> coordinator_;
  std::vector<std::unique_ptr<Process>> clients_;
};

// The YAML between the first two "---" lines of a model card.
std::string FrontMatter(const std::string& card) {
  if (card.rfind("---\n", 0) != 0) return "";
  const size_t end = card.find("\n---\n", 4);
  return end == std::string::npos ? "" : card.substr(4, end - 4);
}

TEST_F(GovernanceTest, ClientWithBadDataCardFieldIsRefusedNamingTheField) {
  WriteFile(dir_ + "/cards/bad.toml",
            "name = \"x\"\ndescription = \"y\"\nlicense = \"CC BY\"\ncontact = \"z\"\n");
  std::string out;
  EXPECT_EQ(RunCommand(ClientArgs(kSites[0], 0, dir_ + "/cards/bad.toml"), &out, 60), 2) << out;
  EXPECT_THAT(out, HasSubstr("license"));
  EXPECT_THAT(out, HasSubstr("CC BY"));
}

TEST_F(GovernanceTest, LicenseRulesCardsSignedExportAndTamperDetection) {
  for (int i = 0; i < 4; ++i) {
    clients_.push_back(std::make_unique<Process>(
        ClientArgs(kSites[i], i, dir_ + "/cards/" + kSites[i].card),
        dir_ + "/" + kSites[i].name + ".log",
        std::vector<std::string>{"OPENBLAS_NUM_THREADS=1"}));
  }
  // The refusal is made when a round selects among the connected clients: wait until all four
  // are registered, or with min_clients = 3 both rounds can run before site-d connects (seen
  // under load: refused_clients empty).
  std::vector<std::string> names;
  for (const Site& s : kSites) names.push_back(s.name);
  std::string listed;
  AwaitClientsListed(dir_, port_, names, 60, &listed);
  for (const Site& s : kSites) ASSERT_THAT(listed, HasSubstr(s.name)) << "not registered in 60 s";
  const std::string config = dir_ + "/run.toml";
  WriteFile(config,
            "name = \"governance-it\"\nrounds = 2\nseed = 3\n"
            "[model]\narchitecture = \"mlp\"\nseed = 1\nsource = \"builtin mlp\"\n"
            "license = \"Apache-2.0\"\n"
            "[train]\nbatch_size = 32\nlearning_rate = 0.05\nmax_steps = 5\n"
            "[selection]\nmin_clients = 3\nwait_for_clients_seconds = 60\n"
            "[round]\ndeadline_seconds = 120\nmax_retries = 1\n"
            "[evaluation]\nevery = 1\ndeadline_seconds = 60\n"
            "[governance]\nmodel_license = \"Apache-2.0\"\n"
            "allowed_data_licenses = [\"MIT\", \"CC-BY-4.0\"]\n"
            "allowed_base_model_licenses = [\"Apache-2.0\"]\nexample_count_bucket = 100\n"
            "class_histogram = true\ntags = [\"integration\"]\n");
  std::string out;
  ASSERT_EQ(Cli({"--json", "run", "create", config, "--start"}, &out), 0) << out;
  const std::string run = nlohmann::json::parse(LastJsonLine(out))["run_id"];
  ASSERT_EQ(Cli({"run", "watch", run}, &out), 0) << out << coordinator_->Log();
  ASSERT_EQ(Cli({"--json", "run", "status", run}, &out), 0) << out;
  const nlohmann::json status = nlohmann::json::parse(LastJsonLine(out));
  EXPECT_EQ(status["state"], "COMPLETED") << status.dump(2);
  // The refused client: in the run status, in its own log, and never a participant.
  ASSERT_EQ(status["refused_clients"].size(), 1u) << status.dump(2);
  EXPECT_THAT(status["refused_clients"][0].get<std::string>(),
              HasSubstr("site-d: data card license \"proprietary\" is not in "
                        "governance.allowed_data_licenses [MIT, CC-BY-4.0]"));
  EXPECT_THAT(clients_[3]->Log(), HasSubstr("refused this client"));
  for (const auto& r : status["rounds"]) {
    EXPECT_THAT(r["participants"].dump(), Not(HasSubstr("site-d")));
    // Evaluation goes to the 3 accepted clients only: the refused one never sees the model.
    EXPECT_LE(r["evaluated"].get<int>(), 3) << r.dump(2);
  }
  EXPECT_THAT(clients_[3]->Log(), Not(HasSubstr("evaluation: accuracy")));

  // --torchscript on a built-in architecture used to write nothing and exit 0: refused,
  // naming the flag and why, and nothing written.
  const std::string refused_dir = dir_ + "/refused";
  EXPECT_EQ(Cli({"model", "export", "--run", run, "--out", refused_dir + "/model.safetensors",
                 "--torchscript", refused_dir + "/model.pt"},
                &out),
            1)
      << out;
  EXPECT_THAT(out, HasSubstr("--torchscript " + refused_dir + "/model.pt"));
  EXPECT_THAT(out, HasSubstr("the built-in architecture \"mlp\", not a TorchScript program"));
  EXPECT_FALSE(std::filesystem::exists(refused_dir)) << "nothing may be written";

  // Export: weights, model card and signed bill of materials next to each other.
  const std::string model_dir = dir_ + "/model";
  std::filesystem::create_directories(model_dir);
  ASSERT_EQ(Cli({"model", "export", "--run", run, "--out", model_dir + "/model.safetensors"},
                &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr(model_dir + "/README.md"));
  EXPECT_THAT(out, HasSubstr(model_dir + "/bom.json"));
  // The clients read idx: Fashion-MNIST: the export and the card state its normalization
  // (published training-set pixel mean 0.2860 and std 0.3530, hand-stated here).
  EXPECT_THAT(out, HasSubstr("preprocessing: input float32 [batch, 1, 28, 28]"));
  EXPECT_THAT(out, HasSubstr("(x / 255 - 0.2860) / 0.3530"));
  const std::string card = ReadFileOrEmpty(model_dir + "/README.md");
  EXPECT_THAT(card, HasSubstr("## Preprocessing"));
  EXPECT_THAT(card, HasSubstr("(x / 255 - 0.2860) / 0.3530"));
  const YAML::Node front = YAML::Load(FrontMatter(card));
  ASSERT_TRUE(front.IsMap()) << card;
  EXPECT_EQ(front["license"].as<std::string>(), "apache-2.0") << card;
  EXPECT_EQ(front["library_name"].as<std::string>(), "tessera");
  EXPECT_THAT(card, HasSubstr("Alpha Health"));
  EXPECT_THAT(card, HasSubstr("Beta Labs"));
  EXPECT_THAT(card, Not(HasSubstr("site-d images")));
  const nlohmann::json bom = nlohmann::json::parse(ReadFileOrEmpty(model_dir + "/bom.json"));
  EXPECT_EQ(bom["run"]["id"], run);
  ASSERT_TRUE(bom.contains("signature")) << bom.dump(2);
  // Data reports: rounded counts from everyone, a histogram only where the card allows it.
  const std::string bom_text = bom.dump();
  EXPECT_THAT(bom_text, HasSubstr("\"examples_rounded\":"));
  for (const auto& p : bom["participants"]) {
    if (p["client"] == "site-d") {  // refused: never asked
      EXPECT_TRUE(p["data_report"].is_null()) << p.dump(2);
      continue;
    }
    const bool histogram = p["client"] == "site-a";
    ASSERT_TRUE(p["data_report"].is_object()) << p.dump(2);
    EXPECT_EQ(!p["data_report"]["class_histogram"].empty(), histogram) << p.dump(2);
  }

  // The operator CLI runs with --ca, so the signer must chain to the federation CA.
  ASSERT_EQ(Cli({"model", "verify", model_dir, "--online"}, &out), 0) << out;

  // Tampered weights: one flipped byte in the last tensor's data.
  const std::string tampered = dir_ + "/tampered";
  std::filesystem::copy(model_dir, tampered);
  std::string weights = ReadFileOrEmpty(tampered + "/model.safetensors");
  weights[weights.size() - 3] ^= 0x40;
  WriteFile(tampered + "/model.safetensors", weights);
  EXPECT_EQ(Cli({"model", "verify", tampered}, &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("FAIL weights sha256"));

  // Tampered bill of materials: a participant's organization rewritten.
  std::filesystem::remove_all(tampered);
  std::filesystem::copy(model_dir, tampered);
  nlohmann::json edited = bom;
  edited["model"]["license"] = "MIT";
  WriteFile(tampered + "/bom.json", edited.dump(2));
  EXPECT_EQ(Cli({"model", "verify", tampered}, &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("FAIL signature"));

  // The audit log: complete, then edited.
  const std::string audit = dir_ + "/audit.jsonl";
  ASSERT_EQ(Cli({"audit", "export", "--out", audit}, &out), 0) << out;
  ASSERT_EQ(Cli({"audit", "verify", audit}, &out), 0) << out;
  const std::string log = ReadFileOrEmpty(audit);
  for (const char* action : {"run.created", "run.started", "client.refused", "round.committed",
                             "run.completed", "model.exported"}) {
    EXPECT_THAT(log, HasSubstr(std::string("\"action\":\"") + action + "\"")) << log;
  }
  std::string edited_log = log;
  const size_t at = edited_log.find("\"action\":\"client.refused\"");
  ASSERT_NE(at, std::string::npos);
  edited_log.replace(edited_log.find("site-d", at), 6, "site-x");
  WriteFile(audit, edited_log);
  EXPECT_EQ(Cli({"audit", "verify", audit}, &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("hash does not match"));
}

}  // namespace
}  // namespace tessera::testing_support
