// File: csv_reader.h
// Reads a labelled dataset from a CSV file: every column is a numeric feature except one
// integer label column.
#ifndef TESSERA_CLIENT_DATA_CSV_READER_H_
#define TESSERA_CLIENT_DATA_CSV_READER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/data/dataset.h"

namespace tessera {

struct CsvOptions {
  // Whether the first line names the columns. Required when label_column is set.
  bool has_header = true;
  // The label column by header name; takes precedence over label_index when non-empty.
  std::string label_column;
  // The label column by 0-based index; negative counts from the end (-1 = last column).
  int label_index = -1;
  char delimiter = ',';
  // Shape of one example; empty means {number of feature columns}. Its product must equal
  // the number of feature columns.
  std::vector<int64_t> example_shape;
  // 0 infers max label + 1.
  int64_t num_classes = 0;
};

// Blank lines are skipped; fields may be surrounded by spaces; no quoting.
// Errors: NOT_FOUND when the file cannot be opened; INVALID_ARGUMENT naming the file, the
// line and the column for a field that is not a number, a label that is not a
// non-negative integer (or is >= num_classes), a row with the wrong number of fields, an
// unknown label column, a bad example_shape, or a file without rows.
absl::StatusOr<Dataset> LoadCsvDataset(const std::string& path,
                                       const CsvOptions& options = {});

}  // namespace tessera

#endif  // TESSERA_CLIENT_DATA_CSV_READER_H_
