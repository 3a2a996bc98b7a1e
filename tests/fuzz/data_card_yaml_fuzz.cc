// File: data_card_yaml_fuzz.cc
// Fuzzes a partner's data card in YAML (tessera-client --data-card): ParseDataCard.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "core/config/data_card.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  tessera::fuzz::Report(tessera::ParseDataCard(text, tessera::DataCardFormat::kYaml).status());
  return 0;
}
