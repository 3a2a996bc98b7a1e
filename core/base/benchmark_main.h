// File: benchmark_main.h
// main() of a Google Benchmark program (what BENCHMARK_MAIN() expands to), with `--help`
// (and -h, -help, --helpfull) printing "Usage: NAME [flags]" and what the program measures
// before Google Benchmark's own flags, exit code 0. The program links benchmark::benchmark
// and tessera::program_flags.
#ifndef TESSERA_CORE_BASE_BENCHMARK_MAIN_H_
#define TESSERA_CORE_BASE_BENCHMARK_MAIN_H_

#include <benchmark/benchmark.h>

#include <cstdio>

#include "absl/strings/string_view.h"
#include "core/base/program_flags.h"

namespace tessera {

inline int BenchmarkMain(int argc, char** argv, absl::string_view description) {
  if (HelpRequested(argc, argv)) {
    PrintUsage(argv[0], description);
    std::printf("\nGoogle Benchmark flags:\n");
    std::fflush(stdout);
    char help[] = "--help";
    char* only_help[] = {argv[0], help, nullptr};
    int only_help_count = 2;
    benchmark::Initialize(&only_help_count, only_help);  // prints its flags and exits 0
    return 0;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace tessera

#endif  // TESSERA_CORE_BASE_BENCHMARK_MAIN_H_
