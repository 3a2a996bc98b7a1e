// File: lm_config_fuzz.cc
// Fuzzes a language-model checkpoint's config.json (client/lm/checkpoint):
// ParseCausalLmConfig, and the tensor list a parsed config implies.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "client/lm/checkpoint/model_config.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<tessera::lm::CausalLmConfig> config = tessera::lm::ParseCausalLmConfig(text);
  tessera::fuzz::Report(config.status());
  if (config.ok()) (void)tessera::lm::ExpectedTensors(*config).size();
  return 0;
}
