#include "client/lm/tokenizer/tokenizer_json.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace tessera::lm::tokenizer_internal {

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(kTokenizerFile, ": ", field, " ", what));
}

std::string Quoted(absl::string_view s) { return absl::StrCat("\"", s, "\""); }

std::string TypeOf(const nlohmann::json& j) {
  if (!j.is_object()) return "";
  auto it = j.find("type");
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

absl::StatusOr<bool> OptionalBool(const nlohmann::json& j, const char* key,
                                  absl::string_view field, bool fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) return Invalid(absl::StrCat(field, ".", key), "is not a boolean");
  return it->get<bool>();
}

absl::StatusOr<std::vector<SectionItem>> SectionItems(const nlohmann::json& section,
                                                      absl::string_view name,
                                                      const char* list_key) {
  std::vector<SectionItem> out;
  if (TypeOf(section) != "Sequence") {
    out.push_back({&section, std::string(name)});
    return out;
  }
  const std::string prefix = absl::StrCat(name, ".", list_key);
  auto list = section.find(list_key);
  if (list == section.end() || !list->is_array()) return Invalid(prefix, "is missing");
  for (size_t i = 0; i < list->size(); ++i) {
    out.push_back({&(*list)[i], absl::StrCat(prefix, "[", i, "]")});
  }
  return out;
}

}  // namespace tessera::lm::tokenizer_internal
