// File: lm_checkpoint_fuzz.cc
// Fuzzes reading a Hugging Face checkpoint directory (client/lm/checkpoint): ReadHfCheckpoint
// on config.json with model.safetensors, or with model.safetensors.index.json and its shards.
// Input: files separated by kFileSeparator: config.json, then either model.safetensors or
// (when the second file starts with '{') the index followed by the shards, written as
// model-00001-of-0000N.safetensors ... in order.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "client/lm/checkpoint/hf_checkpoint.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using tessera::fuzz::Check;
  const std::vector<std::string> files = tessera::fuzz::SplitFiles(data, size);
  tessera::fuzz::TempDir dir;
  dir.Write("config.json", files[0]);
  if (files.size() > 1) {
    if (absl::StartsWith(files[1], "{")) {
      dir.Write("model.safetensors.index.json", files[1]);
      const size_t shards = files.size() - 2;
      for (size_t i = 0; i < shards; ++i) {
        dir.Write(absl::StrFormat("model-%05d-of-%05d.safetensors", i + 1, shards),
                  files[i + 2]);
      }
    } else {
      dir.Write("model.safetensors", files[1]);
    }
  }
  absl::StatusOr<tessera::lm::HfCheckpoint> checkpoint = tessera::lm::ReadHfCheckpoint(dir.path());
  tessera::fuzz::Report(checkpoint.status());
  if (!checkpoint.ok()) return 0;
  const std::vector<tessera::lm::ExpectedTensor> expected =
      tessera::lm::ExpectedTensors(checkpoint->config);
  Check(expected.size() == checkpoint->weights.tensors.size(), "exactly the expected tensors");
  for (size_t i = 0; i < expected.size(); ++i) {
    Check(expected[i].name == checkpoint->weights.tensors[i].name() &&
              expected[i].shape == checkpoint->weights.tensors[i].shape(),
          "expected names and shapes, in order");
  }
  return 0;
}
