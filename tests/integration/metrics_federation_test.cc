// Prometheus metrics of a real federation (docs/observability.md): a tessera-coordinator with
// --metrics-address 127.0.0.1:0 and --metrics-port-file, four tessera-client processes over
// mTLS training on Fashion-MNIST, a plain 3-round run with evaluation and a 3-round run with
// secure aggregation and distributed DP. The test then scrapes GET /metrics over HTTP (its
// own few lines of socket code) and checks every family against what `tessera run status
// --json` says of each run: attempts started and ended, the duration histogram, phase times,
// bytes, the latest attempt's clients, secure-aggregation survivors and dropouts, epsilon.
// A family the test does not know fails it, so a new family comes with its check.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "tests/integration/process_federation.h"

namespace tessera::testing_support {
namespace {

// The histogram's bucket bounds as docs/observability.md states them (0.5 s ... 1 h).
constexpr double kBuckets[] = {0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600};

// GET `path` from 127.0.0.1:port over HTTP/1.0; the status line and headers in *head, the body
// returned. Empty on a connection error.
std::string HttpGet(int port, const std::string& path, std::string* head) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request =
        "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buf[65536];
      ssize_t n;
      while ((n = read(fd, buf, sizeof(buf))) > 0) response.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  const size_t end = response.find("\r\n\r\n");
  if (end == std::string::npos) return "";
  *head = response.substr(0, end);
  return response.substr(end + 4);
}

// A sample's name with its labels as written ("name{a=\"x\",b=\"y\"}") -> value.
using Samples = std::map<std::string, double>;

// The families the scrape declares (# TYPE) and their samples.
void Parse(const std::string& text, std::set<std::string>* families, Samples* samples) {
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, "# TYPE ")) {
      std::vector<std::string> f = absl::StrSplit(line, ' ');
      families->insert(f[2]);
    } else if (line[0] != '#') {
      const size_t space = line.rfind(' ');
      (*samples)[std::string(line.substr(0, space))] =
          std::stod(std::string(line.substr(space + 1)));
    }
  }
}

// uint64 fields are strings in proto3 JSON.
uint64_t U64(const nlohmann::json& j) {
  return j.is_string() ? std::stoull(j.get<std::string>()) : j.get<uint64_t>();
}

bool Ended(const nlohmann::json& round) {
  return round["state"] == "ROUND_COMPLETED" || round["state"] == "ROUND_FAILED";
}

class MetricsFederationTest : public ProcessFederation {
 protected:
  static constexpr int kClients = 4;

  MetricsFederationTest() : ProcessFederation("metrics", kClients) {}

  std::vector<std::string> CoordinatorArgs() const override {
    return {"--metrics-address", "127.0.0.1:0", "--metrics-port-file", dir_ + "/metrics-port"};
  }

  // Creates and starts the run of `toml`, watches it end and returns its status.
  nlohmann::json Run(const std::string& file, const std::string& toml) {
    const std::string path = dir_ + "/" + file;
    std::ofstream(path) << toml;
    std::string out;
    EXPECT_EQ(RunOperatorCli(dir_, port_, {"--json", "run", "create", path, "--start"}, &out), 0)
        << out;
    const nlohmann::json created = nlohmann::json::parse(LastJsonLine(out), nullptr, false);
    const std::string run = created.is_object() ? created.value("run_id", "") : "";
    EXPECT_FALSE(run.empty()) << out;
    EXPECT_EQ(RunOperatorCli(dir_, port_, {"run", "watch", run}, &out), 0)
        << out << coordinator_->Log();
    EXPECT_EQ(RunOperatorCli(dir_, port_, {"--json", "run", "status", run}, &out), 0) << out;
    return nlohmann::json::parse(LastJsonLine(out), nullptr, false);
  }
};

// What the training sections of both runs share: every client in every round, few steps.
constexpr char kCommon[] =
    "rounds = 3\nseed = 5\n[model]\narchitecture = \"mlp\"\nseed = 1\n"
    "[train]\nlocal_epochs = 1\nbatch_size = 32\nlearning_rate = 0.05\nmomentum = 0.9\n"
    "max_steps = 5\n[selection]\nmin_clients = 4\nwait_for_clients_seconds = 60\n"
    "[round]\ndeadline_seconds = 120\nmax_retries = 0\n";

// Checks the samples of one run against its status.
void ExpectRunFamilies(const nlohmann::json& status, const Samples& m) {
  const std::string labels =
      absl::StrCat("run=\"", status["run_id"].get<std::string>(), "\",name=\"",
                   status["name"].get<std::string>(), "\"");
  auto at = [&](const std::string& sample) {
    auto it = m.find(sample);
    EXPECT_NE(it, m.end()) << "no sample " << sample;
    return it == m.end() ? -1.0 : it->second;
  };
  auto with = [&](const std::string& family, const std::string& more) {
    return absl::StrCat(family, "{", labels, more.empty() ? "" : ",", more, "}");
  };
  const nlohmann::json& rounds = status["rounds"];
  ASSERT_EQ(rounds.size(), 3u) << status.dump(1);

  size_t completed = 0, failed = 0, ended = 0;
  uint64_t in = 0, out = 0;
  double seconds = 0;
  std::vector<uint64_t> buckets(std::size(kBuckets), 0);
  std::map<std::string, std::pair<double, uint64_t>> phases;
  std::map<std::string, uint64_t> dropouts;
  const nlohmann::json* secure = nullptr;    // latest ended secure-aggregation attempt
  const nlohmann::json* released = nullptr;  // latest attempt that released a DP aggregate
  for (const nlohmann::json& r : rounds) {
    completed += r["state"] == "ROUND_COMPLETED";
    failed += r["state"] == "ROUND_FAILED";
    in += U64(r["bytes_up"]);
    out += U64(r["bytes_down"]);
    if (r.contains("secagg")) {
      for (const nlohmann::json& p : r["secagg"]["phases"]) {
        dropouts[p["phase"].get<std::string>()] += p["dropped"].size() + p["rejected"].size();
      }
    }
    if (r.contains("privacy") && r["privacy"]["released"].get<bool>()) released = &r;
    if (!Ended(r)) continue;
    ++ended;
    seconds += r["seconds"].get<double>();
    for (size_t i = 0; i < std::size(kBuckets); ++i) {
      buckets[i] += r["seconds"].get<double>() <= kBuckets[i];
    }
    for (const nlohmann::json& p : r["phases"]) {
      auto& phase = phases[p["phase"].get<std::string>()];
      phase.first += p["seconds"].get<double>();
      ++phase.second;
    }
    if (r.contains("secagg")) secure = &r;
  }
  EXPECT_EQ(completed, 3u) << status.dump(1);
  EXPECT_EQ(at(with("tessera_rounds_started_total", "")), rounds.size());
  EXPECT_EQ(at(with("tessera_rounds_total", "outcome=\"completed\"")), completed);
  EXPECT_EQ(at(with("tessera_rounds_total", "outcome=\"failed\"")), failed);

  EXPECT_EQ(at(with("tessera_round_duration_seconds_count", "")), ended);
  EXPECT_DOUBLE_EQ(at(with("tessera_round_duration_seconds_sum", "")), seconds);
  EXPECT_EQ(at(with("tessera_round_duration_seconds_bucket", "le=\"+Inf\"")), ended);
  for (size_t i = 0; i < std::size(kBuckets); ++i) {
    EXPECT_EQ(at(with("tessera_round_duration_seconds_bucket",
                      absl::StrFormat("le=\"%g\"", kBuckets[i]))),
              buckets[i])
        << "le " << kBuckets[i];
  }
  ASSERT_FALSE(phases.empty());
  size_t phase_samples = 0;  // no phase the status does not have
  for (const auto& [name, sample] : m) {
    phase_samples +=
        absl::StartsWith(name, absl::StrCat("tessera_round_phase_seconds_count{", labels, ","));
  }
  EXPECT_EQ(phase_samples, phases.size());
  for (const auto& [phase, v] : phases) {
    const std::string p = absl::StrCat("phase=\"", phase, "\"");
    EXPECT_DOUBLE_EQ(at(with("tessera_round_phase_seconds_sum", p)), v.first) << phase;
    EXPECT_EQ(at(with("tessera_round_phase_seconds_count", p)), v.second) << phase;
  }

  EXPECT_GT(in, 0u);
  EXPECT_GT(out, 0u);
  EXPECT_EQ(at(with("tessera_bytes_total", "direction=\"in\"")), in);
  EXPECT_EQ(at(with("tessera_bytes_total", "direction=\"out\"")), out);

  const nlohmann::json& last = rounds.back();
  EXPECT_EQ(at(with("tessera_round_clients", "kind=\"selected\"")), last["selected"]);
  EXPECT_EQ(at(with("tessera_round_clients", "kind=\"reported\"")), last["reported"]);
  EXPECT_EQ(at(with("tessera_round_clients", "kind=\"dropped\"")), last["dropped"]);

  for (const auto& [phase, n] : dropouts) {
    EXPECT_EQ(at(with("tessera_secagg_dropouts_total", absl::StrCat("phase=\"", phase, "\""))),
              n);
  }
  if (secure != nullptr) {
    EXPECT_EQ(at(with("tessera_secagg_survivors", "")), (*secure)["secagg"]["survivors"]);
  } else {
    EXPECT_EQ(m.count(with("tessera_secagg_survivors", "")), 0u);
  }

  if (status.contains("privacy")) {
    const nlohmann::json& budget = status["privacy"];
    const std::string dataset = absl::StrCat("dataset=\"", budget["dataset"].get<std::string>(),
                                             "\"");
    EXPECT_DOUBLE_EQ(at(with("tessera_dp_epsilon_spent", dataset)),
                     budget["epsilon_spent"].get<double>());
    EXPECT_DOUBLE_EQ(at(with("tessera_dp_epsilon_budget", dataset)),
                     budget["epsilon_budget"].get<double>());
  }
  if (released != nullptr) {
    EXPECT_DOUBLE_EQ(at(with("tessera_dp_unclipped_fraction", "")),
                     (*released)["privacy"]["unclipped_fraction"].get<double>());
    EXPECT_DOUBLE_EQ(at(with("tessera_dp_clip_norm", "")),
                     (*released)["privacy"]["clip_norm"].get<double>());
  } else {
    EXPECT_EQ(m.count(with("tessera_dp_clip_norm", "")), 0u);
  }
}

TEST_F(MetricsFederationTest, EveryFamilyMatchesTheRunStatusAfterRealRuns) {
  const int metrics_port = WaitForPort(dir_ + "/metrics-port", 30);
  ASSERT_GT(metrics_port, 0) << coordinator_->Log();
  std::string head;
  EXPECT_EQ(HttpGet(metrics_port, "/healthz", &head), "ok\n") << head;

  StartClients(/*limit=*/400);
  const nlohmann::json plain =
      Run("plain.toml", absl::StrCat("name = \"metrics-plain\"\n", kCommon,
                                     "[evaluation]\nevery = 1\ndeadline_seconds = 60\n"));
  const nlohmann::json secure = Run(
      "secure.toml",
      absl::StrCat("name = \"metrics-secure\"\n", kCommon,
                   "[evaluation]\nevery = 0\ndeadline_seconds = 60\n"
                   "[secure_aggregation]\nphase_deadline_seconds = 30\ndropout_fraction = 0\n"
                   "[differential_privacy]\nmode = \"distributed\"\nnoise_multiplier = 1.0\n"
                   "clip_norm = 1.0\npopulation = 4\nexpected_clients_per_round = 4\n"
                   "epsilon = 100\ndelta = 1e-5\ndataset = \"fmnist-metrics\"\n"));
  ASSERT_TRUE(plain.is_object() && secure.is_object());
  ASSERT_EQ(plain["state"], "COMPLETED") << plain.dump(1);
  ASSERT_EQ(secure["state"], "COMPLETED") << secure.dump(1);
  ASSERT_TRUE(secure.contains("privacy")) << secure.dump(1);
  // So the secure-aggregation and DP gauges have something to show:
  ASSERT_EQ(secure["rounds"].back()["secagg"]["survivors"], kClients) << secure.dump(1);
  ASSERT_TRUE(secure["rounds"].back()["privacy"]["released"].get<bool>()) << secure.dump(1);

  const std::string text = HttpGet(metrics_port, "/metrics", &head);
  EXPECT_THAT(head, ::testing::StartsWith("HTTP/1.")) << head;
  EXPECT_THAT(head, ::testing::HasSubstr("200")) << head;
  std::set<std::string> families;
  Samples m;
  Parse(text, &families, &m);
  // Every family the coordinator exports is one this test checks below.
  const std::set<std::string> known = {
      "tessera_connected_clients",     "tessera_runs",
      "tessera_rounds_started_total",  "tessera_rounds_total",
      "tessera_round_duration_seconds", "tessera_round_phase_seconds",
      "tessera_bytes_total",           "tessera_round_clients",
      "tessera_secagg_dropouts_total", "tessera_secagg_survivors",
      "tessera_dp_epsilon_spent",      "tessera_dp_epsilon_budget",
      "tessera_dp_unclipped_fraction", "tessera_dp_clip_norm",
      "tessera_site_epsilon"};
  EXPECT_EQ(families, known) << text;

  EXPECT_EQ(m["tessera_connected_clients"], kClients) << text;
  EXPECT_EQ(m["tessera_runs{state=\"COMPLETED\"}"], 2) << text;
  size_t runs_samples = 0;
  for (const auto& [name, v] : m) runs_samples += absl::StartsWith(name, "tessera_runs{");
  EXPECT_EQ(runs_samples, 1u) << text;

  {
    SCOPED_TRACE("plain run");
    ExpectRunFamilies(plain, m);
  }
  {
    SCOPED_TRACE("secure aggregation + DP run");
    ExpectRunFamilies(secure, m);
  }
  // The secure run's rounds carry what the plain run's do not.
  EXPECT_EQ(m.count(absl::StrCat("tessera_secagg_survivors{run=\"",
                                 plain["run_id"].get<std::string>(), "\",name=\"metrics-plain\"}")),
            0u);
  // No record-level DP in either run: no site reports.
  for (const auto& [name, v] : m) EXPECT_FALSE(absl::StartsWith(name, "tessera_site_epsilon"));
}

}  // namespace
}  // namespace tessera::testing_support
