#include "core/config/toml_reader.h"

#include <string_view>  // toml++ speaks std::string_view
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"

namespace tessera {
namespace config_internal {
namespace {

absl::string_view Sv(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

absl::string_view TypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "table";
    case toml::node_type::array:
      return "array";
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "float";
    case toml::node_type::boolean:
      return "boolean";
    case toml::node_type::date:
      return "date";
    case toml::node_type::time:
      return "time";
    case toml::node_type::date_time:
      return "date-time";
    default:
      return "none";
  }
}

}  // namespace

absl::Status FieldError(absl::string_view path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

absl::Status CheckRange(absl::string_view path, int64_t v, Range r) {
  if (v >= r.lo && v <= r.hi) return absl::OkStatus();
  return FieldError(
      path, absl::StrCat("must be in [", r.lo, ", ", r.hi, "], got ", v));
}

std::string TableReader::Path(absl::string_view key) const {
  return prefix_.empty() ? std::string(key) : absl::StrCat(prefix_, ".", key);
}

absl::Status TableReader::CheckKeys(
    std::initializer_list<absl::string_view> allowed) const {
  if (table_ == nullptr) return absl::OkStatus();
  for (const auto& [key, node] : *table_) {
    bool known = false;
    for (absl::string_view a : allowed) known = known || Sv(key.str()) == a;
    if (!known) {
      return FieldError(Path(Sv(key.str())),
                        node.is_table() ? "unknown table" : "unknown key");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<int64_t>> TableReader::Int(
    absl::string_view key) const {
  const toml::node* node = Get(key);
  if (node == nullptr) return std::nullopt;
  if (!node->is_integer()) return TypeError(key, "integer", *node);
  return node->as_integer()->get();
}

absl::StatusOr<std::optional<double>> TableReader::Float(
    absl::string_view key) const {
  const toml::node* node = Get(key);
  if (node == nullptr) return std::nullopt;
  if (node->is_integer()) return static_cast<double>(node->as_integer()->get());
  if (!node->is_floating_point()) return TypeError(key, "number", *node);
  return node->as_floating_point()->get();
}

absl::StatusOr<std::optional<std::string>> TableReader::String(
    absl::string_view key) const {
  const toml::node* node = Get(key);
  if (node == nullptr) return std::nullopt;
  if (!node->is_string()) return TypeError(key, "string", *node);
  return node->as_string()->get();
}

absl::StatusOr<std::optional<bool>> TableReader::Bool(
    absl::string_view key) const {
  const toml::node* node = Get(key);
  if (node == nullptr) return std::nullopt;
  if (!node->is_boolean()) return TypeError(key, "boolean", *node);
  return node->as_boolean()->get();
}

absl::StatusOr<std::optional<std::vector<std::string>>> TableReader::StringArray(
    absl::string_view key) const {
  const toml::node* node = Get(key);
  if (node == nullptr) return std::nullopt;
  if (!node->is_array()) return TypeError(key, "array of strings", *node);
  std::vector<std::string> out;
  for (const toml::node& element : *node->as_array()) {
    if (!element.is_string()) {
      return FieldError(absl::StrCat(Path(key), "[", out.size(), "]"),
                        absl::StrCat("expected string, got ", TypeName(element)));
    }
    out.push_back(element.as_string()->get());
  }
  return out;
}

absl::StatusOr<int64_t> TableReader::IntIn(absl::string_view key, Range range,
                                           int64_t fallback) const {
  TESSERA_ASSIGN_OR_RETURN(std::optional<int64_t> v, Int(key));
  if (!v.has_value()) return fallback;
  TESSERA_RETURN_IF_ERROR(CheckRange(Path(key), *v, range));
  return *v;
}

absl::StatusOr<double> TableReader::FloatOr(absl::string_view key,
                                            double fallback) const {
  TESSERA_ASSIGN_OR_RETURN(std::optional<double> v, Float(key));
  return v.value_or(fallback);
}

absl::StatusOr<TableReader> TableReader::Table(absl::string_view key) const {
  const toml::node* node = Get(key);
  if (node == nullptr) return TableReader(nullptr, Path(key));
  if (!node->is_table()) return TypeError(key, "table", *node);
  return TableReader(node->as_table(), Path(key));
}

const toml::node* TableReader::Get(absl::string_view key) const {
  return table_ == nullptr
             ? nullptr
             : table_->get(std::string_view(key.data(), key.size()));
}

absl::Status TableReader::TypeError(absl::string_view key,
                                    absl::string_view expected,
                                    const toml::node& node) const {
  return FieldError(
      Path(key), absl::StrCat("expected ", expected, ", got ", TypeName(node)));
}

}  // namespace config_internal
}  // namespace tessera
