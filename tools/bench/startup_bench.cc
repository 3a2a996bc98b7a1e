// tessera-bench-startup: coordinator start-up (CoordinatorState::Open + RunManager::Recover)
// with many finished runs, next to what start-up did before ended runs loaded lightly
// (every run's current model and history read at start), measured in the same run on the
// same database; and the disk use the retention policy leaves.
//
//   tessera-bench-startup --runs=1000 --params=1000000 --rounds=3 --dir=/tmp/startup
//
// The database is written once through the real CoordinatorState (rounds committed with
// incompressible models, the default retention policy applied as the coordinator applies it,
// each run marked COMPLETED), then reopened --repeats times.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "coordinator/round/client_registry.h"
#include "coordinator/round/run_manager.h"
#include "coordinator/round/run_retention.h"
#include "coordinator/state/coordinator_state.h"
#include "core/base/program_flags.h"
#include "core/model/tensor.h"

ABSL_FLAG(int32_t, runs, 1000, "finished runs in the database");
ABSL_FLAG(int64_t, params, 1'000'000, "float32 parameters per model");
ABSL_FLAG(int32_t, rounds, 3, "completed rounds per run");
ABSL_FLAG(int32_t, keep_last, 1, "the runs' retention.keep_last (round 0 is kept too)");
ABSL_FLAG(int32_t, repeats, 3, "timed start-ups (best and median are reported)");
ABSL_FLAG(std::string, dir, "", "state directory (default: a fresh one under /tmp, removed)");
ABSL_FLAG(bool, keep, false, "keep an existing --dir database instead of writing it anew");

namespace tessera::coordinator {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

void Check(const absl::Status& s, const char* what) {
  if (s.ok()) return;
  std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
  std::exit(1);
}

// Incompressible finite float32 values (an LCG with a fixed exponent).
ArrayRecord Model(int64_t params, uint32_t seed) {
  std::vector<float> v(static_cast<size_t>(params));
  uint32_t s = seed * 2654435761u + 1;
  for (float& x : v) {
    s = s * 1664525u + 1013904223u;
    x = 1.0f + static_cast<float>(s >> 9) * (1.0f / 8388608.0f);
  }
  ArrayRecord r;
  r.tensors.push_back(*Tensor::FromFloats("w", {params}, v));
  return r;
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) total += e.file_size();
  }
  return total;
}

long MaxRssKb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

void Populate(const std::string& dir, int runs, int64_t params, uint32_t rounds) {
  auto state = CoordinatorState::Open(dir);
  Check(state.status(), "open");
  wire::v1::RetentionConfig policy;
  policy.set_keep_last(static_cast<uint32_t>(absl::GetFlag(FLAGS_keep_last)));
  policy.set_keep_every(0);
  const ArrayRecord model = Model(params, 7);
  const auto start = Clock::now();
  for (int i = 0; i < runs; ++i) {
    storage::v1::RunRecord run;
    run.set_run_id(absl::StrFormat("run%06d", i));
    run.mutable_config()->set_name("bench");
    run.mutable_config()->set_rounds(rounds);
    run.mutable_config()->mutable_model()->set_architecture("mlp");
    *run.mutable_config()->mutable_retention() = policy;
    run.set_state(wire::v1::RUNNING);
    Check((*state)->CreateRun(run, model, ""), "create run");
    for (uint32_t r = 1; r <= rounds; ++r) {
      run.set_completed_rounds(r);
      wire::v1::RoundSummary summary;
      summary.set_round(r);
      summary.set_state(wire::v1::ROUND_COMPLETED);
      summary.set_reported(10);
      Check((*state)->CommitRound(run, summary, model), "commit");
      auto stored = (*state)->ListModelRounds(run.run_id());
      Check(stored.status(), "list models");
      Check((*state)->DeleteModels(run.run_id(), ModelsToDelete(*stored, r, policy, {}, false)),
            "retention");
    }
    run.set_state(wire::v1::COMPLETED);
    Check((*state)->UpdateRun(run), "complete");
    if ((i + 1) % 100 == 0 || i + 1 == runs) {
      std::fprintf(stderr, "\rwrote %d/%d runs (%.1f GB on disk, %.0f s)", i + 1, runs,
                   static_cast<double>(DirBytes(dir)) / 1e9, Seconds(start, Clock::now()));
    }
  }
  std::fprintf(stderr, "\n");
}

// What Recover did before: every run's history and current model read at start-up.
double EagerLoad(const std::string& dir) {
  const auto start = Clock::now();
  auto state = CoordinatorState::Open(dir);
  Check(state.status(), "open");
  auto runs = (*state)->ListRuns();
  Check(runs.status(), "list runs");
  uint64_t bytes = 0;
  for (const storage::v1::RunRecord& run : *runs) {
    Check((*state)->ListRounds(run.run_id()).status(), "rounds");
    auto model = (*state)->LoadModel(run.run_id(), run.completed_rounds());
    Check(model.status(), "model");
    for (const Tensor& t : model->tensors) bytes += t.data().size();
  }
  const double s = Seconds(start, Clock::now());
  if (bytes == 0) std::fprintf(stderr, "no model bytes read\n");
  return s;
}

// Today's start-up: Open + RunManager::Recover.
double Startup(const std::string& dir, size_t* listed) {
  const auto start = Clock::now();
  auto state = CoordinatorState::Open(dir);
  Check(state.status(), "open");
  ClientRegistry registry{ClientRegistry::Options{}};
  RunManager manager(RunManagerOptions{}, state->get(), &registry);
  Check(manager.Recover(), "recover");
  const double s = Seconds(start, Clock::now());
  *listed = manager.ListRuns().size();
  return s;
}

void Report(const char* name, std::vector<double> t) {
  std::sort(t.begin(), t.end());
  std::printf("| %-44s | %8.3f | %8.3f |\n", name, t.front(), t[t.size() / 2]);
}

int Main() {
  const int runs = absl::GetFlag(FLAGS_runs);
  const int64_t params = absl::GetFlag(FLAGS_params);
  const int rounds = absl::GetFlag(FLAGS_rounds);
  const int repeats = std::max(1, absl::GetFlag(FLAGS_repeats));
  if (runs < 1 || params < 1 || rounds < 1 || absl::GetFlag(FLAGS_keep_last) < 1) {
    std::fprintf(stderr, "--runs, --params, --rounds and --keep_last must be >= 1\n");
    return 2;
  }
  std::string dir = absl::GetFlag(FLAGS_dir);
  const bool temporary = dir.empty();
  if (temporary) {
    dir = (std::filesystem::temp_directory_path() / absl::StrCat("tessera-startup-", getpid()))
              .string();
  }
  if (!absl::GetFlag(FLAGS_keep)) {
    std::filesystem::remove_all(dir);
    Populate(dir, runs, params, static_cast<uint32_t>(rounds));
  }
  const uint64_t disk = DirBytes(dir);
  const uint64_t model_bytes = static_cast<uint64_t>(params) * 4;
  std::vector<double> today, eager;
  size_t listed = 0;
  const long rss_before = MaxRssKb();
  for (int i = 0; i < repeats; ++i) today.push_back(Startup(dir, &listed));
  const long rss_today = MaxRssKb();
  for (int i = 0; i < repeats; ++i) eager.push_back(EagerLoad(dir));
  const long rss_eager = MaxRssKb();
  std::printf("%d finished runs of %lld float32 parameters, %d rounds each; retention: round 0 "
              "+ the last %d\n",
              runs, static_cast<long long>(params), rounds, absl::GetFlag(FLAGS_keep_last));
  std::printf("disk: %.2f GB (%.2f models of %.1f MB per run; %d rounds without pruning "
              "would be %.2f GB)\n\n",
              static_cast<double>(disk) / 1e9,
              static_cast<double>(disk) / static_cast<double>(model_bytes) / runs,
              static_cast<double>(model_bytes) / 1e6, rounds + 1,
              static_cast<double>(model_bytes) * (rounds + 1) * runs / 1e9);
  std::printf("| %-44s | %8s | %8s |\n", "start-up", "best s", "median s");
  std::printf("|%s|%s|%s|\n", std::string(46, '-').c_str(), std::string(10, '-').c_str(),
              std::string(10, '-').c_str());
  Report("Open + Recover (ended runs load lightly)", today);
  Report("Open + every run's model and history (before)", eager);
  std::printf("\nruns listed after Recover: %zu; peak RSS of this process after the light "
              "start-ups: %ld MB (from %ld MB); the eager start-up kept every run's model in "
              "memory, %.2f GB (this bench frees each after reading it: peak %ld MB)\n",
              listed, rss_today / 1024, rss_before / 1024,
              static_cast<double>(model_bytes) * runs / 1e9, rss_eager / 1024);
  if (temporary) std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace tessera::coordinator

int main(int argc, char** argv) {
  tessera::ParseProgramFlags(
      argc, argv,
      "Coordinator start-up time with many finished runs (Open + Recover) next to an eager "
      "load of every run's model, on one database written through CoordinatorState.");
  return tessera::coordinator::Main();
}
