#include "client/runtime/local_data.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/data/csv_reader.h"
#include "client/data/idx_reader.h"
#include "client/data/partition.h"
#include "core/base/status_macros.h"

namespace tessera {
namespace {

absl::Status Flag(absl::string_view flag, const absl::Status& s) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(flag, ": ", s.message()));
}

absl::StatusOr<Dataset> LoadCsv(const std::string& spec, const LocalDataOptions& options,
                                absl::string_view flag) {
  if (!absl::StartsWith(spec, "csv:")) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": expected csv:FILE, got \"", spec, "\""));
  }
  CsvOptions csv;
  csv.label_column = options.label_column;
  absl::StatusOr<Dataset> data = LoadCsvDataset(spec.substr(4), csv);
  if (!data.ok()) return Flag(flag, data.status());
  return data;
}

absl::StatusOr<Dataset> Limit(Dataset data, size_t limit) {
  if (limit == 0 || data.size() <= limit) return data;
  std::vector<size_t> first(limit);
  for (size_t i = 0; i < limit; ++i) first[i] = i;
  return Subset(data, first);
}

}  // namespace

absl::StatusOr<LocalData> LoadLocalData(const LocalDataOptions& options) {
  LocalData out;
  if (absl::StartsWith(options.source, "jsonl:")) {
    out.text_path = options.source.substr(6);
    if (!std::filesystem::is_regular_file(out.text_path)) {
      return absl::NotFoundError(absl::StrCat("--data: ", out.text_path, " is not a file"));
    }
    if (options.num_partitions != 1 || options.partition != "none") {
      return absl::InvalidArgumentError(
          "--partition: jsonl: text is not partitioned; give each client its own file");
    }
    std::ifstream in(out.text_path);
    std::string line;
    while (std::getline(in, line)) {
      if (!absl::StripAsciiWhitespace(line).empty()) ++out.text_records;
    }
    return out;
  }
  if (absl::StartsWith(options.source, "idx:")) {
    const std::string dir = options.source.substr(4);
    absl::StatusOr<Dataset> train = LoadIdxSplit(dir, "train");
    if (!train.ok()) return Flag("--data", train.status());
    absl::StatusOr<Dataset> test = LoadIdxSplit(dir, "test");
    if (!test.ok()) return Flag("--data", test.status());
    out.train = std::move(*train);
    out.test = std::move(*test);
  } else if (absl::StartsWith(options.source, "csv:")) {
    TESSERA_ASSIGN_OR_RETURN(out.train, LoadCsv(options.source, options, "--data"));
    if (options.test_source.empty()) {
      return absl::InvalidArgumentError("--test-data: required with a csv: --data source");
    }
    TESSERA_ASSIGN_OR_RETURN(out.test, LoadCsv(options.test_source, options, "--test-data"));
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "--data: expected idx:DIR, csv:FILE or jsonl:FILE, got \"", options.source, "\""));
  }
  TESSERA_ASSIGN_OR_RETURN(out.train, Limit(std::move(out.train), options.limit));
  TESSERA_ASSIGN_OR_RETURN(out.test, Limit(std::move(out.test), options.limit));

  const uint32_t n = options.num_partitions;
  if (n == 0) return absl::InvalidArgumentError("--num-partitions: must be >= 1");
  if (options.partition_index >= n) {
    return absl::InvalidArgumentError(absl::StrCat("--partition-index: ", options.partition_index,
                                                   " is not below --num-partitions ", n));
  }
  if (options.partition == "none") {
    if (n != 1) {
      return absl::InvalidArgumentError("--partition: none needs --num-partitions 1");
    }
    return out;
  }
  absl::StatusOr<PartitionSpec> spec = ParsePartitionSpec(options.partition);
  if (!spec.ok()) return Flag("--partition", spec.status());
  absl::StatusOr<Partition> train_parts =
      MakePartition(*spec, out.train.labels, out.train.num_classes, n, options.partition_seed);
  if (!train_parts.ok()) return Flag("--partition", train_parts.status());
  absl::StatusOr<Partition> test_parts =
      PartitionIid(out.test.labels, n, options.partition_seed + 1);
  if (!test_parts.ok()) return Flag("--partition", test_parts.status());
  TESSERA_ASSIGN_OR_RETURN(out.train, Subset(out.train, (*train_parts)[options.partition_index]));
  TESSERA_ASSIGN_OR_RETURN(out.test, Subset(out.test, (*test_parts)[options.partition_index]));
  if (spec->kind == PartitionSpec::kFeatureNoise) {
    // Only the training split is skewed; evaluation stays on clean examples.
    AddFeatureNoise(out.train, FeatureNoiseStd(spec->sigma, options.partition_index, n),
                    options.partition_seed + options.partition_index);
  }
  return out;
}

}  // namespace tessera
