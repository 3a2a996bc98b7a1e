// tessera-bench-commit-latency: how long a status call waits while a round of a large model
// is committed (issue 19, "Lock and I/O discipline").
//
// Runs the real RunManager on a real CoordinatorState (RocksDB, synced writes) in a fresh
// directory: creates a one-round run of --params float32 parameters, connects one in-process
// client, answers its training task with an update of the same size, and from the moment the
// update is accepted until the run is COMPLETED (aggregation, then the commit that writes and
// syncs every tensor), a second thread calls GetRunStatus in a loop. Prints the status call
// latencies (p50, p99, max) and how long the window lasted.
//
//   tessera-bench-commit-latency --params=100000000 --dir=/var/tmp
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "coordinator/round/client_registry.h"
#include "coordinator/round/run_manager.h"
#include "coordinator/state/coordinator_state.h"
#include "core/base/program_flags.h"

ABSL_FLAG(uint64_t, params, 100000000, "float32 parameters of the model");
ABSL_FLAG(uint64_t, tensor_params, 1000000, "parameters per tensor");
ABSL_FLAG(std::string, dir, "/var/tmp", "where the temporary coordinator state goes");

namespace tessera::coordinator {
namespace {

using Clock = std::chrono::steady_clock;

ArrayRecord Model(uint64_t params, uint64_t per_tensor, float value) {
  ArrayRecord model;
  for (uint64_t start = 0, i = 0; start < params; start += per_tensor, ++i) {
    const uint64_t n = std::min(per_tensor, params - start);
    model.tensors.push_back(*Tensor::FromFloats(absl::StrCat("layer", i, ".w"),
                                                {static_cast<int64_t>(n)},
                                                std::vector<float>(n, value)));
  }
  return model;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
  return v[i];
}

int Run() {
  const uint64_t params = absl::GetFlag(FLAGS_params);
  const uint64_t per_tensor = std::max<uint64_t>(1, absl::GetFlag(FLAGS_tensor_params));
  const std::filesystem::path dir =
      std::filesystem::path(absl::GetFlag(FLAGS_dir)) /
      absl::StrCat("tessera-commit-bench-", ::getpid());
  auto state = CoordinatorState::Open(dir.string());
  if (!state.ok()) {
    std::fprintf(stderr, "%s\n", state.status().ToString().c_str());
    return 1;
  }
  ClientRegistry registry{ClientRegistry::Options{}};
  auto manager = std::make_unique<RunManager>(RunManagerOptions{}, state->get(), &registry);

  absl::Mutex mu;
  std::vector<wire::v1::Task> tasks;
  auto session = registry.Register("bench-client", "cpu", "bench");
  if (!session.ok() || !registry
                            .Attach(*session,
                                    [&](const wire::v1::Task& t) {
                                      absl::MutexLock l(&mu);
                                      tasks.push_back(t);
                                      return true;
                                    })
                            .ok()) {
    std::fprintf(stderr, "cannot connect the bench client\n");
    return 1;
  }

  wire::v1::RunConfig config;
  config.set_name("commit-latency");
  config.set_rounds(1);
  config.mutable_model()->set_architecture("mlp");
  config.mutable_train()->set_local_epochs(1);
  config.mutable_train()->set_batch_size(8);
  config.mutable_train()->set_learning_rate(0.1);
  config.mutable_selection()->set_clients_per_round(1);
  config.mutable_selection()->set_min_clients(1);
  config.mutable_selection()->set_wait_for_clients_seconds(60);
  config.mutable_round()->set_deadline_seconds(600);
  config.mutable_evaluation()->set_every(0);
  config.mutable_evaluation()->set_deadline_seconds(60);

  const Clock::time_point t0 = Clock::now();
  auto created = manager->CreateRun(config, Model(params, per_tensor, 1.0f), "");
  if (!created.ok()) {
    std::fprintf(stderr, "CreateRun: %s\n", created.status().ToString().c_str());
    return 1;
  }
  const double create_s = std::chrono::duration<double>(Clock::now() - t0).count();
  const std::string run_id = created->run_id();
  if (auto s = manager->StartRun(run_id); !s.ok()) {
    std::fprintf(stderr, "StartRun: %s\n", s.status().ToString().c_str());
    return 1;
  }
  wire::v1::Task task;
  {
    absl::MutexLock l(&mu);
    auto has = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return !tasks.empty(); };
    if (!mu.AwaitWithTimeout(absl::Condition(&has), absl::Seconds(120))) {
      std::fprintf(stderr, "no task\n");
      return 1;
    }
    task = tasks.front();
  }
  if (auto m = manager->BeginUpdate(task.task_id(), "bench-client"); !m.ok()) {
    std::fprintf(stderr, "BeginUpdate: %s\n", m.status().ToString().c_str());
    return 1;
  }
  ArrayRecord update = Model(params, per_tensor, 0.5f);

  // The status caller: from just before the update is submitted until the run completed.
  std::atomic<bool> done{false};
  std::vector<double> latencies_ms;
  std::thread status_thread([&] {
    while (!done) {
      const Clock::time_point a = Clock::now();
      auto s = manager->GetRunStatus(run_id);
      const Clock::time_point b = Clock::now();
      latencies_ms.push_back(std::chrono::duration<double, std::milli>(b - a).count());
      if (s.ok() && s->state() != wire::v1::RUNNING) done = true;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  const Clock::time_point w0 = Clock::now();
  absl::Status submitted =
      manager->SubmitUpdate(task.task_id(), "bench-client", 100, {{"train_loss", 1.0}}, update, 0);
  update = ArrayRecord();
  status_thread.join();
  const double window_s = std::chrono::duration<double>(Clock::now() - w0).count();
  auto final_status = manager->GetRunStatus(run_id);
  manager.reset();
  state->reset();
  std::filesystem::remove_all(dir);
  if (!submitted.ok() || !final_status.ok() || final_status->state() != wire::v1::COMPLETED) {
    std::fprintf(stderr, "round did not complete: %s %s\n", submitted.ToString().c_str(),
                 final_status.ok() ? final_status->message().c_str()
                                   : final_status.status().ToString().c_str());
    return 1;
  }
  std::printf("model: %llu float32 parameters (%.0f MB) in %llu tensors\n",
              static_cast<unsigned long long>(params), params * 4 / 1e6,
              static_cast<unsigned long long>((params + per_tensor - 1) / per_tensor));
  std::printf("CreateRun (round 0 stored): %.2f s\n", create_s);
  std::printf("update accepted -> run COMPLETED (aggregate + commit): %.2f s\n", window_s);
  std::printf("| status calls | p50 ms | p99 ms | max ms |\n|---:|---:|---:|---:|\n");
  std::printf("| %zu | %.3f | %.3f | %.3f |\n", latencies_ms.size(),
              Percentile(latencies_ms, 0.5), Percentile(latencies_ms, 0.99),
              Percentile(latencies_ms, 1.0));
  return 0;
}

}  // namespace
}  // namespace tessera::coordinator

int main(int argc, char** argv) {
  tessera::ParseProgramFlags(argc, argv,
                             "Status-call latency while a round of a large model is committed.");
  return tessera::coordinator::Run();
}
