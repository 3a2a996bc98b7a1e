// File: tokenizer_fuzz.cc
// Fuzzes loading a checkpoint's tokenizer (client/lm/tokenizer): LoadTokenizer on
// tokenizer.json and tokenizer_config.json, then Encode and Decode of a text with it.
// Input: tokenizer.json, kFileSeparator, tokenizer_config.json (left out when empty),
// kFileSeparator, the text.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "client/lm/tokenizer/tokenizer.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using tessera::fuzz::Check;
  const std::vector<std::string> files = tessera::fuzz::SplitFiles(data, size);
  tessera::fuzz::TempDir dir;
  dir.Write("tokenizer.json", files[0]);
  if (files.size() > 1 && !files[1].empty()) dir.Write("tokenizer_config.json", files[1]);
  absl::StatusOr<std::unique_ptr<tessera::lm::Tokenizer>> tokenizer =
      tessera::lm::LoadTokenizer(dir.path());
  tessera::fuzz::Report(tokenizer.status());
  if (!tokenizer.ok()) return 0;
  const tessera::lm::Tokenizer& tok = **tokenizer;
  Check(tok.vocab_size() > 0, "a loaded tokenizer has a vocabulary");
  const std::string text = files.size() > 2 ? files[2] : "Hello world";
  for (bool special : {false, true}) {
    absl::StatusOr<std::vector<int32_t>> ids = tok.Encode(text, {.add_special_tokens = special});
    if (!ids.ok()) continue;
    for (int32_t id : *ids) Check(id >= 0 && id < tok.vocab_size(), "ids in the vocabulary");
    Check(tok.Decode(*ids, /*skip_special_tokens=*/special).ok(), "encoded ids decode");
  }
  std::vector<int32_t> every(static_cast<size_t>(std::min(tok.vocab_size(), 512)));
  for (size_t i = 0; i < every.size(); ++i) every[i] = static_cast<int32_t>(i);
  Check(tok.Decode(every).ok(), "every id decodes");
  return 0;
}
