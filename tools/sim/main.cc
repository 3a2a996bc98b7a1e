// tessera-sim: simulates a federation of virtual clients on one machine with the real
// coordinator and client code (docs/simulation.md).
//   tessera-sim deploy/sim/fmnist_dirichlet.toml [--output DIR] [--threads N]
//                [--device auto|cpu|cuda:N] [--limit N] [--rounds N] [--no-plot]
// Prints one progress line per round; writes metrics.csv, metrics.json and metrics.png.
// Exit status 0 when the run completed; 1 with a one-line error otherwise.
//   mpirun -np K tessera-sim CONFIG ...   (or srun): the clients spread over K ranks, rank 0
//   runs the coordinator; same metrics bit for bit ("Across machines with Open MPI").
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/training/device.h"
#include "client/training/memory_policy.h"
#include "core/base/version.h"
#include "tools/sim/rank_link.h"
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
  tessera::UseTrainingMallocPolicy();  // client/training/memory_policy.h
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
  if (tessera::sim::LaunchedAsSeveralRanks() && !tessera::sim::BuiltWithMpi()) {
    std::cerr << "tessera-sim: error: started as one of several MPI ranks (mpirun/srun), but "
                 "this tessera-sim was built without MPI (CMake found no libopenmpi-dev), so "
                 "every rank would run the whole simulation; rebuild with libopenmpi-dev "
                 "installed, or run it without mpirun\n";
    return 1;
  }
  std::unique_ptr<tessera::sim::RankLink> link = tessera::sim::JoinRanks(&argc, &argv);
  options.link = link.get();
  const bool root = link == nullptr || link->rank() == 0;
  options.plot = !no_plot;
  FLAGS_logtostderr = true;
  FLAGS_minloglevel = verbose ? 0 : 1;
  google::InitGoogleLogging(argv[0]);
  // One line on stderr and exit status 1; across ranks MPI_Abort, so no rank waits for this one.
  auto fail = [&link](absl::string_view message) {
    if (link != nullptr) {
      link->Abort(absl::StrCat("tessera-sim: error (rank ", link->rank(), " of ", link->size(),
                               "): ", message));
    }
    std::cerr << "tessera-sim: error: " << message << "\n";
    return 1;
  };
  if (absl::Status s = tessera::SetTorchThreads(1); !s.ok()) return fail(s.message());
  if (root) options.on_round = [](const tessera::sim::RoundRow& row, uint32_t rounds) {
    std::cout << tessera::sim::ProgressLine(row, rounds) << std::endl;
  };
  absl::StatusOr<tessera::sim::SimulationResult> r = tessera::sim::RunSimulation(options);
  if (!r.ok()) return fail(r.status().message());
  if (!root) return 0;  // the link's destructor finalizes MPI
  std::cout << absl::StrFormat(
                   "%s after %.1f s wall, %.1f s virtual; peak RSS %.0f MB%s; metrics in %s\n",
                   r->run.state, r->run.wall_seconds, r->run.virtual_seconds,
                   r->run.peak_rss_bytes / 1e6,
                   r->run.ranks > 1
                       ? absl::StrFormat(" (%.0f MB over %u ranks)",
                                         r->run.peak_rss_bytes_all_ranks / 1e6, r->run.ranks)
                       : std::string(),
                   options.output.empty() ? "the config's simulation.output" : options.output);
  return 0;
}
