// File: toml_reader.h
// Internal to core/config: typed, path-aware access to a toml++ table, so every
// error names the field ("train.batch_size: expected integer, got float"). Only
// core/config/*.cc include this (toml++ is a private dependency of
// tessera::config).
#ifndef TESSERA_CORE_CONFIG_TOML_READER_H_
#define TESSERA_CORE_CONFIG_TOML_READER_H_

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "toml++/toml.h"

namespace tessera {
namespace config_internal {

// An inclusive integer range.
struct Range {
  int64_t lo;
  int64_t hi;
};

// INVALID_ARGUMENT "<path>: <what>".
absl::Status FieldError(absl::string_view path, absl::string_view what);
// OK when lo <= v <= hi, else "<path>: must be in [lo, hi], got v".
absl::Status CheckRange(absl::string_view path, int64_t v, Range r);

// Reads typed keys of one TOML table. `prefix` is the table's dotted path (""
// for the root). A reader over nullptr stands for an absent table: every key is
// absent. `table` must outlive the reader.
class TableReader {
 public:
  TableReader(const toml::table* table, std::string prefix)
      : table_(table), prefix_(std::move(prefix)) {}

  bool present() const { return table_ != nullptr; }
  // "prefix.key", or "key" at the root.
  std::string Path(absl::string_view key) const;

  // INVALID_ARGUMENT naming the first key not in `allowed` ("unknown
  // key"/"unknown table").
  absl::Status CheckKeys(
      std::initializer_list<absl::string_view> allowed) const;

  // The value of `key`, nullopt when absent; INVALID_ARGUMENT on a wrong type.
  absl::StatusOr<std::optional<int64_t>> Int(absl::string_view key) const;
  // Accepts integers too ("fraction = 1").
  absl::StatusOr<std::optional<double>> Float(absl::string_view key) const;
  absl::StatusOr<std::optional<std::string>> String(
      absl::string_view key) const;
  absl::StatusOr<std::optional<bool>> Bool(absl::string_view key) const;
  // An array of strings ("key[2]: expected string, got integer" names a bad element).
  absl::StatusOr<std::optional<std::vector<std::string>>> StringArray(
      absl::string_view key) const;

  // An integer checked against `range` before any narrowing, or `fallback` when
  // absent.
  absl::StatusOr<int64_t> IntIn(absl::string_view key, Range range,
                                int64_t fallback) const;
  absl::StatusOr<double> FloatOr(absl::string_view key, double fallback) const;
  // The sub-table `key`; a reader over nothing when absent.
  absl::StatusOr<TableReader> Table(absl::string_view key) const;

 private:
  const toml::node* Get(absl::string_view key) const;
  absl::Status TypeError(absl::string_view key, absl::string_view expected,
                         const toml::node& node) const;

  const toml::table* table_;
  std::string prefix_;
};

}  // namespace config_internal
}  // namespace tessera

#endif  // TESSERA_CORE_CONFIG_TOML_READER_H_
