// File: csv_fuzz.cc
// Fuzzes the CSV dataset reader (tessera-client --data csv:...): LoadCsvDataset.
// Input: one options byte, then the file. Options: bit 0 has_header; bit 1 label_column
// "label" (else label_index from bits 4-5: -1, 0, 1, -2); bits 2-3 the delimiter (',', ';',
// tab, space); bit 6 example_shape {2, 2}; bit 7 num_classes 3.
#include <cstddef>
#include <cstdint>
#include <string>

#include "client/data/csv_reader.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t o = data[0];
  tessera::CsvOptions options;
  options.has_header = (o & 1) != 0;
  if ((o & 2) != 0) options.label_column = "label";
  options.delimiter = ",;\t "[(o >> 2) & 3];
  static constexpr int kLabelIndex[] = {-1, 0, 1, -2};
  options.label_index = kLabelIndex[(o >> 4) & 3];
  if ((o & 64) != 0) options.example_shape = {2, 2};
  if ((o & 128) != 0) options.num_classes = 3;
  tessera::fuzz::TempDir dir;
  const std::string path = dir.Write(
      "data.csv", std::string(reinterpret_cast<const char*>(data) + 1, size - 1));
  absl::StatusOr<tessera::Dataset> loaded = tessera::LoadCsvDataset(path, options);
  tessera::fuzz::Report(loaded.status());
  if (loaded.ok()) tessera::fuzz::Check(loaded->Validate().ok(), "a loaded dataset is valid");
  return 0;
}
