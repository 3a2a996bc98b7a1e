// File: idx_fuzz.cc
// Fuzzes the IDX reader (MNIST-family datasets a partner points tessera-client at):
// LoadIdxDataset on an images file and a labels file, each raw or gzip-compressed.
// Input: the images file, kFileSeparator, the labels file.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "client/data/idx_reader.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using tessera::fuzz::Check;
  const std::vector<std::string> files = tessera::fuzz::SplitFiles(data, size);
  tessera::fuzz::TempDir dir;
  const std::string images = dir.Write("images-idx3-ubyte", files[0]);
  const std::string labels = dir.Write("labels-idx1-ubyte", files.size() > 1 ? files[1] : "");
  absl::StatusOr<tessera::Dataset> loaded = tessera::LoadIdxDataset(images, labels);
  tessera::fuzz::Report(loaded.status());
  if (!loaded.ok()) return 0;
  Check(loaded->example_shape.size() == 3, "images are {1, rows, cols}");
  Check(loaded->Validate().ok(), "a loaded dataset is valid");
  return 0;
}
