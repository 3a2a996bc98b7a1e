#include "core/config/data_card.h"

#include <regex>
#include <set>
#include <string_view>  // toml++ speaks std::string_view
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/file.h"
#include "core/base/status_macros.h"
#include "core/config/privacy_budget.h"
#include "core/config/text_checks.h"
#include "core/config/toml_reader.h"
#include "toml++/toml.h"

namespace tessera {
namespace {

using config_internal::FieldError;
using wire::v1::DataCard;

constexpr size_t kMaxNameChars = 128;
constexpr absl::string_view kHistogramKey = "allow_class_histogram";
constexpr absl::string_view kKeys[] = {"name",         "description", "license",
                                       "collection",   "labeling",    "intended_use",
                                       "restrictions", "contact",     kHistogramKey,
                                       "privacy_budget"};

// One key of the document and its value, whatever the format.
struct Entry {
  enum Kind { kString, kBool, kOther };
  std::string key;
  Kind kind = kOther;
  std::string text;  // kString
  bool flag = false;  // kBool
  std::string type;  // the value's type in the format's words, for errors
};

// The card's string field named `key`; nullptr for other keys.
std::string* StringField(DataCard& card, absl::string_view key) {
  if (key == "name") return card.mutable_name();
  if (key == "description") return card.mutable_description();
  if (key == "license") return card.mutable_license();
  if (key == "collection") return card.mutable_collection();
  if (key == "labeling") return card.mutable_labeling();
  if (key == "intended_use") return card.mutable_intended_use();
  if (key == "restrictions") return card.mutable_restrictions();
  if (key == "contact") return card.mutable_contact();
  if (key == "privacy_budget") return card.mutable_privacy_budget();
  return nullptr;
}

absl::StatusOr<DataCard> FromEntries(const std::vector<Entry>& entries) {
  DataCard card;
  std::set<std::string> seen;
  for (const Entry& e : entries) {
    if (!seen.insert(e.key).second) return FieldError(e.key, "is set twice");
    if (e.key == kHistogramKey) {
      if (e.kind != Entry::kBool) {
        return FieldError(e.key, absl::StrCat("must be a boolean (true or false), got ", e.type));
      }
      card.set_allow_class_histogram(e.flag);
    } else if (std::string* field = StringField(card, e.key); field != nullptr) {
      if (e.kind != Entry::kString) {
        return FieldError(e.key, absl::StrCat("must be a string, got ", e.type));
      }
      *field = e.text;
    } else {
      return FieldError(e.key, absl::StrCat("unknown key (a data card has ",
                                            absl::StrJoin(kKeys, ", "), ")"));
    }
  }
  TESSERA_RETURN_IF_ERROR(ValidateDataCard(card));
  return card;
}

// ---------------------------------------------------------------------------------------
// TOML

absl::string_view TomlType(const toml::node& node) {
  if (node.is_table()) return "table";
  if (node.is_array()) return "array";
  if (node.is_integer()) return "integer";
  if (node.is_floating_point()) return "float";
  if (node.is_date() || node.is_time() || node.is_date_time()) return "date/time";
  return node.is_string() ? "string" : node.is_boolean() ? "boolean" : "value";
}

absl::StatusOr<std::vector<Entry>> TomlEntries(absl::string_view text) {
  toml::table root;
  try {
    root = toml::parse(std::string_view(text.data(), text.size()));
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        "line ", e.source().begin.line, ", column ", e.source().begin.column, ": ",
        absl::string_view(e.description().data(), e.description().size())));
  }
  std::vector<Entry> out;
  for (const auto& [key, node] : root) {
    Entry e;
    e.key = std::string(key.str());
    e.type = std::string(TomlType(node));
    if (node.is_string()) {
      e.kind = Entry::kString;
      e.text = node.as_string()->get();
    } else if (node.is_boolean()) {
      e.kind = Entry::kBool;
      e.flag = node.as_boolean()->get();
    }
    out.push_back(std::move(e));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// YAML: yaml-cpp leaves plain scalars untyped, so they are resolved with the YAML 1.2 core
// schema here; a number or boolean where a string belongs must be quoted.

absl::string_view PlainScalarType(const std::string& s) {
  static const std::regex kBool("true|True|TRUE|false|False|FALSE");
  static const std::regex kInt("[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+");
  static const std::regex kFloat(
      "[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\\.(inf|Inf|INF)|"
      "\\.(nan|NaN|NAN)");
  if (std::regex_match(s, kBool)) return "boolean";
  if (std::regex_match(s, kInt)) return "integer";
  if (std::regex_match(s, kFloat)) return "float";
  return "string";
}

Entry YamlEntry(std::string key, const YAML::Node& v) {
  Entry e;
  e.key = std::move(key);
  switch (v.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      e.type = "null";
      return e;
    case YAML::NodeType::Sequence:
      e.type = "sequence";
      return e;
    case YAML::NodeType::Map:
      e.type = "mapping";
      return e;
    case YAML::NodeType::Scalar:
      break;
  }
  const std::string& tag = v.Tag();
  const std::string& s = v.Scalar();
  if (tag == "!" || tag == "tag:yaml.org,2002:str") {  // quoted, or !!str
    e.type = "string";
  } else if (tag == "?") {  // plain
    e.type = std::string(PlainScalarType(s));
    if (e.type == "integer" || e.type == "float") e.type += " (quote it to make it a string)";
  } else if (tag == "tag:yaml.org,2002:bool") {
    e.type = "boolean";
  } else {
    e.type = absl::StrCat("a value tagged ", tag);
  }
  if (e.type == "string") {
    e.kind = Entry::kString;
    e.text = s;
  } else if (e.type == "boolean") {
    e.kind = Entry::kBool;
    e.flag = absl::AsciiStrToLower(s) == "true";
    if (!e.flag && absl::AsciiStrToLower(s) != "false") {
      e.kind = Entry::kOther;
      e.type = absl::StrCat("\"", s, "\"");
    }
  }
  return e;
}

absl::StatusOr<std::vector<Entry>> YamlEntries(absl::string_view text) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("line ", e.mark.line + 1, ", column ",
                                                   e.mark.column + 1, ": ", e.msg));
  }
  std::vector<Entry> out;
  if (root.IsNull()) return out;  // an empty document: every key missing
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(
        "a data card must be a mapping of keys to values (\"name: ...\" lines)");
  }
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (!it->first.IsScalar()) {
      return absl::InvalidArgumentError("data card keys must be plain names");
    }
    out.push_back(YamlEntry(it->first.Scalar(), it->second));
  }
  return out;
}

}  // namespace

absl::StatusOr<DataCard> ParseDataCard(absl::string_view text, DataCardFormat format) {
  std::vector<Entry> entries;
  if (format == DataCardFormat::kToml) {
    TESSERA_ASSIGN_OR_RETURN(entries, TomlEntries(text));
  } else {
    TESSERA_ASSIGN_OR_RETURN(entries, YamlEntries(text));
  }
  return FromEntries(entries);
}

absl::StatusOr<DataCard> LoadDataCardFile(const std::string& path) {
  const std::string lower = absl::AsciiStrToLower(path);
  DataCardFormat format;
  if (absl::EndsWith(lower, ".toml")) {
    format = DataCardFormat::kToml;
  } else if (absl::EndsWith(lower, ".yaml") || absl::EndsWith(lower, ".yml")) {
    format = DataCardFormat::kYaml;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": a data card file must end in .toml, .yaml or .yml (its format)"));
  }
  TESSERA_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  absl::StatusOr<DataCard> card = ParseDataCard(text, format);
  if (!card.ok()) {
    return absl::Status(card.status().code(), absl::StrCat(path, ": ", card.status().message()));
  }
  return card;
}

absl::Status ValidateDataCard(const DataCard& card) {
  const auto required = [](absl::string_view key, const std::string& v) {
    return v.empty() ? FieldError(key, "missing (required)") : absl::OkStatus();
  };
  TESSERA_RETURN_IF_ERROR(required("name", card.name()));
  TESSERA_RETURN_IF_ERROR(config_internal::CheckLine("name", card.name(), kMaxNameChars));
  TESSERA_RETURN_IF_ERROR(required("description", card.description()));
  TESSERA_RETURN_IF_ERROR(config_internal::CheckText("description", card.description()));
  TESSERA_RETURN_IF_ERROR(required("license", card.license()));
  TESSERA_RETURN_IF_ERROR(config_internal::CheckLicenseId("license", card.license()));
  TESSERA_RETURN_IF_ERROR(config_internal::CheckText("collection", card.collection()));
  TESSERA_RETURN_IF_ERROR(config_internal::CheckText("labeling", card.labeling()));
  TESSERA_RETURN_IF_ERROR(config_internal::CheckText("intended_use", card.intended_use()));
  TESSERA_RETURN_IF_ERROR(config_internal::CheckText("restrictions", card.restrictions()));
  TESSERA_RETURN_IF_ERROR(required("contact", card.contact()));
  TESSERA_RETURN_IF_ERROR(config_internal::CheckText("contact", card.contact()));
  if (!card.privacy_budget().empty()) {
    if (absl::Status s = ParsePrivacyBudget(card.privacy_budget()).status(); !s.ok()) {
      return FieldError("privacy_budget", s.message());
    }
  }
  return absl::OkStatus();
}

bool LicenseAllowed(absl::string_view license,
                    const google::protobuf::RepeatedPtrField<std::string>& allowed) {
  if (allowed.empty()) return true;
  for (const std::string& a : allowed) {
    if (absl::EqualsIgnoreCase(a, license)) return true;
  }
  return false;
}

}  // namespace tessera
