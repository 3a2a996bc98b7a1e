#include "client/data/csv_reader.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace tessera {
namespace {

std::vector<absl::string_view> SplitRow(absl::string_view line, char delimiter) {
  std::vector<absl::string_view> fields = absl::StrSplit(line, delimiter);
  for (absl::string_view& f : fields) f = absl::StripAsciiWhitespace(f);
  return fields;
}

}  // namespace

absl::StatusOr<Dataset> LoadCsvDataset(const std::string& path, const CsvOptions& options) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot open CSV file ", path, ": ", std::strerror(errno)));
  }
  if (!options.label_column.empty() && !options.has_header) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": label_column \"", options.label_column,
                     "\" needs a header row (has_header is false)"));
  }
  Dataset data;
  std::vector<std::string> names;
  size_t num_columns = 0;
  size_t label_col = 0;
  int64_t max_label = -1;
  std::string line;
  size_t line_no = 0;

  auto column_name = [&](size_t col) {
    return col < names.size() ? absl::StrCat(" ('", names[col], "')") : std::string();
  };
  auto resolve_columns = [&](size_t n) -> absl::Status {
    num_columns = n;
    if (num_columns < 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ":", line_no, ": need at least 2 columns (features and a label)"));
    }
    if (!options.label_column.empty()) {
      auto it = std::find(names.begin(), names.end(), options.label_column);
      if (it == names.end()) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, ": no column named \"", options.label_column, "\" in the header"));
      }
      label_col = static_cast<size_t>(it - names.begin());
    } else {
      const int64_t n_cols = static_cast<int64_t>(num_columns);
      const int64_t idx =
          options.label_index < 0 ? n_cols + options.label_index : options.label_index;
      if (idx < 0 || idx >= n_cols) {
        return absl::InvalidArgumentError(absl::StrCat(path, ": label_index ",
                                                       options.label_index,
                                                       " is out of range for ", n_cols,
                                                       " columns"));
      }
      label_col = static_cast<size_t>(idx);
    }
    const int64_t num_features = static_cast<int64_t>(num_columns - 1);
    if (options.example_shape.empty()) {
      data.example_shape = {num_features};
    } else {
      data.example_shape = options.example_shape;
      if (data.ExampleSize() != num_features) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, ": example_shape has ", data.ExampleSize(), " elements but the file has ",
            num_features, " feature columns"));
      }
    }
    return absl::OkStatus();
  };

  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    std::vector<absl::string_view> fields = SplitRow(line, options.delimiter);
    if (num_columns == 0) {
      if (options.has_header) {
        for (absl::string_view f : fields) names.emplace_back(f);
        if (absl::Status s = resolve_columns(fields.size()); !s.ok()) return s;
        continue;
      }
      if (absl::Status s = resolve_columns(fields.size()); !s.ok()) return s;
    }
    if (fields.size() != num_columns) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_no, ": ",
                                                     fields.size(), " fields, want ",
                                                     num_columns));
    }
    for (size_t col = 0; col < num_columns; ++col) {
      const absl::string_view field = fields[col];
      if (col == label_col) {
        int64_t label = 0;
        if (!absl::SimpleAtoi(field, &label) || label < 0) {
          return absl::InvalidArgumentError(absl::StrCat(
              path, ":", line_no, ": column ", col + 1, column_name(col),
              ": label \"", field, "\" is not a non-negative integer"));
        }
        if (options.num_classes > 0 && label >= options.num_classes) {
          return absl::InvalidArgumentError(absl::StrCat(
              path, ":", line_no, ": column ", col + 1, column_name(col), ": label ", label,
              " is >= num_classes ", options.num_classes));
        }
        data.labels.push_back(label);
        max_label = std::max(max_label, label);
        continue;
      }
      float value = 0;
      if (!absl::SimpleAtof(field, &value) || !std::isfinite(value)) {
        return absl::InvalidArgumentError(absl::StrCat(path, ":", line_no, ": column ",
                                                       col + 1, column_name(col), ": \"",
                                                       field, "\" is not a finite number"));
      }
      data.features.push_back(value);
    }
  }
  if (in.bad()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": read error"));
  }
  if (data.labels.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": no data rows"));
  }
  data.num_classes = options.num_classes > 0 ? options.num_classes : max_label + 1;
  return data;
}

}  // namespace tessera
