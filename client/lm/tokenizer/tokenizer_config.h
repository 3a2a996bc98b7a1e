// File: tokenizer_config.h
// The parts of a checkpoint's tokenizer_config.json the tokenizers use: the
// bos/eos/pad/unk token texts (strings, or {"content": ...} objects as
// transformers writes AddedToken), add_bos_token / add_eos_token and chat_template.
#ifndef TESSERA_CLIENT_LM_TOKENIZER_TOKENIZER_CONFIG_H_
#define TESSERA_CLIENT_LM_TOKENIZER_TOKENIZER_CONFIG_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera::lm {

struct TokenizerConfig {
  // Unset when the file lacks the field or sets it to null.
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  std::optional<std::string> pad_token;
  std::optional<std::string> unk_token;
  std::optional<bool> add_bos_token;
  std::optional<bool> add_eos_token;
  // The Jinja chat template: the string, or from a list of {"name", "template"} objects the
  // one named "default" (unset when the list has none).
  std::optional<std::string> chat_template;
};

// Parses the text of tokenizer_config.json; other fields are ignored.
// Errors: INVALID_ARGUMENT "tokenizer_config.json: <field> ..." for malformed
// JSON or a field of the wrong type.
absl::StatusOr<TokenizerConfig> ParseTokenizerConfig(absl::string_view json_text);

}  // namespace tessera::lm

#endif  // TESSERA_CLIENT_LM_TOKENIZER_TOKENIZER_CONFIG_H_
