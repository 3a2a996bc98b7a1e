#include "client/lm/tokenizer/tokenizer_config.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace tessera::lm {
namespace {

constexpr absl::string_view kFile = "tokenizer_config.json";

absl::Status FieldError(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(kFile, ": ", field, " ", what));
}

absl::StatusOr<std::optional<std::string>> TokenField(const nlohmann::json& root,
                                                      const char* field) {
  auto it = root.find(field);
  if (it == root.end() || it->is_null()) return std::optional<std::string>();
  if (it->is_string()) return std::optional<std::string>(it->get<std::string>());
  if (it->is_object()) {
    auto content = it->find("content");
    if (content != it->end() && content->is_string()) {
      return std::optional<std::string>(content->get<std::string>());
    }
    return FieldError(absl::StrCat(field, ".content"), "is missing or not a string");
  }
  return FieldError(field, "is not a string, an object with \"content\" or null");
}

absl::StatusOr<std::optional<bool>> BoolField(const nlohmann::json& root, const char* field) {
  auto it = root.find(field);
  if (it == root.end() || it->is_null()) return std::optional<bool>();
  if (!it->is_boolean()) return FieldError(field, "is not a boolean");
  return std::optional<bool>(it->get<bool>());
}

absl::StatusOr<std::optional<std::string>> ChatTemplateField(const nlohmann::json& root) {
  constexpr absl::string_view kField = "chat_template";
  auto it = root.find(kField);
  if (it == root.end() || it->is_null()) return std::optional<std::string>();
  if (it->is_string()) return std::optional<std::string>(it->get<std::string>());
  if (!it->is_array()) return FieldError(kField, "is not a string or a list");
  for (const nlohmann::json& entry : *it) {
    const auto name = entry.is_object() ? entry.find("name") : entry.end();
    const auto text = entry.is_object() ? entry.find("template") : entry.end();
    if (name == entry.end() || !name->is_string() || text == entry.end() ||
        !text->is_string()) {
      return FieldError(kField, "entries must be {\"name\": string, \"template\": string}");
    }
    if (name->get<std::string>() == "default") {
      return std::optional<std::string>(text->get<std::string>());
    }
  }
  return std::optional<std::string>();
}

}  // namespace

absl::StatusOr<TokenizerConfig> ParseTokenizerConfig(absl::string_view json_text) {
  const nlohmann::json root = nlohmann::json::parse(json_text.begin(), json_text.end(), nullptr,
                                                    /*allow_exceptions=*/false);
  if (root.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(kFile, ": not valid JSON"));
  }
  if (!root.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(kFile, ": not a JSON object"));
  }
  TokenizerConfig config;
  absl::StatusOr<std::optional<std::string>> token = TokenField(root, "bos_token");
  if (!token.ok()) return token.status();
  config.bos_token = *token;
  if (token = TokenField(root, "eos_token"); !token.ok()) return token.status();
  config.eos_token = *token;
  if (token = TokenField(root, "pad_token"); !token.ok()) return token.status();
  config.pad_token = *token;
  if (token = TokenField(root, "unk_token"); !token.ok()) return token.status();
  config.unk_token = *token;
  absl::StatusOr<std::optional<bool>> flag = BoolField(root, "add_bos_token");
  if (!flag.ok()) return flag.status();
  config.add_bos_token = *flag;
  if (flag = BoolField(root, "add_eos_token"); !flag.ok()) return flag.status();
  config.add_eos_token = *flag;
  absl::StatusOr<std::optional<std::string>> chat_template = ChatTemplateField(root);
  if (!chat_template.ok()) return chat_template.status();
  config.chat_template = *std::move(chat_template);
  return config;
}

}  // namespace tessera::lm
