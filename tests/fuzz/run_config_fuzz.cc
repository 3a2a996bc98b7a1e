// File: run_config_fuzz.cc
// Fuzzes the run configuration TOML (tessera run create, tessera-sim): ParseRunConfigToml and
// the simulator's [simulation] table, on the same text.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "core/config/run_config.h"
#include "core/config/simulation_config.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  tessera::fuzz::Report(tessera::ParseRunConfigToml(text, "/base", {"simulation"}).status());
  tessera::fuzz::Report(tessera::ParseSimulationConfig(text, "/base").status());
  return 0;
}
