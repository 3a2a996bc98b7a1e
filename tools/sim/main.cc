// tessera-sim: simulates a federation of virtual clients on one machine with the real
// coordinator and client code (docs/simulation.md).
//   tessera-sim deploy/sim/fmnist_dirichlet.toml [--output DIR] [--threads N]
//                [--device auto|cpu|cuda:N] [--limit N] [--rounds N] [--no-plot]
// Prints one progress line per round; writes metrics.csv, metrics.json and metrics.png.
// Exit status 0 when the run completed; 1 with a one-line error otherwise.
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>
#include <glog/logging.h>

#include "absl/strings/str_format.h"
#include "client/training/device.h"
#include "core/base/version.h"
#include "tools/sim/simulation.h"

int main(int argc, char** argv) {
  // Each worker trains on one core. OpenBLAS reads its thread count when it loads, and
  // OpenMP gives every new thread the initial count (at::set_num_threads only changes the
  // calling thread's), so both come from the environment, set before the process starts.
  if (std::getenv("OPENBLAS_NUM_THREADS") == nullptr || std::getenv("OMP_NUM_THREADS") == nullptr) {
    setenv("OPENBLAS_NUM_THREADS", "1", 0);
    setenv("OMP_NUM_THREADS", "1", 0);
    execv("/proc/self/exe", argv);  // returns only on failure; then go on as we are
  }
  CLI::App app{"tessera-sim: a federation of virtual clients on this machine, with the "
               "coordinator's and clients' real code."};
  app.set_version_flag("--version", std::string(tessera::kVersion));
  tessera::sim::SimulationOptions options;
  bool no_plot = false, verbose = false;
  app.add_option("config", options.config_path, "run config TOML with a [simulation] table")
      ->required();
  app.add_option("--output", options.output, "output directory (overrides simulation.output)");
  app.add_option("--threads", options.threads, "training threads (overrides simulation.threads)");
  app.add_option("--device", options.device, "auto | cpu | cuda | cuda:N");
  app.add_option("--transport", options.transport,
                 "in_process | grpc (overrides simulation.transport)")
      ->check(CLI::IsMember({"in_process", "grpc"}));
  app.add_option("--limit", options.limit, "use at most N examples of each split");
  app.add_option("--rounds", options.rounds, "override the config's rounds");
  app.add_flag("--no-plot", no_plot, "skip metrics.png");
  app.add_flag("--verbose", verbose, "log the coordinator's and clients' messages");
  CLI11_PARSE(app, argc, argv);
  options.plot = !no_plot;
  FLAGS_logtostderr = true;
  FLAGS_minloglevel = verbose ? 0 : 1;
  google::InitGoogleLogging(argv[0]);
  if (absl::Status s = tessera::SetTorchThreads(1); !s.ok()) {
    std::cerr << "tessera-sim: error: " << s.message() << "\n";
    return 1;
  }
  options.on_round = [](const tessera::sim::RoundRow& row, uint32_t rounds) {
    std::cout << tessera::sim::ProgressLine(row, rounds) << std::endl;
  };
  absl::StatusOr<tessera::sim::SimulationResult> r = tessera::sim::RunSimulation(options);
  if (!r.ok()) {
    std::cerr << "tessera-sim: error: " << r.status().message() << "\n";
    return 1;
  }
  std::cout << absl::StrFormat(
                   "%s after %.1f s wall, %.1f s virtual; peak RSS %.0f MB; metrics in %s\n",
                   r->run.state, r->run.wall_seconds, r->run.virtual_seconds,
                   r->run.peak_rss_bytes / 1e6,
                   options.output.empty() ? "the config's simulation.output" : options.output);
  return 0;
}
